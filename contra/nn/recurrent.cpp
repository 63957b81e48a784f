// GRU and LSTM layers with a hand-written backward. ATen's CPU RNN already projects the inputs of
// all steps at once, but each step then runs a dozen small ops (chunk, sigmoid, tanh, mul, add),
// each an autograd node whose backward is another handful of small ops: at CPC's size (B = 8,
// T = 128, H = 256) that overhead, not arithmetic, is most of the layer's time. Here a step is one
// (B, H) × (H, G·H) product and one gate kernel; the backward walks the steps once in reverse
// (one product per step for the recurrence) and leaves every weight gradient to three large
// products over all B·T rows.
#include "contra/nn/recurrent.h"

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

/// Rows (batch items) and a column range: every gate kernel runs over (B, H) elements of one step.
struct StepShape {
  int64_t B, T, H, t;
};

// ---- GRU gates
// ------------------------------------------------------------------------------------ gi (B, T,
// 3H) input projections (+ b_ih), gh (B, 3H) this step's recurrent projection (+ b_hh), out (B, T,
// H) hidden states; saved (B, T, 4H): r, z, n, ghn per step.

template <class T>
CONTRA_INLINE void gru_gates_forward(const T* gi, const T* gh, T* out, T* saved, StepShape s) {
  constexpr int64_t V = kLanes<T>;
  const int64_t H = s.H;
  for (int64_t b = 0; b < s.B; ++b) {
    const int64_t row = b * s.T + s.t;
    const T* a = gi + row * 3 * H;
    const T* c = gh + b * 3 * H;
    const T* hp = s.t > 0 ? out + (row - 1) * H : nullptr;
    T* h = out + row * H;
    T* keep = saved + row * 4 * H;
    int64_t j = 0;
    for (; j + V <= H; j += V) {
      const Vec<T> r = simd::sigmoid<T>(load(a + j) + load(c + j));
      const Vec<T> z = simd::sigmoid<T>(load(a + H + j) + load(c + H + j));
      const Vec<T> ghn = load(c + 2 * H + j);
      const Vec<T> n = simd::tanh<T>(load(a + 2 * H + j) + r * ghn);
      const Vec<T> prev = hp ? load(hp + j) : Vec<T>{};
      store(h + j, n + z * (prev - n));
      store(keep + j, r);
      store(keep + H + j, z);
      store(keep + 2 * H + j, n);
      store(keep + 3 * H + j, ghn);
    }
    for (; j < H; ++j) {
      const T r = T(1) / (T(1) + std::exp(-(a[j] + c[j])));
      const T z = T(1) / (T(1) + std::exp(-(a[H + j] + c[H + j])));
      const T ghn = c[2 * H + j];
      const T n = std::tanh(a[2 * H + j] + r * ghn);
      const T prev = hp ? hp[j] : T(0);
      h[j] = n + z * (prev - n);
      keep[j] = r;
      keep[H + j] = z;
      keep[2 * H + j] = n;
      keep[3 * H + j] = ghn;
    }
  }
}

