// CPC v2 on images: the masked context never sees the rows it predicts (the paper's invariant),
// the patch grid against direct slicing, the loss against a naive loop, patch augmentation only
// while training (seeded, inside its bounds), a 2-step smoke run, the loss falling when one batch
// is overfitted, a checkpoint round trip and config errors.
#include <algorithm>
#include <cmath>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/method/cpc_image.h"
#include "tests/method/method_fixtures.h"
#include "tests/support/support.h"

namespace contra::method {
namespace {

using contra::testing::config_error;
using contra::testing::SeededTest;
using torch::indexing::Slice;
class CpcImageTest : public SeededTest {};

// 28×28 → a 6×6 grid of 8×8 patches (stride 4); D = 16, targets 8, offsets 2 and 3.
CpcImageConfig tiny() {
  CpcImageConfig c;
  c.encoder.width = 4;
  c.patch_size = 8;
  c.patch_stride = 4;
  c.patch_jitter = 1;
  c.patch_color = 0.3;
  c.context.channels = 8;
  c.context.blocks = 2;
  c.target_dim = 8;
  c.prediction_steps = 3;
  c.skip_steps = 1;
  return c;
}

// Rows [from, end) of a (B, C, rows, cols) grid, or of (B, K, T, rows, cols) predictions.
torch::Tensor rows_of(const torch::Tensor& t, int64_t from, int64_t end) {
  return t.narrow(t.dim() - 2, from, end - from);
}

// ---- the invariant ------------------------------------------------------------------------------

TEST_F(CpcImageTest, MaskedContextNeverSeesRowsBelow) {
  nn::MaskedContext ctx(nn::MaskedContextOptions(16).channels(8).blocks(3).kernel(3));
  torch::Tensor z = torch::randn({2, 16, 6, 6});
  torch::Tensor c = ctx->forward(z);
  EXPECT_EQ(c.sizes(), z.sizes());
  for (int64_t i = 0; i < 5; ++i) {
    // Everything below row i replaced: rows 0..i of the context are bit-identical.
    torch::Tensor below = z.clone();
    rows_of(below, i + 1, 6).copy_(torch::randn({2, 16, 5 - i, 6}));
    torch::Tensor c_below = ctx->forward(below);
    EXPECT_TRUE(rows_of(c_below, 0, i + 1).equal(rows_of(c, 0, i + 1))) << "row " << i;
    EXPECT_FALSE(rows_of(c_below, i + 1, i + 2).equal(rows_of(c, i + 1, i + 2))) << "row " << i;
    // Row i itself is context for row i (so the test can fail): changing it changes c_i.
    torch::Tensor same_row = z.clone();
    rows_of(same_row, i, i + 1).add_(1.0);
    torch::Tensor c_row = ctx->forward(same_row);
    EXPECT_FALSE(rows_of(c_row, i, i + 1).equal(rows_of(c, i, i + 1))) << "row " << i;
    EXPECT_TRUE(rows_of(c_row, 0, i).equal(rows_of(c, 0, i))) << "row " << i;
  }
  // The receptive field reaches blocks · (kernel / 2) = 3 rows up: row 5 sees row 2, not row 1.
  EXPECT_EQ(ctx->rows_seen(), 3);
  torch::Tensor up = z.clone();
  rows_of(up, 1, 2).add_(1.0);
  torch::Tensor c_up = ctx->forward(up);
  EXPECT_TRUE(rows_of(c_up, 5, 6).equal(rows_of(c, 5, 6)));
  EXPECT_FALSE(rows_of(c_up, 4, 5).equal(rows_of(c, 4, 5)));
}

TEST_F(CpcImageTest, PredictionsFromRowIDoNotDependOnThePixelsOfLowerRows) {
  CpcImage m(tiny());
  m.train();  // layer norm: training mode encodes every patch on its own too
  torch::Tensor x = torch::randn({3, 1, 28, 28});
  torch::Tensor p = m.predict(m.encode(extract_patches(x, 8, 4)));  // (3, 2, 8, 6, 6)
  for (int64_t i = 0; i < 5; ++i) {
    // Pixel rows from i·S + P on belong only to patch rows > i.
    torch::Tensor y = x.clone();
    y.narrow(2, i * 4 + 8, 28 - (i * 4 + 8)).normal_();
    torch::Tensor q = m.predict(m.encode(extract_patches(y, 8, 4)));
    EXPECT_TRUE(rows_of(q, 0, i + 1).equal(rows_of(p, 0, i + 1))) << "row " << i;
    EXPECT_FALSE(rows_of(q, i + 1, 6).equal(rows_of(p, i + 1, 6))) << "row " << i;
  }
}

TEST_F(CpcImageTest, BatchNormInTheEncoderLeaksLowerRowsWhileTraining) {
  // Why CPC v2 uses layer norm: with batch statistics, the lower rows' pixels reach the
  // predictions made from the upper rows (through every patch's normalisation).
  CpcImageConfig c = tiny();
  c.encoder.norm = "batch";
  CpcImage m(c);
  m.train();
  torch::Tensor x = torch::randn({3, 1, 28, 28});
  torch::Tensor y = x.clone();
  y.narrow(2, 16, 12).normal_();  // only patch rows > 1
  torch::Tensor p = m.predict(m.encode(extract_patches(x, 8, 4)));
  torch::Tensor q = m.predict(m.encode(extract_patches(y, 8, 4)));
  EXPECT_FALSE(rows_of(q, 0, 2).equal(rows_of(p, 0, 2)));
  m.eval();  // running statistics: no coupling
  p = m.predict(m.encode(extract_patches(x, 8, 4)));
  q = m.predict(m.encode(extract_patches(y, 8, 4)));
  EXPECT_TRUE(rows_of(q, 0, 2).equal(rows_of(p, 0, 2)));
}

// ---- patches ------------------------------------------------------------------------------------

TEST_F(CpcImageTest, PatchGridMatchesDirectSlicing) {
  torch::Tensor x = torch::randn({2, 3, 20, 17});
  const int64_t P = 6, S = 4;  // 4 rows (0, 4, 8, 12), 3 columns (0, 4, 8)
  torch::Tensor p = extract_patches(x, P, S);
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{2, 4, 3, 3, 6, 6}));
  torch::Tensor top = torch::empty({2, 4, 3}, torch::kLong), left = torch::empty_like(top);
  torch::Tensor rtop = torch::randint(0, 20 - P + 1, {2, 4, 3}, torch::kLong);
  torch::Tensor rleft = torch::randint(0, 17 - P + 1, {2, 4, 3}, torch::kLong);
  torch::Tensor cut = torch::empty({2, 4, 3, 3, 6, 6});
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t i = 0; i < 4; ++i) {
      for (int64_t j = 0; j < 3; ++j) {
        auto direct = x.index({b, Slice(), Slice(i * S, i * S + P), Slice(j * S, j * S + P)});
        EXPECT_TRUE(p.index({b, i, j}).equal(direct)) << b << " " << i << " " << j;
        top.index_put_({b, i, j}, i * S);
        left.index_put_({b, i, j}, j * S);
        const int64_t t = rtop.index({b, i, j}).item<int64_t>();
        const int64_t l = rleft.index({b, i, j}).item<int64_t>();
        cut.index_put_({b, i, j}, x.index({b, Slice(), Slice(t, t + P), Slice(l, l + P)}));
      }
    }
  }
  EXPECT_TRUE(cut_patches(x, top, left, P).equal(p));
  EXPECT_TRUE(cut_patches(x, rtop, rleft, P).equal(cut));
}

