// The lanes' shares of an 8x8 SIMD-group matrix, for kernels that fill or read matrices
// element by element (converting a 16-bit tile to float fragments, an epilogue per element,
// row reductions).
//
// The MSL specification leaves the distribution unspecified; Apple GPUs give lane l the two
// elements (row, column) and (row, column + 1) below, with q = l / 4. MLX's steel GEMM and
// attention kernels rely on the same distribution (BaseMMAFrag::get_coord). The 4 lanes that
// share a row differ in lane bits 0 and 3, so a row reduces with simd_shuffle_xor by 1 and 8.

// (column, row) of this lane's first element.
METAL_FUNC ushort2 fragment_position(ushort lane) {
  const ushort quad = lane / 4;
  return ushort2((quad & 2) * 2 + (lane % 2) * 2, (quad & 4) + (lane / 2) % 4);
}

// Loads a float fragment whose element (r, c) is source[r · row_stride + c · column_stride],
// from 16-bit or float memory (no collective: each lane reads its own two elements).
template <typename Source>
METAL_FUNC void load_fragment(thread simdgroup_float8x8& fragment, Source source, uint row_stride,
                              uint column_stride, ushort2 position) {
  const uint first = position.y * row_stride + position.x * column_stride;
  fragment.thread_elements() = float2(float(source[first]), float(source[first + column_stride]));
}

// The sum and the maximum over the 4 lanes that hold one row of a fragment.
METAL_FUNC float fragment_row_sum(float value) {
  value += simd_shuffle_xor(value, ushort(1));
  return value + simd_shuffle_xor(value, ushort(8));
}

METAL_FUNC float fragment_row_max(float value) {
  value = max(value, simd_shuffle_xor(value, ushort(1)));
  return max(value, simd_shuffle_xor(value, ushort(8)));
}