/// dh (B, H): in, the gradient reaching h_t from later steps; out, the part that reaches h_{t−1}
/// directly (z ⊙ dh; the caller adds dgh W_hh). dgi, dgh (B, T, 3H): this step's pre-activation
/// gradients.
template <class T>
CONTRA_INLINE void gru_gates_backward(const T* dout, const T* out, const T* saved, T* dh, T* dgi,
                                      T* dgh, StepShape s) {
  constexpr int64_t V = kLanes<T>;
  const int64_t H = s.H;
  for (int64_t b = 0; b < s.B; ++b) {
    const int64_t row = b * s.T + s.t;
    const T* keep = saved + row * 4 * H;
    const T* hp = s.t > 0 ? out + (row - 1) * H : nullptr;
    const T* go = dout + row * H;
    T* d = dh + b * H;
    T* gi = dgi + row * 3 * H;
    T* gh = dgh + row * 3 * H;
    int64_t j = 0;
    for (; j + V <= H; j += V) {
      const Vec<T> r = load(keep + j), z = load(keep + H + j), n = load(keep + 2 * H + j),
                   ghn = load(keep + 3 * H + j);
      const Vec<T> g = load(d + j) + load(go + j);
      const Vec<T> prev = hp ? load(hp + j) : Vec<T>{};
      const Vec<T> an = g * (T(1) - z) * (T(1) - n * n);
      const Vec<T> ar = an * ghn * r * (T(1) - r);
      const Vec<T> az = g * (prev - n) * z * (T(1) - z);
      store(gi + j, ar);
      store(gi + H + j, az);
      store(gi + 2 * H + j, an);
      store(gh + j, ar);
      store(gh + H + j, az);
      store(gh + 2 * H + j, an * r);
      store(d + j, g * z);
    }
    for (; j < H; ++j) {
      const T r = keep[j], z = keep[H + j], n = keep[2 * H + j], ghn = keep[3 * H + j];
      const T g = d[j] + go[j];
      const T prev = hp ? hp[j] : T(0);
      const T an = g * (T(1) - z) * (T(1) - n * n);
      const T ar = an * ghn * r * (T(1) - r);
      const T az = g * (prev - n) * z * (T(1) - z);
      gi[j] = ar;
      gi[H + j] = az;
      gi[2 * H + j] = an;
      gh[j] = ar;
      gh[H + j] = az;
      gh[2 * H + j] = an * r;
      d[j] = g * z;
    }
  }
}

// ---- LSTM gates
// ----------------------------------------------------------------------------------- gi (B, T,
// 4H), gh (B, 4H); out (B, T, H); saved (B, T, 6H): i, f, g, o, c, tanh c per step.

template <class T>
CONTRA_INLINE void lstm_gates_forward(const T* gi, const T* gh, T* out, T* saved, StepShape s) {
  constexpr int64_t V = kLanes<T>;
  const int64_t H = s.H;
  for (int64_t b = 0; b < s.B; ++b) {
    const int64_t row = b * s.T + s.t;
    const T* a = gi + row * 4 * H;
    const T* c = gh + b * 4 * H;
    const T* cp = s.t > 0 ? saved + (row - 1) * 6 * H + 4 * H : nullptr;
    T* h = out + row * H;
    T* keep = saved + row * 6 * H;
    int64_t j = 0;
    for (; j + V <= H; j += V) {
      const Vec<T> i = simd::sigmoid<T>(load(a + j) + load(c + j));
      const Vec<T> f = simd::sigmoid<T>(load(a + H + j) + load(c + H + j));
      const Vec<T> g = simd::tanh<T>(load(a + 2 * H + j) + load(c + 2 * H + j));
      const Vec<T> o = simd::sigmoid<T>(load(a + 3 * H + j) + load(c + 3 * H + j));
      const Vec<T> cell = f * (cp ? load(cp + j) : Vec<T>{}) + i * g;
      const Vec<T> tc = simd::tanh<T>(cell);
      store(h + j, o * tc);
      store(keep + j, i);
      store(keep + H + j, f);
      store(keep + 2 * H + j, g);
      store(keep + 3 * H + j, o);
      store(keep + 4 * H + j, cell);
      store(keep + 5 * H + j, tc);
    }
    for (; j < H; ++j) {
      const T i = T(1) / (T(1) + std::exp(-(a[j] + c[j])));
      const T f = T(1) / (T(1) + std::exp(-(a[H + j] + c[H + j])));
      const T g = std::tanh(a[2 * H + j] + c[2 * H + j]);
      const T o = T(1) / (T(1) + std::exp(-(a[3 * H + j] + c[3 * H + j])));
      const T cell = f * (cp ? cp[j] : T(0)) + i * g;
      const T tc = std::tanh(cell);
      h[j] = o * tc;
      keep[j] = i;
      keep[H + j] = f;
      keep[2 * H + j] = g;
      keep[3 * H + j] = o;
      keep[4 * H + j] = cell;
      keep[5 * H + j] = tc;
    }
  }
}

