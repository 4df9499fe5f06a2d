// Attention prefill: flash attention on SIMD-group matrices (8x8 MMA) over tiles of keys, for a
// tile of queries and all G query heads of one KV head, with sinks, GQA and the sliding window.
// Only key tiles that some query of the tile can see are visited: nothing above the causal
// diagonal, nothing older than the window of the tile's first query.
//
// Inputs (read through their strides, so cache views need no copy; within a row through a
// 32-bit offset from a per-row pointer): q [B, Hq, L, D], k and v [B, Hkv, S, D] (keys end at
// the last query), sinks [Hq]; scalars scale, window (0 for full attention). Template: OutT;
// StageT, the type K and V are staged in (k's own type when it is 16-bit, so staging is exact,
// else float); G = Hq / Hkv (a divisor of 32); D (a multiple of 8, at most 64). K and V are
// read through K_SCALE and V_SCALE, defined by the variant prepended to this file:
// attention_kv16_reads.metal (values as stored: staging stays exact) or attention_kv8_reads.metal
// (int8 and a scale per token, plus inputs k_scales, v_scales; dequantised while staging, in float).
// Output: out [B, Hq, L, D] of OutT.
//
// Grid (128 · ceil(L / (32 / G)), Hkv, B), threadgroups of 128 threads = 4 SIMD-groups.
// Threadgroup (t, h, b): queries QUERIES · t .. +QUERIES-1 (QUERIES = 32 / G) of batch b, KV
//   head h: 32 rows r = query · G + head. SIMD-group s owns rows 8s .. 8s+7 as one 8-row
//   fragment: its q (D/8 float fragments, read once from device memory), its scores against a
//   key tile (4 fragments of 8 keys) and its output (D/8 fragments) stay in registers.
// Lane l holds, in every fragment, row 8s + R and columns C, C + 1 (simdgroup_fragment.h), so
//   the online softmax of a row involves only the 4 lanes that share it (two shuffles).
// Per tile of 32 keys: thread t stages key t / 4, dimensions (t % 4) · D/4 .. +D/4-1, of K and V
//   in threadgroup memory (StageT); then each SIMD-group computes S = q Kᵀ (4 · D/8 MMAs), the
//   softmax update, and O = O · rescale + P V (D/8 · 4 MMAs), P being the score fragments.
// Reads per threadgroup: 32 rows of q once, and each visited key's K and V row once for all G
//   heads and QUERIES queries: (QUERIES - 1 + window) keys on a sliding layer.
constexpr uint QUERIES = 32 / G;
constexpr uint KEYS = 32;
constexpr uint KEY_BLOCKS = KEYS / 8;
constexpr uint DIM_BLOCKS = D / 8;
constexpr uint STAGED_PER_THREAD = D / 4;  // 128 threads stage 32 keys × D dimensions
constexpr uint TILE_STRIDE = D + 8;        // padded rows, as MLX's steel attention pads them

threadgroup StageT k_tile[KEYS * TILE_STRIDE];
threadgroup StageT v_tile[KEYS * TILE_STRIDE];

const uint queries = q_shape[2];
const uint kv_heads = k_shape[1];
const uint keys = k_shape[2];
const uint first_query = threadgroup_position_in_grid.x * QUERIES;
const uint kv_head = threadgroup_position_in_grid.y;
const uint batch = threadgroup_position_in_grid.z;
const uint thread_index = thread_index_in_threadgroup;
const ushort2 position = fragment_position(ushort(thread_index_in_simdgroup));

// This lane's row: its query, head and the keys it sees, first_visible .. first_visible +
// visible_count - 1 (tested as one unsigned distance).
const uint row = simdgroup_index_in_threadgroup * 8 + position.y;
const uint query = first_query + row / G;
const uint head = kv_head * G + row % G;
const uint query_position = query + keys - queries;
const uint first_visible = visible_keys_start(query_position, window);
const uint visible_count = visible_keys_end(query_position) - first_visible;

simdgroup_float8x8 q_part[DIM_BLOCKS];
{
  const uint inner = uint(q_strides[3]);
  const device auto* q_row = q + batch * q_strides[0] + head * q_strides[1] +
                             min(query, queries - 1) * q_strides[2];
  for (uint d = 0; d < DIM_BLOCKS; ++d) {
    load_fragment(q_part[d], q_row, 0, inner, ushort2(8 * d + position.x, 0));
    if (query >= queries) {
      q_part[d].thread_elements() = float2(0.0f);
    }
  }
}
simdgroup_float8x8 out_part[DIM_BLOCKS];
for (uint d = 0; d < DIM_BLOCKS; ++d) {
  out_part[d] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
}
float row_max = float(sinks[head * sinks_strides[0]]);
float row_sum = 1.0f;

