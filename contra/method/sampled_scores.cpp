// Sampled dot products for the CPC loss: out[m, j] = p[m] · f[idx[m, j]] and its backward, on the
// CPU without the dense (M × F) product. Each of the three kernels does M·J·C multiply-adds (the
// dense formulation does M·F·C per product, F the frames of the whole batch: 8× more for the
// paper's 1024 frames and 129 candidates), reads f rows from cache (f is F × C = 1 MB at the paper
// size) and runs on the ATen thread pool. The inner loops keep 16 independent partial sums, so the
// compiler vectorises them without -ffast-math; x86-64 builds carry AVX-512 / AVX2 clones chosen at
// load time (GCC function multi-versioning), other targets the portable loop.
#include "contra/method/sampled_scores.h"

#include <torch/torch.h>

#include "contra/core/parallel.h"

namespace contra::method {
namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CONTRA_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CONTRA_MULTIVERSION
#endif

constexpr int64_t kLanes = 16;

template <class T>
inline __attribute__((always_inline)) T dot(const T* a, const T* b, int64_t n) {
  T acc[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (int64_t u = 0; u < kLanes; ++u) acc[u] += a[c + u] * b[c + u];
  }
  T s = 0;
  for (; c < n; ++c) s += a[c] * b[c];
  for (int64_t u = 0; u < kLanes; ++u) s += acc[u];
  return s;
}

template <class T>
inline __attribute__((always_inline)) void axpy(T w, const T* x, T* y, int64_t n) {
  for (int64_t c = 0; c < n; ++c) y[c] += w * x[c];
}

// out[m, j] = p[m] · f[idx[m, j]] for m ∈ [m0, m1).
template <class T>
inline __attribute__((always_inline)) void gather_dot_rows(const T* p, const T* f,
                                                           const int64_t* idx, T* out, int64_t m0,
                                                           int64_t m1, int64_t J, int64_t C) {
  for (int64_t m = m0; m < m1; ++m) {
    const T* pm = p + m * C;
    for (int64_t j = 0; j < J; ++j) out[m * J + j] = dot(pm, f + idx[m * J + j] * C, C);
  }
}

// dp[m] = Σ_j g[m, j] f[idx[m, j]] for m ∈ [m0, m1).
template <class T>
inline __attribute__((always_inline)) void gather_axpy_rows(const T* g, const T* f,
                                                            const int64_t* idx, T* dp, int64_t m0,
                                                            int64_t m1, int64_t J, int64_t C) {
  for (int64_t m = m0; m < m1; ++m) {
    T* row = dp + m * C;
    for (int64_t j = 0; j < J; ++j) axpy(g[m * J + j], f + idx[m * J + j] * C, row, C);
  }
}

// df[idx[m, j], c0:c1] += g[m, j] p[m, c0:c1] over all (m, j): a thread owns a channel range, so
// no two threads write the same element.
template <class T>
inline __attribute__((always_inline)) void scatter_axpy_cols(const T* g, const T* p,
                                                             const int64_t* idx, T* df, int64_t M,
                                                             int64_t J, int64_t C, int64_t c0,
                                                             int64_t c1) {
  const int64_t n = c1 - c0;
  for (int64_t m = 0; m < M; ++m) {
    const T* pm = p + m * C + c0;
    for (int64_t j = 0; j < J; ++j) axpy(g[m * J + j], pm, df + idx[m * J + j] * C + c0, n);
  }
}

CONTRA_MULTIVERSION void gather_dot_f(const float* p, const float* f, const int64_t* idx,
                                      float* out, int64_t m0, int64_t m1, int64_t J, int64_t C) {
  gather_dot_rows(p, f, idx, out, m0, m1, J, C);
}
CONTRA_MULTIVERSION void gather_axpy_f(const float* g, const float* f, const int64_t* idx,
                                       float* dp, int64_t m0, int64_t m1, int64_t J, int64_t C) {
  gather_axpy_rows(g, f, idx, dp, m0, m1, J, C);
}
CONTRA_MULTIVERSION void scatter_axpy_f(const float* g, const float* p, const int64_t* idx,
                                        float* df, int64_t M, int64_t J, int64_t C, int64_t c0,
                                        int64_t c1) {
  scatter_axpy_cols(g, p, idx, df, M, J, C, c0, c1);
}
void gather_dot_d(const double* p, const double* f, const int64_t* idx, double* out, int64_t m0,
                  int64_t m1, int64_t J, int64_t C) {
  gather_dot_rows(p, f, idx, out, m0, m1, J, C);
}
void gather_axpy_d(const double* g, const double* f, const int64_t* idx, double* dp, int64_t m0,
                   int64_t m1, int64_t J, int64_t C) {
  gather_axpy_rows(g, f, idx, dp, m0, m1, J, C);
}
void scatter_axpy_d(const double* g, const double* p, const int64_t* idx, double* df, int64_t M,
                    int64_t J, int64_t C, int64_t c0, int64_t c1) {
  scatter_axpy_cols(g, p, idx, df, M, J, C, c0, c1);
}

// Rows per task: about 64k multiply-adds, so small calls stay on one thread.
int64_t grain(int64_t per_row) {
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, per_row));
}

