// Fused training-mode BatchNorm + ReLU. ATen's CPU batch_norm (stats, normalise) then relu (and
// their three backward kernels) pass over the activation about ten times; at CPC's first layer
// (8 × 256 × 4096 floats, 33 MB, larger than the cache) that cost 75 ms a step on one core, as
// much as the convolution after it. Here: forward reads x twice and writes y once, backward reads
// (dy, x) twice and writes dx once.
#include "contra/nn/batch_norm_relu.h"

#include <cmath>

#include <torch/torch.h>

#include "contra/core/parallel.h"
#include "contra/core/simd.h"

#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace contra::nn::functional {
namespace {

using simd::kLanes;
using simd::load;
using simd::store;
using simd::Vec;

// Elements summed in T before the partial sum moves to double: keeps float rounding to a few ulps
// of a chunk however long the rows.
constexpr int64_t kChunk = 512;

/// Σ (x − pivot) and Σ (x − pivot)² over one row of n values (double), the pivot (the channel's
/// first value) taking the mean's size out of the squares.
template <class T>
CONTRA_INLINE void row_moments(const T* x, int64_t n, T pivot, double& s1, double& s2) {
  constexpr int64_t V = kLanes<T>;
  const Vec<T> pv = simd::splat(pivot);
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t end = std::min(n, start + kChunk);
    Vec<T> a1{}, a2{}, b1{}, b2{};
    int64_t i = start;
    for (; i + 2 * V <= end; i += 2 * V) {
      const Vec<T> u = load(x + i) - pv, w = load(x + i + V) - pv;
      a1 += u;
      a2 += u * u;
      b1 += w;
      b2 += w * w;
    }
    T t1 = simd::hsum<T>(a1 + b1), t2 = simd::hsum<T>(a2 + b2);
    for (; i < end; ++i) {
      const T u = x[i] - pivot;
      t1 += u;
      t2 += u * u;
    }
    s1 += t1;
    s2 += t2;
  }
}

/// y = max(0, a x + b) over one row.
template <class T>
CONTRA_INLINE void row_affine_relu(const T* x, T* y, int64_t n, T a, T b) {
  constexpr int64_t V = kLanes<T>;
  const Vec<T> av = simd::splat(a), bv = simd::splat(b), zero{};
  int64_t i = 0;
  for (; i + V <= n; i += V) store(y + i, simd::vmax<T>(av * load(x + i) + bv, zero));
  for (; i < n; ++i) y[i] = std::max(T(0), a * x[i] + b);
}

/// Σ du and Σ du·x̂ over one row, du = dy where a x + b > 0 (else 0), x̂ = (x − μ) σ⁻¹.
template <class T>
CONTRA_INLINE void row_grad_sums(const T* x, const T* dy, int64_t n, T a, T b, T mean, T invstd,
                                 double& s_du, double& s_dux) {
  constexpr int64_t V = kLanes<T>;
  const Vec<T> av = simd::splat(a), bv = simd::splat(b), mv = simd::splat(mean),
               iv = simd::splat(invstd), zero{};
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t end = std::min(n, start + kChunk);
    Vec<T> d{}, dx{};
    int64_t i = start;
    for (; i + V <= end; i += V) {
      const Vec<T> xv = load(x + i);
      const Vec<T> du = (av * xv + bv > zero) ? load(dy + i) : zero;
      d += du;
      dx += du * ((xv - mv) * iv);
    }
    T t1 = simd::hsum<T>(d), t2 = simd::hsum<T>(dx);
    for (; i < end; ++i) {
      const T du = a * x[i] + b > 0 ? dy[i] : T(0);
      t1 += du;
      t2 += du * ((x[i] - mean) * invstd);
    }
    s_du += t1;
    s_dux += t2;
  }
}

