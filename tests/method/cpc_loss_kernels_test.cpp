#include "contra/method/cpc_loss_kernels.h"

#include <cmath>
#include <vector>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/runtime.h"
#include "tests/support/support.h"

namespace contra::method {
namespace {

using contra::testing::SeededTest;
class CpcLossKernelsTest : public SeededTest {};

/// The step losses written out with loops over rows (double), the reference for the kernels.
std::pair<std::vector<double>, std::vector<double>> naive(const torch::Tensor& pred,
                                                          const torch::Tensor& pool,
                                                          const torch::Tensor& cand, double tau) {
  const int64_t B = pred.size(0), T = pred.size(1), K = pred.size(2);
  auto p = pred.to(torch::kDouble), f = pool.to(torch::kDouble);
  auto ids = cand.to(torch::kLong);
  auto pa = p.accessor<double, 4>();
  auto fa = f.accessor<double, 2>();
  auto ia = ids.accessor<int64_t, 2>();
  std::vector<double> loss, correct;
  int64_t r = 0;
  for (int64_t k = 1; k <= K; ++k) {
    double sum = 0, right = 0;
    int64_t rows = 0;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 0; t + k < T; ++t, ++r, ++rows) {
        std::vector<double> s;
        for (int64_t j = 0; j < ids.size(1); ++j) {
          double x = 0;
          for (int64_t c = 0; c < f.size(1); ++c) x += pa[b][t][k - 1][c] * fa[ia[r][j]][c];
          s.push_back(x / tau);
        }
        double mx = *std::max_element(s.begin(), s.end()), se = 0;
        for (double x : s) se += std::exp(x - mx);
        sum += mx + std::log(se) - s[0];
        bool best = true;
        for (std::size_t j = 1; j < s.size(); ++j) best = best && s[0] > s[j];
        right += best;
      }
    }
    loss.push_back(sum / rows);
    correct.push_back(right / rows);
  }
  return {loss, correct};
}

/// Odd sizes on purpose: C = 37 (two full 16-float vectors and a scalar tail, no 64-wide block),
/// J = 12 (one group of 8 candidates and 4 single ones), repeated ids within a row.
struct Problem {
  torch::Tensor pred, pool, cand;
};
Problem problem(torch::ScalarType type, int64_t C = 37, int64_t count = 11, int64_t B = 3,
                int64_t T = 9, int64_t K = 4, torch::ScalarType ids = torch::kInt) {
  Problem p;
  p.pred = torch::randn({B, T, K, C}, type);
  p.pool = torch::randn({B * T + 5, C}, type);  // 5 extra rows, as a bank in hard mode
  p.cand = uniform_candidates(B, T, K, count, B * T + 5, 0, 77).to(ids);
  p.cand.select(1, 3).fill_(2);  // a repeated id in every row
  return p;
}

TEST_F(CpcLossKernelsTest, RowsAreCountedPerStep) {
  EXPECT_EQ(cpc_rows(8, 128, 12), 8 * (128 * 12 - 78));
  EXPECT_EQ(cpc_rows(2, 5, 3), 2 * (4 + 3 + 2));
}

TEST_F(CpcLossKernelsTest, CandidatesHoldThePositiveFirstAndNeverRepeatIt) {
  const int64_t B = 4, T = 20, K = 5, count = 30, pool = 200, offset = 60;
  auto cand = uniform_candidates(B, T, K, count, pool, offset, 5).to(torch::kLong);
  ASSERT_EQ(cand.sizes(), (std::vector<int64_t>{cpc_rows(B, T, K), 1 + count}));
  EXPECT_EQ(cand.scalar_type(), torch::kLong);
  int64_t r = 0;
  for (int64_t k = 1; k <= K; ++k) {
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 0; t + k < T; ++t, ++r) {
        ASSERT_EQ(cand[r][0].item<int64_t>(), offset + b * T + t + k);
      }
    }
  }
  auto neg = cand.narrow(1, 1, count);
  EXPECT_FALSE(neg.eq(cand.select(1, 0).unsqueeze(1)).any().item<bool>());
  EXPECT_GE(neg.min().item<int64_t>(), 0);
  EXPECT_LT(neg.max().item<int64_t>(), pool);
}

