// Expert prefill, first projection: tokens grouped by expert, a tiled MXFP4 GEMM on SIMD-group
// matrices of the checkpoint's interleaved gate/linear rows, their bias and the clamped SwiGLU
// in the epilogue.
//
// Inputs: x [T, H]; sorted_pairs [P] (P = T · top_k (token, slot) pairs sorted by expert, each
// as token · top_k + slot); row_offsets, tile_offsets [E + 1] (see moe_grouped.h);
// gate_up_blocks [E, 2I, H/8] uint32; gate_up_scales [E, 2I, H/32] uint8; gate_up_bias [E, 2I];
// scalars hidden_size (H), intermediate_size (I), top_k, experts (E), swiglu_limit, swiglu_alpha.
// Template: OutT (x's dtype); StageT, the type x is staged in (x's own when 16-bit, else float).
// Output: activations [P, I] of OutT, row r for sorted pair r.
//
// Grid (128 · 2I / 64, tiles, 1), threadgroups of 128 threads (I is a multiple of 32, so 64-row
// tiles divide 2I); `tiles` is an upper bound, ceil(P / 32) + min(E, P): threadgroups past the
// last tile return at once.
// Threadgroup (c, g): tile g = up to 32 pairs of one expert × checkpoint rows 64c .. 64c+63,
//   the gate/linear rows of activation columns 32c .. 32c+31. Thread layout: moe_grouped.h. A
//   lane's two accumulator elements are the adjacent checkpoint rows 2j, 2j+1 of one pair: a
//   whole (gate, linear) pair, so the SwiGLU needs no exchange between lanes.
// Reads: each expert's weight rows once per tile of its pairs (once per 32 tokens routed to it),
//   each pair's token row of x once per threadgroup column c.
threadgroup StageT input_tile[GROUPED_TILE_ROWS * GROUPED_TILE_STRIDE];
threadgroup half weight_tile[GROUPED_TILE_OUTPUTS * GROUPED_TILE_STRIDE];
threadgroup float scale_tile[GROUPED_TILE_OUTPUTS];

const uint thread_index = thread_index_in_threadgroup;
ExpertTile tile;
if (!find_expert_tile(threadgroup_position_in_grid.y, tile_offsets, row_offsets, experts, tile)) {
  return;
}
const uint hidden = hidden_size;
const uint columns = intermediate_size;
const uint rows_per_expert = 2 * columns;
const uint first_output = threadgroup_position_in_grid.x * GROUPED_TILE_OUTPUTS;
const uint simdgroup = simdgroup_index_in_threadgroup;
const ushort2 position = fragment_position(ushort(thread_index_in_simdgroup));

const uint staged_row = thread_index / 4;
const bool has_input = staged_row < tile.rows;
const uint token = has_input ? sorted_pairs[tile.first_row + staged_row] / top_k : 0;
const ulong weight_row = ulong(tile.expert) * rows_per_expert + first_output + thread_index / 2;
simdgroup_float8x8 acc[GROUPED_FRAGMENTS];
grouped_mxfp4_tile_matmul(
    x + ulong(token) * hidden, has_input,
    gate_up_blocks + weight_row * (hidden / 8), gate_up_scales + weight_row * (hidden / 32), true,
    hidden, GroupedTile<StageT>{input_tile, weight_tile, scale_tile}, thread_index, simdgroup,
    position, 8 * simdgroup < tile.rows, acc);

const uint row = 8 * simdgroup + position.y;
if (row < tile.rows) {
  device OutT* out_row = activations + ulong(tile.first_row + row) * columns;
  const uint first_bias = tile.expert * rows_per_expert;
  for (uint f = 0; f < GROUPED_FRAGMENTS; ++f) {
    const uint gate_row = first_output + 8 * f + position.x;
    const float2 values = acc[f].thread_elements();
    const float gate = values.x + float(gate_up_bias[first_bias + gate_row]);
    const float linear = values.y + float(gate_up_bias[first_bias + gate_row + 1]);
    out_row[gate_row / 2] = static_cast<OutT>(clamped_swiglu(gate, linear, swiglu_limit, swiglu_alpha));
  }
}
