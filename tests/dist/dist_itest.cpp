// Distributed training with two real processes on 127.0.0.1 (c10d Gloo), against the one-process
// result:
//   1. 2 ranks × batch B train to the same weights as 1 process × 2B (sync-BN SimCLR and BYOL,
//      gradient accumulation 2), to 1e-5 relative;
//   2. gathered NT-Xent and CLIP losses equal the one-process loss on the concatenated batch,
//      gradients included;
//   3. MoCo: identical queues on both ranks after enqueue; cross-rank shuffle ∘ unshuffle = id;
//   4. a killed rank and a hung rank: the survivor fails within the timeout naming the rank, and
//   the
//      launcher returns non-zero; `contra launch` runs a training end to end;
//   5. torchrun --no-python starts the same training (skipped without torchrun).
//
// The ranks are this test binary again (DistWorker.Run with CONTRA_DIST_SCENARIO), started through
// dist::launch — the code behind `contra launch`.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "contra/core/fs.h"
#include "contra/dist/collectives.h"
#include "contra/dist/group.h"
#include "contra/dist/launch.h"
#include "contra/loss/barlow_twins.h"
#include "contra/loss/clip.h"
#include "contra/loss/nt_xent.h"
#include "contra/method/barlow_twins.h"
#include "contra/method/byol.h"
#include "contra/method/cpc_image.h"
#include "contra/method/deepcluster.h"
#include "contra/method/instance_discrimination.h"
#include "contra/method/moco.h"
#include "contra/method/simclr.h"
#include "contra/method/swav.h"
#include "contra/train/checkpoint.h"
#include "contra/train/trainer.h"
#include "tests/support/support.h"
#include "tests/train/fake_digits.h"

