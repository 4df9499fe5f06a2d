// Attention decode: one query position against its visible keys, for all G query heads that
// share a KV head, so each K and V row is read once for the whole GQA group. Sinks start the
// online softmax; a sliding layer reads only the last `window` keys; a long context is split
// across `splits` threadgroups whose partial results attention_decode_combine merges.
//
// Inputs (read through their strides, so cache views need no copy): q [B, Hq, L, D], k and v
// [B, Hkv, S, D] (keys end at the last query), sinks [Hq]; scalars scale, window (0 for full
// attention), splits. Template: OutT, G = Hq / Hkv, D. K and V are read through K_SCALE and
// V_SCALE, defined by the variant prepended to this file: attention_kv16_reads.metal (values as
// stored) or attention_kv8_reads.metal (int8 and a scale per token, plus k_scales, v_scales).
// Output: splits == 1: out [B, Hq, L, D] of OutT, the attention output; splits > 1:
// out [B, Hkv, L, splits, G, D + 2] float, per split and head the unnormalised output, then the
// running max and sum of its online softmax.
//
// Grid (128 · splits, L · Hkv, B), threadgroups of 128 threads = 4 SIMD-groups.
// Threadgroup (s, l · Hkv + h, b): query l of batch b, KV head h, split s: the s-th of `splits`
//   equal runs of the keys that query sees.
// Lanes: a key is handled by LANES_PER_KEY = min(D, 32) lanes, each holding D / LANES_PER_KEY
//   dimensions (d = lane + LANES_PER_KEY · e), so a SIMD-group takes 32 / LANES_PER_KEY keys
//   at a time and reads each K and V row as contiguous lanes. Every lane keeps q, the running
//   max, sum and output of all G heads for its dimensions; each key costs G lane-group sums.
// Merge: max and sums across the key slots of a SIMD-group with shuffles, then across the four
//   SIMD-groups through threadgroup memory.
// Reads per query: G · D values of q; (window or all visible keys) · 2D values of K and V, once
//   per KV head, not once per query head.
constexpr uint SIMDGROUPS = 4;
constexpr uint LANES_PER_KEY = D < 32 ? D : 32;
constexpr uint DIMS_PER_LANE = D / LANES_PER_KEY;
constexpr uint KEYS_PER_SIMDGROUP = 32 / LANES_PER_KEY;
constexpr uint KEYS_PER_STEP = SIMDGROUPS * KEYS_PER_SIMDGROUP;

threadgroup float group_max[SIMDGROUPS][G];
threadgroup float group_sum[SIMDGROUPS][G];
threadgroup float group_out[SIMDGROUPS][G * D];

const uint queries = q_shape[2];
const uint kv_heads = k_shape[1];
const uint keys = k_shape[2];
const uint split = threadgroup_position_in_grid.x;
const uint query = threadgroup_position_in_grid.y / kv_heads;
const uint kv_head = threadgroup_position_in_grid.y % kv_heads;
const uint batch = threadgroup_position_in_grid.z;
const uint simdgroup = simdgroup_index_in_threadgroup;
const uint lane = thread_index_in_simdgroup;
const uint first_dim = lane % LANES_PER_KEY;
const uint key_slot = simdgroup * KEYS_PER_SIMDGROUP + lane / LANES_PER_KEY;

const uint position = query + keys - queries;
const uint first_visible = visible_keys_start(position, window);
const uint visible = visible_keys_end(position) - first_visible;
const uint per_split = (visible + splits - 1) / splits;
const uint split_start = first_visible + min(visible, split * per_split);
const uint split_end = first_visible + min(visible, (split + 1) * per_split);

const int64_t q_row = batch * q_strides[0] + query * q_strides[2];
const int64_t k_rows = batch * k_strides[0] + kv_head * k_strides[1];
const int64_t v_rows = batch * v_strides[0] + kv_head * v_strides[1];

float q_lane[G][DIMS_PER_LANE];
float running_max[G];
float running_sum[G];
float acc[G][DIMS_PER_LANE];
const bool holds_sink = split == 0 && key_slot == 0;
for (uint h = 0; h < G; ++h) {
  const uint head = kv_head * G + h;
  for (uint e = 0; e < DIMS_PER_LANE; ++e) {
    const uint d = first_dim + LANES_PER_KEY * e;
    q_lane[h][e] = scale * float(q[q_row + head * q_strides[1] + d * q_strides[3]]);
    acc[h][e] = 0.0f;
  }
  running_max[h] = holds_sink ? float(sinks[head * sinks_strides[0]]) : NO_SCORE;
  running_sum[h] = holds_sink ? 1.0f : 0.0f;
}