/// dh, dc (B, H): in, the gradients reaching h_t and c_t from later steps; out, dc_{t−1} and the
/// direct part of dh_{t−1} (zero: h_{t−1} reaches h_t only through the gates). dgate (B, T, 4H).
template <class T>
CONTRA_INLINE void lstm_gates_backward(const T* dout, const T* saved, T* dh, T* dc, T* dgate,
                                       StepShape s) {
  constexpr int64_t V = kLanes<T>;
  const int64_t H = s.H;
  for (int64_t b = 0; b < s.B; ++b) {
    const int64_t row = b * s.T + s.t;
    const T* keep = saved + row * 6 * H;
    const T* cp = s.t > 0 ? saved + (row - 1) * 6 * H + 4 * H : nullptr;
    const T* go = dout + row * H;
    T* dhb = dh + b * H;
    T* dcb = dc + b * H;
    T* gate = dgate + row * 4 * H;
    int64_t j = 0;
    for (; j + V <= H; j += V) {
      const Vec<T> i = load(keep + j), f = load(keep + H + j), g = load(keep + 2 * H + j),
                   o = load(keep + 3 * H + j), tc = load(keep + 5 * H + j);
      const Vec<T> prev = cp ? load(cp + j) : Vec<T>{};
      const Vec<T> gh = load(dhb + j) + load(go + j);
      const Vec<T> gc = load(dcb + j) + gh * o * (T(1) - tc * tc);
      store(gate + j, gc * g * i * (T(1) - i));
      store(gate + H + j, gc * prev * f * (T(1) - f));
      store(gate + 2 * H + j, gc * i * (T(1) - g * g));
      store(gate + 3 * H + j, gh * tc * o * (T(1) - o));
      store(dcb + j, gc * f);
      store(dhb + j, Vec<T>{});
    }
    for (; j < H; ++j) {
      const T i = keep[j], f = keep[H + j], g = keep[2 * H + j], o = keep[3 * H + j],
              tc = keep[5 * H + j];
      const T prev = cp ? cp[j] : T(0);
      const T gh = dhb[j] + go[j];
      const T gc = dcb[j] + gh * o * (T(1) - tc * tc);
      gate[j] = gc * g * i * (T(1) - i);
      gate[H + j] = gc * prev * f * (T(1) - f);
      gate[2 * H + j] = gc * i * (T(1) - g * g);
      gate[3 * H + j] = gh * tc * o * (T(1) - o);
      dcb[j] = gc * f;
      dhb[j] = T(0);
    }
  }
}

// ---- the recurrent product
// ------------------------------------------------------------------------ out[b, n0:n1] (+)= Σ_k
// a[b, k] m[k, n0:n1] (+ bias) for the few rows of a step (B ≤ 8 per pass): a row-major (K, N) m is
// streamed once per pass, each vector of it feeding B multiply-adds with a broadcast of a[b, k]. A
// general GEMM packs the whole (H, G·H) matrix on every call, which at B = 8 costs more than the
// arithmetic.

constexpr int64_t kRows = 8;

template <class T>
CONTRA_INLINE void rows_times_matrix(const T* a, int64_t lda, int64_t B, const T* m, int64_t K,
                                     int64_t N, const T* bias, bool accumulate, T* out, int64_t ldo,
                                     int64_t n0, int64_t n1) {
  constexpr int64_t V = kLanes<T>;
  for (int64_t b0 = 0; b0 < B; b0 += kRows) {
    const int64_t rows = std::min(kRows, B - b0);
    const T* ab = a + b0 * lda;
    T* ob = out + b0 * ldo;
    int64_t n = n0;
    for (; n + V <= n1; n += V) {
      Vec<T> acc[kRows];
      const Vec<T> init = bias ? load(bias + n) : Vec<T>{};
      for (int64_t r = 0; r < kRows; ++r) acc[r] = init;
      if (rows == kRows) {
        for (int64_t k = 0; k < K; ++k) {
          const Vec<T> mv = load(m + k * N + n);
          for (int64_t r = 0; r < kRows; ++r) acc[r] += ab[r * lda + k] * mv;
        }
      } else {
        for (int64_t k = 0; k < K; ++k) {
          const Vec<T> mv = load(m + k * N + n);
          for (int64_t r = 0; r < rows; ++r) acc[r] += ab[r * lda + k] * mv;
        }
      }
      for (int64_t r = 0; r < rows; ++r) {
        T* o = ob + r * ldo + n;
        store(o, accumulate ? load(o) + acc[r] : acc[r]);
      }
    }
    for (; n < n1; ++n) {
      for (int64_t r = 0; r < rows; ++r) {
        T x = bias ? bias[n] : T(0);
        for (int64_t k = 0; k < K; ++k) x += ab[r * lda + k] * m[k * N + n];
        T& o = ob[r * ldo + n];
        o = accumulate ? o + x : x;
      }
    }
  }
}

