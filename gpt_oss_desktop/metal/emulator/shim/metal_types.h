// Metal's scalar and vector types on the host: half, bfloat, vec<T, N> with swizzles, as_type.
// Included by metal_shim.h after the standard headers and before the address-space macros.
#pragma once

namespace metal {

// ---------------------------------------------------------------------------------------------
// Scalars

using half = _Float16;

// bfloat: 16 bits, float's exponent; every operation is done in float and rounded to nearest
// even, like Metal's bfloat and MLX's bfloat16_t.
struct bfloat {
  uint16_t bits;

  bfloat() = default;
  constexpr bfloat(float value) : bits(round_to_bfloat(value)) {}
  constexpr bfloat(double value) : bfloat(static_cast<float>(value)) {}
  constexpr bfloat(half value) : bfloat(static_cast<float>(value)) {}
  template <class I>
    requires std::is_integral_v<I>
  constexpr bfloat(I value) : bfloat(static_cast<float>(value)) {}

  constexpr operator float() const { return std::bit_cast<float>(uint32_t(bits) << 16); }

  static constexpr bfloat from_bits(uint16_t b) {
    bfloat r{};
    r.bits = b;
    return r;
  }

 private:
  static constexpr uint16_t round_to_bfloat(float value) {
    uint32_t u = std::bit_cast<uint32_t>(value);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
  }
};

}  // namespace metal

namespace metal_emu {

template <class T>
inline constexpr bool is_half_or_bfloat =
    std::is_same_v<T, metal::half> || std::is_same_v<T, metal::bfloat>;
template <class T>
inline constexpr bool is_floating = std::is_floating_point_v<T> || is_half_or_bfloat<T>;
template <class T>
inline constexpr bool is_scalar = std::is_arithmetic_v<T> || is_half_or_bfloat<T>;

// The type an operation on T is computed in: float for half and bfloat (each result is then
// rounded back), T itself otherwise.
template <class T>
using compute_t = std::conditional_t<is_half_or_bfloat<T>, float, T>;

}  // namespace metal_emu

namespace metal {

// Mixed bfloat arithmetic, as MLX's bfloat16_t defines it: with bfloat or an integer the result
// is bfloat; with float, half or double it is float.
#define METAL_EMU_BFLOAT_BINARY(OP)                                                          \
  constexpr bfloat operator OP(bfloat a, bfloat b) { return bfloat(float(a) OP float(b)); } \
  constexpr float operator OP(bfloat a, float b) { return float(a) OP b; }                   \
  constexpr float operator OP(float a, bfloat b) { return a OP float(b); }                   \
  constexpr float operator OP(bfloat a, double b) { return float(a) OP float(b); }           \
  constexpr float operator OP(double a, bfloat b) { return float(a) OP float(b); }           \
  constexpr float operator OP(bfloat a, half b) { return float(a) OP float(b); }             \
  constexpr float operator OP(half a, bfloat b) { return float(a) OP float(b); }             \
  template <class I>                                                                         \
    requires std::is_integral_v<I>                                                           \
  constexpr bfloat operator OP(bfloat a, I b) {                                              \
    return bfloat(float(a) OP float(b));                                                     \
  }                                                                                          \
  template <class I>                                                                         \
    requires std::is_integral_v<I>                                                           \
  constexpr bfloat operator OP(I a, bfloat b) {                                              \
    return bfloat(float(a) OP float(b));                                                     \
  }                                                                                          \
  template <class U>                                                                         \
    requires metal_emu::is_scalar<U>                                                         \
  constexpr bfloat& operator OP##=(bfloat & a, U b) {                                        \
    return a = bfloat(float(a) OP float(b));                                                 \
  }
METAL_EMU_BFLOAT_BINARY(+)
METAL_EMU_BFLOAT_BINARY(-)
METAL_EMU_BFLOAT_BINARY(*)
METAL_EMU_BFLOAT_BINARY(/)
#undef METAL_EMU_BFLOAT_BINARY

