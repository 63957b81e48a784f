// The CPC loss of all K steps in one autograd node. Per step, the dense formulation scores every
// prediction against every frame of the batch (R × N products, N = 1024 at the paper's size, 8×
// the sampled 129); the gather formulation materialises (R, 129, C) candidate vectors. Here each
// sampled (row, candidate) pair is touched in two passes, reading candidate rows straight from the
// pool (1 MB at the paper's size, cache-resident):
//   forward     per row, while its candidates are in cache: s_j = p · f[id_j] / τ (8 candidates per
//               pass over p), the row's loss and accuracy, and (training) its softmax gradient
//               g = softmax(s) − e₀ and dp = Σ_j g_j f[id_j] (64 channels of dp in registers)
//   backward    dp scaled by ∂L/∂loss_k / (M_k τ); df[id_j] += that factor · g_j p over all rows
//               (threads own channel blocks, so no two write the same element and the result does
//               not depend on the thread count)
// Negatives come from a counter-based hash (uniform_candidates): no (R, 128) int64 randint, shift
// and concatenation per step, which cost as much as the scoring itself.
#include "contra/method/cpc_loss_kernels.h"

#include <cmath>
#include <limits>
#include <vector>

#include <torch/torch.h>

#include "contra/core/parallel.h"
#include "contra/core/simd.h"
#include "contra/method/sampled_scores.h"