// All lanes of a SIMD-group take the same steps (the lane-group sums need every lane); a lane
// whose key is past the split's end loads nothing and leaves its state alone.
for (uint step = split_start + simdgroup * KEYS_PER_SIMDGROUP; step < split_end;
     step += KEYS_PER_STEP) {
  const uint key = step + lane / LANES_PER_KEY;
  const bool valid = key < split_end;
  float k_lane[DIMS_PER_LANE];
  float v_lane[DIMS_PER_LANE];
  const float k_scale = valid ? K_SCALE(key) : 0.0f;
  const float v_scale = valid ? V_SCALE(key) : 0.0f;
  for (uint e = 0; e < DIMS_PER_LANE; ++e) {
    const uint d = first_dim + LANES_PER_KEY * e;
    k_lane[e] = valid ? float(k[k_rows + key * k_strides[2] + d * k_strides[3]]) * k_scale : 0.0f;
    v_lane[e] = valid ? float(v[v_rows + key * v_strides[2] + d * v_strides[3]]) * v_scale : 0.0f;
  }
  for (uint h = 0; h < G; ++h) {
    float score = 0.0f;
    for (uint e = 0; e < DIMS_PER_LANE; ++e) {
      score += q_lane[h][e] * k_lane[e];
    }
    score = lane_group_sum<LANES_PER_KEY>(score);
    if (valid) {
      const float new_max = max(running_max[h], score);
      const float rescale = softmax_rescale(running_max[h], new_max);
      const float p = exp(score - new_max);
      running_sum[h] = running_sum[h] * rescale + p;
      for (uint e = 0; e < DIMS_PER_LANE; ++e) {
        acc[h][e] = acc[h][e] * rescale + p * v_lane[e];
      }
      running_max[h] = new_max;
    }
  }
}

for (uint h = 0; h < G; ++h) {
  const float simdgroup_max = simd_max(running_max[h]);
  const float rescale = softmax_rescale(running_max[h], simdgroup_max);
  const float simdgroup_sum = sum_across_lane_groups<LANES_PER_KEY>(running_sum[h] * rescale);
  for (uint e = 0; e < DIMS_PER_LANE; ++e) {
    acc[h][e] = sum_across_lane_groups<LANES_PER_KEY>(acc[h][e] * rescale);
  }
  if (lane == 0) {
    group_max[simdgroup][h] = simdgroup_max;
    group_sum[simdgroup][h] = simdgroup_sum;
  }
  if (lane < LANES_PER_KEY) {
    for (uint e = 0; e < DIMS_PER_LANE; ++e) {
      group_out[simdgroup][h * D + first_dim + LANES_PER_KEY * e] = acc[h][e];
    }
  }
}
threadgroup_barrier(mem_flags::mem_threadgroup);

for (uint i = thread_index_in_threadgroup; i < G * D; i += 32 * SIMDGROUPS) {
  const uint h = i / D;
  const uint d = i % D;
  float total_max = group_max[0][h];
  for (uint s = 1; s < SIMDGROUPS; ++s) {
    total_max = max(total_max, group_max[s][h]);
  }
  float total_sum = 0.0f;
  float total_out = 0.0f;
  for (uint s = 0; s < SIMDGROUPS; ++s) {
    const float rescale = softmax_rescale(group_max[s][h], total_max);
    total_sum += rescale * group_sum[s][h];
    total_out += rescale * group_out[s][i];
  }
  if (splits == 1) {
    const uint head = kv_head * G + h;
    out[((batch * kv_heads * G + head) * queries + query) * D + d] =
        static_cast<OutT>(total_out / total_sum);
  } else {
    const uint partial = (((batch * kv_heads + kv_head) * queries + query) * splits + split) * G + h;
    out[partial * (D + 2) + d] = static_cast<OutT>(total_out);
    if (d == 0) {
      out[partial * (D + 2) + D] = static_cast<OutT>(total_max);
      out[partial * (D + 2) + D + 1] = static_cast<OutT>(total_sum);
    }
  }
}
