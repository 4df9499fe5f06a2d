// Shared by the few-token expert kernels (decode of 2 tokens up to the grouped threshold of
// kernels/moe_cost.py): the (token, expert) pairs are sorted by expert, and one threadgroup
// handles one expert that has pairs, for all of them, so each of the expert's weight rows is
// read once however many of the tokens chose it.
//
// The grid's y axis has one slot per expert that can have pairs, min(E, P): slot a is the expert
// active_experts[a] (the experts with pairs in ascending order, then E for unused slots), whose
// pairs are sorted_pairs[row_offsets[e] .. row_offsets[e+1]).
//
// The expert's token rows are staged in chunks in threadgroup memory, as 4-vectors of StageT
// (the input's own type when it is 16-bit, so staging is exact; else float): FEW_TOKENS_STAGE
// bytes for MAX_TOKENS rows of 8 · chunk_words values each.
constant constexpr uint FEW_TOKENS_THREADS = 256;
constant constexpr uint FEW_TOKENS_SIMDGROUPS = FEW_TOKENS_THREADS / 32;
constant constexpr uint FEW_TOKENS_STAGE = 16384;

// Words (8 values) of each token row staged at a time: all the staging memory, at most 128.
template <typename StageT, uint MAX_TOKENS>
constexpr uint few_tokens_chunk_words() {
  const uint fit = FEW_TOKENS_STAGE / (MAX_TOKENS * 8 * uint(sizeof(StageT)));
  return fit < 128 ? fit : 128;
}

struct ExpertPairs {
  uint expert;
  uint first;  // in the expert-sorted order of pairs
  uint count;
};

// The expert of slot `slot` and its pairs; false for an unused slot.
// (Templated on the pointer types: MLX passes inputs of fewer than 8 elements as `constant`.)
template <typename Active, typename Offsets>
METAL_FUNC bool expert_of_slot(uint slot, Active active_experts, Offsets row_offsets, uint experts,
                               thread ExpertPairs& found) {
  found.expert = uint(active_experts[slot]);
  if (found.expert >= experts) {
    return false;
  }
  found.first = uint(row_offsets[found.expert]);
  found.count = uint(row_offsets[found.expert + 1]) - found.first;
  return true;
}

// Stages values 8 · chunk_start .. + 8 · chunk_words - 1 of `tokens` rows into `stage` (row j
// at j · 2 · chunk_words 4-vectors): row j is source row sorted_pairs[first + j] / divisor, of
// `length` values. Each thread writes whole 4-vectors (thread i: vectors i, i + 256, ...), as
// lanes storing different components of one threadgroup vector would race.
template <typename StageT, typename Source, typename Pairs>
METAL_FUNC void stage_token_rows(Source source, Pairs sorted_pairs, uint first, uint tokens,
                                 uint divisor, uint length, uint chunk_start, uint chunk_words,
                                 threadgroup vec<StageT, 4>* stage, uint thread_index) {
  const uint vectors_per_row = 2 * chunk_words;
  for (uint i = thread_index; i < tokens * vectors_per_row; i += FEW_TOKENS_THREADS) {
    const uint j = i / vectors_per_row;
    const uint at = uint(sorted_pairs[first + j]) / divisor * length + 8 * chunk_start +
                    4 * (i % vectors_per_row);
    stage[i] = vec<StageT, 4>(StageT(source[at]), StageT(source[at + 1]), StageT(source[at + 2]),
                              StageT(source[at + 3]));
  }
}