#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace contra::method {
namespace {

using simd::kLanes;
using simd::load;
using simd::store;
using simd::Vec;

/// First row of each step: offset[k − 1] .. offset[k) are step k's rows; offset[K] = R.
std::vector<int64_t> row_offsets(int64_t B, int64_t T, int64_t K) {
  std::vector<int64_t> offset(static_cast<std::size_t>(K + 1), 0);
  for (int64_t k = 1; k <= K; ++k) offset[k] = offset[k - 1] + B * std::max<int64_t>(0, T - k);
  return offset;
}

/// Walks rows r0..r1 in order, giving each one's step k and anchor (b, t).
struct RowCursor {
  const int64_t* offset;
  int64_t T, k = 1;
  RowCursor(const int64_t* offset_, int64_t T_, int64_t r0) : offset(offset_), T(T_) {
    while (r0 >= offset[k]) ++k;
  }
  CONTRA_INLINE void at(int64_t r, int64_t& b, int64_t& t) {
    while (r >= offset[k]) ++k;
    const int64_t local = r - offset[k - 1], span = T - k;
    b = local / span;
    t = local - b * span;
  }
};

// ---- the three kernels
// ---------------------------------------------------------------------------

/// Scores of one row: s[j] = p · f[id[j]] · scale, 8 candidates per pass over p.
template <class T, class I>
CONTRA_INLINE void score_row(const T* p, const T* F, const I* id, T* s, int64_t J, int64_t C,
                             T scale) {
  constexpr int64_t V = kLanes<T>, U = 8;
  const int64_t Cv = C / V * V;
  int64_t j = 0;
  for (; j + U <= J; j += U) {
    const T* f[U];
    for (int64_t u = 0; u < U; ++u) f[u] = F + static_cast<int64_t>(id[j + u]) * C;
    Vec<T> acc[U] = {};
    for (int64_t c = 0; c < Cv; c += V) {
      const Vec<T> pv = load(p + c);
      for (int64_t u = 0; u < U; ++u) acc[u] += pv * load(f[u] + c);
    }
    for (int64_t u = 0; u < U; ++u) {
      T x = simd::hsum<T>(acc[u]);
      for (int64_t c = Cv; c < C; ++c) x += p[c] * f[u][c];
      s[j + u] = x * scale;
    }
  }
  for (; j < J; ++j) {
    const T* f = F + static_cast<int64_t>(id[j]) * C;
    Vec<T> acc{};
    for (int64_t c = 0; c < Cv; c += V) acc += load(p + c) * load(f + c);
    T x = simd::hsum<T>(acc);
    for (int64_t c = Cv; c < C; ++c) x += p[c] * f[c];
    s[j] = x * scale;
  }
}

/// dp = Σ_j g[j] f[id[j]] for one row, 4 vectors of dp in registers per pass over the candidates.
template <class T, class I>
CONTRA_INLINE void weighted_rows(const T* g, const T* F, const I* id, T* dp, int64_t J, int64_t C) {
  constexpr int64_t V = kLanes<T>, U = 4;
  int64_t c = 0;
  for (; c + U * V <= C; c += U * V) {
    Vec<T> acc[U] = {};
    for (int64_t j = 0; j < J; ++j) {
      const T* f = F + static_cast<int64_t>(id[j]) * C + c;
      const T w = g[j];
      for (int64_t u = 0; u < U; ++u) acc[u] += w * load(f + u * V);
    }
    for (int64_t u = 0; u < U; ++u) store(dp + c + u * V, acc[u]);
  }
  for (; c + V <= C; c += V) {
    Vec<T> acc{};
    for (int64_t j = 0; j < J; ++j) acc += g[j] * load(F + static_cast<int64_t>(id[j]) * C + c);
    store(dp + c, acc);
  }
  for (; c < C; ++c) {
    T x = 0;
    for (int64_t j = 0; j < J; ++j) x += g[j] * F[static_cast<int64_t>(id[j]) * C + c];
    dp[c] = x;
  }
}

/// The forward of rows [r0, r1), each row in one go while its candidate rows are in cache: scores
/// s (scratch, J), ℓ = logsumexp(s) − s₀, correct = s₀ > max_{j≥1} s_j; with `grad`, also the
/// row's softmax gradient g = softmax(s) − e₀ (into G, for the pool's gradient) and dp = Σ_j g_j
/// f_j (into dP at the row's (b, t, k) slot): the gradients up to the per-step factor ∂L/∂loss_k /
/// (M_k τ) that the backward applies.
template <class T, class I>
CONTRA_INLINE void forward_rows(const T* P, const T* F, const I* ids, const int64_t* offset,
                                int64_t Tn, int64_t K, int64_t J, int64_t C, T scale, T* s,
                                T* row_loss, uint8_t* row_correct, T* G, T* dP, int64_t r0,
                                int64_t r1) {
  constexpr int64_t V = kLanes<T>;
  const int64_t Jv = J / V * V;
  RowCursor cursor(offset, Tn, r0);
  for (int64_t r = r0; r < r1; ++r) {
    int64_t b, t;
    cursor.at(r, b, t);
    const int64_t slot = ((b * Tn + t) * K + (cursor.k - 1)) * C;
    const I* id = ids + r * J;
    score_row(P + slot, F, id, s, J, C, scale);
    // max over the negatives (s₁..), then with the positive, then Σ e^{s − max}.
    T neg_max = -std::numeric_limits<T>::infinity();
    {
      Vec<T> m = simd::splat(neg_max);
      int64_t j = 1;
      for (; j + V <= J; j += V) m = simd::vmax<T>(m, load(s + j));
      for (int64_t u = 0; u < V; ++u) neg_max = std::max(neg_max, m[u]);
      for (; j < J; ++j) neg_max = std::max(neg_max, s[j]);
    }
    const T positive = s[0];
    const T top = std::max(neg_max, positive);
    Vec<T> sum_v{};
    const Vec<T> top_v = simd::splat(top);
    int64_t j = 0;
    for (; j < Jv; j += V) {
      const Vec<T> e = simd::exp<T>(load(s + j) - top_v);
      store(s + j, e);
      sum_v += e;
    }
    T sum = simd::hsum<T>(sum_v);
    for (; j < J; ++j) {
      s[j] = std::exp(s[j] - top);
      sum += s[j];
    }
    // s now holds e^{s_j − top}.
    row_loss[r] = top + std::log(sum) - positive;
    row_correct[r] = positive > neg_max ? 1 : 0;
    if (G) {
      T* g = G + r * J;
      const T inv = T(1) / sum;
      for (int64_t i = 0; i < J; ++i) g[i] = s[i] * inv;
      g[0] -= T(1);
      weighted_rows(g, F, id, dP + slot, J, C);
    }
  }
}

/// dF[id[r, j], c0:c1] += w_r g[r, j] p_r[c0:c1] over all rows (w_r = step_weight[k(r)]): a thread
/// owns a channel block, so no two threads write the same element.
template <class T, class I>
CONTRA_INLINE void grad_pool(const T* G, const T* P, const I* ids, const T* step_weight, T* dF,
                             const int64_t* offset, int64_t Tn, int64_t K, int64_t J, int64_t C,
                             int64_t c0, int64_t c1) {
  constexpr int64_t V = kLanes<T>, U = 4;
  const int64_t R = offset[K];
  const bool full = c1 - c0 == U * V;
  RowCursor cursor(offset, Tn, 0);
  for (int64_t r = 0; r < R; ++r) {
    int64_t b, t;
    cursor.at(r, b, t);
    const T* p = P + ((b * Tn + t) * K + (cursor.k - 1)) * C + c0;
    const T w = step_weight[cursor.k - 1];
    const I* id = ids + r * J;
    const T* g = G + r * J;
    if (full) {
      Vec<T> pv[U];
      for (int64_t u = 0; u < U; ++u) pv[u] = w * load(p + u * V);
      for (int64_t j = 0; j < J; ++j) {
        T* d = dF + static_cast<int64_t>(id[j]) * C + c0;
        const T gj = g[j];
        for (int64_t u = 0; u < U; ++u) store(d + u * V, load(d + u * V) + gj * pv[u]);
      }
    } else {
      for (int64_t j = 0; j < J; ++j) {
        T* d = dF + static_cast<int64_t>(id[j]) * C + c0;
        const T gj = w * g[j];
        for (int64_t c = 0; c < c1 - c0; ++c) d[c] += gj * p[c];
      }
    }
  }
}

// Multi-versioned entry points, one per (dtype, index type).
#define CONTRA_CPC_KERNELS(T, I, SUFFIX)                                                           \
  CONTRA_MULTIVERSION void forward_##SUFFIX(                                                       \
      const T* P, const T* F, const I* ids, const int64_t* offset, int64_t Tn, int64_t K,          \
      int64_t J, int64_t C, T scale, T* s, T* row_loss, uint8_t* row_correct, T* G, T* dP,         \
      int64_t r0, int64_t r1) {                                                                    \
    forward_rows(P, F, ids, offset, Tn, K, J, C, scale, s, row_loss, row_correct, G, dP, r0, r1);  \
  }                                                                                                \
  CONTRA_MULTIVERSION void dpool_##SUFFIX(const T* G, const T* P, const I* ids, const T* w, T* dF, \
                                          const int64_t* offset, int64_t Tn, int64_t K, int64_t J, \
                                          int64_t C, int64_t c0, int64_t c1) {                     \
    grad_pool(G, P, ids, w, dF, offset, Tn, K, J, C, c0, c1);                                      \
  }