namespace contra::dist {
namespace {

using contra::testing::TempDir;
namespace fs = std::filesystem;

std::string out_dir() {
  const char* d = std::getenv("CONTRA_DIST_OUT");
  return d ? d : "";
}

double timeout_s() {
  const char* t = std::getenv("CONTRA_DIST_TIMEOUT");
  return t ? std::atof(t) : 60.0;
}

// ---- shared by the ranks and the one-process reference ------------------------------------------

constexpr int64_t kItems = 64;

// A SimCLR or BYOL (small CNN, sync-BN everywhere) trained for 4 steps of accumulation 2 on fixed
// "views" (no augmentation, so batches are exact functions of the item index): micro-batch i is
// items [i·G, (i+1)·G) mod kItems of the global batch G = per_rank × ranks; this rank takes its
// slice.
train::TrainSummary train_tiny(const std::string& method, const std::string& run_dir,
                               int64_t per_rank, std::vector<torch::Tensor>* params) {
  Group& g = world();
  torch::manual_seed(7);
  std::shared_ptr<method::Method> m;
  if (method == "byol") {
    method::ByolConfig c;
    c.encoder.type = "small_cnn";
    c.encoder.width = 4;
    c.projection.hidden = 16;
    c.projection.out = 8;
    c.predictor.hidden = 16;
    c.predictor.out = 8;
    c.tau_base = 0.9;
    auto byol = std::make_shared<method::Byol>(c);
    byol->set_total_steps(4);
    // float64: BYOL's two networks, predictor and EMA put float32 rounding near 1e-5 (9e-6 seen),
    // too close to the bound to be a stable test; the equivalence itself is what is checked.
    byol->to(torch::kDouble);
    m = byol;
  } else if (method == "barlow_twins") {
    method::BarlowTwinsConfig c;
    c.encoder.type = "small_cnn";
    c.encoder.width = 4;
    c.projection.hidden = 16;
    c.projection.out = 16;
    c.projection.layers = 3;
    m = std::make_shared<method::BarlowTwins>(c);
    m->to(torch::kDouble);
  } else if (method == "instance_discrimination") {
    // NCE: Z over the global first batch, the global batch's noise draw split by rows, the bank
    // updated with every rank's items. float64 so that the equivalence, not rounding, is checked.
    method::InstanceDiscriminationConfig c;
    c.encoder.type = "small_cnn";
    c.encoder.width = 4;
    c.embedding = 8;
    c.negatives = 16;
    auto id = std::make_shared<method::InstanceDiscrimination>(c);
    id->set_bank_size(kItems);
    id->to(torch::kDouble);
    m = id;
  } else if (method == "swav") {
    // Multi-crop, prototypes frozen for 2 steps, a queue filled from step 1 (each rank keeps its
    // half) joining the codes once full, Sinkhorn over both ranks' scores.
    method::SwavConfig c;
    c.encoder.type = "small_cnn";
    c.encoder.width = 4;
    c.projection.hidden = 16;
    c.projection.out = 8;
    c.prototypes = 6;
    c.freeze_prototypes_steps = 2;
    c.queue_length = 16;
    c.queue_start_step = 1;
    m = std::make_shared<method::Swav>(c);
    m->to(torch::kDouble);
  } else if (method == "deepcluster") {
    method::DeepClusterConfig c;
    c.encoder.type = "small_cnn";
    c.encoder.width = 4;
    c.projection.hidden = 16;
    c.projection.out = 8;
    c.clusters = 4;
    c.pca_dim = 4;
    c.reassign_every = 2;  // clusterings at steps 0 and 2
    c.feature_batch = 10;
    m = std::make_shared<method::DeepCluster>(c);
    m->to(torch::kDouble);
  } else if (method == "cpc_image") {
    // 12×12 → a 5×5 grid of 4×4 patches; every prediction scored against both ranks' targets.
    // No patch augmentation: its draws depend on how the batch is split, the equivalence does not.
    method::CpcImageConfig c;
    c.encoder.width = 4;
    c.patch_size = 4;
    c.patch_stride = 2;
    c.patch_jitter = 0;
    c.patch_color = 0;
    c.context.channels = 8;
    c.context.blocks = 2;
    c.target_dim = 8;
    c.prediction_steps = 3;
    c.skip_steps = 1;
    m = std::make_shared<method::CpcImage>(c);
    m->to(torch::kDouble);
  } else {
    method::SimClrConfig c;
    c.encoder.type = "small_cnn";
    c.encoder.width = 4;
    c.projection.hidden = 16;
    c.projection.out = 8;
    c.temperature = 0.5;
    m = std::make_shared<method::SimClr>(c);
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto dtype = method == "simclr" ? torch::kFloat : torch::kDouble;
  auto v1 = torch::rand({kItems, 1, 12, 12}, gen).to(dtype);
  auto v2 = torch::rand({kItems, 1, 12, 12}, gen).to(dtype);
  auto small = torch::rand({kItems, 1, 8, 8}, gen).to(dtype);
  const int64_t global = per_rank * g.size(), offset = per_rank * g.rank();
  train::PhaseHook phases;
  std::function<method::Batch(int64_t)> dc_batch;
  if (auto dc = std::dynamic_pointer_cast<method::DeepCluster>(m)) {
    dc->set_training_set(
        kItems, [v1](int64_t b, int64_t e) { return v1.narrow(0, b, e - b); },
        torch::arange(kItems) % 4, 5);
    phases.steps = 2;
    phases.begin = [dc](int64_t phase, int64_t) { return dc->begin_phase(phase); };
    dc_batch = [=](int64_t i) {
      torch::Tensor idx = dc->phase_items((i % 4) * global + offset, per_rank);
      method::Batch b;
      b.views = {v1.index_select(0, idx)};
      b.input = b.views[0];
      b.index = idx;
      return b;
    };
  }
  auto make_batch = [=](int64_t i) {
    if (dc_batch) return dc_batch(i);
    torch::Tensor idx = (torch::arange(per_rank) + i * global + offset) % kItems;
    method::Batch b;
    b.views = {v1.index_select(0, idx), v2.index_select(0, idx)};
    if (method == "swav") b.views.push_back(small.index_select(0, idx));
    b.input = b.views[0];
    b.index = idx;
    return b;
  };
  train::TrainConfig t;
  t.steps = 4;
  t.batch_size = per_rank;
  t.accumulation = 2;
  t.threads = 1;
  t.log_every = 1;
  t.checkpoint_every = 2;
  t.sync_batch_norm = true;
  train::OptimConfig o;
  o.name = "sgd";
  o.lr = 0.05;
  o.momentum = 0.9;
  train::Trainer trainer(m, t, o, run_dir, "test: ddp\n");
  auto summary = trainer.fit(make_batch, /*resume=*/false, phases);
  if (params) {
    for (const auto& p : m->parameters()) params->push_back(p.detach().clone());
    for (const auto& b : m->named_buffers()) {
      // SwAV's queue and its fill count are per rank by design (each rank holds its share of the
      // global queue); to(kDouble) made the count floating too.
      if (b.value().is_floating_point() && b.key() != "queue" && b.key() != "queue_filled") {
        params->push_back(b.value().detach().clone());
      }
    }
    if (auto dc = std::dynamic_pointer_cast<method::DeepCluster>(m)) {
      params->push_back(dc->assignments.to(torch::kDouble));  // the same pseudo-labels
    }
  }
  return summary;
}

struct Embeddings {
  torch::Tensor a, b;  // (W·N, D) each: the global batch
};
Embeddings global_embeddings(int64_t ranks, int64_t per_rank) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  return {torch::randn({ranks * per_rank, 6}, gen, torch::kDouble),
          torch::randn({ranks * per_rank, 6}, gen, torch::kDouble)};
}

// ---- the ranks
// -----------------------------------------------------------------------------------

void save(const std::vector<torch::Tensor>& tensors, const std::string& name) {
  torch::save(tensors, out_dir() + "/" + name);
}

std::vector<torch::Tensor> load(const std::string& dir, const std::string& name) {
  std::vector<torch::Tensor> v;
  torch::load(v, dir + "/" + name);
  return v;
}

void scenario_ddp(const std::string& method) {
  std::vector<torch::Tensor> params;
  auto s = train_tiny(method, out_dir() + "/run", 4, &params);
  params.push_back(torch::tensor(s.losses, torch::kDouble));
  save(params, fmt::format("ddp_{}.pt", world().rank()));
}

void scenario_losses() {
  const int64_t n = 3, r = world().rank();
  Embeddings e = global_embeddings(world().size(), n);
  torch::Tensor z1 = e.a.narrow(0, r * n, n).clone().requires_grad_();
  torch::Tensor z2 = e.b.narrow(0, r * n, n).clone().requires_grad_();
  auto nt = loss::functional::nt_xent_global(z1, z2, loss::NTXentOptions().temperature(0.3));
  nt.backward();
  torch::Tensor img = e.a.narrow(0, r * n, n).clone().requires_grad_();
  torch::Tensor txt = e.b.narrow(0, r * n, n).clone().requires_grad_();
  torch::Tensor log_scale = torch::tensor(std::log(1 / 0.07), torch::kDouble).requires_grad_();
  auto cl = loss::functional::clip_global(img, txt, log_scale);
  cl.backward();
  torch::Tensor b1 = e.a.narrow(0, r * n, n).clone().requires_grad_();
  torch::Tensor b2 = e.b.narrow(0, r * n, n).clone().requires_grad_();
  auto bt = loss::functional::barlow_twins_global(b1, b2, loss::BarlowTwinsOptions().lambd(0.05));
  bt.backward();
  save({nt.detach(), z1.grad(), z2.grad(), cl.detach(), img.grad(), txt.grad(), log_scale.grad(),
        bt.detach(), b1.grad(), b2.grad()},
       fmt::format("losses_{}.pt", r));
}

void scenario_moco() {
  Group& g = world();
  const int64_t n = 4;
  // Shuffle then unshuffle is the identity; the shuffled slices together are the global batch.
  torch::Tensor global = torch::arange(g.size() * n * 3, torch::kFloat).view({g.size() * n, 3});
  torch::Tensor local = global.narrow(0, g.rank() * n, n);
  Shuffled s = batch_shuffle(local);
  EXPECT_TRUE(batch_unshuffle(s.local, s.unshuffle).equal(local));
  torch::Tensor together = concat_all_gather(s.local);
  EXPECT_TRUE(std::get<0>(together.sort(0)).equal(global));
  EXPECT_FALSE(together.equal(global));  // a real permutation (seeded: not the identity)

  torch::manual_seed(5);  // the same initial model on both ranks
  method::MocoConfig c;
  c.encoder.width = 4;
  c.dim = 8;
  c.queue_size = 32;
  c.bn_splits = 2;
  c.momentum = 0.9;
  auto m = std::make_shared<method::Moco>(c);
  m->train();
  std::vector<torch::Tensor> out;
  for (int step = 0; step < 2; ++step) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(100 + 10 * g.rank() + step);
    method::Batch b;
    b.views = {torch::randn({n, 1, 28, 28}, gen), torch::randn({n, 1, 28, 28}, gen)};
    m->step(b);
    out.push_back(m->last_keys.clone());
  }
  out.push_back(m->queue->queue.clone());
  out.push_back(s.unshuffle.to(torch::kFloat));
  save(out, fmt::format("moco_{}.pt", g.rank()));
}

// A method whose metrics differ between ranks: every rank reports "rank", only rank 1 "extra".
class RankMetrics : public method::Method {
 public:
  RankMetrics() { w = register_parameter("w", torch::ones({2})); }
  method::StepOutput step(const method::Batch& batch) override {
    method::StepOutput out;
    out.loss = (w * batch.input).sum();
    out.metrics["rank"] = world().rank();
    if (world().rank() == 1) out.metrics["extra"] = 5;
    return out;
  }
  torch::Tensor features(const torch::Tensor& x, const std::string&) override { return x; }
  std::string name() const override { return "rank_metrics"; }
  torch::Tensor w;
};

void scenario_metrics() {
  auto m = std::make_shared<RankMetrics>();
  train::TrainConfig t;
  t.steps = 2;
  t.batch_size = 1;
  t.threads = 1;
  t.log_every = 1;
  t.checkpoint_every = 0;
  train::OptimConfig o;
  o.name = "sgd";
  o.lr = 0.1;
  o.momentum = 0;
  train::Trainer trainer(m, t, o, out_dir() + "/run", "test: metrics\n");
  auto s = trainer.fit(
      [](int64_t) {
        method::Batch b;
        b.input = torch::full({2}, static_cast<double>(world().rank() + 1));
        return b;
      },
      false);
  // Means over the ranks that report each metric; the gradient of w is the mean of (1, 2).
  EXPECT_DOUBLE_EQ(s.metrics.at("rank"), 0.5);
  EXPECT_DOUBLE_EQ(s.metrics.at("extra"), 5.0);
  EXPECT_TRUE(torch::allclose(m->w, torch::full({2}, 1 - 2 * 0.1 * 1.5)));
}

// Rank `victim` dies (kill) or hangs (hang) after 3 all-reduces; the others record their error.
void scenario_failure(bool kill) {
  Group& g = world();
  const int victim = 1;
  auto start = std::chrono::steady_clock::now();
  try {
    for (int i = 0; i < 1000; ++i) {
      if (g.rank() == victim && i == 3) {
        if (kill) ::raise(SIGKILL);
        std::this_thread::sleep_for(std::chrono::seconds(120));  // alive, never joins again
      }
      torch::Tensor t = torch::ones({16});
      g.all_reduce_sum_(t);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (const DistributedError& e) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    write_file_atomic(out_dir() + fmt::format("/error_{}.txt", g.rank()),
                      fmt::format("{:.2f}\n{}", s, e.what()));
    std::fflush(nullptr);
    std::_Exit(1);  // as `contra train` would: this rank failed
  }
  write_file_atomic(out_dir() + fmt::format("/error_{}.txt", g.rank()), "no error");
}

TEST(DistWorker, Run) {
  const char* scenario = std::getenv("CONTRA_DIST_SCENARIO");
  if (scenario == nullptr || std::getenv("RANK") == nullptr) {
    GTEST_SKIP() << "a rank of the other tests' runs (started with CONTRA_DIST_SCENARIO)";
  }
  InitOptions init;
  init.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s() * 1000));
  init_from_env(init);
  const std::map<std::string, std::function<void()>> scenarios{
      {"ddp_simclr", [] { scenario_ddp("simclr"); }},
      {"ddp_byol", [] { scenario_ddp("byol"); }},
      {"ddp_barlow_twins", [] { scenario_ddp("barlow_twins"); }},
      {"ddp_cpc_image", [] { scenario_ddp("cpc_image"); }},
      {"ddp_swav", [] { scenario_ddp("swav"); }},
      {"ddp_deepcluster", [] { scenario_ddp("deepcluster"); }},
      {"ddp_instance_discrimination", [] { scenario_ddp("instance_discrimination"); }},
      {"losses", scenario_losses},
      {"moco", scenario_moco},
      {"metrics", scenario_metrics},
      {"kill", [] { scenario_failure(true); }},
      {"hang", [] { scenario_failure(false); }}};
  scenarios.at(scenario)();
  shutdown();
}