#define METAL_EMU_BFLOAT_COMPARE(OP)                                                      \
  constexpr bool operator OP(bfloat a, bfloat b) { return float(a) OP float(b); }        \
  template <class U>                                                                      \
    requires(metal_emu::is_scalar<U> && !std::is_same_v<U, bfloat>)                       \
  constexpr bool operator OP(bfloat a, U b) {                                             \
    return float(a) OP float(b);                                                          \
  }                                                                                       \
  template <class U>                                                                      \
    requires(metal_emu::is_scalar<U> && !std::is_same_v<U, bfloat>)                       \
  constexpr bool operator OP(U a, bfloat b) {                                             \
    return float(a) OP float(b);                                                          \
  }
METAL_EMU_BFLOAT_COMPARE(==)
METAL_EMU_BFLOAT_COMPARE(!=)
METAL_EMU_BFLOAT_COMPARE(<)
METAL_EMU_BFLOAT_COMPARE(>)
METAL_EMU_BFLOAT_COMPARE(<=)
METAL_EMU_BFLOAT_COMPARE(>=)
#undef METAL_EMU_BFLOAT_COMPARE

constexpr bfloat operator-(bfloat a) { return bfloat::from_bits(uint16_t(a.bits ^ 0x8000u)); }
constexpr bfloat operator+(bfloat a) { return a; }
constexpr bfloat& operator++(bfloat& a) { return a += 1; }
constexpr bfloat& operator--(bfloat& a) { return a -= 1; }

// ---------------------------------------------------------------------------------------------
// Vectors: vec<T, N> for N = 2, 3, 4. A 3-vector occupies 4 elements, as in Metal.

template <class T, int N>
struct vec;

}  // namespace metal

namespace metal_emu {

template <int N>
inline constexpr int storage_size = N == 3 ? 4 : N;

// A swizzle such as v.xy or v.zw: a view of the parent's storage, readable as vec<T, M> and
// assignable when its indices are distinct.
template <class T, int N, int... I>
struct swizzle {
  static constexpr int size = sizeof...(I);
  T elements[storage_size<N>];

  operator metal::vec<T, size>() const { return metal::vec<T, size>(elements[I]...); }

  swizzle& operator=(const metal::vec<T, size>& value) {
    static_assert(distinct(), "metal emulator: assignment to a swizzle that repeats a component");
    int k = 0;
    ((elements[I] = value[k++]), ...);
    return *this;
  }
  swizzle& operator=(const swizzle& other) { return *this = metal::vec<T, size>(other); }

 private:
  static constexpr bool distinct() {
    constexpr int idx[] = {I...};
    for (int a = 0; a < size; ++a)
      for (int b = a + 1; b < size; ++b)
        if (idx[a] == idx[b]) return false;
    return true;
  }
};

// The scalar x/y/z/w (and r/g/b/a) members and the swizzles of each vector length. Swizzles
// provided: every two-component swizzle, the contiguous three-component ones and xyzw.
template <class T, int N>
struct vec_storage;

#define METAL_EMU_SW2(N, A, B, a, b) swizzle<T, N, a, b> A##B;

template <class T>
struct vec_storage<T, 2> {
  union {
    T elements[2];
    struct {
      T x, y;
    };
    struct {
      T r, g;
    };
    METAL_EMU_SW2(2, x, x, 0, 0)
    METAL_EMU_SW2(2, x, y, 0, 1)
    METAL_EMU_SW2(2, y, x, 1, 0)
    METAL_EMU_SW2(2, y, y, 1, 1)
  };
};

#define METAL_EMU_SW2_ROW(N, A, a)                                                               \
  METAL_EMU_SW2(N, A, x, a, 0) METAL_EMU_SW2(N, A, y, a, 1) METAL_EMU_SW2(N, A, z, a, 2)

template <class T>
struct vec_storage<T, 3> {
  union {
    T elements[4];
    struct {
      T x, y, z;
    };
    struct {
      T r, g, b;
    };
    METAL_EMU_SW2_ROW(3, x, 0)
    METAL_EMU_SW2_ROW(3, y, 1)
    METAL_EMU_SW2_ROW(3, z, 2)
    swizzle<T, 3, 0, 1, 2> xyz;
  };
};
#undef METAL_EMU_SW2_ROW

#define METAL_EMU_SW2_ROW(N, A, a)                                                               \
  METAL_EMU_SW2(N, A, x, a, 0)                                                                   \
  METAL_EMU_SW2(N, A, y, a, 1) METAL_EMU_SW2(N, A, z, a, 2) METAL_EMU_SW2(N, A, w, a, 3)

template <class T>
struct vec_storage<T, 4> {
  union {
    T elements[4];
    struct {
      T x, y, z, w;
    };
    struct {
      T r, g, b, a;
    };
    METAL_EMU_SW2_ROW(4, x, 0)
    METAL_EMU_SW2_ROW(4, y, 1)
    METAL_EMU_SW2_ROW(4, z, 2)
    METAL_EMU_SW2_ROW(4, w, 3)
    swizzle<T, 4, 0, 1, 2> xyz;
    swizzle<T, 4, 1, 2, 3> yzw;
    swizzle<T, 4, 0, 1, 2, 3> xyzw;
  };
};
#undef METAL_EMU_SW2_ROW
#undef METAL_EMU_SW2

// How many components a constructor argument contributes.
template <class A>
struct components {
  static constexpr int count = 1;
};
template <class T, int N>
struct components<metal::vec<T, N>> {
  static constexpr int count = N;
};
template <class T, int N, int... I>
struct components<swizzle<T, N, I...>> {
  static constexpr int count = sizeof...(I);
};

}  // namespace metal_emu