CONTRA_CPC_KERNELS(float, int32_t, f_i32)
CONTRA_CPC_KERNELS(float, int64_t, f_i64)
CONTRA_CPC_KERNELS(double, int32_t, d_i32)
CONTRA_CPC_KERNELS(double, int64_t, d_i64)
#undef CONTRA_CPC_KERNELS

template <class T, class I>
struct Kernels;
#define CONTRA_CPC_TABLE(T, I, SUFFIX)                \
  template <>                                         \
  struct Kernels<T, I> {                              \
    static constexpr auto forward = forward_##SUFFIX; \
    static constexpr auto dpool = dpool_##SUFFIX;     \
  };
CONTRA_CPC_TABLE(float, int32_t, f_i32)
CONTRA_CPC_TABLE(float, int64_t, f_i64)
CONTRA_CPC_TABLE(double, int32_t, d_i32)
CONTRA_CPC_TABLE(double, int64_t, d_i64)
#undef CONTRA_CPC_TABLE

/// Rows per parallel task: about 64k multiply-adds.
int64_t row_grain(int64_t J, int64_t C) {
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, J * C));
}

template <class T>
struct Tag {
  using type = T;
};
/// Calls f(Tag<T>, Tag<I>) for the values' dtype (float, double) and the ids' (int32, int64).
template <class F>
void dispatch(const torch::Tensor& values, const torch::Tensor& ids, F&& f) {
  const bool wide = ids.scalar_type() == torch::kLong;
  if (values.scalar_type() == torch::kFloat) {
    wide ? f(Tag<float>{}, Tag<int64_t>{}) : f(Tag<float>{}, Tag<int32_t>{});
  } else {
    wide ? f(Tag<double>{}, Tag<int64_t>{}) : f(Tag<double>{}, Tag<int32_t>{});
  }
}

