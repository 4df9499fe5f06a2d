// Shared by the grouped (prefill) expert GEMMs: the (token, expert) pairs are sorted by expert,
// each expert's run of pairs is cut into tiles of GROUPED_TILE_ROWS, and one threadgroup computes
// one tile of pairs against GROUPED_TILE_OUTPUTS weight rows of that expert, on SIMD-group
// matrices (8x8 MMA).
//
// Tile layout, 128 threads = 4 SIMD-groups: SIMD-group s owns pair rows 8s .. 8s+7 of the tile
// against all 64 weight rows, as 8 float accumulator fragments (output columns 8f .. 8f+7 in
// fragment f). A SIMD-group whose 8 rows are all past the tile's pairs does no MMA (an expert
// with 9 pairs in its last tile runs 2 of the 4): the work is padded to 8 rows, the MMA's own
// granularity, never to 32.
//
// Staging, per step of 32 inputs (one MXFP4 group, one scale per weight row): thread t stages
// inputs 8·(t % 4) .. +7 of pair row t / 4 in StageT (the input's own type when it is 16-bit,
// else float: exact either way), and words 2·(t % 2), +1 of weight row t / 2 as their E2M1 values
// times 2^-14, in half, exactly (every E2M1 value times 2^-14 is an fp16, ±0.5 · 2^-14 a
// subnormal one, which Metal keeps; the decode is bit-level, no arithmetic), and the even
// threads the row's scale 2^(s - 113) as float. The E8M0 scale is not folded into the staged
// weights: a scaled weight v · 2^(s - 127) is an fp16 only for 104 <= s <= 140 (0.5 · 2^(s-127)
// down to fp16's smallest subnormal 2^-24, 6 · 2^(s-127) up to 65504), and a float denormal,
// which Metal may flush, for s <= 1. Instead each SIMD-group multiplies its step's
// partial products column by column by the step's scales before adding them to the
// accumulators, so any scale byte is staged exactly.
constant constexpr uint GROUPED_TILE_ROWS = 32;
constant constexpr uint GROUPED_TILE_OUTPUTS = 64;
constant constexpr uint GROUPED_STEP = 32;
constant constexpr uint GROUPED_TILE_STRIDE = GROUPED_STEP + 8;  // padded rows, as MLX pads them
constant constexpr uint GROUPED_FRAGMENTS = GROUPED_TILE_OUTPUTS / 8;

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

// The threadgroup memory of one tile: inputs [32][stride] StageT, weights [64][stride] half (the
// E2M1 values times 2^-14), the step's 64 scales.
template <typename StageT>
struct GroupedTile {
  threadgroup StageT* inputs;
  threadgroup half* weights;
  threadgroup float* scales;
};

// acc[f] = the tile's products for this SIMD-group's 8 pair rows and weight rows 8f .. 8f+7,
// over all `inputs` (a multiple of 32). This thread stages `input_row` (the pair row t / 4 of
// the tile, when has_input) and the weight row t / 2 of the tile from `blocks_row` and
// `scales_row` (when has_weights), zeros otherwise. `computes`: this SIMD-group has a pair row
// (uniform across its lanes). Row pointers are formed once by the caller, so the loop indexes
// with 32-bit offsets from them.
template <typename StageT, typename InputRow, typename BlocksRow, typename ScalesRow>
METAL_FUNC void grouped_mxfp4_tile_matmul(
    InputRow input_row,
    bool has_input,
    BlocksRow blocks_row,
    ScalesRow scales_row,
    bool has_weights,
    uint inputs,
    GroupedTile<StageT> tile,
    uint thread_index,
    uint simdgroup,
    ushort2 position,
    bool computes,
    thread simdgroup_float8x8* acc) {
  const uint staged_input = 8 * (thread_index % 4);
  const uint staged_word = 2 * (thread_index % 2);
  threadgroup StageT* input_staged =
      tile.inputs + (thread_index / 4) * GROUPED_TILE_STRIDE + staged_input;
  threadgroup half* weight_staged =
      tile.weights + (thread_index / 2) * GROUPED_TILE_STRIDE + 8 * staged_word;
  const threadgroup StageT* input_fragments = tile.inputs + 8 * simdgroup * GROUPED_TILE_STRIDE;
  for (uint f = 0; f < GROUPED_FRAGMENTS; ++f) {
    acc[f] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
  }
  for (uint step = 0; step < inputs; step += GROUPED_STEP) {
    for (uint k = 0; k < 8; ++k) {
      input_staged[k] = has_input ? static_cast<StageT>(input_row[step + staged_input + k]) : StageT(0);
    }
    for (uint w = 0; w < 2; ++w) {
      half4 low, high;
      mxfp4_decode_word(has_weights ? uint(blocks_row[step / 8 + staged_word + w]) : 0u, low, high);
      for (uint k = 0; k < 4; ++k) {
        weight_staged[8 * w + k] = low[k];
        weight_staged[8 * w + 4 + k] = high[k];
      }
    }
    if (thread_index % 2 == 0) {
      tile.scales[thread_index / 2] =
          has_weights ? mxfp4_scale(scales_row[step / GROUPED_STEP]) : 0.0f;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (computes) {
      // The step's products: input fragment (8 pairs × 8 inputs) times weight fragment
      // (8 inputs × 8 weight rows, the staged rows read transposed), 4 blocks of 8 inputs.
      simdgroup_float8x8 step_part[GROUPED_FRAGMENTS];
      for (uint block = 0; block < GROUPED_STEP / 8; ++block) {
        simdgroup_float8x8 input_part;
        load_fragment(input_part, input_fragments + 8 * block, GROUPED_TILE_STRIDE, 1, position);
        for (uint f = 0; f < GROUPED_FRAGMENTS; ++f) {
          simdgroup_float8x8 weight_part;
          load_fragment(weight_part, tile.weights + 8 * f * GROUPED_TILE_STRIDE + 8 * block, 1,
                        GROUPED_TILE_STRIDE, position);
          if (block == 0) {
            simdgroup_multiply(step_part[f], input_part, weight_part);
          } else {
            simdgroup_multiply_accumulate(step_part[f], input_part, weight_part, step_part[f]);
          }
        }
      }
      for (uint f = 0; f < GROUPED_FRAGMENTS; ++f) {
        const uint column = 8 * f + position.x;
        const float2 scale = float2(tile.scales[column], tile.scales[column + 1]);
        acc[f].thread_elements() = fma(step_part[f].thread_elements(), scale, acc[f].thread_elements());
      }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
}
