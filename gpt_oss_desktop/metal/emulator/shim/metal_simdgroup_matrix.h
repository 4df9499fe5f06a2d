// SIMD-group matrices (MSL §6.7): simdgroup_matrix<T, 8, 8> for float, half and bfloat, with
// simdgroup_load, simdgroup_store, simdgroup_multiply and simdgroup_multiply_accumulate.
//
// A matrix is distributed over the 32 lanes of a SIMD-group: each lane holds two elements, its
// `thread_elements()`. The MSL specification leaves the distribution unspecified; the emulator
// uses the one Apple GPUs are known to have (and MLX's steel kernels rely on): lane l holds row
// (q & 4) + (l / 2) % 4, columns (q & 2) · 2 + (l % 2) · 2 and +1, where q = l / 4.
//
// Loads, stores and products are SIMD-group collectives: every one of the 32 lanes must reach
// the same call with the same arguments. A call reached by fewer lanes (divergence, a returned
// lane, a SIMD-group of fewer than 32 threads) or with arguments that differ between lanes is
// reported as an error, because Metal leaves it undefined. The product gathers the three whole
// matrices from the lanes, computes each element as fma(a[i][k], b[k][j], ·) for k = 0..7 in
// float starting from c[i][j], and rounds once to d's type.
#pragma once

namespace metal_emu {

inline constexpr uint32_t kMatrixSide = 8;

// The row and the first of the two columns that lane `lane` of a SIMD-group holds.
inline void fragment_position(uint32_t lane, uint32_t& row, uint32_t& column) {
  const uint32_t quad = lane / 4;
  row = (quad & 4) + (lane / 2) % 4;
  column = (quad & 2) * 2 + (lane % 2) * 2;
}

inline uint32_t simd_lane_of_current_thread(const char* function) {
  return lane_for(function).index % kSimdWidth;
}

// Fails unless all 32 lanes of the SIMD-group take part in the operation at `name`.
inline void require_whole_simdgroup(Lane* const* lanes, const char* name) {
  uint32_t present = 0;
  const Lane* some = nullptr;
  for (uint32_t l = 0; l < kSimdWidth; ++l) {
    if (lanes[l] != nullptr) {
      ++present;
      some = lanes[l];
    }
  }
  if (present == kSimdWidth) return;
  fail(std::string(name) + " at " + some->site.describe() + " is reached by " +
       std::to_string(present) + " of the 32 lanes of the SIMD-group of thread " +
       std::to_string(some->index) +
       ": SIMD-group matrix operations need every lane of a full SIMD-group (divergence is "
       "undefined behaviour on Metal)");
}

// What each lane passes to a load or store: its two elements and the (uniform) addressing.
template <class T>
struct MatrixTransfer {
  metal::vec<T, 2>* elements;
  T* memory;
  uint64_t elements_per_row;
  uint64_t origin_x;  // column of memory where the matrix starts
  uint64_t origin_y;  // row of memory where the matrix starts
  bool transpose;

  bool same_addressing(const MatrixTransfer& other) const {
    return memory == other.memory && elements_per_row == other.elements_per_row &&
           origin_x == other.origin_x && origin_y == other.origin_y &&
           transpose == other.transpose;
  }
  // Element (row, column) of the matrix: memory[(y + row) · stride + x + column], or with
  // transpose_matrix memory[(y + column) · stride + x + row].
  T& at(uint32_t row, uint32_t column) const {
    const uint64_t r = transpose ? column : row, c = transpose ? row : column;
    return memory[(origin_y + r) * elements_per_row + origin_x + c];
  }
};

template <class T>
void require_uniform_addressing(Lane* const* lanes, const char* name) {
  const auto& first = input_of<MatrixTransfer<T>>(lanes[0]);
  for (uint32_t l = 1; l < kSimdWidth; ++l) {
    if (!input_of<MatrixTransfer<T>>(lanes[l]).same_addressing(first))
      fail(std::string(name) + " at " + lanes[0]->site.describe() +
           ": lanes " + std::to_string(lanes[0]->index) + " and " +
           std::to_string(lanes[l]->index) +
           " pass different addresses, strides, origins or transpose flags (a SIMD-group "
           "matrix is loaded and stored as one)");
  }
}

template <class T, bool Store>
void transfer(Lane* const* lanes) {
  const char* name = Store ? "simdgroup_store" : "simdgroup_load";
  require_whole_simdgroup(lanes, name);
  require_uniform_addressing<T>(lanes, name);
  for (uint32_t l = 0; l < kSimdWidth; ++l) {
    const auto& access = input_of<MatrixTransfer<T>>(lanes[l]);
    uint32_t row, column;
    fragment_position(l, row, column);
    for (uint32_t e = 0; e < 2; ++e) {
      if constexpr (Store) {
        access.at(row, column + e) = (*access.elements)[e];
      } else {
        (*access.elements)[e] = access.at(row, column + e);
      }
    }
  }
}

// What each lane passes to a product: its elements of d, a, b and c (c may be null).
template <class D, class A, class B, class C>
struct MatrixProduct {
  metal::vec<D, 2>* d;
  const metal::vec<A, 2>* a;
  const metal::vec<B, 2>* b;
  const metal::vec<C, 2>* c;
};

template <class T>
void gather(Lane* const* lanes, const metal::vec<T, 2>* const* parts, float (&whole)[8][8]) {
  for (uint32_t l = 0; l < kSimdWidth; ++l) {
    uint32_t row, column;
    fragment_position(l, row, column);
    whole[row][column] = float((*parts[l])[0]);
    whole[row][column + 1] = float((*parts[l])[1]);
  }
}

template <class D, class A, class B, class C>
void multiply_accumulate(Lane* const* lanes) {
  require_whole_simdgroup(lanes, "simdgroup_multiply_accumulate");
  using Args = MatrixProduct<D, A, B, C>;
  const metal::vec<A, 2>* a_parts[kSimdWidth];
  const metal::vec<B, 2>* b_parts[kSimdWidth];
  const metal::vec<C, 2>* c_parts[kSimdWidth];
  for (uint32_t l = 0; l < kSimdWidth; ++l) {
    const Args& args = input_of<Args>(lanes[l]);
    a_parts[l] = args.a;
    b_parts[l] = args.b;
    c_parts[l] = args.c;
  }
  float a[8][8], b[8][8], c[8][8] = {};
  gather<A>(lanes, a_parts, a);
  gather<B>(lanes, b_parts, b);
  if (c_parts[0] != nullptr) gather<C>(lanes, c_parts, c);
  float d[8][8];
  for (uint32_t i = 0; i < kMatrixSide; ++i) {
    for (uint32_t j = 0; j < kMatrixSide; ++j) {
      float sum = c[i][j];
      for (uint32_t k = 0; k < kMatrixSide; ++k) sum = std::fma(a[i][k], b[k][j], sum);
      d[i][j] = sum;
    }
  }
  // Every input has been read: d may be the same matrix as a, b or c.
  for (uint32_t l = 0; l < kSimdWidth; ++l) {
    uint32_t row, column;
    fragment_position(l, row, column);
    auto& out = *input_of<Args>(lanes[l]).d;
    out = metal::vec<D, 2>(D(d[row][column]), D(d[row][column + 1]));
  }
}

}  // namespace metal_emu