struct StepInfoNceCpu : public torch::autograd::Function<StepInfoNceCpu> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const torch::Tensor& predictions,
                                                const torch::Tensor& pool,
                                                const torch::Tensor& candidates,
                                                double temperature) {
    auto P = predictions.contiguous(), F = pool.contiguous(), I = candidates.contiguous();
    const int64_t B = P.size(0), T = P.size(1), K = P.size(2), C = P.size(3);
    const int64_t R = I.size(0), J = I.size(1);
    const auto offset = row_offsets(B, T, K);
    // The gradients are formed here, row by row, while each row's candidates are in cache (the
    // backward only scales them): G (R, J) the softmax gradients, dP (B, T, K, C) zero where
    // t ≥ T − k.
    const bool grad = predictions.requires_grad() || pool.requires_grad();
    torch::Tensor G, dP;
    if (grad) {
      G = torch::empty({R, J}, P.options());
      dP = torch::empty_like(P);
      for (int64_t k = 1; k <= K; ++k) dP.select(2, k - 1).narrow(1, T - k, k).zero_();
    }
    auto row_loss = torch::empty({R}, P.options());
    auto row_correct = torch::empty({R}, torch::kByte);
    dispatch(P, I, [&](auto value_tag, auto id_tag) {
      using V = typename decltype(value_tag)::type;
      using Id = typename decltype(id_tag)::type;
      const V *pp = P.data_ptr<V>(), *fp = F.data_ptr<V>();
      const Id* ip = I.data_ptr<Id>();
      V* gp = grad ? G.data_ptr<V>() : nullptr;
      V* dpp = grad ? dP.data_ptr<V>() : nullptr;
      V* lp = row_loss.data_ptr<V>();
      uint8_t* cp = row_correct.data_ptr<uint8_t>();
      const V scale = static_cast<V>(1.0 / temperature);
      at::parallel_for(0, R, row_grain(J, C), [&](int64_t r0, int64_t r1) {
        std::vector<V> scratch(static_cast<std::size_t>(J));
        Kernels<V, Id>::forward(pp, fp, ip, offset.data(), T, K, J, C, scale, scratch.data(), lp,
                                cp, gp, dpp, r0, r1);
      });
    });
    // Per-step means, summed in double in row order (no dependence on the thread count).
    auto loss = torch::empty({K}, P.options());
    auto correct = torch::empty({K}, torch::kDouble);
    {
      auto l = row_loss.to(torch::kDouble);
      const double* lp = l.data_ptr<double>();
      const uint8_t* cp = row_correct.data_ptr<uint8_t>();
      double* co = correct.data_ptr<double>();
      for (int64_t k = 1; k <= K; ++k) {
        double sum = 0, right = 0;
        for (int64_t r = offset[k - 1]; r < offset[k]; ++r) {
          sum += lp[r];
          right += cp[r];
        }
        const double n = static_cast<double>(std::max<int64_t>(1, offset[k] - offset[k - 1]));
        loss[k - 1] = sum / n;
        co[k - 1] = right / n;
      }
    }
    if (grad) ctx->save_for_backward({P, I, G, dP});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["pool_rows"] = F.size(0);
    ctx->mark_non_differentiable({correct});
    return {loss, correct};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &P = saved[0], &I = saved[1], &G = saved[2], &dP_unit = saved[3];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const int64_t B = P.size(0), T = P.size(1), K = P.size(2), C = P.size(3);
    const int64_t J = I.size(1);
    const auto offset = row_offsets(B, T, K);
    // Per-step factor ∂L/∂loss_k / (M_k τ).
    auto counts = torch::empty({K}, torch::kDouble);
    for (int64_t k = 1; k <= K; ++k) {
      counts[k - 1] = static_cast<double>(std::max<int64_t>(1, offset[k] - offset[k - 1]));
    }
    auto step_weight =
        (grads[0].to(torch::kDouble) / (counts * temperature)).to(P.scalar_type()).contiguous();
    torch::Tensor dP, dF;
    if (ctx->needs_input_grad(0)) dP = dP_unit * step_weight.view({1, 1, K, 1});
    if (ctx->needs_input_grad(1)) {
      dF = torch::zeros({ctx->saved_data["pool_rows"].toInt(), C}, P.options());
      dispatch(P, I, [&](auto value_tag, auto id_tag) {
        using V = typename decltype(value_tag)::type;
        using Id = typename decltype(id_tag)::type;
        const V *gp = G.data_ptr<V>(), *pp = P.data_ptr<V>(), *wp = step_weight.data_ptr<V>();
        const Id* ip = I.data_ptr<Id>();
        V* dfp = dF.data_ptr<V>();
        constexpr int64_t width = 4 * kLanes<V>;
        const int64_t blocks = (C + width - 1) / width;
        at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
          for (int64_t blk = b0; blk < b1; ++blk) {
            Kernels<V, Id>::dpool(gp, pp, ip, wp, dfp, offset.data(), T, K, J, C, blk * width,
                                  std::min(C, (blk + 1) * width));
          }
        });
      });
    }
    return {dP, dF, torch::Tensor(), torch::Tensor()};
  }
};

