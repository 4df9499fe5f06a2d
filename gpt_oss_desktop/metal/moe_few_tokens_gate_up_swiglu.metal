// Expert decode of a few tokens (2 up to the grouped threshold of kernels/moe_cost.py), first
// projection: for each expert that some tokens chose, the MXFP4 GEMV of its interleaved
// gate/linear rows with every one of those tokens, the bias and the clamped SwiGLU. Each weight
// word is read and decoded once and applied to all of the expert's tokens, where the one-token
// kernel would read it once per token.
//
// Inputs: x [T, H]; sorted_pairs [P] (the P = T · top_k pairs, each token · top_k + slot,
// sorted by expert); row_offsets [E + 1]; active_experts [min(E, P)] (see moe_few_tokens.h);
// gate_up_blocks [E, 2I, H/8] uint32; gate_up_scales [E, 2I, H/32] uint8; gate_up_bias [E, 2I];
// scalars hidden_size (H), intermediate_size (I), top_k, experts (E), swiglu_limit,
// swiglu_alpha. Template: MAX_TOKENS (a power of two, at least the pairs of any one expert when
// each token's experts are distinct; an expert with more is done in several passes), StageT,
// OutT. Output: activations [P, I] of OutT (x's dtype, as the reference rounds them), pair order.
//
// Grid (256 · I / 8, min(E, P), 1), threadgroups of 256 threads = 8 SIMD-groups (I and H are
// multiples of 32, MXFP4's group, so no tile is partial); unused slots return at once.
// Threadgroup (c, a): the expert of slot a and its n tokens, activation columns 8c .. 8c+7.
// SIMD-group s: column 8c + s, i.e. checkpoint rows 16c + 2s (gate) and 16c + 2s + 1 (linear).
// Lane l: words l, l + 32, ... of a chunk of both rows (up to 128 contiguous bytes of a row per
//   SIMD-group step), each decoded once; it keeps 2 · MAX_TOKENS partial sums (row, token).
// Per chunk, all threads stage the chunk of the n tokens' rows of x (moe_few_tokens.h). At the
//   end, per token, one simd_sum per row; lane 0 adds the biases and writes the SwiGLU.
// Reads per call: each weight byte of every chosen expert exactly once, (distinct experts) ·
//   2I · (H/2 + H/32) bytes, and each token row of x once per threadgroup column per expert
//   that chose it (from cache after the first).
constexpr uint CHUNK_WORDS = few_tokens_chunk_words<StageT, MAX_TOKENS>();

threadgroup vec<StageT, 4> x_chunk[MAX_TOKENS * 2 * CHUNK_WORDS];

ExpertPairs pairs;
if (!expert_of_slot(threadgroup_position_in_grid.y, active_experts, row_offsets, experts, pairs)) {
  return;
}
const uint thread_index = thread_index_in_threadgroup;
const uint lane = thread_index_in_simdgroup;
const uint hidden = hidden_size;
const uint columns = intermediate_size;
const uint column = threadgroup_position_in_grid.x * FEW_TOKENS_SIMDGROUPS + simdgroup_index_in_threadgroup;
const uint gate_row = pairs.expert * 2 * columns + 2 * column;
const uint words_per_row = hidden / 8;
const uint scales_per_row = hidden / 32;

for (uint first_token = 0; first_token < pairs.count; first_token += MAX_TOKENS) {
  const uint tokens = min(uint(MAX_TOKENS), pairs.count - first_token);
  float partial[2][MAX_TOKENS] = {};
  for (uint chunk_start = 0; chunk_start < words_per_row; chunk_start += CHUNK_WORDS) {
    const uint chunk_words = min(CHUNK_WORDS, words_per_row - chunk_start);
    stage_token_rows<StageT>(x, sorted_pairs, pairs.first + first_token, tokens, top_k, hidden,
                             chunk_start, chunk_words, x_chunk, thread_index);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint word = lane; word < chunk_words; word += 32) {
      const uint column_word = chunk_start + word;
      for (uint r = 0; r < 2; ++r) {
        const uint row = gate_row + r;
        const float scale = mxfp4_scale(gate_up_scales[row * scales_per_row + column_word / 4]);
        float4 low, high;
        mxfp4_decode_word(gate_up_blocks[row * words_per_row + column_word], low, high);
        for (uint j = 0; j < MAX_TOKENS; ++j) {
          if (j >= tokens) {
            break;
          }
          const uint at = j * 2 * chunk_words + 2 * word;
          partial[r][j] += scale * (dot(low, float4(x_chunk[at])) + dot(high, float4(x_chunk[at + 1])));
        }
      }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  for (uint j = 0; j < MAX_TOKENS; ++j) {
    if (j >= tokens) {
      break;
    }
    const float gate = simd_sum(partial[0][j]);
    const float linear = simd_sum(partial[1][j]);
    if (lane == 0) {
      const uint pair = sorted_pairs[pairs.first + first_token + j];
      activations[pair * columns + column] = static_cast<OutT>(clamped_swiglu(
          gate + float(gate_up_bias[gate_row]), linear + float(gate_up_bias[gate_row + 1]),
          swiglu_limit, swiglu_alpha));
    }
  }
}
