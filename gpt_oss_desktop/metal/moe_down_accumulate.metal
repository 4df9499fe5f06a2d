// Expert decode, second projection: for each token, Σ over its experts of
// routing_weight · (MXFP4 GEMV of the down rows with the expert's SwiGLU activations + bias),
// written straight to the output: no per-expert outputs and no separate accumulation pass.
//
// Inputs: activations [T, top_k, I] (from moe_gate_up_swiglu); expert_ids [T, top_k];
// routing_weights [T, top_k]; down_blocks [E, H, I/8] uint32; down_scales [E, H, I/32] uint8;
// down_bias [E, H]; scalars hidden_size (H), intermediate_size (I), top_k.
// Output: out [T, H] of type OutT (template).
//
// Grid (256 · H / 16, T, 1), threadgroups of 256 threads = 8 SIMD-groups (H and I are multiples
// of 32, MXFP4's group, so no tile is partial).
// Threadgroup (c, t): output rows 16c .. 16c+15 of token t. SIMD-group s: rows 16c + 2s and
//   16c + 2s + 1, for every expert of the token.
// Lane l: words l, l + 32, ... of both rows (128 contiguous bytes of a row per SIMD-group step).
// For each expert slot the slot's activations are staged as float4s (thread i: values 4i .. 4i+3)
//   in chunks of 1024 values in threadgroup memory, read once per threadgroup. Each lane accumulates
//   Σ_slot weight · partial dot for both rows; one simd_sum per row at the end, and lane 0 adds
//   Σ_slot weight · bias and writes the row.
// Reads per token: each needed weight byte exactly once, top_k · H · (I/2 + I/32) bytes, plus
//   top_k · I activations per threadgroup (from cache after the first).
constexpr uint SIMDGROUPS = 8;
constexpr uint ROWS_PER_SIMDGROUP = 2;
constexpr uint ROWS_PER_THREADGROUP = SIMDGROUPS * ROWS_PER_SIMDGROUP;
constexpr uint CHUNK_WORDS = 128;  // 1024 activations staged at a time

threadgroup float4 activation_chunk[2 * CHUNK_WORDS];

const uint token = threadgroup_position_in_grid.y;
const uint thread_index = thread_index_in_threadgroup;
const uint lane = thread_index_in_simdgroup;
const uint first_row = threadgroup_position_in_grid.x * ROWS_PER_THREADGROUP +
                       simdgroup_index_in_threadgroup * ROWS_PER_SIMDGROUP;
const uint hidden = hidden_size;
const uint columns = intermediate_size;
const uint slots = top_k;
const uint words_per_row = columns / 8;
const uint scales_per_row = columns / 32;

float weighted[ROWS_PER_SIMDGROUP] = {};
float weighted_bias[ROWS_PER_SIMDGROUP] = {};
for (uint slot = 0; slot < slots; ++slot) {
  const uint pair = token * slots + slot;
  const uint expert = expert_ids[pair];
  const float weight = float(routing_weights[pair]);
  float partial[ROWS_PER_SIMDGROUP] = {};
  for (uint chunk_start = 0; chunk_start < words_per_row; chunk_start += CHUNK_WORDS) {
    const uint chunk_words = min(CHUNK_WORDS, words_per_row - chunk_start);
    // Whole float4s: lanes storing different components of one threadgroup vector would race.
    for (uint i = thread_index; i < 2 * chunk_words; i += 32 * SIMDGROUPS) {
      const uint at = pair * columns + 8 * chunk_start + 4 * i;
      activation_chunk[i] = float4(float(activations[at]), float(activations[at + 1]),
                                   float(activations[at + 2]), float(activations[at + 3]));
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint r = 0; r < ROWS_PER_SIMDGROUP; ++r) {
      const uint weight_row = expert * hidden + first_row + r;
      for (uint word = lane; word < chunk_words; word += 32) {
        const uint column_word = chunk_start + word;
        const float scale = mxfp4_scale(down_scales[weight_row * scales_per_row + column_word / 4]);
        const uint packed = down_blocks[weight_row * words_per_row + column_word];
        partial[r] += scale * mxfp4_word_dot(packed, activation_chunk[2 * word],
                                             activation_chunk[2 * word + 1]);
      }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  for (uint r = 0; r < ROWS_PER_SIMDGROUP; ++r) {
    weighted[r] += weight * partial[r];
    if (lane == 0) {
      weighted_bias[r] += weight * float(down_bias[expert * hidden + first_row + r]);
    }
  }
}

for (uint r = 0; r < ROWS_PER_SIMDGROUP; ++r) {
  const float total = simd_sum(weighted[r]);
  if (lane == 0) {
    out[token * hidden + first_row + r] = static_cast<OutT>(total + weighted_bias[r]);
  }
}