/// dx = g (du − c1 − x̂ c2) over one row (g = γσ⁻¹, c1 = Σdu / count, c2 = Σdu·x̂ / count).
template <class T>
CONTRA_INLINE void row_grad_input(const T* x, const T* dy, T* dx, int64_t n, T a, T b, T mean,
                                  T invstd, T g, T c1, T c2) {
  constexpr int64_t V = kLanes<T>;
  const Vec<T> av = simd::splat(a), bv = simd::splat(b), mv = simd::splat(mean),
               iv = simd::splat(invstd), gv = simd::splat(g), c1v = simd::splat(c1),
               c2v = simd::splat(c2), zero{};
  int64_t i = 0;
  for (; i + V <= n; i += V) {
    const Vec<T> xv = load(x + i);
    const Vec<T> du = (av * xv + bv > zero) ? load(dy + i) : zero;
    store(dx + i, gv * (du - c1v - ((xv - mv) * iv) * c2v));
  }
  for (; i < n; ++i) {
    const T du = a * x[i] + b > 0 ? dy[i] : T(0);
    dx[i] = g * (du - c1 - ((x[i] - mean) * invstd) * c2);
  }
}

// Per-channel drivers over channels [c0, c1) of x (N, C, L).
template <class T>
CONTRA_INLINE void stats_channels(const T* x, int64_t N, int64_t C, int64_t L, double eps,
                                  double* mean, double* var, int64_t c0, int64_t c1) {
  const double count = static_cast<double>(N * L);
  for (int64_t c = c0; c < c1; ++c) {
    const T pivot = x[c * L];
    double s1 = 0, s2 = 0;
    for (int64_t n = 0; n < N; ++n) row_moments(x + (n * C + c) * L, L, pivot, s1, s2);
    const double m = s1 / count;
    mean[c] = static_cast<double>(pivot) + m;
    var[c] = std::max(0.0, s2 / count - m * m);
  }
}

template <class T>
CONTRA_INLINE void forward_channels(const T* x, T* y, int64_t N, int64_t C, int64_t L, const T* a,
                                    const T* b, int64_t c0, int64_t c1) {
  for (int64_t c = c0; c < c1; ++c) {
    for (int64_t n = 0; n < N; ++n) {
      const int64_t o = (n * C + c) * L;
      row_affine_relu(x + o, y + o, L, a[c], b[c]);
    }
  }
}

template <class T>
CONTRA_INLINE void backward_channels(const T* x, const T* dy, T* dx, int64_t N, int64_t C,
                                     int64_t L, const T* a, const T* b, const T* mean,
                                     const T* invstd, const T* gamma, double* s_du, double* s_dux,
                                     int64_t c0, int64_t c1) {
  const double count = static_cast<double>(N * L);
  for (int64_t c = c0; c < c1; ++c) {
    double d1 = 0, d2 = 0;
    for (int64_t n = 0; n < N; ++n) {
      row_grad_sums(x + (n * C + c) * L, dy + (n * C + c) * L, L, a[c], b[c], mean[c], invstd[c],
                    d1, d2);
    }
    s_du[c] = d1;
    s_dux[c] = d2;
    if (!dx) continue;
    const T g = gamma[c] * invstd[c];
    const T k1 = static_cast<T>(d1 / count), k2 = static_cast<T>(d2 / count);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t o = (n * C + c) * L;
      row_grad_input(x + o, dy + o, dx + o, L, a[c], b[c], mean[c], invstd[c], g, k1, k2);
    }
  }
}

#define CONTRA_BN_KERNELS(T, SUFFIX)                                                               \
  CONTRA_MULTIVERSION void stats_##SUFFIX(const T* x, int64_t N, int64_t C, int64_t L, double eps, \
                                          double* mean, double* var, int64_t c0, int64_t c1) {     \
    stats_channels(x, N, C, L, eps, mean, var, c0, c1);                                            \
  }                                                                                                \
  CONTRA_MULTIVERSION void forward_##SUFFIX(const T* x, T* y, int64_t N, int64_t C, int64_t L,     \
                                            const T* a, const T* b, int64_t c0, int64_t c1) {      \
    forward_channels(x, y, N, C, L, a, b, c0, c1);                                                 \
  }                                                                                                \
  CONTRA_MULTIVERSION void backward_##SUFFIX(const T* x, const T* dy, T* dx, int64_t N, int64_t C, \
                                             int64_t L, const T* a, const T* b, const T* mean,     \
                                             const T* invstd, const T* gamma, double* s_du,        \
                                             double* s_dux, int64_t c0, int64_t c1) {              \
    backward_channels(x, dy, dx, N, C, L, a, b, mean, invstd, gamma, s_du, s_dux, c0, c1);         \
  }
