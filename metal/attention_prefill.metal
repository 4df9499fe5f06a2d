// Attention prefill: flash attention over tiles of keys for a tile of queries and all G query
// heads of one KV head, with sinks, GQA and the sliding window. Only key tiles that some query
// of the tile can see are visited: nothing above the causal diagonal, nothing older than the
// window of the tile's first query.
//
// Inputs (read through their strides, so cache views need no copy): q [B, Hq, L, D], k and v
// [B, Hkv, S, D] (keys end at the last query), sinks [Hq]; scalars scale, window (0 for full
// attention). Template: OutT, G = Hq / Hkv (a divisor of 32), D (a multiple of 4, at most 64).
// Output: out [B, Hq, L, D] of OutT.
//
// Grid (128 · ceil(L / (32 / G)), Hkv, B), threadgroups of 128 threads = 4 SIMD-groups.
// Threadgroup (t, h, b): queries QUERIES · t .. +QUERIES-1 (QUERIES = 32 / G) of batch b, KV
//   head h: 32 rows r = query · G + head, scaled q staged once in threadgroup memory.
// SIMD-group s owns rows 8s .. 8s+7. Per tile of 32 keys (K and V staged as float by all
//   threads): lane j scores key j against the 8 rows (one float4 of K per 8 float4 dot
//   products; a simd_max and a simd_sum per row for the online softmax; probabilities to
//   threadgroup memory), then lane j accumulates dimensions j, j + 32, ... of the 8 rows'
//   outputs from V (one float4 of probabilities per 4 FMAs).
// Reads per threadgroup: 32 rows of q once, and each visited key's K and V row once for all G
//   heads and QUERIES queries: (QUERIES - 1 + window) keys on a sliding layer.
constexpr uint SIMDGROUPS = 4;
constexpr uint ROWS = 32;
constexpr uint ROWS_PER_SIMDGROUP = ROWS / SIMDGROUPS;
constexpr uint QUERIES = ROWS / G;
constexpr uint KEYS = 32;
constexpr uint DIMS_PER_LANE = (D + 31) / 32;

threadgroup float4 q_tile[ROWS][D / 4];
threadgroup float4 k_tile[KEYS][D / 4 + 1];  // padded: lanes read different keys' rows at once
threadgroup float v_tile[KEYS][D];
threadgroup float4 p_tile[SIMDGROUPS][ROWS_PER_SIMDGROUP][KEYS / 4];

const uint queries = q_shape[2];
const uint kv_heads = k_shape[1];
const uint keys = k_shape[2];
const uint first_query = threadgroup_position_in_grid.x * QUERIES;
const uint kv_head = threadgroup_position_in_grid.y;
const uint batch = threadgroup_position_in_grid.z;
const uint thread_index = thread_index_in_threadgroup;
const uint simdgroup = simdgroup_index_in_threadgroup;
const uint lane = thread_index_in_simdgroup;
const uint first_row = simdgroup * ROWS_PER_SIMDGROUP;

const int64_t q_rows = batch * q_strides[0];
const int64_t k_rows = batch * k_strides[0] + kv_head * k_strides[1];
const int64_t v_rows = batch * v_strides[0] + kv_head * v_strides[1];

for (uint i = thread_index; i < ROWS * D; i += 32 * SIMDGROUPS) {
  const uint row = i / D;
  const uint d = i % D;
  const uint query = first_query + row / G;
  const uint head = kv_head * G + row % G;
  q_tile[row][d / 4][d % 4] = query < queries
      ? scale * float(q[q_rows + head * q_strides[1] + query * q_strides[2] + d * q_strides[3]])
      : 0.0f;
}