#define CONTRA_RNN_KERNELS(T, SUFFIX)                                                              \
  CONTRA_MULTIVERSION void gru_fwd_##SUFFIX(const T* gi, const T* gh, T* out, T* saved,            \
                                            StepShape s) {                                         \
    gru_gates_forward(gi, gh, out, saved, s);                                                      \
  }                                                                                                \
  CONTRA_MULTIVERSION void gru_bwd_##SUFFIX(const T* dout, const T* out, const T* saved, T* dh,    \
                                            T* dgi, T* dgh, StepShape s) {                         \
    gru_gates_backward(dout, out, saved, dh, dgi, dgh, s);                                         \
  }                                                                                                \
  CONTRA_MULTIVERSION void lstm_fwd_##SUFFIX(const T* gi, const T* gh, T* out, T* saved,           \
                                             StepShape s) {                                        \
    lstm_gates_forward(gi, gh, out, saved, s);                                                     \
  }                                                                                                \
  CONTRA_MULTIVERSION void lstm_bwd_##SUFFIX(const T* dout, const T* saved, T* dh, T* dc,          \
                                             T* dgate, StepShape s) {                              \
    lstm_gates_backward(dout, saved, dh, dc, dgate, s);                                            \
  }                                                                                                \
  CONTRA_MULTIVERSION void rows_mm_##SUFFIX(const T* a, int64_t lda, int64_t B, const T* m,        \
                                            int64_t K, int64_t N, const T* bias, bool acc, T* out, \
                                            int64_t ldo, int64_t n0, int64_t n1) {                 \
    rows_times_matrix(a, lda, B, m, K, N, bias, acc, out, ldo, n0, n1);                            \
  }
CONTRA_RNN_KERNELS(float, f)
CONTRA_RNN_KERNELS(double, d)
#undef CONTRA_RNN_KERNELS

template <class T>
struct Kernels;
template <>
struct Kernels<float> {
  static constexpr auto gru_fwd = gru_fwd_f;
  static constexpr auto gru_bwd = gru_bwd_f;
  static constexpr auto lstm_fwd = lstm_fwd_f;
  static constexpr auto lstm_bwd = lstm_bwd_f;
  static constexpr auto rows_mm = rows_mm_f;
};
template <>
struct Kernels<double> {
  static constexpr auto gru_fwd = gru_fwd_d;
  static constexpr auto gru_bwd = gru_bwd_d;
  static constexpr auto lstm_fwd = lstm_fwd_d;
  static constexpr auto lstm_bwd = lstm_bwd_d;
  static constexpr auto rows_mm = rows_mm_d;
};

template <class F>
void dispatch(const torch::Tensor& x, F&& f) {
  if (x.scalar_type() == torch::kFloat) {
    f(float{});
  } else {
    f(double{});
  }
}

/// gi = x W_ihᵀ + b_ih for all steps: (B, T, G·H).
torch::Tensor input_projection(const torch::Tensor& x, const torch::Tensor& w_ih,
                               const torch::Tensor& b_ih) {
  const int64_t B = x.size(0), T = x.size(1);
  auto flat = x.reshape({B * T, x.size(2)});
  auto gi = b_ih.defined() ? torch::addmm(b_ih, flat, w_ih.t()) : torch::mm(flat, w_ih.t());
  return gi.view({B, T, w_ih.size(0)});
}