TEST_F(CpcLossKernelsTest, CandidatesAreUniformOverThePoolMinusThePositive) {
  // One window of 12 frames, one step: 11 rows, positives 1..11, in a pool of 13 frames.
  const int64_t count = 20000, pool = 13;
  auto cand = uniform_candidates(1, 12, 1, count, pool, 0, 99).to(torch::kLong);
  for (int64_t r = 0; r < cand.size(0); ++r) {
    const int64_t positive = cand[r][0].item<int64_t>();
    auto counts = torch::bincount(cand[r].narrow(0, 1, count), {}, pool).to(torch::kDouble) / count;
    for (int64_t i = 0; i < pool; ++i) {
      EXPECT_NEAR(counts[i].item<double>(), i == positive ? 0.0 : 1.0 / (pool - 1), 0.01)
          << "row " << r << " id " << i;
    }
  }
}

TEST_F(CpcLossKernelsTest, CandidatesDependOnTheSeedAloneNotOnThreads) {
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  auto one = uniform_candidates(8, 128, 12, 128, 1024, 0, 42);
  at::set_num_threads(2);
  auto two = uniform_candidates(8, 128, 12, 128, 1024, 0, 42);
  at::set_num_threads(threads);
  EXPECT_TRUE(one.equal(two));
  EXPECT_FALSE(one.equal(uniform_candidates(8, 128, 12, 128, 1024, 0, 43)));
}

TEST_F(CpcLossKernelsTest, CandidatesRejectAPoolThatCannotHoldTheBatch) {
  EXPECT_THROW(uniform_candidates(4, 10, 2, 5, 39, 0, 1), c10::Error);   // 40 frames, pool 39
  EXPECT_THROW(uniform_candidates(4, 10, 2, 5, 80, 41, 1), c10::Error);  // offset 41 + 40 > 80
  EXPECT_THROW(uniform_candidates(4, 2, 2, 5, 80, 0, 1), c10::Error);    // T must exceed K
}

TEST_F(CpcLossKernelsTest, FusedLossEqualsTheNaiveLoopInFloatAndDouble) {
  for (auto type : {torch::kFloat, torch::kDouble}) {
    for (auto ids : {torch::kInt, torch::kLong}) {
      auto p = problem(type, 37, 11, 3, 9, 4, ids);
      auto [loss, correct] = step_info_nce(p.pred, p.pool, p.cand, 0.7);
      auto [ref_loss, ref_correct] = naive(p.pred, p.pool, p.cand, 0.7);
      ASSERT_EQ(loss.numel(), 4);
      const double tol = type == torch::kFloat ? 2e-5 : 1e-12;
      for (int64_t k = 0; k < 4; ++k) {
        EXPECT_NEAR(loss[k].item<double>(), ref_loss[k], tol * std::abs(ref_loss[k])) << k;
        EXPECT_DOUBLE_EQ(correct[k].item<double>(), ref_correct[k]) << k;
      }
    }
  }
}

TEST_F(CpcLossKernelsTest, FusedGradientsEqualTheDenseFormulation) {
  // The dense formulation (autograd through mm + gather + logsumexp), in double, as the reference
  // for the hand-written backward; C = 70 covers a full 64-channel block plus a tail.
  for (int64_t C : {int64_t{37}, int64_t{70}, int64_t{256}}) {
    auto p = problem(torch::kDouble, C, 19, 2, 11, 3);
    auto pred = p.pred.clone().requires_grad_(), pool = p.pool.clone().requires_grad_();
    auto w = torch::randn({3}, torch::kDouble);
    auto [loss, correct] = step_info_nce(pred, pool, p.cand, 0.5);
    (loss * w).sum().backward();
    auto pred2 = p.pred.clone().requires_grad_(), pool2 = p.pool.clone().requires_grad_();
    auto ids = p.cand.to(torch::kLong);
    std::vector<torch::Tensor> ref;
    int64_t r = 0;
    for (int64_t k = 1; k <= 3; ++k) {
      const int64_t M = 2 * (11 - k);
      auto q = pred2.select(2, k - 1).narrow(1, 0, 11 - k).reshape({M, C});
      auto s = torch::mm(q, pool2.t()).gather(1, ids.narrow(0, r, M)) / 0.5;
      ref.push_back((torch::logsumexp(s, 1) - s.select(1, 0)).mean());
      r += M;
    }
    (torch::stack(ref) * w).sum().backward();
    EXPECT_TRUE(torch::allclose(pred.grad(), pred2.grad(), 1e-10, 1e-12)) << C;
    EXPECT_TRUE(torch::allclose(pool.grad(), pool2.grad(), 1e-10, 1e-12)) << C;
    EXPECT_FALSE(correct.requires_grad());
  }
}