TEST_F(CpcImageTest, GridSidesAndShapes) {
  struct Case {
    int64_t side, patch, stride, grid;
  };
  for (Case c : {Case{28, 8, 4, 6}, Case{28, 10, 6, 4}, Case{28, 7, 7, 4}, Case{32, 8, 4, 7},
                 Case{256, 64, 32, 7}, Case{28, 28, 1, 1}, Case{27, 28, 1, 0}}) {
    CpcImageConfig cfg = tiny();
    cfg.patch_size = c.patch;
    cfg.patch_stride = c.stride;
    cfg.patch_jitter = 0;
    EXPECT_EQ(cfg.grid_side(c.side), c.grid) << c.side << " " << c.patch << " " << c.stride;
    if (c.grid == 0 || c.side > 64) continue;
    EXPECT_EQ(extract_patches(torch::zeros({1, 1, c.side, c.side}), c.patch, c.stride).size(1),
              c.grid);
  }
  for (auto [P, S] : {std::pair<int64_t, int64_t>{8, 4}, {10, 6}, {7, 7}}) {
    CpcImageConfig cfg = tiny();
    cfg.patch_size = P;
    cfg.patch_stride = S;
    cfg.patch_jitter = 0;
    cfg.prediction_steps = 3;
    CpcImage m(cfg);
    const int64_t g = cfg.grid_side(28);
    torch::Tensor z = m.encode(m.patches(torch::randn({2, 1, 28, 28}), false));
    EXPECT_EQ(z.sizes(), (std::vector<int64_t>{2, 16, g, g}));
    EXPECT_EQ(m.predict(z).sizes(), (std::vector<int64_t>{2, 2, 8, g, g}));
    EXPECT_EQ(m.targets(z).sizes(), (std::vector<int64_t>{2, 8, g, g}));
  }
}