/// out (B, N) (+)= a (B, K) × m (K, N) (+ bias): a's rows `lda` apart, out's `ldo`; m row-major
/// and contiguous. Few rows: the kernel above, columns split over the threads; more: ATen's GEMM.
void rows_times(const torch::Tensor& a, const torch::Tensor& m, const torch::Tensor& bias,
                bool accumulate, torch::Tensor& out) {
  const int64_t B = a.size(0), K = m.size(0), N = m.size(1);
  if (B > 2 * kRows) {
    if (accumulate) {
      out.addmm_(a, m);
    } else if (bias.defined()) {
      torch::addmm_out(out, bias, a, m);
    } else {
      torch::mm_out(out, a, m);
    }
    return;
  }
  dispatch(a, [&](auto tag) {
    using V = decltype(tag);
    const V* ap = a.data_ptr<V>();
    const V* mp = m.data_ptr<V>();
    const V* bp = bias.defined() ? bias.data_ptr<V>() : nullptr;
    V* op = out.data_ptr<V>();
    const int64_t lda = a.stride(0), ldo = out.stride(0);
    constexpr int64_t L = kLanes<V>;
    const int64_t blocks = (N + L - 1) / L;
    // Parallel over column blocks only when each thread gets ~32k multiply-adds or more.
    at::parallel_for(0, blocks, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, B * K * L)),
                     [&](int64_t c0, int64_t c1) {
                       Kernels<V>::rows_mm(ap, lda, B, mp, K, N, bp, accumulate, op, ldo, c0 * L,
                                           std::min(N, c1 * L));
                     });
  });
}

/// The recurrent product of step t into gh (B, G·H): h_{t−1} W_hhᵀ + b_hh (h₋₁ = 0); w_hh_t is
/// W_hhᵀ, contiguous (H, G·H).
void recurrent_projection(const torch::Tensor& out, int64_t t, const torch::Tensor& w_hh_t,
                          const torch::Tensor& b_hh, torch::Tensor& gh) {
  if (t == 0) {
    b_hh.defined() ? gh.copy_(b_hh.expand_as(gh)) : gh.zero_();
    return;
  }
  rows_times(out.select(1, t - 1), w_hh_t, b_hh, /*accumulate=*/false, gh);
}

/// The gradients common to both cells, from the pre-activation gradients of all steps:
/// dgi, dgh (B, T, G·H) (the same tensor for the LSTM), h_prev (B, T, H) → {dx, dW_ih, dW_hh,
/// db_ih, db_hh}.
torch::autograd::variable_list weight_gradients(torch::autograd::AutogradContext* ctx,
                                                const torch::Tensor& x, const torch::Tensor& w_ih,
                                                const torch::Tensor& dgi, const torch::Tensor& dgh,
                                                const torch::Tensor& out) {
  const int64_t B = x.size(0), T = x.size(1), H = out.size(2), GH = dgi.size(2);
  auto gi2 = dgi.view({B * T, GH}), gh2 = dgh.view({B * T, GH});
  torch::Tensor dx, dw_ih, dw_hh, db_ih, db_hh;
  if (ctx->needs_input_grad(0)) dx = torch::mm(gi2, w_ih).view_as(x);
  if (ctx->needs_input_grad(1)) dw_ih = torch::mm(gi2.t(), x.reshape({B * T, x.size(2)}));
  if (ctx->needs_input_grad(2)) {
    // h_{t−1} for every step: the outputs shifted by one, zeros at t = 0.
    auto prev = torch::zeros_like(out);
    prev.narrow(1, 1, T - 1).copy_(out.narrow(1, 0, T - 1));
    dw_hh = torch::mm(gh2.t(), prev.view({B * T, H}));
  }
  if (ctx->needs_input_grad(3)) db_ih = gi2.sum(0);
  if (ctx->needs_input_grad(4)) db_hh = gh2.sum(0);
  return {dx, dw_ih, dw_hh, db_ih, db_hh};
}