const uint staged_key = thread_index / 4;
const uint staged_dim = (thread_index % 4) * STAGED_PER_THREAD;
const uint k_inner = uint(k_strides[3]);
const uint v_inner = uint(v_strides[3]);
const device auto* k_head = k + batch * k_strides[0] + kv_head * k_strides[1];
const device auto* v_head = v + batch * v_strides[0] + kv_head * v_strides[1];
threadgroup StageT* k_staged = k_tile + staged_key * TILE_STRIDE + staged_dim;
threadgroup StageT* v_staged = v_tile + staged_key * TILE_STRIDE + staged_dim;

const uint last_query = min(first_query + QUERIES, queries) - 1;
const uint key_start = visible_keys_start(first_query + keys - queries, window);
const uint key_end = visible_keys_end(last_query + keys - queries);
for (uint tile_start = key_start; tile_start < key_end; tile_start += KEYS) {
  {
    const uint key = tile_start + staged_key;
    const bool loaded = key < key_end;
    const device auto* k_row = k_head + (loaded ? key : 0) * k_strides[2] + staged_dim * k_inner;
    const device auto* v_row = v_head + (loaded ? key : 0) * v_strides[2] + staged_dim * v_inner;
    const float k_scale = loaded ? K_SCALE(key) : 0.0f;
    const float v_scale = loaded ? V_SCALE(key) : 0.0f;
    for (uint i = 0; i < STAGED_PER_THREAD; ++i) {
      k_staged[i] = loaded ? static_cast<StageT>(float(k_row[i * k_inner]) * k_scale) : StageT(0);
      v_staged[i] = loaded ? static_cast<StageT>(float(v_row[i * v_inner]) * v_scale) : StageT(0);
    }
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);

  // S = q Kᵀ: fragment n holds keys 8n .. 8n+7 (Kᵀ element (dimension, key) read transposed).
  simdgroup_float8x8 scores[KEY_BLOCKS];
  for (uint n = 0; n < KEY_BLOCKS; ++n) {
    scores[n] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    for (uint d = 0; d < DIM_BLOCKS; ++d) {
      simdgroup_float8x8 key_part;
      load_fragment(key_part, k_tile + 8 * n * TILE_STRIDE + 8 * d, 1, TILE_STRIDE, position);
      simdgroup_multiply_accumulate(scores[n], q_part[d], key_part, scores[n]);
    }
  }

  // Online softmax of this lane's row over its 8 scores in the tile. The sink started the
  // running maximum, so it is finite and only visible scores move it.
  float tile_max = row_max;
  for (uint n = 0; n < KEY_BLOCKS; ++n) {
    const uint key = tile_start + 8 * n + position.x;
    const float2 score = scale * scores[n].thread_elements();
    tile_max = key - first_visible < visible_count ? max(tile_max, score.x) : tile_max;
    tile_max = key + 1 - first_visible < visible_count ? max(tile_max, score.y) : tile_max;
  }
  const float new_max = fragment_row_max(tile_max);
  float tile_sum = 0.0f;
  for (uint n = 0; n < KEY_BLOCKS; ++n) {
    const uint key = tile_start + 8 * n + position.x;
    const float2 score = scale * scores[n].thread_elements();
    const float p0 = key - first_visible < visible_count ? exp(score.x - new_max) : 0.0f;
    const float p1 = key + 1 - first_visible < visible_count ? exp(score.y - new_max) : 0.0f;
    scores[n].thread_elements() = float2(p0, p1);
    tile_sum += p0 + p1;
  }
  const float rescale = exp(row_max - new_max);
  row_sum = row_sum * rescale + fragment_row_sum(tile_sum);
  row_max = new_max;

  // O = O · rescale + P V.
  for (uint d = 0; d < DIM_BLOCKS; ++d) {
    out_part[d].thread_elements() *= rescale;
    for (uint n = 0; n < KEY_BLOCKS; ++n) {
      simdgroup_float8x8 value_part;
      load_fragment(value_part, v_tile + 8 * n * TILE_STRIDE + 8 * d, TILE_STRIDE, 1, position);
      simdgroup_multiply_accumulate(out_part[d], scores[n], value_part, out_part[d]);
    }
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
}

if (query < queries) {
  device OutT* out_row = out + ((batch * kv_heads * G + head) * queries + query) * D;
  for (uint d = 0; d < DIM_BLOCKS; ++d) {
    const float2 values = out_part[d].thread_elements() / row_sum;
    out_row[8 * d + position.x] = static_cast<OutT>(values.x);
    out_row[8 * d + position.x + 1] = static_cast<OutT>(values.y);
  }
}