namespace metal {

template <class T, int Cols, int Rows>
struct simdgroup_matrix {
  static_assert(Cols == 8 && Rows == 8, "Metal's SIMD-group matrices are 8x8");
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, half> || std::is_same_v<T, bfloat>,
                "SIMD-group matrices hold float, half or bfloat");

  // Uninitialised on Metal: poisoned (0xFF bytes, NaN) here.
  simdgroup_matrix() { std::memset(static_cast<void*>(&elements), 0xff, sizeof(elements)); }
  // The diagonal matrix with `value` on its diagonal.
  explicit simdgroup_matrix(T value) {
    uint32_t row, column;
    metal_emu::fragment_position(metal_emu::simd_lane_of_current_thread("simdgroup_matrix"), row,
                                 column);
    elements = vec<T, 2>(row == column ? value : T(0), row == column + 1 ? value : T(0));
  }

  vec<T, 2>& thread_elements() { return elements; }
  const vec<T, 2>& thread_elements() const { return elements; }

  vec<T, 2> elements;
};

template <class T, int Cols = 8, int Rows = 8>
simdgroup_matrix<T, Cols, Rows> make_filled_simdgroup_matrix(T value) {
  simdgroup_matrix<T, Cols, Rows> m;
  m.elements = vec<T, 2>(value, value);
  return m;
}

using simdgroup_float8x8 = simdgroup_matrix<float, 8, 8>;
using simdgroup_half8x8 = simdgroup_matrix<half, 8, 8>;
using simdgroup_bfloat8x8 = simdgroup_matrix<bfloat, 8, 8>;

#define METAL_EMU_HERE std::source_location where = std::source_location::current()

template <class T, int Cols, int Rows>
void simdgroup_load(simdgroup_matrix<T, Cols, Rows>& d, const T* source,
                    uint64_t elements_per_row = Cols, vec<uint64_t, 2> matrix_origin = 0,
                    bool transpose_matrix = false, METAL_EMU_HERE) {
  const metal_emu::MatrixTransfer<T> access{&d.elements, const_cast<T*>(source),
                                            elements_per_row, matrix_origin.x, matrix_origin.y,
                                            transpose_matrix};
  metal_emu::collective<bool>(access, 0, &metal_emu::transfer<T, false>, where,
                              "simdgroup_load");
}

template <class T, int Cols, int Rows>
void simdgroup_store(simdgroup_matrix<T, Cols, Rows> a, T* destination,
                     uint64_t elements_per_row = Cols, vec<uint64_t, 2> matrix_origin = 0,
                     bool transpose_matrix = false, METAL_EMU_HERE) {
  const metal_emu::MatrixTransfer<T> access{&a.elements, destination, elements_per_row,
                                            matrix_origin.x, matrix_origin.y, transpose_matrix};
  metal_emu::collective<bool>(access, 0, &metal_emu::transfer<T, true>, where,
                              "simdgroup_store");
}

// d = a · b + c
template <class D, class A, class B, class C>
void simdgroup_multiply_accumulate(simdgroup_matrix<D, 8, 8>& d, const simdgroup_matrix<A, 8, 8>& a,
                                   const simdgroup_matrix<B, 8, 8>& b,
                                   const simdgroup_matrix<C, 8, 8>& c, METAL_EMU_HERE) {
  const metal_emu::MatrixProduct<D, A, B, C> args{&d.elements, &a.elements, &b.elements,
                                                  &c.elements};
  metal_emu::collective<bool>(args, 0, &metal_emu::multiply_accumulate<D, A, B, C>, where,
                              "simdgroup_multiply_accumulate");
}

// d = a · b
template <class D, class A, class B>
void simdgroup_multiply(simdgroup_matrix<D, 8, 8>& d, const simdgroup_matrix<A, 8, 8>& a,
                        const simdgroup_matrix<B, 8, 8>& b, METAL_EMU_HERE) {
  const metal_emu::MatrixProduct<D, A, B, D> args{&d.elements, &a.elements, &b.elements, nullptr};
  metal_emu::collective<bool>(args, 0, &metal_emu::multiply_accumulate<D, A, B, D>, where,
                              "simdgroup_multiply");
}

#undef METAL_EMU_HERE

}  // namespace metal
