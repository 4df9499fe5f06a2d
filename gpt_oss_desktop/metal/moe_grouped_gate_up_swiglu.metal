// Expert prefill, first projection: tokens grouped by expert, a tiled MXFP4 GEMM of the
// checkpoint's interleaved gate/linear rows, their bias and the clamped SwiGLU in the epilogue.
//
// Inputs: x [T, H]; sorted_pairs [P] (P = T · top_k (token, slot) pairs sorted by expert, each
// as token · top_k + slot); row_offsets, tile_offsets [E + 1] (see moe_grouped.h);
// gate_up_blocks [E, 2I, H/8] uint32; gate_up_scales [E, 2I, H/32] uint8; gate_up_bias [E, 2I];
// scalars hidden_size (H), intermediate_size (I), top_k, experts (E), swiglu_limit, swiglu_alpha.
// Template: OutT. Output: activations [P, I] of OutT (x's dtype), row r for sorted pair r.
//
// Grid (128 · 2I / 64, tiles, 1), threadgroups of 128 threads (I is a multiple of 32, so 64-row
// tiles divide 2I); `tiles` is an upper bound, ceil(P / 32) + min(E, P): threadgroups past the
// last tile return at once.
// Threadgroup (c, g): tile g = up to 32 pairs of one expert × checkpoint rows 64c .. 64c+63,
//   the gate/linear rows of activation columns 32c .. 32c+31. Thread layout: moe_grouped.h; a
//   thread's 4 consecutive weight rows are 2 whole (gate, linear) pairs, so the SwiGLU needs no
//   exchange between threads.
// Reads: each expert's weight rows once per tile of its pairs (once per 32 tokens routed to it),
//   each pair's token row of x once per threadgroup column c.
threadgroup float4 input_tile[GROUPED_STEP * GROUPED_TILE_ROWS / 4];
threadgroup float4 weight_tile[GROUPED_STEP * GROUPED_TILE_OUTPUTS / 4];

const uint thread_index = thread_index_in_threadgroup;
ExpertTile tile;
if (!find_expert_tile(threadgroup_position_in_grid.y, tile_offsets, row_offsets, experts, tile)) {
  return;
}
const uint hidden = hidden_size;
const uint columns = intermediate_size;
const uint rows_per_expert = 2 * columns;
const uint first_output = threadgroup_position_in_grid.x * GROUPED_TILE_OUTPUTS;

const uint staged_row = thread_index / 4;
const bool has_input = staged_row < tile.rows;
const uint token = has_input ? sorted_pairs[tile.first_row + staged_row] / top_k : 0;
const uint staged_output = first_output + thread_index / 2;
const uint weight_row = tile.expert * rows_per_expert + staged_output;
float4 acc[4];
grouped_mxfp4_tile_matmul(
    x, token * hidden, has_input,
    gate_up_blocks, gate_up_scales, weight_row * (hidden / 8), weight_row * (hidden / 32), true,
    hidden, input_tile, weight_tile, thread_index, acc);

const uint first_row = 4 * (thread_index / 16);
const uint output = first_output + 4 * (thread_index % 16);
for (uint i = 0; i < 4; ++i) {
  if (first_row + i >= tile.rows) {
    break;
  }
  for (uint pair = 0; pair < 2; ++pair) {
    const uint gate_row = output + 2 * pair;
    const uint bias = tile.expert * rows_per_expert + gate_row;
    const float gate = acc[i][2 * pair] + float(gate_up_bias[bias]);
    const float linear = acc[i][2 * pair + 1] + float(gate_up_bias[bias + 1]);
    activations[(tile.first_row + first_row + i) * columns + gate_row / 2] =
        static_cast<OutT>(clamped_swiglu(gate, linear, swiglu_limit, swiglu_alpha));
  }
}
