// Stores to part of a vector in threadgroup or device memory, as Metal may compile them.
//
// The MSL specification lets a store to one component of a vector read the whole vector, modify
// the component and write the vector back, and leaves concurrent stores to different components
// of one vector undefined. Metal does compile `v.x = a` into a whole-vector store (MoltenVK
// issue 942; gpuweb issue 2112 shows `tile[i / 4][i % 4] = ...` giving wrong results on Metal),
// and a SIMD-group runs it in lockstep: every lane loads, then every lane stores, so of four
// lanes writing the four components of one float4, one lane's value survives.
//
// The translator gives every vector type in the threadgroup and device address spaces the type
// shared_vec<T, N>, a union of a vec<T, N> with proxies for its subscript, components (.x .. .w,
// .r .. .a) and swizzles, whose stores are read-modify-writes: the lane loads the whole vector,
// waits until the lanes of its SIMD-group storing at the same place have loaded too, then writes
// the whole vector back. Whole-vector stores stay whole; reads are plain. A shared vector reads
// as a vec<T, N> wherever one is expected (the math functions take it through forwarders at the
// end of this file). Thread-private vectors are untouched: no other lane can see them.
#pragma once

namespace metal_emu {

inline void no_exchange(Lane* const*) {}

// The lanes of a SIMD-group that store at the same code address meet here, between the load
// and the store, as they do in lockstep.
inline void meet_between_load_and_store(const void* code) {
  Lane& lane = lane_for("a store to part of a threadgroup or device vector");
  const auto address = reinterpret_cast<uintptr_t>(code);
  lane.site = Site{"<partial vector store>", uint32_t(address >> 32), uint32_t(address)};
  lane.collective = &no_exchange;
  lane.state = LaneState::at_collective;
  current_worker->yield();
}

// Writes `values` to components `indices` of *target as a whole-vector read-modify-write.
// Not inlined: its return address tells the store sites apart.
template <class T, int N, int M>
__attribute__((noinline)) void store_components(metal::vec<T, N>* target, const int (&indices)[M],
                                                const T (&values)[M]) {
  const void* site = __builtin_return_address(0);
  metal::vec<T, N> whole = *target;
  meet_between_load_and_store(site);
  for (int k = 0; k < M; ++k) whole.elements[indices[k]] = values[k];
  *target = whole;
}

// v[i] of a shared vector: reads the component, stores it as a read-modify-write.
template <class T, int N>
struct component_ref {
  metal::vec<T, N>* target;
  int index;

  [[gnu::always_inline]] T vector() const { return target->elements[index]; }
  [[gnu::always_inline]] operator T() const { return vector(); }
  [[gnu::always_inline]] component_ref& operator=(T value) {
    store_components<T, N, 1>(target, {index}, {value});
    return *this;
  }
  [[gnu::always_inline]] component_ref& operator=(const component_ref& other) {
    return *this = other.vector();
  }
#define METAL_EMU_COMPOUND(OP)                                     \
  template <class U>                                               \
  [[gnu::always_inline]] component_ref& operator OP##=(U value) { \
    return *this = static_cast<T>(vector() OP value);              \
  }
  METAL_EMU_COMPOUND(+)
  METAL_EMU_COMPOUND(-)
  METAL_EMU_COMPOUND(*)
  METAL_EMU_COMPOUND(/)
  METAL_EMU_COMPOUND(%)
  METAL_EMU_COMPOUND(&)
  METAL_EMU_COMPOUND(|)
  METAL_EMU_COMPOUND(^)
  METAL_EMU_COMPOUND(<<)
  METAL_EMU_COMPOUND(>>)
#undef METAL_EMU_COMPOUND
};

// A component or swizzle member of a shared vector (.x, .zw, ...): an empty member of the
// shared vector's union, so `this` is the vector's address.
template <class T, int N, int... I>
struct shared_part {
  static constexpr int size = sizeof...(I);
  using value_type = std::conditional_t<size == 1, T, metal::vec<T, size>>;

