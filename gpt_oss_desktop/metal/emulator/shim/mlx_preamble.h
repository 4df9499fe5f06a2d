// The part of MLX's Metal preamble (metal::utils(): utils.h, bf16.h, defines.h) that custom
// kernels use: the type names, Limits<T>, the elem_to_loc family and ceildiv. Kernels that need
// more of MLX's helpers should define them in `header=`.
#pragma once

using bfloat16_t = metal::bfloat;
using float16_t = metal::half;
using uint = unsigned int;
using uchar = unsigned char;
using ushort = unsigned short;
using ulong = unsigned long;

#define METAL_FUNC inline

template <typename U>
struct Limits;

#define METAL_EMU_INTEGER_LIMITS(T)                                   \
  template <>                                                         \
  struct Limits<T> {                                                  \
    static constexpr T max = metal::numeric_limits<T>::max();        \
    static constexpr T min = metal::numeric_limits<T>::min();        \
    static constexpr T finite_max = metal::numeric_limits<T>::max(); \
    static constexpr T finite_min = metal::numeric_limits<T>::min(); \
  };
METAL_EMU_INTEGER_LIMITS(uint8_t)
METAL_EMU_INTEGER_LIMITS(uint16_t)
METAL_EMU_INTEGER_LIMITS(uint32_t)
METAL_EMU_INTEGER_LIMITS(uint64_t)
METAL_EMU_INTEGER_LIMITS(int8_t)
METAL_EMU_INTEGER_LIMITS(int16_t)
METAL_EMU_INTEGER_LIMITS(int32_t)
METAL_EMU_INTEGER_LIMITS(int64_t)
#undef METAL_EMU_INTEGER_LIMITS

#define METAL_EMU_FLOAT_LIMITS(T)                                          \
  template <>                                                              \
  struct Limits<T> {                                                       \
    static constexpr T max = metal::numeric_limits<T>::infinity();        \
    static constexpr T min = -metal::numeric_limits<T>::infinity();       \
    static constexpr T finite_max = metal::numeric_limits<T>::max();      \
    static constexpr T finite_min = -metal::numeric_limits<T>::max();     \
  };
METAL_EMU_FLOAT_LIMITS(metal::half)
METAL_EMU_FLOAT_LIMITS(float)
METAL_EMU_FLOAT_LIMITS(metal::bfloat)
#undef METAL_EMU_FLOAT_LIMITS

template <>
struct Limits<bool> {
  static constexpr bool max = true;
  static constexpr bool min = false;
};

template <typename IdxT = int64_t>
inline IdxT elem_to_loc(IdxT elem, const int* shape, const int64_t* strides, int ndim) {
  IdxT loc = 0;
  for (int i = ndim - 1; i >= 0 && elem > 0; --i) {
    loc += (elem % shape[i]) * IdxT(strides[i]);
    elem /= shape[i];
  }
  return loc;
}

template <typename IdxT = int64_t>
inline IdxT elem_to_loc(metal::uint3 elem, const int* shape, const int64_t* strides, int ndim) {
  IdxT loc = elem.x * IdxT(strides[ndim - 1]) + elem.y * IdxT(strides[ndim - 2]);
  for (int d = ndim - 3; d >= 0; --d) {
    loc += (elem.z % shape[d]) * IdxT(strides[d]);
    elem.z /= shape[d];
  }
  return loc;
}

template <typename IdxT = int64_t>
inline IdxT elem_to_loc_1(uint elem, const int64_t& stride) {
  return elem * IdxT(stride);
}

template <typename IdxT = int64_t>
inline IdxT elem_to_loc_2(metal::uint2 elem, const int64_t strides[2]) {
  return elem.x * IdxT(strides[1]) + elem.y * IdxT(strides[0]);
}

template <typename IdxT = int64_t>
inline IdxT elem_to_loc_3(metal::uint3 elem, const int64_t strides[3]) {
  return elem.x * IdxT(strides[2]) + elem.y * IdxT(strides[1]) + elem.z * IdxT(strides[0]);
}

template <typename T, typename U>
inline T ceildiv(T N, U M) {
  return (N + M - 1) / M;
}
