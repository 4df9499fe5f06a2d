// Expert prefill, second projection: tokens grouped by expert, a tiled MXFP4 GEMM on SIMD-group
// matrices of the down rows with the SwiGLU activations, the bias and the routing weight in
// the epilogue.
//
// Inputs: activations [P, I] (rows in expert-sorted order, from moe_grouped_gate_up_swiglu);
// sorted_pairs [P]; row_offsets, tile_offsets [E + 1]; routing_weights [P] (pair order:
// token · top_k + slot); down_blocks [E, H, I/8] uint32; down_scales [E, H, I/32] uint8;
// down_bias [E, H]; scalars hidden_size (H), intermediate_size (I), experts (E). Template:
// StageT, the type the activations are staged in (their own when 16-bit, else float).
// Output: pair_out [P, H] float in pair order, each row routing_weight · (W_down · a + b_down);
// the caller sums each token's top_k rows.
//
// Grid (128 · ceil(H / 64), tiles, 1), threadgroups of 128 threads; `tiles` is an upper bound:
// threadgroups past the last tile return at once.
// Threadgroup (c, g): tile g = up to 32 pairs of one expert × output rows 64c .. 64c+63.
//   Thread layout: moe_grouped.h.
// Reads: each expert's down rows once per tile of its pairs, each activation row once per
//   threadgroup column c.
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
const uint first_output = threadgroup_position_in_grid.x * GROUPED_TILE_OUTPUTS;
const uint simdgroup = simdgroup_index_in_threadgroup;
const ushort2 position = fragment_position(ushort(thread_index_in_simdgroup));

const uint staged_row = thread_index / 4;
const bool has_input = staged_row < tile.rows;
const uint staged_output = first_output + thread_index / 2;
const bool has_weights = staged_output < hidden;
const ulong input_row = has_input ? tile.first_row + staged_row : 0;
const ulong weight_row = ulong(tile.expert) * hidden + (has_weights ? staged_output : 0);
simdgroup_float8x8 acc[GROUPED_FRAGMENTS];
grouped_mxfp4_tile_matmul(
    activations + input_row * columns, has_input,
    down_blocks + weight_row * (columns / 8), down_scales + weight_row * (columns / 32),
    has_weights, columns, GroupedTile<StageT>{input_tile, weight_tile, scale_tile}, thread_index,
    simdgroup, position, 8 * simdgroup < tile.rows, acc);

const uint row = 8 * simdgroup + position.y;
if (row < tile.rows) {
  const uint pair = sorted_pairs[tile.first_row + row];
  const float weight = float(routing_weights[pair]);
  device float* out_row = pair_out + ulong(pair) * hidden;
  const uint first_bias = tile.expert * hidden;
  for (uint f = 0; f < GROUPED_FRAGMENTS; ++f) {
    const float2 values = acc[f].thread_elements();
    for (uint e = 0; e < 2; ++e) {
      const uint output = first_output + 8 * f + position.x + e;
      if (output < hidden) {
        out_row[output] = weight * (values[e] + float(down_bias[first_bias + output]));
      }
    }
  }
}
