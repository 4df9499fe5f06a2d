// Expert prefill, second projection: tokens grouped by expert, a tiled MXFP4 GEMM of the down
// rows with the SwiGLU activations, the bias and the routing weight in the epilogue.
//
// Inputs: activations [P, I] (rows in expert-sorted order, from
// moe_grouped_gate_up_swiglu); sorted_pairs [P]; row_offsets, tile_offsets [E + 1];
// routing_weights [P] (pair order: token · top_k + slot); down_blocks [E, H, I/8] uint32;
// down_scales [E, H, I/32] uint8; down_bias [E, H]; scalars hidden_size (H),
// intermediate_size (I), experts (E). Output: pair_out [P, H] float in pair order, each row
// routing_weight · (W_down · a + b_down); the caller sums each token's top_k rows.
//
// Grid (128 · ceil(H / 64), tiles, 1), threadgroups of 128 threads; `tiles` is an upper bound:
// threadgroups past the last tile return at once.
// Threadgroup (c, g): tile g = up to 32 pairs of one expert × output rows 64c .. 64c+63.
//   Thread layout: moe_grouped.h.
// Reads: each expert's down rows once per tile of its pairs, each activation row once per
//   threadgroup column c.
threadgroup float4 input_tile[GROUPED_STEP * GROUPED_TILE_ROWS / 4];
threadgroup float4 weight_tile[GROUPED_STEP * GROUPED_TILE_OUTPUTS / 4];

const uint thread_index = thread_index_in_threadgroup;
ExpertTile tile;
if (!find_expert_tile(threadgroup_position_in_grid.y, tile_offsets, row_offsets, experts, tile)) {
  return;
}
const uint hidden = hidden_size;
const uint columns = intermediate_size;
const uint first_output = threadgroup_position_in_grid.x * GROUPED_TILE_OUTPUTS;

const uint staged_row = thread_index / 4;
const uint staged_output = first_output + thread_index / 2;
const uint weight_row = tile.expert * hidden + staged_output;
float4 acc[4];
grouped_mxfp4_tile_matmul(
    activations, (tile.first_row + staged_row) * columns, staged_row < tile.rows,
    down_blocks, down_scales, weight_row * (columns / 8), weight_row * (columns / 32),
    staged_output < hidden,
    columns, input_tile, weight_tile, thread_index, acc);

const uint first_row = 4 * (thread_index / 16);
const uint first_column = first_output + 4 * (thread_index % 16);
for (uint i = 0; i < 4; ++i) {
  if (first_row + i >= tile.rows) {
    break;
  }
  const uint pair = sorted_pairs[tile.first_row + first_row + i];
  const float weight = float(routing_weights[pair]);
  for (uint j = 0; j < 4; ++j) {
    const uint row = first_column + j;
    if (row >= hidden) {
      break;
    }
    const float bias = float(down_bias[tile.expert * hidden + row]);
    pair_out[pair * hidden + row] = weight * (acc[i][j] + bias);
  }
}