// ---- the tests
// -----------------------------------------------------------------------------------

class DistributedTest : public ::testing::Test {
 protected:
  void TearDown() override {
    ::unsetenv("CONTRA_DIST_SCENARIO");
    ::unsetenv("CONTRA_DIST_OUT");
    ::unsetenv("CONTRA_DIST_TIMEOUT");
    set_world(nullptr);
  }
  // Runs `scenario` on `ranks` processes of this binary; their files land in dir_.
  LaunchResult run_ranks(const std::string& scenario, double timeout = 60, double grace = 10,
                         int ranks = 2) {
    ::setenv("CONTRA_DIST_SCENARIO", scenario.c_str(), 1);
    ::setenv("CONTRA_DIST_OUT", dir_.path().c_str(), 1);
    ::setenv("CONTRA_DIST_TIMEOUT", std::to_string(timeout).c_str(), 1);
    LaunchOptions o;
    o.nproc = ranks;
    o.grace_s = grace;
    o.args = {"--gtest_filter=DistWorker.Run"};
    return launch(o);
  }
  TempDir dir_;
};

double max_relative(const torch::Tensor& a, const torch::Tensor& b) {
  const double scale = std::max(b.abs().max().item<double>(), 1e-12);
  return (a - b).abs().max().item<double>() / scale;
}