CONTRA_BN_KERNELS(float, f)
CONTRA_BN_KERNELS(double, d)
#undef CONTRA_BN_KERNELS

template <class T>
struct Kernels;
template <>
struct Kernels<float> {
  static constexpr auto stats = stats_f;
  static constexpr auto forward = forward_f;
  static constexpr auto backward = backward_f;
};
template <>
struct Kernels<double> {
  static constexpr auto stats = stats_d;
  static constexpr auto forward = forward_d;
  static constexpr auto backward = backward_d;
};

/// Channels per parallel task: about 64k elements.
int64_t channel_grain(int64_t per_channel) {
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, per_channel));
}

template <class F>
void dispatch(const torch::Tensor& x, F&& f) {
  if (x.scalar_type() == torch::kFloat) {
    f(float{});
  } else {
    f(double{});
  }
}

/// Per-channel batch mean and biased variance of x (N, C, L), in double.
std::pair<torch::Tensor, torch::Tensor> channel_moments(const torch::Tensor& x, double eps) {
  const int64_t N = x.size(0), C = x.size(1), L = x.size(2);
  auto mean = torch::empty({C}, torch::kDouble), var = torch::empty({C}, torch::kDouble);
  dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data_ptr<T>();
    at::parallel_for(0, C, channel_grain(N * L), [&](int64_t c0, int64_t c1) {
      Kernels<T>::stats(xp, N, C, L, eps, mean.data_ptr<double>(), var.data_ptr<double>(), c0, c1);
    });
  });
  return {mean, var};
}