template <class T>
struct Kernels;
template <>
struct Kernels<float> {
  static constexpr auto dot = gather_dot_f;
  static constexpr auto gather = gather_axpy_f;
  static constexpr auto scatter = scatter_axpy_f;
};
template <>
struct Kernels<double> {
  static constexpr auto dot = gather_dot_d;
  static constexpr auto gather = gather_axpy_d;
  static constexpr auto scatter = scatter_axpy_d;
};

template <class T>
torch::Tensor forward_cpu(const torch::Tensor& p, const torch::Tensor& f,
                          const torch::Tensor& idx) {
  const int64_t M = p.size(0), C = p.size(1), J = idx.size(1);
  auto out = torch::empty({M, J}, p.options());
  const T *pp = p.data_ptr<T>(), *fp = f.data_ptr<T>();
  const int64_t* ip = idx.data_ptr<int64_t>();
  T* op = out.data_ptr<T>();
  at::parallel_for(0, M, grain(J * C),
                   [&](int64_t m0, int64_t m1) { Kernels<T>::dot(pp, fp, ip, op, m0, m1, J, C); });
  return out;
}

template <class T>
torch::Tensor grad_predictions_cpu(const torch::Tensor& g, const torch::Tensor& f,
                                   const torch::Tensor& idx) {
  const int64_t M = g.size(0), J = g.size(1), C = f.size(1);
  auto dp = torch::zeros({M, C}, f.options());
  const T *gp = g.data_ptr<T>(), *fp = f.data_ptr<T>();
  const int64_t* ip = idx.data_ptr<int64_t>();
  T* out = dp.data_ptr<T>();
  at::parallel_for(0, M, grain(J * C), [&](int64_t m0, int64_t m1) {
    Kernels<T>::gather(gp, fp, ip, out, m0, m1, J, C);
  });
  return dp;
}

template <class T>
torch::Tensor grad_frames_cpu(const torch::Tensor& g, const torch::Tensor& p,
                              const torch::Tensor& idx, int64_t frames) {
  const int64_t M = g.size(0), J = g.size(1), C = p.size(1);
  auto df = torch::zeros({frames, C}, p.options());
  const T *gp = g.data_ptr<T>(), *pp = p.data_ptr<T>();
  const int64_t* ip = idx.data_ptr<int64_t>();
  T* out = df.data_ptr<T>();
  // Channel blocks of 16 (one vector register of floats): threads split the channels.
  const int64_t blocks = (C + kLanes - 1) / kLanes;
  const int64_t per_block = M * J * kLanes;
  at::parallel_for(0, blocks, grain(per_block), [&](int64_t b0, int64_t b1) {
    Kernels<T>::scatter(gp, pp, ip, out, M, J, C, b0 * kLanes, std::min(C, b1 * kLanes));
  });
  return df;
}

struct SampledScoresCpu : public torch::autograd::Function<SampledScoresCpu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& p,
                               const torch::Tensor& f, const torch::Tensor& index) {
    auto pc = p.contiguous(), fc = f.contiguous(), ic = index.contiguous();
    ctx->save_for_backward({pc, fc, ic});
    return p.scalar_type() == torch::kFloat ? forward_cpu<float>(pc, fc, ic)
                                            : forward_cpu<double>(pc, fc, ic);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &p = saved[0], &f = saved[1], &index = saved[2];
    auto g = grads[0].contiguous();
    const bool is_float = p.scalar_type() == torch::kFloat;
    torch::Tensor dp, df;
    if (ctx->needs_input_grad(0)) {
      dp = is_float ? grad_predictions_cpu<float>(g, f, index)
                    : grad_predictions_cpu<double>(g, f, index);
    }
    if (ctx->needs_input_grad(1)) {
      df = is_float ? grad_frames_cpu<float>(g, p, index, f.size(0))
                    : grad_frames_cpu<double>(g, p, index, f.size(0));
    }
    return {dp, df, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor sampled_scores(const torch::Tensor& predictions, const torch::Tensor& frames,
                             const torch::Tensor& index) {
  TORCH_CHECK(predictions.dim() == 2 && frames.dim() == 2 && predictions.size(1) == frames.size(1),
              "sampled_scores: predictions (M, C) and frames (F, C) expected, got ",
              predictions.sizes(), " and ", frames.sizes());
  TORCH_CHECK(index.dim() == 2 && index.size(0) == predictions.size(0) &&
                  index.scalar_type() == torch::kLong,
              "sampled_scores: index must be (M, J) int64, got ", index.sizes(), " ",
              index.scalar_type());
  const auto type = predictions.scalar_type();
  const bool sparse_cpu = predictions.device().is_cpu() && frames.device().is_cpu() &&
                          index.device().is_cpu() && frames.scalar_type() == type &&
                          (type == torch::kFloat || type == torch::kDouble);
  if (sparse_cpu) {
    if (index.numel() > 0) {
      TORCH_CHECK(index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < frames.size(0),
                  "sampled_scores: index out of range [0, ", frames.size(0), ")");
    }
    return SampledScoresCpu::apply(predictions, frames, index);
  }
  // GPUs, and bf16 on CPUs (AMX / AVX-512-BF16 run the dense product faster than the sparse
  // kernels): one product, then a gather; autograd's backward is dense.
  return torch::mm(predictions, frames.t()).gather(1, index);
}

}  // namespace contra::method