TEST_F(CpcLossKernelsTest, FiniteDifferenceGradientInDouble) {
  auto p = problem(torch::kDouble, 19, 6, 2, 6, 2);
  auto pred = p.pred.clone().requires_grad_(), pool = p.pool.clone().requires_grad_();
  auto objective = [&] { return step_info_nce(pred, pool, p.cand, 0.9).first.sum(); };
  objective().backward();
  const double h = 1e-6;
  torch::NoGradGuard no_grad;
  for (auto* x : {&pred, &pool}) {
    auto flat = x->view({-1});
    auto grad = x->grad().view({-1});
    for (int64_t i = 0; i < flat.numel(); i += 7) {
      const double v = flat[i].item<double>();
      flat[i] = v + h;
      const double up = objective().item<double>();
      flat[i] = v - h;
      const double down = objective().item<double>();
      flat[i] = v;
      EXPECT_NEAR(grad[i].item<double>(), (up - down) / (2 * h), 1e-7) << i;
    }
  }
}

TEST_F(CpcLossKernelsTest, ResultsDoNotDependOnTheThreadCount) {
  auto p = problem(torch::kFloat, 256, 128, 4, 40, 6);
  const int threads = at::get_num_threads();
  std::vector<torch::Tensor> out;
  for (int n : {1, 2}) {
    at::set_num_threads(n);
    auto pred = p.pred.clone().requires_grad_(), pool = p.pool.clone().requires_grad_();
    auto loss = step_info_nce(pred, pool, p.cand, 1.0).first;
    loss.sum().backward();
    out.push_back(torch::cat({loss, pred.grad().flatten(), pool.grad().flatten()}));
  }
  at::set_num_threads(threads);
  EXPECT_TRUE(out[0].equal(out[1]));
}

TEST_F(CpcLossKernelsTest, GenericPathAgreesWithTheFusedKernels) {
  // bf16 takes the generic path (dense product + gather); compare it in float against the fused
  // result by running the generic path on bf16-rounded float inputs.
  auto p = problem(torch::kFloat, 64, 31, 2, 12, 3);
  auto pred16 = p.pred.to(torch::kBFloat16), pool16 = p.pool.to(torch::kBFloat16);
  auto fused = step_info_nce(pred16.to(torch::kFloat), pool16.to(torch::kFloat), p.cand, 1.0);
  auto generic = step_info_nce(pred16, pool16, p.cand, 1.0);
  EXPECT_EQ(generic.first.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(generic.first, fused.first, 2e-2, 2e-2));
}

TEST_F(CpcLossKernelsTest, AnalyticCaseEqualScoresGiveLogOfCandidates) {
  auto p = problem(torch::kFloat, 16, 9, 2, 6, 2);
  auto [loss, correct] = step_info_nce(torch::zeros_like(p.pred), p.pool, p.cand, 0.3);
  for (int64_t k = 0; k < 2; ++k) {
    EXPECT_NEAR(loss[k].item<double>(), std::log(10.0), 1e-6);
    EXPECT_EQ(correct[k].item<double>(), 0.0);  // ties are not wins
  }
}

TEST_F(CpcLossKernelsTest, BadInputsThrow) {
  auto p = problem(torch::kFloat);
  EXPECT_THROW(step_info_nce(p.pred, p.pool, p.cand, 0.0), c10::Error);
  EXPECT_THROW(step_info_nce(p.pred, p.pool, p.cand.narrow(0, 1, p.cand.size(0) - 1), 1.0),
               c10::Error);
  auto bad = p.cand.clone();
  bad[0][1] = static_cast<int>(p.pool.size(0));
  EXPECT_THROW(step_info_nce(p.pred, p.pool, bad, 1.0), c10::Error);
  bad[0][1] = -1;
  EXPECT_THROW(step_info_nce(p.pred, p.pool, bad, 1.0), c10::Error);
  EXPECT_THROW(step_info_nce(p.pred, p.pool.narrow(1, 0, 5), p.cand, 1.0), c10::Error);
  EXPECT_THROW(step_info_nce(p.pred, p.pool, p.cand.narrow(1, 0, 1), 1.0), c10::Error);
}

}  // namespace
}  // namespace contra::method