TEST_F(CpcImageTest, PatchAugmentationIsSeededBoundedAndOnlyWhileTraining) {
  CpcImageConfig c = tiny();
  c.patch_jitter = 1;
  c.patch_color = 0;
  CpcImage m(c);
  torch::Tensor x = torch::randn({2, 1, 28, 28});
  torch::manual_seed(3);
  torch::Tensor a = m.patches(x, true);
  torch::manual_seed(3);
  EXPECT_TRUE(m.patches(x, true).equal(a));
  EXPECT_FALSE(m.patches(x, true).equal(a));
  EXPECT_FALSE(a.equal(m.patches(x, false)));
  // Every jittered patch is the image at an offset of at most 1 from its grid position (clamped).
  int shifted = 0;
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t i = 0; i < 6; ++i) {
      for (int64_t j = 0; j < 6; ++j) {
        bool found = false;
        for (int64_t dy = -1; dy <= 1 && !found; ++dy) {
          for (int64_t dx = -1; dx <= 1 && !found; ++dx) {
            const int64_t t = std::clamp<int64_t>(i * 4 + dy, 0, 20);
            const int64_t l = std::clamp<int64_t>(j * 4 + dx, 0, 20);
            found =
                a.index({b, i, j}).equal(x.index({b, Slice(), Slice(t, t + 8), Slice(l, l + 8)}));
            if (found && (t != i * 4 || l != j * 4)) ++shifted;
          }
        }
        EXPECT_TRUE(found) << b << " " << i << " " << j;
      }
    }
  }
  EXPECT_GT(shifted, 20);  // of 72 patches, 8/9 move

  // Colour: contrast in [1 − s, 1 + s] about the patch mean, brightness in [−s, s].
  c.patch_jitter = 0;
  c.patch_color = 0.3;
  CpcImage colour(c);
  torch::Tensor plain = extract_patches(x, 8, 4);
  torch::Tensor aug = colour.patches(x, true);
  auto shift = (aug.mean({3, 4, 5}) - plain.mean({3, 4, 5}));
  auto ratio = aug.std(c10::IntArrayRef{3, 4, 5}) / plain.std(c10::IntArrayRef{3, 4, 5});
  EXPECT_LE(shift.abs().max().item<double>(), 0.3 + 1e-5);
  EXPECT_GT(shift.abs().max().item<double>(), 0.2);
  EXPECT_GE(ratio.min().item<double>(), 0.7 - 1e-5);
  EXPECT_LE(ratio.max().item<double>(), 1.3 + 1e-5);
  EXPECT_GT((ratio - 1).abs().max().item<double>(), 0.2);

  // features() never augments: the same in training and evaluation mode, twice.
  CpcImage full(tiny());
  full.train();
  torch::Tensor f = full.features(x, "encoder");
  EXPECT_TRUE(full.features(x, "encoder").equal(f));
  full.eval();
  EXPECT_TRUE(torch::allclose(full.features(x, "encoder"), f));
}

// ---- the loss -----------------------------------------------------------------------------------