class DataParallelTest : public DistributedTest,
                         public ::testing::WithParamInterface<std::string> {};

TEST_P(DataParallelTest, TwoRanksOfBTrainLikeOneProcessOf2B) {
  ASSERT_EQ(run_ranks("ddp_" + GetParam()).exit_code, 0);
  auto r0 = load(dir_.path(), "ddp_0.pt"), r1 = load(dir_.path(), "ddp_1.pt");
  std::vector<torch::Tensor> reference;
  set_world(nullptr);
  TempDir single;
  auto one = train_tiny(GetParam(), single.file("run"), 8, &reference);
  ASSERT_EQ(r0.size(), reference.size() + 1);
  double worst = 0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    worst = std::max(worst, max_relative(r0[i], reference[i]));
    // Parameters are identical on the ranks (BN running statistics are synchronised too here).
    EXPECT_TRUE(r0[i].equal(r1[i])) << "tensor " << i << " differs between the ranks";
  }
  EXPECT_LT(worst, 1e-5) << "largest relative difference to one process × 2B";
  // The logged loss is the global one, and the loss curve is the one process's.
  EXPECT_LT(max_relative(r0.back(), r1.back()), 1e-12);
  EXPECT_LT(max_relative(r0.back(), torch::tensor(one.losses, torch::kDouble)), 1e-5);
  // Only rank 0 wrote: its checkpoints and metrics; the loss curve matches the reference's too.
  EXPECT_EQ(train::read_checkpoint_meta(train::latest_checkpoint(dir_.file("run"))).step, 4);
  std::ifstream metrics(dir_.file("run/metrics.jsonl"));
  std::string line;
  int rows = 0;
  while (std::getline(metrics, line)) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["ranks"], 2);
    EXPECT_TRUE(j.contains("allreduce_ms"));
    ++rows;
  }
  EXPECT_EQ(rows, 4);
  std::cout << GetParam() << ": largest relative weight difference, 2 ranks × 4 vs 1 × 8: " << worst
            << "\n";
}