  [[gnu::always_inline]] const metal::vec<T, N>& whole() const {
    return *reinterpret_cast<const metal::vec<T, N>*>(this);
  }
  [[gnu::always_inline]] value_type vector() const { return value_type(whole().elements[I]...); }
  [[gnu::always_inline]] operator value_type() const { return vector(); }

  [[gnu::always_inline]] shared_part& operator=(const value_type& value) {
    if constexpr (size == 1) {
      store_components<T, N, 1>(target(), {I...}, {value});
    } else {
      int k = 0;
      const T values[size] = {value[(void(I), k++)]...};  // braced lists evaluate in order
      store_components<T, N, size>(target(), {I...}, values);
    }
    return *this;
  }
  [[gnu::always_inline]] shared_part& operator=(const shared_part& other) {
    return *this = other.vector();
  }

 private:
  metal::vec<T, N>* target() { return reinterpret_cast<metal::vec<T, N>*>(this); }
};

#define METAL_EMU_PART(NAME, ...) shared_part<T, N, __VA_ARGS__> NAME;
// The members of shared_vec<T, N>: the names vec<T, N> has (see metal_types.h).
#define METAL_EMU_SHARED_PARTS_2                                        \
  METAL_EMU_PART(x, 0) METAL_EMU_PART(y, 1) METAL_EMU_PART(r, 0)        \
  METAL_EMU_PART(g, 1) METAL_EMU_PART(xx, 0, 0) METAL_EMU_PART(xy, 0, 1) \
  METAL_EMU_PART(yx, 1, 0) METAL_EMU_PART(yy, 1, 1)