struct GruCpu : public torch::autograd::Function<GruCpu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w_ih, const torch::Tensor& w_hh,
                               const torch::Tensor& b_ih, const torch::Tensor& b_hh) {
    const int64_t B = x.size(0), T = x.size(1), H = w_hh.size(1);
    auto gi = input_projection(x, w_ih, b_ih);
    auto w_hh_t = w_hh.t().contiguous();
    auto out = torch::empty({B, T, H}, x.options());
    auto saved = torch::empty({B, T, 4 * H}, x.options());
    auto gh = torch::empty({B, 3 * H}, x.options());
    for (int64_t t = 0; t < T; ++t) {
      recurrent_projection(out, t, w_hh_t, b_hh, gh);
      dispatch(x, [&](auto tag) {
        using V = decltype(tag);
        Kernels<V>::gru_fwd(gi.data_ptr<V>(), gh.data_ptr<V>(), out.data_ptr<V>(),
                            saved.data_ptr<V>(), StepShape{B, T, H, t});
      });
    }
    ctx->save_for_backward({x, w_ih, w_hh, out, saved});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto s = ctx->get_saved_variables();
    const auto &x = s[0], &w_ih = s[1], &w_hh = s[2], &out = s[3], &saved = s[4];
    const int64_t B = x.size(0), T = x.size(1), H = w_hh.size(1);
    auto dout = grads[0].contiguous();
    auto dh = torch::zeros({B, H}, x.options());
    auto dgi = torch::empty({B, T, 3 * H}, x.options()), dgh = torch::empty_like(dgi);
    auto w_hh_c = w_hh.contiguous();
    for (int64_t t = T - 1; t >= 0; --t) {
      dispatch(x, [&](auto tag) {
        using V = decltype(tag);
        Kernels<V>::gru_bwd(dout.data_ptr<V>(), out.data_ptr<V>(), saved.data_ptr<V>(),
                            dh.data_ptr<V>(), dgi.data_ptr<V>(), dgh.data_ptr<V>(),
                            StepShape{B, T, H, t});
      });
      if (t > 0) rows_times(dgh.select(1, t), w_hh_c, {}, true, dh);  // dh_{t−1} += dgh_t W_hh
    }
    return weight_gradients(ctx, x, w_ih, dgi, dgh, out);
  }
};

struct LstmCpu : public torch::autograd::Function<LstmCpu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w_ih, const torch::Tensor& w_hh,
                               const torch::Tensor& b_ih, const torch::Tensor& b_hh) {
    const int64_t B = x.size(0), T = x.size(1), H = w_hh.size(1);
    auto gi = input_projection(x, w_ih, b_ih);
    auto w_hh_t = w_hh.t().contiguous();
    auto out = torch::empty({B, T, H}, x.options());
    auto saved = torch::empty({B, T, 6 * H}, x.options());
    auto gh = torch::empty({B, 4 * H}, x.options());
    for (int64_t t = 0; t < T; ++t) {
      recurrent_projection(out, t, w_hh_t, b_hh, gh);
      dispatch(x, [&](auto tag) {
        using V = decltype(tag);
        Kernels<V>::lstm_fwd(gi.data_ptr<V>(), gh.data_ptr<V>(), out.data_ptr<V>(),
                             saved.data_ptr<V>(), StepShape{B, T, H, t});
      });
    }
    ctx->save_for_backward({x, w_ih, w_hh, out, saved});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto s = ctx->get_saved_variables();
    const auto &x = s[0], &w_ih = s[1], &w_hh = s[2], &out = s[3], &saved = s[4];
    const int64_t B = x.size(0), T = x.size(1), H = w_hh.size(1);
    auto dout = grads[0].contiguous();
    auto dh = torch::zeros({B, H}, x.options()), dc = torch::zeros({B, H}, x.options());
    auto dgate = torch::empty({B, T, 4 * H}, x.options());
    auto w_hh_c = w_hh.contiguous();
    for (int64_t t = T - 1; t >= 0; --t) {
      dispatch(x, [&](auto tag) {
        using V = decltype(tag);
        Kernels<V>::lstm_bwd(dout.data_ptr<V>(), saved.data_ptr<V>(), dh.data_ptr<V>(),
                             dc.data_ptr<V>(), dgate.data_ptr<V>(), StepShape{B, T, H, t});
      });
      if (t > 0) rows_times(dgate.select(1, t), w_hh_c, {}, true, dh);  // dh_{t−1} = dgate_t W_hh
    }
    return weight_gradients(ctx, x, w_ih, dgate, dgate, out);
  }
};

