// Shared by the attention kernels: which keys a query sees, and the online-softmax bookkeeping.
//
// Keys are in time order and end at the last query: with S keys and L queries, query i sits at
// position i + S - L and sees key j iff j <= i + S - L and, on a sliding layer (window > 0),
// j > i + S - L - window. A learned sink logit per head joins the softmax's denominator only:
// the online softmax starts from max = sink, sum = 1, output = 0.

// One past the last key query position `position` sees, and its first key.
METAL_FUNC uint visible_keys_end(uint position) {
  return position + 1;
}

METAL_FUNC uint visible_keys_start(uint position, uint window) {
  return window > 0 && position + 1 > window ? position + 1 - window : 0;
}

// The running max of an online softmax that has seen no score yet, and the score of a key a
// query does not see. Finite, as in MLX's kernels: the math mode is not pinned, and fast math
// leaves infinities undefined. Below any real logit, yet small enough that NO_SCORE - max and
// its fast::exp form (times log2 e) stay finite: exp gives 0, or 1 between two NO_SCOREs, where
// the sums it scales are still 0.
constant constexpr float NO_SCORE = -1.0e30f;

// exp(old_max - new_max), the factor that moves a running sum to a new maximum.
METAL_FUNC float softmax_rescale(float old_max, float new_max) {
  return exp(old_max - new_max);
}

// The sum over each aligned group of WIDTH lanes (a power of two up to 32), in every lane of it.
template <uint WIDTH>
METAL_FUNC float lane_group_sum(float value) {
  if (WIDTH == 32) {
    return simd_sum(value);
  }
  for (ushort offset = WIDTH / 2; offset > 0; offset /= 2) {
    value += simd_shuffle_xor(value, offset);
  }
  return value;
}

// The sum over the lanes at the same place in every group of WIDTH lanes, in every lane.
template <uint WIDTH>
METAL_FUNC float sum_across_lane_groups(float value) {
  for (ushort offset = WIDTH; offset < 32; offset *= 2) {
    value += simd_shuffle_xor(value, offset);
  }
  return value;
}