namespace metal {

template <class T, int N>
struct alignas(sizeof(T) * metal_emu::storage_size<N>) vec : metal_emu::vec_storage<T, N> {
  static_assert(N >= 2 && N <= 4, "metal emulator: vectors have 2, 3 or 4 components");
  using value_type = T;
  static constexpr int size = N;

  vec() = default;

  // A scalar of any arithmetic type is converted and broadcast, as in Metal.
  template <class S>
    requires metal_emu::is_scalar<S>
  constexpr vec(S scalar) {
    for (int i = 0; i < N; ++i) this->elements[i] = static_cast<T>(scalar);
  }

  // float4(a, b, c, d), float4(float2, float2), float4(float3, w), uint2{x, y}, ...
  template <class... A>
    requires(sizeof...(A) >= 2 && (metal_emu::components<std::remove_cvref_t<A>>::count + ...) == N)
  constexpr vec(const A&... parts) {
    int i = 0;
    (append(i, parts), ...);
  }

  // Conversion between element types is explicit, as in Metal: float4(h), static_cast<half4>(f).
  template <class U>
    requires(!std::is_same_v<U, T>)
  explicit constexpr vec(const vec<U, N>& other) {
    for (int i = 0; i < N; ++i) this->elements[i] = static_cast<T>(other.elements[i]);
  }

  constexpr vec(const vec& other) = default;
  constexpr vec& operator=(const vec& other) {
    for (int i = 0; i < metal_emu::storage_size<N>; ++i) this->elements[i] = other.elements[i];
    return *this;
  }

  constexpr T& operator[](int i) { return this->elements[i]; }
  constexpr const T& operator[](int i) const { return this->elements[i]; }

  template <class B>
  vec& operator+=(const B& b) { return *this = vec(*this + b); }
  template <class B>
  vec& operator-=(const B& b) { return *this = vec(*this - b); }
  template <class B>
  vec& operator*=(const B& b) { return *this = vec(*this * b); }
  template <class B>
  vec& operator/=(const B& b) { return *this = vec(*this / b); }
  template <class B>
  vec& operator%=(const B& b) { return *this = vec(*this % b); }
  template <class B>
  vec& operator&=(const B& b) { return *this = vec(*this & b); }
  template <class B>
  vec& operator|=(const B& b) { return *this = vec(*this | b); }
  template <class B>
  vec& operator^=(const B& b) { return *this = vec(*this ^ b); }
  template <class B>
  vec& operator<<=(const B& b) { return *this = vec(*this << b); }
  template <class B>
  vec& operator>>=(const B& b) { return *this = vec(*this >> b); }

