// Shared by the grouped (prefill) expert GEMMs: the (token, expert) pairs are sorted by expert,
// each expert's run of pairs is cut into tiles of GROUPED_TILE_ROWS, and one threadgroup computes
// one tile of pairs against GROUPED_TILE_OUTPUTS weight rows of that expert.
//
// Tile layout, 128 threads: thread t owns the 4 × 4 outputs of pair rows 4·(t / 16) + 0..3 and
// weight rows 4·(t % 16) + 0..3. Each step of 32 inputs (one MXFP4 group), thread t stages
// inputs 8·(t % 4) .. +7 of pair row t / 4 and words 2·(t % 2), +1 of weight row t / 2
// (decoded and scaled) in threadgroup memory, stored input-major so the inner loop reads two
// float4s: 16 FMAs per two threadgroup loads.
constant constexpr uint GROUPED_TILE_ROWS = 32;
constant constexpr uint GROUPED_TILE_OUTPUTS = 64;
constant constexpr uint GROUPED_STEP = 32;

struct ExpertTile {
  uint expert;
  uint first_row;  // in the expert-sorted order of pairs
  uint rows;
};

// The expert and rows of tile `tile`: expert e has tiles tile_offsets[e] .. tile_offsets[e+1]-1
// and sorted rows row_offsets[e] .. row_offsets[e+1]-1. False for a tile past the last.
// (Templated on the pointer types: MLX passes inputs of fewer than 8 elements as `constant`.)
template <typename Offsets, typename Rows>
METAL_FUNC bool find_expert_tile(uint tile, Offsets tile_offsets, Rows row_offsets, uint experts,
                                 thread ExpertTile& found) {
  if (tile >= uint(tile_offsets[experts])) {
    return false;
  }
  // The last expert whose first tile is at or before `tile` (experts without tokens share
  // their successor's offset, so the last one is the expert that has the tile).
  uint low = 0, high = experts - 1;
  while (low < high) {
    const uint middle = (low + high + 1) / 2;
    if (uint(tile_offsets[middle]) <= tile) {
      low = middle;
    } else {
      high = middle - 1;
    }
  }
  found.expert = low;
  found.first_row = uint(row_offsets[low]) + (tile - uint(tile_offsets[low])) * GROUPED_TILE_ROWS;
  found.rows = min(GROUPED_TILE_ROWS, uint(row_offsets[low + 1]) - found.first_row);
  return true;
}

// acc[i][j] = Σ_k input_row_i[k] · weight_row_j[k] for this thread's 4 × 4 outputs, over all
// `inputs` (a multiple of 32). The thread stages input row `inputs_at` of `input` and weight row
// `weights_at` (a row of blocks, its scales at scales_at) when has_input / has_weights, zeros
// past the tile's rows. input_tile and weight_tile are threadgroup memory of
// GROUPED_STEP · GROUPED_TILE_ROWS / 4 and GROUPED_STEP · GROUPED_TILE_OUTPUTS / 4 float4s.
template <typename Input, typename Blocks, typename Scales>
METAL_FUNC void grouped_mxfp4_tile_matmul(
    Input input,
    uint inputs_at,
    bool has_input,
    Blocks blocks,
    Scales scales,
    uint weights_at,
    uint scales_at,
    bool has_weights,
    uint inputs,
    threadgroup float4* input_tile,
    threadgroup float4* weight_tile,
    uint thread_index,
    thread float4 acc[4]) {
  const uint row_group = thread_index / 16;
  const uint output_group = thread_index % 16;
  const uint staged_row = thread_index / 4;
  const uint staged_input = 8 * (thread_index % 4);
  const uint staged_output = thread_index / 2;
  const uint staged_word = 2 * (thread_index % 2);
  for (uint i = 0; i < 4; ++i) {
    acc[i] = float4(0.0f);
  }
  // Staged through scalar views: lanes storing different components of one threadgroup
  // float4 would race (a component store may rewrite the whole vector).
  threadgroup float* input_values = (threadgroup float*)input_tile;
  threadgroup float* weight_values = (threadgroup float*)weight_tile;
  for (uint step = 0; step < inputs; step += GROUPED_STEP) {
    for (uint k = 0; k < 8; ++k) {
      const float value = has_input ? float(input[inputs_at + step + staged_input + k]) : 0.0f;
      input_values[(staged_input + k) * GROUPED_TILE_ROWS + staged_row] = value;
    }
    const float scale = has_weights ? mxfp4_scale(scales[scales_at + step / GROUPED_STEP]) : 0.0f;
    for (uint w = 0; w < 2; ++w) {
      float4 low = float4(0.0f), high = float4(0.0f);
      if (has_weights) {
        mxfp4_decode_word(blocks[weights_at + step / 8 + staged_word + w], low, high);
      }
      const uint first = 8 * (staged_word + w) * GROUPED_TILE_OUTPUTS + staged_output;
      for (uint k = 0; k < 4; ++k) {
        weight_values[first + k * GROUPED_TILE_OUTPUTS] = scale * low[k];
        weight_values[first + (4 + k) * GROUPED_TILE_OUTPUTS] = scale * high[k];
      }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint k = 0; k < GROUPED_STEP; ++k) {
      const float4 a = input_tile[k * (GROUPED_TILE_ROWS / 4) + row_group];
      const float4 b = weight_tile[k * (GROUPED_TILE_OUTPUTS / 4) + output_group];
      for (uint i = 0; i < 4; ++i) {
        acc[i] = fma(float4(a[i]), b, acc[i]);
      }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
}
