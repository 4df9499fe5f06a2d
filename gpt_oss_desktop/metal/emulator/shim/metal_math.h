// Metal's math library: metal::, metal::precise:: and metal::fast:: functions on scalars and
// vectors. half and bfloat are computed in float and rounded once, like MLX's bf16_math.h.
// fast:: is the same code as precise:: here; compare against references with tolerances.
//
// Metal's fast math (the math mode MLX's dispatch does not pin down) assumes no NaN operand, so
// min, max, clamp, fmin and fmax on a NaN are undefined there: the emulator stops the kernel
// with an error instead of picking an answer (a NaN there often is uninitialised memory).
#pragma once

namespace metal_emu {

[[noreturn]] inline void fail(const std::string& message);

template <class... T>
constexpr void require_numbers(const char* function, T... operands) {
  if (((static_cast<float>(operands) != static_cast<float>(operands)) || ...))
    fail(std::string(function) +
         "() got a NaN operand, which Metal leaves undefined under fast math (MLX does not pin "
         "the math mode); a NaN here often means uninitialised memory was read");
}

template <class F, class T, int N>
constexpr auto map(F f, const metal::vec<T, N>& a) {
  metal::vec<decltype(f(a[0])), N> r;
  for (int i = 0; i < N; ++i) r[i] = f(a[i]);
  return r;
}

template <class F, class T, class U, int N>
constexpr auto map(F f, const metal::vec<T, N>& a, const metal::vec<U, N>& b) {
  metal::vec<decltype(f(a[0], b[0])), N> r;
  for (int i = 0; i < N; ++i) r[i] = f(a[i], b[i]);
  return r;
}

template <class F, class T, int N>
constexpr auto map(F f, const metal::vec<T, N>& a, const metal::vec<T, N>& b,
                   const metal::vec<T, N>& c) {
  metal::vec<decltype(f(a[0], b[0], c[0])), N> r;
  for (int i = 0; i < N; ++i) r[i] = f(a[i], b[i], c[i]);
  return r;
}

template <class T>
concept floating = is_floating<T>;
template <class T>
concept scalar = is_scalar<T>;

}  // namespace metal_emu

