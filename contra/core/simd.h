#pragma once
/// Portable SIMD for contra's hand-written CPU kernels (the CPC loss, fused BatchNorm + ReLU, the
/// GRU/LSTM gates), through GCC/Clang vector extensions: a `Vec<T>` is 64 bytes (16 floats, 8
/// doubles), which the compiler maps to one AVX-512 register, two AVX2 registers or four SSE/NEON
/// registers, whatever the function is compiled for. Kernels are `always_inline` templates
/// instantiated inside `CONTRA_MULTIVERSION` functions: on x86-64 with GCC those carry AVX-512,
/// AVX2 and baseline clones, chosen once at load time by the CPU (GCC function multi-versioning);
/// elsewhere the one portable version. No -ffast-math anywhere: each kernel keeps its own
/// independent partial sums so that it vectorises without reassociation.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // vectors pass only between inlined functions
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CONTRA_MULTIVERSION __attribute__((target_clones("avx512f", "avx2,fma", "default")))
#else
#define CONTRA_MULTIVERSION
#endif
#define CONTRA_INLINE inline __attribute__((always_inline))

namespace contra::simd {

template <class T>
struct VecOf {
  typedef T type __attribute__((vector_size(64)));
};
/// 64 bytes of T.
template <class T>
using Vec = typename VecOf<T>::type;
/// Lanes of a Vec<T>.
template <class T>
constexpr int64_t kLanes = 64 / static_cast<int64_t>(sizeof(T));

template <class T>
CONTRA_INLINE Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
CONTRA_INLINE void store(T* p, Vec<T> v) {
  std::memcpy(p, &v, sizeof v);
}
template <class T>
CONTRA_INLINE Vec<T> splat(T x) {
  return Vec<T>{} + x;
}
/// Sum of the lanes (call as hsum<T>(v): T is not deduced through the alias).
template <class T>
CONTRA_INLINE T hsum(Vec<T> v) {
  T s = 0;
  for (int64_t i = 0; i < kLanes<T>; ++i) s += v[i];
  return s;
}
/// Lane-wise maximum (call as vmax<T>(a, b)).
template <class T>
CONTRA_INLINE Vec<T> vmax(Vec<T> a, Vec<T> b) {
  return a > b ? a : b;
}

/// e^x lane by lane. float: Cody–Waite range reduction and Cephes' degree-6 polynomial (within
/// 2 ulp of std::exp for x in [−87, 88]; clamped outside, so large negative x gives ~1e-38, not
/// 0). double: std::exp per lane (the double kernels serve tests and references, not speed).
template <class T>
CONTRA_INLINE Vec<T> exp(Vec<T> x) {
  if constexpr (std::is_same_v<T, float>) {
    typedef int32_t Int __attribute__((vector_size(64)));
    x = x < splat(-87.0f) ? splat(-87.0f) : x;
    x = x > splat(88.0f) ? splat(88.0f) : x;
    // n = round(x / ln 2) by the 1.5 · 2²³ trick (exact for |n| < 2²²; no fast-math here).
    const Vec<float> shift = splat(12582912.0f);
    const Vec<float> n = (x * 1.44269504088896341f + shift) - shift;
    Vec<float> r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    Vec<float> p = splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    const Int bits = (__builtin_convertvector(n, Int) + 127) << 23;
    Vec<float> scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
  } else {
    for (int64_t i = 0; i < kLanes<T>; ++i) x[i] = std::exp(x[i]);
    return x;
  }
}
/// 1 / (1 + e^−x).
template <class T>
CONTRA_INLINE Vec<T> sigmoid(Vec<T> x) {
  return T(1) / (T(1) + exp<T>(-x));
}
/// tanh x = 1 − 2 / (1 + e^{2x}) (saturates cleanly at ±1; absolute error ~1e-7 in float).
template <class T>
CONTRA_INLINE Vec<T> tanh(Vec<T> x) {
  return T(1) - T(2) / (T(1) + exp<T>(x + x));
}

}  // namespace contra::simd

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