#define METAL_EMU_ROW3(A, a) \
  METAL_EMU_PART(A##x, a, 0) METAL_EMU_PART(A##y, a, 1) METAL_EMU_PART(A##z, a, 2)
#define METAL_EMU_SHARED_PARTS_3                                                        \
  METAL_EMU_PART(x, 0) METAL_EMU_PART(y, 1) METAL_EMU_PART(z, 2) METAL_EMU_PART(r, 0)   \
  METAL_EMU_PART(g, 1) METAL_EMU_PART(b, 2) METAL_EMU_ROW3(x, 0) METAL_EMU_ROW3(y, 1)   \
  METAL_EMU_ROW3(z, 2) METAL_EMU_PART(xyz, 0, 1, 2)
#define METAL_EMU_ROW4(A, a)                                                         \
  METAL_EMU_PART(A##x, a, 0) METAL_EMU_PART(A##y, a, 1) METAL_EMU_PART(A##z, a, 2)   \
  METAL_EMU_PART(A##w, a, 3)
#define METAL_EMU_SHARED_PARTS_4                                                          \
  METAL_EMU_PART(x, 0) METAL_EMU_PART(y, 1) METAL_EMU_PART(z, 2) METAL_EMU_PART(w, 3)     \
  METAL_EMU_PART(r, 0) METAL_EMU_PART(g, 1) METAL_EMU_PART(b, 2) METAL_EMU_PART(a, 3)     \
  METAL_EMU_ROW4(x, 0) METAL_EMU_ROW4(y, 1) METAL_EMU_ROW4(z, 2) METAL_EMU_ROW4(w, 3)     \
  METAL_EMU_PART(xyz, 0, 1, 2) METAL_EMU_PART(yzw, 1, 2, 3) METAL_EMU_PART(xyzw, 0, 1, 2, 3)

template <class T, int N>
struct shared_vec;

#define METAL_EMU_SHARED_VEC(COUNT)                                                         \
  template <class T>                                                                       \
  struct shared_vec<T, COUNT> {                                                            \
    static constexpr int N = COUNT;                                                        \
    using vector_type = metal::vec<T, N>;                                                  \
    union {                                                                                \
      vector_type whole;                                                                   \
      METAL_EMU_SHARED_PARTS_##COUNT                                                       \
    };                                                                                     \
                                                                                           \
    shared_vec() = default;                                                                \
    shared_vec(const shared_vec& other) : whole(other.whole) {}                            \
    /* Whole-vector stores are whole. */                                                   \
    shared_vec& operator=(const vector_type& value) {                                      \
      whole = value;                                                                       \
      return *this;                                                                        \
    }                                                                                      \
    shared_vec& operator=(const shared_vec& value) { return *this = value.whole; }         \
    template <class B>                                                                     \
      requires requires(vector_type v, B b) { vector_type(v + b); }                        \
    shared_vec& operator+=(const B& b) { return *this = vector_type(whole + b); }          \
    template <class B>                                                                     \
      requires requires(vector_type v, B b) { vector_type(v - b); }                        \
    shared_vec& operator-=(const B& b) { return *this = vector_type(whole - b); }          \
    template <class B>                                                                     \
      requires requires(vector_type v, B b) { vector_type(v * b); }                        \
    shared_vec& operator*=(const B& b) { return *this = vector_type(whole * b); }          \
    template <class B>                                                                     \
      requires requires(vector_type v, B b) { vector_type(v / b); }                        \
    shared_vec& operator/=(const B& b) { return *this = vector_type(whole / b); }          \
                                                                                           \
    [[gnu::always_inline]] component_ref<T, N> operator[](int i) { return {&whole, i}; }   \
    [[gnu::always_inline]] const T& operator[](int i) const { return whole.elements[i]; } \
    [[gnu::always_inline]] vector_type vector() const { return whole; }                    \
    [[gnu::always_inline]] operator vector_type() const { return whole; }                  \
  };
METAL_EMU_SHARED_VEC(2)
METAL_EMU_SHARED_VEC(3)
METAL_EMU_SHARED_VEC(4)
#undef METAL_EMU_SHARED_VEC
#undef METAL_EMU_SHARED_PARTS_2
#undef METAL_EMU_SHARED_PARTS_3
#undef METAL_EMU_SHARED_PARTS_4
#undef METAL_EMU_ROW3
#undef METAL_EMU_ROW4
#undef METAL_EMU_PART

// Shared vectors and their parts are vector operands (metal_types.h), read as vectors.
template <class T, int N>
struct operand<shared_vec<T, N>> {
  using element = T;
  static constexpr int size = N;
  static constexpr T get(const shared_vec<T, N>& a, int i) { return a.whole.elements[i]; }
};
template <class T, int N, int... I>
struct operand<shared_part<T, N, I...>> {
  using element = T;
  static constexpr int size = sizeof...(I);
  static constexpr T get(const shared_part<T, N, I...>& a, int i) {
    constexpr int idx[] = {I...};
    return a.whole().elements[idx[i]];
  }
};
template <class T, int N>
struct components<shared_vec<T, N>> {
  static constexpr int count = N;
};
template <class T, int N, int... I>
struct components<shared_part<T, N, I...>> {
  static constexpr int count = sizeof...(I);
};

template <class A>
inline constexpr bool is_shared_view = false;
template <class T, int N>
inline constexpr bool is_shared_view<shared_vec<T, N>> = true;
template <class T, int N, int... I>
inline constexpr bool is_shared_view<shared_part<T, N, I...>> = true;
template <class T, int N>
inline constexpr bool is_shared_view<component_ref<T, N>> = true;

// A shared vector, part or component as the plain value it holds; anything else as it is.
template <class A>
[[gnu::always_inline]] inline decltype(auto) plain(const A& a) {
  if constexpr (is_shared_view<A>) return a.vector();
  else return (a);
}

#define METAL_EMU_SHARED_ALIASES(T, NAME)    \
  using shared_##NAME##2 = shared_vec<T, 2>; \
  using shared_##NAME##3 = shared_vec<T, 3>; \
  using shared_##NAME##4 = shared_vec<T, 4>;
METAL_EMU_SHARED_ALIASES(float, float)
METAL_EMU_SHARED_ALIASES(metal::half, half)
METAL_EMU_SHARED_ALIASES(metal::bfloat, bfloat)
METAL_EMU_SHARED_ALIASES(bool, bool)
METAL_EMU_SHARED_ALIASES(int8_t, char)
METAL_EMU_SHARED_ALIASES(uint8_t, uchar)
METAL_EMU_SHARED_ALIASES(int16_t, short)
METAL_EMU_SHARED_ALIASES(uint16_t, ushort)
METAL_EMU_SHARED_ALIASES(int32_t, int)
METAL_EMU_SHARED_ALIASES(uint32_t, uint)
METAL_EMU_SHARED_ALIASES(int64_t, long)
METAL_EMU_SHARED_ALIASES(uint64_t, ulong)
#undef METAL_EMU_SHARED_ALIASES

static_assert(sizeof(shared_vec<float, 4>) == sizeof(metal::vec<float, 4>) &&
                  sizeof(shared_vec<metal::half, 3>) == sizeof(metal::vec<metal::half, 3>) &&
                  alignof(shared_vec<float, 2>) == alignof(metal::vec<float, 2>),
              "metal emulator: a shared vector must have its vector's layout");

}  // namespace metal_emu

namespace metal {
namespace precise {

// The math functions (metal_math.h) take shared vectors, parts and components as the values
// they hold: template arguments are not deduced through conversions.
#define METAL_EMU_FORWARD(NAME)                                                             \
  template <class... A>                                                                     \
    requires(metal_emu::is_shared_view<A> || ...)                                           \
  inline auto NAME(const A&... a)->decltype(NAME(metal_emu::plain(a)...)) {                 \
    return NAME(metal_emu::plain(a)...);                                                    \
  }
METAL_EMU_FORWARD(exp) METAL_EMU_FORWARD(exp2) METAL_EMU_FORWARD(exp10) METAL_EMU_FORWARD(log)
METAL_EMU_FORWARD(log2) METAL_EMU_FORWARD(log10) METAL_EMU_FORWARD(log1p) METAL_EMU_FORWARD(sqrt)
METAL_EMU_FORWARD(rsqrt) METAL_EMU_FORWARD(sin) METAL_EMU_FORWARD(cos) METAL_EMU_FORWARD(tan)
METAL_EMU_FORWARD(asin) METAL_EMU_FORWARD(acos) METAL_EMU_FORWARD(atan) METAL_EMU_FORWARD(sinh)
METAL_EMU_FORWARD(cosh) METAL_EMU_FORWARD(tanh) METAL_EMU_FORWARD(asinh) METAL_EMU_FORWARD(acosh)
METAL_EMU_FORWARD(atanh) METAL_EMU_FORWARD(floor) METAL_EMU_FORWARD(ceil) METAL_EMU_FORWARD(round)
METAL_EMU_FORWARD(rint) METAL_EMU_FORWARD(trunc) METAL_EMU_FORWARD(fabs) METAL_EMU_FORWARD(fract)
METAL_EMU_FORWARD(saturate) METAL_EMU_FORWARD(sign) METAL_EMU_FORWARD(pow) METAL_EMU_FORWARD(powr)
METAL_EMU_FORWARD(atan2) METAL_EMU_FORWARD(fmod) METAL_EMU_FORWARD(fmin) METAL_EMU_FORWARD(fmax)
METAL_EMU_FORWARD(fdim) METAL_EMU_FORWARD(copysign) METAL_EMU_FORWARD(step) METAL_EMU_FORWARD(fma)
METAL_EMU_FORWARD(mix) METAL_EMU_FORWARD(signbit) METAL_EMU_FORWARD(min) METAL_EMU_FORWARD(max)
METAL_EMU_FORWARD(clamp) METAL_EMU_FORWARD(abs) METAL_EMU_FORWARD(select) METAL_EMU_FORWARD(all)
METAL_EMU_FORWARD(any) METAL_EMU_FORWARD(dot) METAL_EMU_FORWARD(length) METAL_EMU_FORWARD(popcount)
METAL_EMU_FORWARD(clz) METAL_EMU_FORWARD(ctz)
#undef METAL_EMU_FORWARD

}  // namespace precise
}  // namespace metal