TEST_F(CpcImageTest, LossIsInfoNceOverEveryPatchOfTheBatch) {
  CpcImage m(tiny());
  m.to(torch::kDouble);
  torch::Tensor z = torch::randn({2, 16, 6, 6}, torch::kDouble);
  StepOutput out = m.contrastive_loss(z);
  torch::Tensor pred = m.predict(z), t = m.targets(z);  // (2, 2, 8, 6, 6), (2, 8, 6, 6)
  // Naive loop: each prediction against the targets of all 72 patches of the batch.
  double total = 0;
  for (int64_t k = 2; k <= 3; ++k) {
    double sum = 0, correct = 0, count = 0;
    for (int64_t b = 0; b < 2; ++b) {
      for (int64_t i = 0; i + k < 6; ++i) {
        for (int64_t j = 0; j < 6; ++j) {
          auto p = pred.index({b, k - 2, Slice(), i, j});
          std::vector<double> logits;
          double best = -1e300;
          int64_t arg = -1, n = 0, positive = -1;
          for (int64_t bb = 0; bb < 2; ++bb) {
            for (int64_t ii = 0; ii < 6; ++ii) {
              for (int64_t jj = 0; jj < 6; ++jj, ++n) {
                double s = (p * t.index({bb, Slice(), ii, jj})).sum().item<double>();
                logits.push_back(s);
                if (s > best) best = s, arg = n;
                if (bb == b && ii == i + k && jj == j) positive = n;
              }
            }
          }
          double norm = 0;
          for (double s : logits) norm += std::exp(s - best);
          sum += -(logits[static_cast<size_t>(positive)] - best - std::log(norm));
          correct += arg == positive;
          ++count;
        }
      }
    }
    EXPECT_NEAR(out.metrics.at("loss_" + std::to_string(k)), sum / count, 1e-10);
    EXPECT_DOUBLE_EQ(out.metrics.at("acc_" + std::to_string(k)), correct / count);
    total += sum / count / 2;
  }
  EXPECT_NEAR(out.loss.item<double>(), total, 1e-10);
  EXPECT_EQ(out.metrics.count("loss_1"), 0u);  // offset 1 is skipped
}