/// Any device and dtype: per step, the scores of its rows by sampled_scores (one dense product and
/// a gather off the CPU), then logsumexp.
std::pair<torch::Tensor, torch::Tensor> step_info_nce_generic(const torch::Tensor& predictions,
                                                              const torch::Tensor& pool,
                                                              const torch::Tensor& candidates,
                                                              double temperature) {
  const int64_t B = predictions.size(0), T = predictions.size(1), K = predictions.size(2),
                C = predictions.size(3), J = candidates.size(1);
  const auto offset = row_offsets(B, T, K);
  const auto out_type =
      predictions.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto ids = candidates.to(torch::kLong);
  // unbind: its backward stacks the K gradients once (select would add K full-size zero tensors).
  auto per_step = predictions.unbind(2);  // K × (B, T, C)
  std::vector<torch::Tensor> losses, correct;
  for (int64_t k = 1; k <= K; ++k) {
    const int64_t M = offset[k] - offset[k - 1];
    auto p = per_step[k - 1].narrow(1, 0, T - k).reshape({M, C});
    auto s = sampled_scores(p, pool, ids.narrow(0, offset[k - 1], M)).to(out_type) / temperature;
    auto positive = s.select(1, 0);
    losses.push_back((torch::logsumexp(s, 1) - positive).mean());
    torch::NoGradGuard no_grad;
    correct.push_back(
        (positive > std::get<0>(s.narrow(1, 1, J - 1).max(1))).to(torch::kDouble).mean());
  }
  return {torch::stack(losses), torch::stack(correct)};
}

CONTRA_INLINE uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

int64_t cpc_rows(int64_t batch, int64_t frames, int64_t steps) {
  return row_offsets(batch, frames, steps).back();
}