void check_layer(const char* name, int64_t gates, const torch::Tensor& x, const torch::Tensor& w_ih,
                 const torch::Tensor& w_hh, const torch::Tensor& b_ih, const torch::Tensor& b_hh) {
  TORCH_CHECK(x.dim() == 3 && x.size(1) > 0, name, ": x must be (B, T, I) with T > 0, got ",
              x.sizes());
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(0) == gates * w_hh.size(1), name, ": w_hh must be (",
              gates, "H, H), got ", w_hh.sizes());
  const int64_t GH = w_hh.size(0);
  TORCH_CHECK(w_ih.dim() == 2 && w_ih.size(0) == GH && w_ih.size(1) == x.size(2), name,
              ": w_ih must be (", GH, ", ", x.size(2), "), got ", w_ih.sizes());
  for (const auto* b : {&b_ih, &b_hh}) {
    TORCH_CHECK(!b->defined() || (b->dim() == 1 && b->size(0) == GH), name, ": biases must be (",
                GH, "), got ", b->sizes());
  }
}

bool fused(const torch::Tensor& x, const torch::Tensor& w_ih, const torch::Tensor& w_hh) {
  const auto type = x.scalar_type();
  return x.device().is_cpu() && (type == torch::kFloat || type == torch::kDouble) &&
         w_ih.scalar_type() == type && w_hh.scalar_type() == type && x.size(0) > 0;
}

torch::Tensor or_zeros(const torch::Tensor& bias, const torch::Tensor& weight) {
  return bias.defined() ? bias : torch::zeros({weight.size(0)}, weight.options());
}

/// ATen's own layer (cuDNN on CUDA), for every case the kernels do not cover.
torch::Tensor aten_layer(bool gru, const torch::Tensor& x, const torch::Tensor& w_ih,
                         const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                         const torch::Tensor& b_hh) {
  const int64_t H = w_hh.size(1);
  std::vector<torch::Tensor> params{w_ih, w_hh, or_zeros(b_ih, w_ih), or_zeros(b_hh, w_hh)};
  auto h0 = torch::zeros({1, x.size(0), H}, x.options());
  if (gru) {
    return std::get<0>(torch::gru(x, h0, params, true, 1, 0.0, false, false, true));
  }
  return std::get<0>(torch::lstm(x, {h0, h0}, params, true, 1, 0.0, false, false, true));
}

}  // namespace

torch::Tensor gru_sequence(const torch::Tensor& x, const torch::Tensor& w_ih,
                           const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                           const torch::Tensor& b_hh) {
  check_layer("gru_sequence", 3, x, w_ih, w_hh, b_ih, b_hh);
  if (!fused(x, w_ih, w_hh)) return aten_layer(true, x, w_ih, w_hh, b_ih, b_hh);
  // LibTorch 1.13's Function::apply cannot take an undefined tensor: absent biases are zeros.
  return GruCpu::apply(x.contiguous(), w_ih, w_hh, or_zeros(b_ih, w_ih), or_zeros(b_hh, w_hh));
}

torch::Tensor lstm_sequence(const torch::Tensor& x, const torch::Tensor& w_ih,
                            const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                            const torch::Tensor& b_hh) {
  check_layer("lstm_sequence", 4, x, w_ih, w_hh, b_ih, b_hh);
  if (!fused(x, w_ih, w_hh)) return aten_layer(false, x, w_ih, w_hh, b_ih, b_hh);
  return LstmCpu::apply(x.contiguous(), w_ih, w_hh, or_zeros(b_ih, w_ih), or_zeros(b_hh, w_hh));
}

}  // namespace contra::nn::functional