INSTANTIATE_TEST_SUITE_P(Methods, DataParallelTest,
                         ::testing::Values("simclr", "byol", "barlow_twins", "cpc_image",
                                           "instance_discrimination", "swav", "deepcluster"));

TEST_F(DistributedTest, GatheredLossesEqualTheOneProcessLossWithGradients) {
  ASSERT_EQ(run_ranks("losses").exit_code, 0);
  const int64_t n = 3, W = 2;
  Embeddings e = global_embeddings(W, n);
  set_world(nullptr);
  torch::Tensor z1 = e.a.clone().requires_grad_(), z2 = e.b.clone().requires_grad_();
  auto nt = loss::functional::nt_xent(z1, z2, {}, loss::NTXentOptions().temperature(0.3));
  nt.backward();
  torch::Tensor img = e.a.clone().requires_grad_(), txt = e.b.clone().requires_grad_();
  torch::Tensor log_scale = torch::tensor(std::log(1 / 0.07), torch::kDouble).requires_grad_();
  auto cl = loss::functional::clip(img, txt, log_scale);
  cl.backward();
  std::vector<std::vector<torch::Tensor>> ranks{load(dir_.path(), "losses_0.pt"),
                                                load(dir_.path(), "losses_1.pt")};
  // The mean of the ranks' losses is the one-process loss.
  EXPECT_NEAR((ranks[0][0] + ranks[1][0]).item<double>() / W, nt.item<double>(), 1e-12);
  EXPECT_NEAR((ranks[0][3] + ranks[1][3]).item<double>() / W, cl.item<double>(), 1e-12);
  // Each rank's embedding gradient is W × its slice of the one-process gradient (the gradient of
  // the ranks' summed losses); the data-parallel average divides the W back out.
  for (int64_t r = 0; r < W; ++r) {
    const auto& g = ranks[static_cast<std::size_t>(r)];
    EXPECT_TRUE(torch::allclose(g[1] / W, z1.grad().narrow(0, r * n, n), 1e-10, 1e-12));
    EXPECT_TRUE(torch::allclose(g[2] / W, z2.grad().narrow(0, r * n, n), 1e-10, 1e-12));
    EXPECT_TRUE(torch::allclose(g[4] / W, img.grad().narrow(0, r * n, n), 1e-10, 1e-12));
    EXPECT_TRUE(torch::allclose(g[5] / W, txt.grad().narrow(0, r * n, n), 1e-10, 1e-12));
  }
  // Barlow Twins: every rank computes the whole loss (global statistics and C); gradients W × the
  // one-process slices, as the gathered losses.
  torch::Tensor b1 = e.a.clone().requires_grad_(), b2 = e.b.clone().requires_grad_();
  auto bt = loss::functional::barlow_twins(b1, b2, loss::BarlowTwinsOptions().lambd(0.05));
  bt.backward();
  for (int64_t r = 0; r < W; ++r) {
    const auto& g = ranks[static_cast<std::size_t>(r)];
    EXPECT_NEAR(g[7].item<double>(), bt.item<double>(), 1e-10);
    EXPECT_TRUE(torch::allclose(g[8] / W, b1.grad().narrow(0, r * n, n), 1e-8, 1e-10));
    EXPECT_TRUE(torch::allclose(g[9] / W, b2.grad().narrow(0, r * n, n), 1e-8, 1e-10));
  }
  // The logit scale is not gathered: the average of the ranks' gradients is the reference.
  EXPECT_NEAR((ranks[0][6] + ranks[1][6]).item<double>() / W, log_scale.grad().item<double>(),
              1e-10);
}