namespace metal {
namespace precise {

#define METAL_EMU_FLOAT_UNARY(NAME, EXPR)                                                   \
  template <metal_emu::floating T>                                                         \
  inline T NAME(T x) {                                                                     \
    const float v = static_cast<float>(x);                                                 \
    return static_cast<T>(EXPR);                                                           \
  }                                                                                        \
  template <metal_emu::floating T, int N>                                                  \
  inline vec<T, N> NAME(const vec<T, N>& x) {                                              \
    return metal_emu::map([](T e) { return NAME(e); }, x);                                 \
  }

METAL_EMU_FLOAT_UNARY(exp, std::exp(v))
METAL_EMU_FLOAT_UNARY(exp2, std::exp2(v))
METAL_EMU_FLOAT_UNARY(exp10, std::pow(10.0f, v))
METAL_EMU_FLOAT_UNARY(log, std::log(v))
METAL_EMU_FLOAT_UNARY(log2, std::log2(v))
METAL_EMU_FLOAT_UNARY(log10, std::log10(v))
METAL_EMU_FLOAT_UNARY(log1p, std::log1p(v))
METAL_EMU_FLOAT_UNARY(sqrt, std::sqrt(v))
METAL_EMU_FLOAT_UNARY(rsqrt, 1.0f / std::sqrt(v))
METAL_EMU_FLOAT_UNARY(sin, std::sin(v))
METAL_EMU_FLOAT_UNARY(cos, std::cos(v))
METAL_EMU_FLOAT_UNARY(tan, std::tan(v))
METAL_EMU_FLOAT_UNARY(asin, std::asin(v))
METAL_EMU_FLOAT_UNARY(acos, std::acos(v))
METAL_EMU_FLOAT_UNARY(atan, std::atan(v))
METAL_EMU_FLOAT_UNARY(sinh, std::sinh(v))
METAL_EMU_FLOAT_UNARY(cosh, std::cosh(v))
METAL_EMU_FLOAT_UNARY(tanh, std::tanh(v))
METAL_EMU_FLOAT_UNARY(asinh, std::asinh(v))
METAL_EMU_FLOAT_UNARY(acosh, std::acosh(v))
METAL_EMU_FLOAT_UNARY(atanh, std::atanh(v))
METAL_EMU_FLOAT_UNARY(floor, std::floor(v))
METAL_EMU_FLOAT_UNARY(ceil, std::ceil(v))
METAL_EMU_FLOAT_UNARY(round, std::round(v))
METAL_EMU_FLOAT_UNARY(rint, std::nearbyint(v))
METAL_EMU_FLOAT_UNARY(trunc, std::trunc(v))
METAL_EMU_FLOAT_UNARY(fabs, std::fabs(v))
METAL_EMU_FLOAT_UNARY(fract, std::fmin(v - std::floor(v), 0x1.fffffep-1f))
METAL_EMU_FLOAT_UNARY(saturate, std::fmin(std::fmax(v, 0.0f), 1.0f))
METAL_EMU_FLOAT_UNARY(sign, v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v))
#undef METAL_EMU_FLOAT_UNARY

#define METAL_EMU_FLOAT_BINARY(NAME, EXPR)                                                  \
  template <metal_emu::floating T>                                                         \
  inline T NAME(T x, T y) {                                                                \
    const float a = static_cast<float>(x), b = static_cast<float>(y);                      \
    return static_cast<T>(EXPR);                                                           \
  }                                                                                        \
  template <metal_emu::floating T, int N>                                                  \
  inline vec<T, N> NAME(const vec<T, N>& x, const vec<T, N>& y) {                          \
    return metal_emu::map([](T p, T q) { return NAME(p, q); }, x, y);                      \
  }

METAL_EMU_FLOAT_BINARY(pow, std::pow(a, b))
METAL_EMU_FLOAT_BINARY(powr, std::pow(a, b))
METAL_EMU_FLOAT_BINARY(atan2, std::atan2(a, b))
METAL_EMU_FLOAT_BINARY(fmod, std::fmod(a, b))
METAL_EMU_FLOAT_BINARY(fmin, (metal_emu::require_numbers("fmin", a, b), std::fmin(a, b)))
METAL_EMU_FLOAT_BINARY(fmax, (metal_emu::require_numbers("fmax", a, b), std::fmax(a, b)))
METAL_EMU_FLOAT_BINARY(fdim, std::fdim(a, b))
METAL_EMU_FLOAT_BINARY(copysign, std::copysign(a, b))
METAL_EMU_FLOAT_BINARY(step, b < a ? 0.0f : 1.0f)
#undef METAL_EMU_FLOAT_BINARY

template <metal_emu::floating T>
inline T fma(T a, T b, T c) {
  return static_cast<T>(
      std::fma(static_cast<float>(a), static_cast<float>(b), static_cast<float>(c)));
}
template <metal_emu::floating T, int N>
inline vec<T, N> fma(const vec<T, N>& a, const vec<T, N>& b, const vec<T, N>& c) {
  return metal_emu::map([](T x, T y, T z) { return fma(x, y, z); }, a, b, c);
}

template <metal_emu::floating T>
inline T mix(T x, T y, T a) {
  const float fx = static_cast<float>(x);
  return static_cast<T>(fx + (static_cast<float>(y) - fx) * static_cast<float>(a));
}
template <metal_emu::floating T, int N>
inline vec<T, N> mix(const vec<T, N>& x, const vec<T, N>& y, const vec<T, N>& a) {
  return metal_emu::map([](T p, T q, T r) { return mix(p, q, r); }, x, y, a);
}

#define METAL_EMU_FLOAT_PREDICATE(NAME, EXPR)                                               \
  template <metal_emu::floating T>                                                         \
  inline bool NAME(T x) {                                                                  \
    const float v = static_cast<float>(x);                                                 \
    return EXPR;                                                                           \
  }                                                                                        \
  template <metal_emu::floating T, int N>                                                  \
  inline vec<bool, N> NAME(const vec<T, N>& x) {                                           \
    return metal_emu::map([](T e) { return NAME(e); }, x);                                 \
  }
METAL_EMU_FLOAT_PREDICATE(isnan, std::isnan(v))
METAL_EMU_FLOAT_PREDICATE(isinf, std::isinf(v))
METAL_EMU_FLOAT_PREDICATE(isfinite, std::isfinite(v))
METAL_EMU_FLOAT_PREDICATE(signbit, std::signbit(v))
#undef METAL_EMU_FLOAT_PREDICATE

// min, max and clamp stop the kernel on a NaN operand (see the top of this file).
template <metal_emu::scalar T>
constexpr T min(T a, T b) {
  if constexpr (metal_emu::is_floating<T>) metal_emu::require_numbers("min", a, b);
  return b < a ? b : a;
}
template <metal_emu::scalar T>
constexpr T max(T a, T b) {
  if constexpr (metal_emu::is_floating<T>) metal_emu::require_numbers("max", a, b);
  return a < b ? b : a;
}
template <metal_emu::scalar T>
constexpr T clamp(T x, T lo, T hi) {
  if constexpr (metal_emu::is_floating<T>) metal_emu::require_numbers("clamp", x, lo, hi);
  return min(max(x, lo), hi);
}
template <metal_emu::scalar T>
constexpr T abs(T x) {
  if constexpr (metal_emu::is_floating<T>) return fabs(x);
  else if constexpr (std::is_unsigned_v<T>) return x;
  else return x < 0 ? T(-x) : x;
}

template <class T, int N>
constexpr vec<T, N> min(const vec<T, N>& a, const vec<T, N>& b) {
  return metal_emu::map([](T x, T y) { return min(x, y); }, a, b);
}
template <class T, int N>
constexpr vec<T, N> max(const vec<T, N>& a, const vec<T, N>& b) {
  return metal_emu::map([](T x, T y) { return max(x, y); }, a, b);
}
template <class T, int N>
constexpr vec<T, N> min(const vec<T, N>& a, T b) { return min(a, vec<T, N>(b)); }
template <class T, int N>
constexpr vec<T, N> max(const vec<T, N>& a, T b) { return max(a, vec<T, N>(b)); }
template <class T, int N>
constexpr vec<T, N> clamp(const vec<T, N>& x, const vec<T, N>& lo, const vec<T, N>& hi) {
  return min(max(x, lo), hi);
}
template <class T, int N>
constexpr vec<T, N> clamp(const vec<T, N>& x, T lo, T hi) {
  return min(max(x, vec<T, N>(lo)), vec<T, N>(hi));
}
template <class T, int N>
constexpr vec<T, N> abs(const vec<T, N>& x) {
  return metal_emu::map([](T e) { return abs(e); }, x);
}

// select(a, b, c) is c ? b : a, per component for vectors.
template <metal_emu::scalar T>
constexpr T select(T a, T b, bool c) {
  return c ? b : a;
}
template <class T, int N>
constexpr vec<T, N> select(const vec<T, N>& a, const vec<T, N>& b, const vec<bool, N>& c) {
  vec<T, N> r;
  for (int i = 0; i < N; ++i) r[i] = c[i] ? b[i] : a[i];
  return r;
}
template <class T, int N>
constexpr vec<T, N> select(const vec<T, N>& a, const vec<T, N>& b, bool c) {
  return c ? b : a;
}

constexpr bool all(bool x) { return x; }
constexpr bool any(bool x) { return x; }
template <int N>
constexpr bool all(const vec<bool, N>& x) {
  for (int i = 0; i < N; ++i)
    if (!x[i]) return false;
  return true;
}
template <int N>
constexpr bool any(const vec<bool, N>& x) {
  for (int i = 0; i < N; ++i)
    if (x[i]) return true;
  return false;
}

template <class T, int N>
constexpr T dot(const vec<T, N>& a, const vec<T, N>& b) {
  metal_emu::compute_t<T> sum = 0;
  for (int i = 0; i < N; ++i) sum += metal_emu::compute_t<T>(a[i]) * metal_emu::compute_t<T>(b[i]);
  return static_cast<T>(sum);
}
template <metal_emu::floating T, int N>
inline T length(const vec<T, N>& a) {
  return sqrt(dot(a, a));
}

template <class T>
  requires std::is_integral_v<T>
constexpr T popcount(T x) {
  return static_cast<T>(std::popcount(static_cast<std::make_unsigned_t<T>>(x)));
}
template <class T>
  requires std::is_integral_v<T>
constexpr T clz(T x) {
  return static_cast<T>(std::countl_zero(static_cast<std::make_unsigned_t<T>>(x)));
}
template <class T>
  requires std::is_integral_v<T>
constexpr T ctz(T x) {
  return static_cast<T>(std::countr_zero(static_cast<std::make_unsigned_t<T>>(x)));
}
template <class T, int N>
  requires std::is_integral_v<T>
constexpr vec<T, N> popcount(const vec<T, N>& x) {
  return metal_emu::map([](T e) { return popcount(e); }, x);
}

}  // namespace precise

using namespace precise;
namespace fast {
using namespace precise;
}

}  // namespace metal