TEST_F(CpcImageTest, TwoStepsRunWithTheProbe) {
  CpcImageConfig c = tiny();
  c.online_probe_classes = 10;
  CpcImage m(c);
  torch::optim::Adam opt(m.parameters(), 1e-3);
  for (int step = 0; step < 2; ++step) {
    Batch b;
    b.input = torch::randn({4, 1, 28, 28});
    b.views = {b.input};
    b.labels = torch::arange(4) % 10;
    StepOutput out = m.step(b);
    ASSERT_TRUE(std::isfinite(out.loss.item<double>()));
    for (const char* key : {"cpc_loss", "loss_2", "loss_3", "acc_2", "acc_3", "online_acc"}) {
      EXPECT_TRUE(out.metrics.count(key)) << key;
    }
    opt.zero_grad();
    out.loss.backward();
    opt.step();
  }
  EXPECT_EQ(m.features(torch::randn({3, 1, 28, 28}), "encoder").sizes(),
            (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(m.features(torch::randn({3, 1, 28, 28}), "context").sizes(),
            (std::vector<int64_t>{3, 16}));
  torch::Tensor x = torch::randn({3, 1, 28, 28});
  torch::Tensor grid = m.features(x, "grid");  // 6×6 patches of 16
  EXPECT_EQ(grid.sizes(), (std::vector<int64_t>{3, 16 * 36}));
  EXPECT_TRUE(torch::allclose(grid.view({3, 16, 36}).mean(2), m.features(x, "encoder")));
  std::string e = config_error([&] { m.features(torch::randn({1, 1, 28, 28}), "nope"); });
  EXPECT_NE(e.find("cpc_image"), std::string::npos) << e;
  EXPECT_NE(e.find("'encoder'"), std::string::npos) << e;
  EXPECT_NE(e.find("'context'"), std::string::npos) << e;
  EXPECT_NE(e.find("'grid'"), std::string::npos) << e;
}

TEST_F(CpcImageTest, LossFallsWhenOverfittingOneBatch) {
  // Diagonal stripes of a random frequency and phase per image: the rows below continue the rows
  // above, and every patch of the batch differs from the others.
  CpcImageConfig c = tiny();
  c.patch_jitter = 0;
  c.patch_color = 0;
  c.emb_scale = 1.0;  // logits grow 10× faster than with the paper's 0.1 in this short run
  CpcImage m(c);
  auto frequency = 0.3 + 0.9 * torch::rand({16, 1, 1, 1});
  auto phase = 2 * M_PI * torch::rand({16, 1, 1, 1});
  auto h = torch::arange(28, torch::kFloat).view({1, 1, 28, 1});
  auto w = torch::arange(28, torch::kFloat).view({1, 1, 1, 28});
  Batch b;
  b.input = torch::sin(frequency * (w + 0.7 * h) + phase);  // (16, 1, 28, 28)
  auto [first, last] = testing::overfit(m, b, 150, 5e-3);
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
  RecordProperty("first_loss", std::to_string(first));
  RecordProperty("last_loss", std::to_string(last));
}

TEST_F(CpcImageTest, CheckpointRoundTrip) {
  CpcImageConfig c = tiny();
  c.online_probe_classes = 10;
  CpcImage m(c);
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    m.save(archive);
    archive.save_to(buffer);
  }
  torch::manual_seed(99);
  CpcImage back(c);
  torch::Tensor x = torch::randn({2, 1, 28, 28});
  EXPECT_FALSE(back.features(x, "context").equal(m.features(x, "context")));
  torch::serialize::InputArchive archive;
  archive.load_from(buffer);
  back.load(archive);
  EXPECT_TRUE(back.features(x, "context").equal(m.features(x, "context")));
  torch::Tensor z = torch::randn({2, 16, 6, 6});
  EXPECT_TRUE(back.predict(z).equal(m.predict(z)));
  EXPECT_TRUE(back.targets(z).equal(m.targets(z)));
  EXPECT_TRUE(back.probe->linear->weight.equal(m.probe->linear->weight));
}

TEST_F(CpcImageTest, ConfigErrorsNameTheKey) {
  auto error_of = [](auto edit) {
    CpcImageConfig c = tiny();
    edit(c);
    return config_error([&] { CpcImage m(c); });
  };
  auto has = [](const std::string& e, const char* key) { return e.find(key) != std::string::npos; };
  EXPECT_TRUE(has(error_of([](auto& c) { c.patch_size = 3; }), "patch_size"));
  EXPECT_TRUE(has(error_of([](auto& c) { c.patch_stride = 0; }), "patch_stride"));
  EXPECT_TRUE(has(error_of([](auto& c) { c.patch_jitter = 2; }), "patch_jitter"));  // 2·2 ≮ 4
  EXPECT_TRUE(has(error_of([](auto& c) { c.patch_color = 1; }), "patch_color"));
  EXPECT_TRUE(has(error_of([](auto& c) { c.skip_steps = 3; }), "skip_steps"));
  EXPECT_TRUE(has(error_of([](auto& c) { c.prediction_steps = 0; }), "prediction_steps"));
  EXPECT_TRUE(has(error_of([](auto& c) { c.emb_scale = 0; }), "emb_scale"));
  EXPECT_TRUE(has(error_of([](auto& c) { c.target_dim = -1; }), "target_dim"));
  EXPECT_TRUE(has(error_of([](auto& c) { c.encoder.norm = "group"; }), "encoder.norm"));
  EXPECT_TRUE(has(error_of([](auto& c) { c.context.kernel = 2; }), "context.kernel"));
  EXPECT_TRUE(has(error_of([](auto& c) { c.online_probe_classes = 1; }), "online_probe"));

  CpcImage m(tiny());
  EXPECT_TRUE(has(config_error([&] { m.check_batch(8, 2, 28); }), "augment.views"));
  EXPECT_TRUE(has(config_error([&] { m.check_batch(0, 1, 28); }), "train.batch_size"));
  std::string small = config_error([&] { m.check_batch(8, 1, 6); });
  EXPECT_TRUE(has(small, "augment.size") && has(small, "method.patch_size")) << small;
  // 16 px with 8×8 patches at stride 4: 3 rows, not more than prediction_steps 3.
  std::string rows = config_error([&] { m.check_batch(8, 1, 16); });
  EXPECT_TRUE(has(rows, "method.prediction_steps") && has(rows, "augment.size 16")) << rows;
  m.check_batch(8, 1, 20);  // 4 rows: fine
  Batch b;
  b.input = torch::randn({2, 1, 16, 16});
  EXPECT_TRUE(has(config_error([&] { m.step(b); }), "prediction_steps"));
  b.input = torch::randn({2, 3, 28, 28});
  contra::testing::expect_data_error([&] { m.step(b); }, "in_channels");
}

}  // namespace
}  // namespace contra::method
