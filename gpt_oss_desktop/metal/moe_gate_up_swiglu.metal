// Expert decode, first projection: for each token and each of its TOP_K experts, the MXFP4 GEMV
// of the checkpoint's interleaved gate/linear rows, their bias and the clamped SwiGLU, in one pass.
//
// Inputs: x [T, H]; expert_ids [T, TOP_K]; gate_up_blocks [E, 2I, H/8] uint32;
// gate_up_scales [E, 2I, H/32] uint8; gate_up_bias [E, 2I]; scalars hidden_size (H),
// intermediate_size (I), swiglu_limit, swiglu_alpha. Template: TOP_K, OutT.
// Output: activations [T, TOP_K, I] of OutT (x's dtype, as the reference rounds them).
//
// Grid (256 · I / 8, T, 1), threadgroups of 256 threads = 8 SIMD-groups (I and H are multiples
// of 32, MXFP4's group, so no tile is partial).
// Threadgroup (c, t): token t, activation columns 8c .. 8c+7 of every one of its TOP_K experts,
//   i.e. checkpoint rows 16c .. 16c+15 (gate rows even, linear rows odd) of each expert.
// Work item (slot, pair): 4 consecutive rows 16c + 4·pair .. +3 of the expert in `slot`, which
//   give columns 8c + 2·pair and +1. SIMD-group s takes items s, s + 8, ... of TOP_K · 4.
// Lane l: words l, l + 32, ... of each of its item's 4 rows, so every step a SIMD-group reads
//   128 contiguous bytes of each row, and one scale byte per 4 words.
// x is read once per threadgroup: staged as float4s (thread i stages values 4i .. 4i+3 of a chunk)
//   in chunks of 1024 values in threadgroup memory and shared by all TOP_K experts and all rows. Each lane keeps 4 partial sums per item; a
//   simd_sum per row, then lane 0 adds the bias and writes the SwiGLU of both pairs.
// Reads per token: H values of x per threadgroup (from cache after the first), and each needed
//   weight byte exactly once: TOP_K · 2I · (H/2 + H/32) bytes of blocks and scales.
constexpr uint SIMDGROUPS = 8;
constexpr uint COLUMNS_PER_THREADGROUP = 8;
constexpr uint PAIRS = COLUMNS_PER_THREADGROUP / 2;  // work items per expert
constexpr uint ITEMS_PER_SIMDGROUP = (TOP_K * PAIRS + SIMDGROUPS - 1) / SIMDGROUPS;
constexpr uint CHUNK_WORDS = 128;  // 1024 values of x staged at a time

threadgroup float4 x_chunk[2 * CHUNK_WORDS];

const uint token = threadgroup_position_in_grid.y;
const uint first_column = threadgroup_position_in_grid.x * COLUMNS_PER_THREADGROUP;
const uint thread_index = thread_index_in_threadgroup;
const uint simdgroup = simdgroup_index_in_threadgroup;
const uint lane = thread_index_in_simdgroup;
const uint hidden = hidden_size;
const uint columns = intermediate_size;
const uint rows_per_expert = 2 * columns;
const uint words_per_row = hidden / 8;
const uint scales_per_row = hidden / 32;

float partial[ITEMS_PER_SIMDGROUP][4] = {};
for (uint chunk_start = 0; chunk_start < words_per_row; chunk_start += CHUNK_WORDS) {
  const uint chunk_words = min(CHUNK_WORDS, words_per_row - chunk_start);
  // Whole float4s: lanes storing different components of one threadgroup vector would race.
  for (uint i = thread_index; i < 2 * chunk_words; i += 32 * SIMDGROUPS) {
    const uint at = token * hidden + 8 * chunk_start + 4 * i;
    x_chunk[i] = float4(float(x[at]), float(x[at + 1]), float(x[at + 2]), float(x[at + 3]));
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);

  for (uint n = 0; n < ITEMS_PER_SIMDGROUP; ++n) {
    const uint item = simdgroup + n * SIMDGROUPS;
    const uint slot = item / PAIRS;
    const uint first_row = 2 * (first_column + 2 * (item % PAIRS));
    if (item >= TOP_K * PAIRS) {
      continue;
    }
    const uint expert = expert_ids[token * TOP_K + slot];
    const uint row_base = expert * rows_per_expert + first_row;
    for (uint word = lane; word < chunk_words; word += 32) {
      const float4 x_low = x_chunk[2 * word];
      const float4 x_high = x_chunk[2 * word + 1];
      const uint column_word = chunk_start + word;
      for (uint r = 0; r < 4; ++r) {
        const uint row = row_base + r;
        const float scale = mxfp4_scale(gate_up_scales[row * scales_per_row + column_word / 4]);
        const uint packed = gate_up_blocks[row * words_per_row + column_word];
        partial[n][r] += scale * mxfp4_word_dot(packed, x_low, x_high);
      }
    }
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
}

for (uint n = 0; n < ITEMS_PER_SIMDGROUP; ++n) {
  const uint item = simdgroup + n * SIMDGROUPS;
  const uint slot = item / PAIRS;
  const uint first_row = 2 * (first_column + 2 * (item % PAIRS));
  if (item >= TOP_K * PAIRS) {
    continue;
  }
  float sums[4];
  for (uint r = 0; r < 4; ++r) {
    sums[r] = simd_sum(partial[n][r]);
  }
  if (lane == 0) {
    const uint expert = expert_ids[token * TOP_K + slot];
    const uint bias_base = expert * rows_per_expert + first_row;
    for (uint pair = 0; pair < 2; ++pair) {
      const float gate = sums[2 * pair] + float(gate_up_bias[bias_base + 2 * pair]);
      const float linear = sums[2 * pair + 1] + float(gate_up_bias[bias_base + 2 * pair + 1]);
      activations[(token * TOP_K + slot) * columns + first_row / 2 + pair] =
          static_cast<OutT>(clamped_swiglu(gate, linear, swiglu_limit, swiglu_alpha));
    }
  }
}
