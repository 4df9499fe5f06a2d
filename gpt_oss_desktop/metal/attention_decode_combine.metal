// Attention decode, second pass for split contexts: merges the per-split partial results of
// attention_decode (unnormalised output, running max, running sum) into the attention output.
// Split 0 already holds the sink, so this is a plain merge of online-softmax states.
//
// Input: partials [B, Hkv, L, splits, G, D + 2] float. Template: OutT, G, D.
// Output: out [B, Hkv · G, L, D] of OutT.
//
// Grid (D, L · Hq, B), threadgroups of D threads: thread d of threadgroup (0, l · Hq + head, b)
//   writes dimension d of query l, head `head`. It reads the max and sum of every split (the
//   same for all D threads) and its dimension of every split's output.
// Reads per query and head: splits · (D + 2) floats.
const uint queries = partials_shape[2];
const uint splits = partials_shape[3];
const uint heads = partials_shape[1] * G;
const uint d = thread_position_in_threadgroup.x;
const uint query = threadgroup_position_in_grid.y / heads;
const uint head = threadgroup_position_in_grid.y % heads;
const uint batch = threadgroup_position_in_grid.z;
const uint kv_head = head / G;

const uint first_partial =
    (((batch * (heads / G) + kv_head) * queries + query) * splits) * G + head % G;
float total_max = NO_SCORE;
for (uint s = 0; s < splits; ++s) {
  total_max = max(total_max, partials[(first_partial + s * G) * (D + 2) + D]);
}
float total_sum = 0.0f;
float total_out = 0.0f;
for (uint s = 0; s < splits; ++s) {
  const uint partial = (first_partial + s * G) * (D + 2);
  const float rescale = softmax_rescale(partials[partial + D], total_max);
  total_sum += rescale * partials[partial + D + 1];
  total_out += rescale * partials[partial + d];
}
out[((batch * heads + head) * queries + query) * D + d] = static_cast<OutT>(total_out / total_sum);