torch::Tensor uniform_candidates(int64_t batch, int64_t frames, int64_t steps, int64_t count,
                                 int64_t pool_size, int64_t pool_offset, uint64_t seed) {
  TORCH_CHECK(batch >= 1 && frames > steps && steps >= 1 && count >= 1,
              "uniform_candidates: need batch >= 1, frames > steps >= 1, count >= 1 (got ", batch,
              ", ", frames, ", ", steps, ", ", count, ")");
  TORCH_CHECK(pool_offset >= 0 && pool_offset + batch * frames <= pool_size && pool_size >= 2 &&
                  pool_size <= std::numeric_limits<int32_t>::max(),
              "uniform_candidates: the batch's frames [", pool_offset, ", ",
              pool_offset + batch * frames, ") must lie in a pool of 2..2^31 − 1 frames (got ",
              pool_size, ")");
  const auto offset = row_offsets(batch, frames, steps);
  const int64_t R = offset.back(), J = 1 + count;
  auto out = torch::empty({R, J}, torch::kInt);
  int32_t* o = out.data_ptr<int32_t>();
  const uint64_t n = static_cast<uint64_t>(pool_size - 1);
  constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;
  at::parallel_for(0, R, std::max<int64_t>(1, 16384 / J), [&](int64_t r0, int64_t r1) {
    RowCursor cursor(offset.data(), frames, r0);
    for (int64_t r = r0; r < r1; ++r) {
      int64_t b, t;
      cursor.at(r, b, t);
      const uint64_t positive = static_cast<uint64_t>(pool_offset + b * frames + t + cursor.k);
      int32_t* row = o + r * J;
      row[0] = static_cast<int32_t>(positive);
      const uint64_t base = seed + static_cast<uint64_t>(r) * static_cast<uint64_t>(J) * kGolden;
      for (int64_t j = 1; j < J; ++j) {
        // Lemire's multiply-shift: the top 32 bits of the hash scaled to [0, n) (bias ≤ n / 2³²).
        const uint64_t u = ((mix64(base + static_cast<uint64_t>(j) * kGolden) >> 32) * n) >> 32;
        row[j] = static_cast<int32_t>(u + (u >= positive));
      }
    }
  });
  return out;
}

std::pair<torch::Tensor, torch::Tensor> step_info_nce(const torch::Tensor& predictions,
                                                      const torch::Tensor& pool,
                                                      const torch::Tensor& candidates,
                                                      double temperature) {
  TORCH_CHECK(predictions.dim() == 4 && pool.dim() == 2 && pool.size(1) == predictions.size(3),
              "step_info_nce: predictions (B, T, K, C) and pool (N, C) expected, got ",
              predictions.sizes(), " and ", pool.sizes());
  const int64_t B = predictions.size(0), T = predictions.size(1), K = predictions.size(2);
  TORCH_CHECK(T > K, "step_info_nce: need more frames than steps (got T ", T, ", K ", K, ")");
  TORCH_CHECK(
      candidates.dim() == 2 && candidates.size(0) == cpc_rows(B, T, K) && candidates.size(1) >= 2 &&
          (candidates.scalar_type() == torch::kInt || candidates.scalar_type() == torch::kLong),
      "step_info_nce: candidates must be (", cpc_rows(B, T, K),
      ", 1 + negatives) int32/int64, got ", candidates.sizes(), " ", candidates.scalar_type());
  TORCH_CHECK(temperature > 0, "step_info_nce: temperature must be > 0 (got ", temperature, ")");
  {
    auto [lo, hi] = torch::aminmax(candidates);
    TORCH_CHECK(lo.item<int64_t>() >= 0 && hi.item<int64_t>() < pool.size(0),
                "step_info_nce: candidate ids out of range [0, ", pool.size(0), ")");
  }
  const auto type = predictions.scalar_type();
  const bool fused = predictions.device().is_cpu() && pool.device().is_cpu() &&
                     candidates.device().is_cpu() && pool.scalar_type() == type &&
                     (type == torch::kFloat || type == torch::kDouble);
  if (!fused) return step_info_nce_generic(predictions, pool, candidates, temperature);
  auto out = StepInfoNceCpu::apply(predictions, pool, candidates, temperature);
  return {out[0], out[1]};
}

}  // namespace contra::method