 private:
  template <class A>
  constexpr void append(int& i, const A& part) {
    if constexpr (metal_emu::components<A>::count == 1 && metal_emu::is_scalar<A>) {
      this->elements[i++] = static_cast<T>(part);
    } else if constexpr (requires { part.vector(); }) {  // parts of shared vectors
      const auto v = part.vector();
      if constexpr (metal_emu::components<A>::count == 1) {
        this->elements[i++] = static_cast<T>(v);
      } else {
        for (int k = 0; k < metal_emu::components<A>::count; ++k)
          this->elements[i++] = static_cast<T>(v[k]);
      }
    } else {
      const auto v = as_vec(part);
      for (int k = 0; k < metal_emu::components<A>::count; ++k)
        this->elements[i++] = static_cast<T>(v[k]);
    }
  }
  template <class U, int M>
  static constexpr vec<U, M> as_vec(const vec<U, M>& v) { return v; }
  template <class U, int M, int... I>
  static constexpr vec<U, sizeof...(I)> as_vec(const metal_emu::swizzle<U, M, I...>& s) {
    return s;
  }
};

#define METAL_EMU_VECTOR_TYPES(T, NAME) \
  using NAME##2 = vec<T, 2>;            \
  using NAME##3 = vec<T, 3>;            \
  using NAME##4 = vec<T, 4>;
METAL_EMU_VECTOR_TYPES(float, float)
METAL_EMU_VECTOR_TYPES(half, half)
METAL_EMU_VECTOR_TYPES(bfloat, bfloat)
METAL_EMU_VECTOR_TYPES(bool, bool)
METAL_EMU_VECTOR_TYPES(int8_t, char)
METAL_EMU_VECTOR_TYPES(uint8_t, uchar)
METAL_EMU_VECTOR_TYPES(int16_t, short)
METAL_EMU_VECTOR_TYPES(uint16_t, ushort)
METAL_EMU_VECTOR_TYPES(int32_t, int)
METAL_EMU_VECTOR_TYPES(uint32_t, uint)
METAL_EMU_VECTOR_TYPES(int64_t, long)
METAL_EMU_VECTOR_TYPES(uint64_t, ulong)
#undef METAL_EMU_VECTOR_TYPES

}  // namespace metal

namespace metal_emu {

// Operands of vector operators: a vector, a swizzle (read as a vector) or a scalar (broadcast).
template <class A>
struct operand {
  using element = A;
  static constexpr int size = 1;
  static constexpr element get(const A& a, int) { return a; }
};
template <class T, int N>
struct operand<metal::vec<T, N>> {
  using element = T;
  static constexpr int size = N;
  static constexpr T get(const metal::vec<T, N>& a, int i) { return a[i]; }
};
template <class T, int N, int... I>
struct operand<swizzle<T, N, I...>> {
  using element = T;
  static constexpr int size = sizeof...(I);
  static constexpr T get(const swizzle<T, N, I...>& a, int i) {
    constexpr int idx[] = {I...};
    return a.elements[idx[i]];
  }
};

template <class A, class B>
inline constexpr bool vector_operands =
    (operand<A>::size > 1 || operand<B>::size > 1) &&
    (operand<A>::size == 1 || operand<B>::size == 1 || operand<A>::size == operand<B>::size) &&
    (operand<A>::size > 1 || is_scalar<A>) && (operand<B>::size > 1 || is_scalar<B>);

template <class A, class B>
inline constexpr int result_size = operand<A>::size > 1 ? operand<A>::size : operand<B>::size;

// The element type of vector OP scalar is the vector's element type; two vectors must agree.
template <class A, class B>
using result_element = std::conditional_t<operand<A>::size == 1, typename operand<B>::element,
                                          typename operand<A>::element>;

template <class A, class B>
constexpr void check_same_elements() {
  if constexpr (operand<A>::size > 1 && operand<B>::size > 1)
    static_assert(std::is_same_v<typename operand<A>::element, typename operand<B>::element>,
                  "metal emulator: vector operands must have the same element type");
}

}  // namespace metal_emu