float row_max[ROWS_PER_SIMDGROUP];
float row_sum[ROWS_PER_SIMDGROUP];
float acc[ROWS_PER_SIMDGROUP][DIMS_PER_LANE];
for (uint i = 0; i < ROWS_PER_SIMDGROUP; ++i) {
  row_max[i] = float(sinks[(kv_head * G + (first_row + i) % G) * sinks_strides[0]]);
  row_sum[i] = 1.0f;
  for (uint e = 0; e < DIMS_PER_LANE; ++e) {
    acc[i][e] = 0.0f;
  }
}

const uint last_query = min(first_query + QUERIES, queries) - 1;
const uint key_start = visible_keys_start(first_query + keys - queries, window);
const uint key_end = visible_keys_end(last_query + keys - queries);
for (uint tile_start = key_start; tile_start < key_end; tile_start += KEYS) {
  for (uint i = thread_index; i < KEYS * D; i += 32 * SIMDGROUPS) {
    const uint j = i / D;
    const uint d = i % D;
    const uint staged_key = tile_start + j;
    const bool loaded = staged_key < key_end;
    k_tile[j][d / 4][d % 4] =
        loaded ? float(k[k_rows + staged_key * k_strides[2] + d * k_strides[3]]) : 0.0f;
    v_tile[j][d] = loaded ? float(v[v_rows + staged_key * v_strides[2] + d * v_strides[3]]) : 0.0f;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);

  // Scores: lane j takes key j against the SIMD-group's rows, four dimensions per load.
  const uint key = tile_start + lane;
  float scores[ROWS_PER_SIMDGROUP] = {};
  for (uint d4 = 0; d4 < D / 4; ++d4) {
    const float4 key_part = k_tile[lane][d4];
    for (uint i = 0; i < ROWS_PER_SIMDGROUP; ++i) {
      scores[i] += dot(q_tile[first_row + i][d4], key_part);
    }
  }
  float rescale[ROWS_PER_SIMDGROUP];
  for (uint i = 0; i < ROWS_PER_SIMDGROUP; ++i) {
    const uint position = first_query + (first_row + i) / G + keys - queries;
    float score = scores[i];
    const bool visible = key < key_end && key >= visible_keys_start(position, window) &&
                         key < visible_keys_end(position);
    score = visible ? score : -INFINITY;
    const float new_max = max(row_max[i], simd_max(score));
    const float p = visible ? exp(score - new_max) : 0.0f;
    rescale[i] = softmax_rescale(row_max[i], new_max);
    row_sum[i] = row_sum[i] * rescale[i] + simd_sum(p);
    row_max[i] = new_max;
    p_tile[simdgroup][i][lane / 4][lane % 4] = p;
    for (uint e = 0; e < DIMS_PER_LANE; ++e) {
      acc[i][e] *= rescale[i];
    }
  }
  simdgroup_barrier(mem_flags::mem_threadgroup);

  // Values: lane j accumulates dimensions j, j + 32, ... of the rows, four keys per load of p.
  for (uint j4 = 0; j4 < KEYS / 4; ++j4) {
    for (uint e = 0; e < DIMS_PER_LANE; ++e) {
      const uint d = lane + 32 * e;
      if (d < D) {
        const float4 values = float4(v_tile[4 * j4][d], v_tile[4 * j4 + 1][d], v_tile[4 * j4 + 2][d],
                                     v_tile[4 * j4 + 3][d]);
        for (uint i = 0; i < ROWS_PER_SIMDGROUP; ++i) {
          acc[i][e] += dot(p_tile[simdgroup][i][j4], values);
        }
      }
    }
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
}

for (uint i = 0; i < ROWS_PER_SIMDGROUP; ++i) {
  const uint row = first_row + i;
  const uint query = first_query + row / G;
  if (query >= queries) {
    continue;
  }
  const uint head = kv_head * G + row % G;
  for (uint e = 0; e < DIMS_PER_LANE; ++e) {
    const uint d = lane + 32 * e;
    if (d < D) {
      out[((batch * kv_heads * G + head) * queries + query) * D + d] =
          static_cast<OutT>(acc[i][e] / row_sum[i]);
    }
  }
}