TEST_F(DistributedTest, MocoQueuesAgreeAndShuffleIsUndone) {
  ASSERT_EQ(run_ranks("moco").exit_code, 0);  // the ranks check shuffle ∘ unshuffle themselves
  auto r0 = load(dir_.path(), "moco_0.pt"), r1 = load(dir_.path(), "moco_1.pt");
  // Queue (dim, K) after two steps: identical, and holding both ranks' keys of both steps in order.
  EXPECT_TRUE(r0[2].equal(r1[2]));
  torch::Tensor expected = torch::cat({r0[0], r1[0], r0[1], r1[1]}, 0).t();  // (dim, 16)
  EXPECT_TRUE(torch::allclose(r0[2].narrow(1, 0, 16), expected));
  // Both ranks used the same permutation (broadcast from rank 0).
  EXPECT_TRUE(r0[3].equal(r1[3]));
}

TEST_F(DistributedTest, MetricsOnlySomeRanksReportAreAveragedOverThem) {
  EXPECT_EQ(run_ranks("metrics").exit_code, 0);  // the ranks check their summaries themselves
}

TEST_F(DistributedTest, AKilledRankIsNamedAndTheLauncherFails) {
  auto start = std::chrono::steady_clock::now();
  LaunchResult r = run_ranks("kill", /*timeout=*/20, /*grace=*/10);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.first_failed_rank, 1);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_NE(r.exit_code, 0);
  ASSERT_EQ(r.ranks.size(), 2u);
  EXPECT_EQ(r.ranks[0].exit_code, 1);  // the survivor failed by itself, not stopped by the launcher
  EXPECT_FALSE(r.ranks[0].stopped_by_launcher);
  const std::string message = read_file(dir_.file("error_0.txt"));
  EXPECT_NE(message.find("rank 0 of 2"), std::string::npos) << message;
  EXPECT_NE(message.find("rank 1 stopped answering"), std::string::npos) << message;
  EXPECT_LT(std::stod(message), 20.0) << "the survivor must fail within the timeout";
  EXPECT_LT(seconds, 40);
  std::cout << "survivor's error after " << std::stod(message)
            << " s: " << message.substr(message.find('\n') + 1) << "\n";
}

