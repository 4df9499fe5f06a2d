// Expert decode of a few tokens (2 up to the grouped threshold of kernels/moe_cost.py), second
// projection: for each expert that some tokens chose, the MXFP4 GEMV of its down rows with the
// SwiGLU activations of every one of its (token, expert) pairs, the bias and the routing weight.
// Each weight word is read and decoded once and applied to all of the expert's pairs.
//
// Inputs: activations [P, I] (pair order, from moe_few_tokens_gate_up_swiglu); sorted_pairs [P];
// row_offsets [E + 1]; active_experts [min(E, P)] (see moe_few_tokens.h); routing_weights [P]
// (pair order); down_blocks [E, H, I/8] uint32; down_scales [E, H, I/32] uint8; down_bias
// [E, H]; scalars hidden_size (H), intermediate_size (I), experts (E). Template: MAX_TOKENS (as
// in moe_few_tokens_gate_up_swiglu), StageT. Output: pair_out [P, H] float in pair order, each
// row routing_weight · (W_down · a + b_down); the caller sums each token's top_k rows.
//
// Grid (256 · H / 16, min(E, P), 1), threadgroups of 256 threads = 8 SIMD-groups (H and I are
// multiples of 32); unused slots return at once.
// Threadgroup (c, a): the expert of slot a and its n pairs, output rows 16c .. 16c+15.
// SIMD-group s: rows 16c + 2s and 16c + 2s + 1.
// Lane l: words l, l + 32, ... of a chunk of both rows, each decoded once; it keeps
//   2 · MAX_TOKENS partial sums (row, pair). Per chunk, all threads stage the chunk of the n
//   pairs' activation rows. At the end, per pair, one simd_sum per row; lane 0 adds the bias,
//   multiplies by the routing weight and writes.
// Reads per call: each weight byte of every chosen expert exactly once, (distinct experts) ·
//   H · (I/2 + I/32) bytes, and each activation row once per threadgroup column.
constexpr uint CHUNK_WORDS = few_tokens_chunk_words<StageT, MAX_TOKENS>();

threadgroup vec<StageT, 4> activation_chunk[MAX_TOKENS * 2 * CHUNK_WORDS];

ExpertPairs pairs;
if (!expert_of_slot(threadgroup_position_in_grid.y, active_experts, row_offsets, experts, pairs)) {
  return;
}
const uint thread_index = thread_index_in_threadgroup;
const uint lane = thread_index_in_simdgroup;
const uint hidden = hidden_size;
const uint columns = intermediate_size;
const uint first_row = (threadgroup_position_in_grid.x * FEW_TOKENS_SIMDGROUPS + simdgroup_index_in_threadgroup) * 2;
const uint weight_row = pairs.expert * hidden + first_row;
const uint words_per_row = columns / 8;
const uint scales_per_row = columns / 32;

for (uint first_pair = 0; first_pair < pairs.count; first_pair += MAX_TOKENS) {
  const uint count = min(uint(MAX_TOKENS), pairs.count - first_pair);
  float partial[2][MAX_TOKENS] = {};
  for (uint chunk_start = 0; chunk_start < words_per_row; chunk_start += CHUNK_WORDS) {
    const uint chunk_words = min(CHUNK_WORDS, words_per_row - chunk_start);
    stage_token_rows<StageT>(activations, sorted_pairs, pairs.first + first_pair, count, 1, columns,
                             chunk_start, chunk_words, activation_chunk, thread_index);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint word = lane; word < chunk_words; word += 32) {
      const uint column_word = chunk_start + word;
      for (uint r = 0; r < 2; ++r) {
        const uint row = weight_row + r;
        const float scale = mxfp4_scale(down_scales[row * scales_per_row + column_word / 4]);
        float4 low, high;
        mxfp4_decode_word(down_blocks[row * words_per_row + column_word], low, high);
        for (uint j = 0; j < MAX_TOKENS; ++j) {
          if (j >= count) {
            break;
          }
          const uint at = j * 2 * chunk_words + 2 * word;
          partial[r][j] += scale * (dot(low, float4(activation_chunk[at])) +
                                    dot(high, float4(activation_chunk[at + 1])));
        }
      }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  for (uint j = 0; j < MAX_TOKENS; ++j) {
    if (j >= count) {
      break;
    }
    const float sums[2] = {simd_sum(partial[0][j]), simd_sum(partial[1][j])};
    if (lane == 0) {
      const uint pair = sorted_pairs[pairs.first + first_pair + j];
      const float weight = float(routing_weights[pair]);
      for (uint r = 0; r < 2; ++r) {
        pair_out[pair * hidden + first_row + r] = weight * (sums[r] + float(down_bias[weight_row + r]));
      }
    }
  }
}