/// y = relu(γ (x − μ) σ⁻¹ + β) with μ, σ⁻¹ the batch statistics of x (computed by the caller, in
/// x's dtype); the backward includes their dependence on x.
struct BatchNormReluCpu : public torch::autograd::Function<BatchNormReluCpu> {
  /// x (N, C, L) contiguous; weight, bias (C) (ones / zeros when the layer has no affine).
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& mean, const torch::Tensor& invstd) {
    const int64_t N = x.size(0), C = x.size(1), L = x.size(2);
    // y = max(0, a x + b): a = γ σ⁻¹, b = β − μ a, in x's dtype.
    auto a = (weight.to(torch::kDouble) * invstd).to(x.scalar_type());
    auto b =
        (bias.to(torch::kDouble) - mean * weight.to(torch::kDouble) * invstd).to(x.scalar_type());
    auto y = torch::empty_like(x);
    dispatch(x, [&](auto tag) {
      using T = decltype(tag);
      const T *xp = x.data_ptr<T>(), *ap = a.data_ptr<T>(), *bp = b.data_ptr<T>();
      T* yp = y.data_ptr<T>();
      at::parallel_for(0, C, channel_grain(N * L), [&](int64_t c0, int64_t c1) {
        Kernels<T>::forward(xp, yp, N, C, L, ap, bp, c0, c1);
      });
    });
    ctx->save_for_backward({x, weight, a, b, mean.to(x.scalar_type()), invstd.to(x.scalar_type())});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &a = saved[2], &b = saved[3], &mean = saved[4],
               &invstd = saved[5];
    auto dy = grads[0].contiguous();
    const int64_t N = x.size(0), C = x.size(1), L = x.size(2);
    auto s_du = torch::empty({C}, torch::kDouble), s_dux = torch::empty({C}, torch::kDouble);
    auto gamma = weight.to(x.scalar_type()).contiguous();
    torch::Tensor dx = ctx->needs_input_grad(0) ? torch::empty_like(x) : torch::Tensor();
    dispatch(x, [&](auto tag) {
      using T = decltype(tag);
      T* dxp = dx.defined() ? dx.data_ptr<T>() : nullptr;
      at::parallel_for(0, C, channel_grain(2 * N * L), [&](int64_t c0, int64_t c1) {
        Kernels<T>::backward(x.data_ptr<T>(), dy.data_ptr<T>(), dxp, N, C, L, a.data_ptr<T>(),
                             b.data_ptr<T>(), mean.data_ptr<T>(), invstd.data_ptr<T>(),
                             gamma.data_ptr<T>(), s_du.data_ptr<double>(), s_dux.data_ptr<double>(),
                             c0, c1);
      });
    });
    torch::Tensor dweight, dbias;
    if (ctx->needs_input_grad(1)) dweight = s_dux.to(weight.scalar_type());
    if (ctx->needs_input_grad(2)) dbias = s_du.to(weight.scalar_type());
    return {dx, dweight, dbias, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor batch_norm_relu(const torch::Tensor& x, const torch::Tensor& weight,
                              const torch::Tensor& bias, const torch::Tensor& running_mean,
                              const torch::Tensor& running_var, bool training, double momentum,
                              double eps, const torch::Tensor& input_bias) {
  TORCH_CHECK(x.dim() == 2 || x.dim() == 3, "batch_norm_relu: x must be (N, C) or (N, C, L), got ",
              x.sizes());
  const int64_t C = x.size(1);
  for (const auto* t : {&weight, &bias, &running_mean, &running_var, &input_bias}) {
    TORCH_CHECK(!t->defined() || (t->dim() == 1 && t->size(0) == C),
                "batch_norm_relu: per-channel tensors must be (", C, "), got ", t->sizes());
  }
  TORCH_CHECK(training || (running_mean.defined() && running_var.defined()),
              "batch_norm_relu: eval mode needs running statistics");
  const auto type = x.scalar_type();
  const bool fused = training && x.device().is_cpu() &&
                     (type == torch::kFloat || type == torch::kDouble) &&
                     (!weight.defined() || weight.scalar_type() == type) && x.size(0) > 0;
  if (!fused) {
    auto shape = std::vector<int64_t>(static_cast<std::size_t>(x.dim()), 1);
    shape[1] = C;
    auto input = input_bias.defined() ? x + input_bias.detach().view(shape) : x;
    return torch::relu(torch::batch_norm(input, weight, bias, running_mean, running_var, training,
                                         momentum, eps, /*cudnn_enabled=*/true));
  }
  auto x3 = (x.dim() == 2 ? x.unsqueeze(2) : x).contiguous();
  auto [mean, var] = channel_moments(x3, eps);
  if (running_mean.defined() || running_var.defined()) {
    // torch.nn.BatchNorm's update: running ← (1 − m) running + m · stat, unbiased variance.
    torch::NoGradGuard no_grad;
    const double count = static_cast<double>(x3.size(0) * x3.size(2));
    if (running_mean.defined()) {
      auto batch_mean = input_bias.defined() ? mean + input_bias.to(torch::kDouble) : mean;
      running_mean.mul_(1 - momentum).add_(batch_mean.to(running_mean.scalar_type()), momentum);
    }
    if (running_var.defined()) {
      running_var.mul_(1 - momentum)
          .add_((var * (count / std::max(1.0, count - 1))).to(running_var.scalar_type()), momentum);
    }
  }
  auto w = weight.defined() ? weight : torch::ones({C}, x.options());
  auto b = bias.defined() ? bias : torch::zeros({C}, x.options());
  auto y = BatchNormReluCpu::apply(x3, w, b, mean, (var + eps).rsqrt());
  return x.dim() == 2 ? y.squeeze(2) : y;
}

}  // namespace contra::nn::functional