TEST_F(DistributedTest, AHungRankIsNamedAfterTheTimeout) {
  LaunchResult r = run_ranks("hang", /*timeout=*/4, /*grace=*/1);
  EXPECT_EQ(r.first_failed_rank, 0);
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_EQ(r.ranks.size(), 2u);
  EXPECT_TRUE(r.ranks[1].stopped_by_launcher);  // the hung rank is stopped by the launcher
  const std::string message = read_file(dir_.file("error_0.txt"));
  EXPECT_NE(message.find("rank 1 alive but never reached collective #4"), std::string::npos)
      << message;
  const double seconds = std::stod(message);
  EXPECT_GE(seconds, 3.5);
  EXPECT_LT(seconds, 15.0) << message;
}

// ---- the command line
// ----------------------------------------------------------------------------

std::string tiny_recipe(const std::string& root, const std::string& runs) {
  return "schema_version: 1\n"
         "run: {name: simclr, dir: " +
         runs + "}\ndata: {format: mnist, root: " + root +
         ", generate: false}\n"
         "method:\n  name: simclr\n  encoder: {width: 4}\n  projection: {hidden: 16, out: 8}\n"
         "augment: {preset: simclr, flip_p: 0, scale_min: 0.6}\n"
         "train: {steps: 4, batch_size: 8, threads: 1, log_every: 2, checkpoint_every: 2, "
         "sync_batch_norm: true, dist_timeout: 60}\n"
         "optim: {lr: 1.0e-3}\n";
}

TEST_F(DistributedTest, ContraLaunchTrainsWithTwoRanks) {
  contra::testing::write_digits(dir_.file("mnist"), 64, 20);
  write_file_atomic(dir_.file("simclr.yaml"), tiny_recipe(dir_.file("mnist"), dir_.file("runs")));
  const std::string contra = contra::testing::bin_dir() + "/contra";
  auto ok = contra::testing::run_command(contra + " launch --nproc 2 -- train --config " +
                                         dir_.file("simclr.yaml") + " --json");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = nlohmann::json::parse(ok.out);  // rank 0 alone prints the summary
  EXPECT_EQ(j["steps"], 4);
  EXPECT_EQ(train::read_checkpoint_meta(train::latest_checkpoint(dir_.file("runs/simclr"))).step,
            4);
  EXPECT_NE(read_file(dir_.file("runs/simclr/metrics.jsonl")).find("\"ranks\":2"),
            std::string::npos);
  // Resume with the same world size continues from the checkpoint.
  auto resumed = contra::testing::run_command(contra + " launch --nproc 2 -- train --config " +
                                              dir_.file("simclr.yaml") +
                                              " --resume --set train.steps=6 --json");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  auto k = nlohmann::json::parse(resumed.out);
  EXPECT_EQ(k["first_step"], 4);
  EXPECT_EQ(k["steps"], 6);
  // A failing rank (here both: a config error) makes the launcher fail with its exit code.
  auto bad = contra::testing::run_command(contra + " launch --nproc 2 -- train --config " +
                                          dir_.file("simclr.yaml") + " --set train.nope=1");
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("error (rank"), std::string::npos) << bad.err;
}

TEST_F(DistributedTest, TorchrunStartsTheSameTraining) {
  const char* torchrun = "/usr/bin/torchrun";
  if (::access(torchrun, X_OK) != 0) {
    GTEST_SKIP() << "torchrun not found (apt-get install python3-torch provides it)";
  }
  contra::testing::write_digits(dir_.file("mnist"), 64, 20);
  write_file_atomic(dir_.file("simclr.yaml"), tiny_recipe(dir_.file("mnist"), dir_.file("runs")));
  const std::string contra = contra::testing::bin_dir() + "/contra";
  auto r = contra::testing::run_command(
      std::string(torchrun) +
      // --redirects 1 --tee 1: torchrun 1.13 under Python 3.11 cannot parse its own defaults
      " --nproc_per_node=2 --redirects 1 --tee 1 --master_addr=127.0.0.1 --master_port=" +
      std::to_string(free_port()) + " --no_python " + contra + " train --config " +
      dir_.file("simclr.yaml") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(train::read_checkpoint_meta(train::latest_checkpoint(dir_.file("runs/simclr"))).step,
            4);
  EXPECT_NE(read_file(dir_.file("runs/simclr/metrics.jsonl")).find("\"ranks\":2"),
            std::string::npos);
}

}  // namespace
}  // namespace contra::dist