namespace metal {

#define METAL_EMU_VECTOR_BINARY(OP, RESULT_ELEMENT)                                         \
  template <class A, class B>                                                              \
    requires metal_emu::vector_operands<A, B>                                              \
  constexpr auto operator OP(const A& a, const B& b) {                                     \
    metal_emu::check_same_elements<A, B>();                                                \
    using E = metal_emu::result_element<A, B>;                                             \
    constexpr int N = metal_emu::result_size<A, B>;                                        \
    vec<RESULT_ELEMENT, N> r;                                                              \
    for (int i = 0; i < N; ++i)                                                            \
      r[i] = static_cast<RESULT_ELEMENT>(E(metal_emu::operand<A>::get(a, i))               \
                                             OP E(metal_emu::operand<B>::get(b, i)));      \
    return r;                                                                              \
  }
METAL_EMU_VECTOR_BINARY(+, E)
METAL_EMU_VECTOR_BINARY(-, E)
METAL_EMU_VECTOR_BINARY(*, E)
METAL_EMU_VECTOR_BINARY(/, E)
METAL_EMU_VECTOR_BINARY(%, E)
METAL_EMU_VECTOR_BINARY(&, E)
METAL_EMU_VECTOR_BINARY(|, E)
METAL_EMU_VECTOR_BINARY(^, E)
METAL_EMU_VECTOR_BINARY(<<, E)
METAL_EMU_VECTOR_BINARY(>>, E)
METAL_EMU_VECTOR_BINARY(==, bool)
METAL_EMU_VECTOR_BINARY(!=, bool)
METAL_EMU_VECTOR_BINARY(<, bool)
METAL_EMU_VECTOR_BINARY(>, bool)
METAL_EMU_VECTOR_BINARY(<=, bool)
METAL_EMU_VECTOR_BINARY(>=, bool)
METAL_EMU_VECTOR_BINARY(&&, bool)
METAL_EMU_VECTOR_BINARY(||, bool)
#undef METAL_EMU_VECTOR_BINARY

#define METAL_EMU_VECTOR_UNARY(OP, RESULT_ELEMENT)                                   \
  template <class T, int N>                                                          \
  constexpr vec<RESULT_ELEMENT, N> operator OP(const vec<T, N>& a) {                 \
    vec<RESULT_ELEMENT, N> r;                                                        \
    for (int i = 0; i < N; ++i) r[i] = static_cast<RESULT_ELEMENT>(OP a[i]);        \
    return r;                                                                        \
  }
METAL_EMU_VECTOR_UNARY(-, T)
METAL_EMU_VECTOR_UNARY(+, T)
METAL_EMU_VECTOR_UNARY(~, T)
METAL_EMU_VECTOR_UNARY(!, bool)
#undef METAL_EMU_VECTOR_UNARY

// ---------------------------------------------------------------------------------------------
// Reinterpretation and limits

template <class To, class From>
inline To as_type(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "metal emulator: as_type needs types of equal size");
  To to;
  __builtin_memcpy(static_cast<void*>(&to), static_cast<const void*>(&from), sizeof(To));
  return to;
}

template <class T>
struct numeric_limits : std::numeric_limits<T> {};

template <>
struct numeric_limits<half> {
  static constexpr bool is_specialized = true;
  static constexpr bool has_infinity = true;
  static constexpr half min() { return std::bit_cast<half>(uint16_t(0x0400)); }
  static constexpr half max() { return std::bit_cast<half>(uint16_t(0x7bff)); }
  static constexpr half lowest() { return std::bit_cast<half>(uint16_t(0xfbff)); }
  static constexpr half epsilon() { return std::bit_cast<half>(uint16_t(0x1400)); }
  static constexpr half infinity() { return std::bit_cast<half>(uint16_t(0x7c00)); }
  static constexpr half quiet_NaN() { return std::bit_cast<half>(uint16_t(0x7e00)); }
  static constexpr half denorm_min() { return std::bit_cast<half>(uint16_t(0x0001)); }
};

template <>
struct numeric_limits<bfloat> {
  static constexpr bool is_specialized = true;
  static constexpr bool has_infinity = true;
  static constexpr bfloat min() { return bfloat::from_bits(0x0080); }
  static constexpr bfloat max() { return bfloat::from_bits(0x7f7f); }
  static constexpr bfloat lowest() { return bfloat::from_bits(0xff7f); }
  static constexpr bfloat epsilon() { return bfloat::from_bits(0x3c00); }
  static constexpr bfloat infinity() { return bfloat::from_bits(0x7f80); }
  static constexpr bfloat quiet_NaN() { return bfloat::from_bits(0x7fc0); }
  static constexpr bfloat denorm_min() { return bfloat::from_bits(0x0001); }
};

}  // namespace metal
