// MXFP4 as the gpt-oss checkpoint stores it and MLX's mode="mxfp4" reads it: groups of 32 E2M1
// values sharing one E8M0 scale. A uint32 word holds eight values, low nibble first, so a row of
// K weights is K/8 words and K/32 scale bytes, and word w of a row uses scale byte w / 4.
//
// Decoding has no lookup table (the trick of OpenAI's moematmul.metal): an E2M1 nibble `s ee m`
// placed at bits 15 and 11..9 of an fp16 is exactly its value times 2^-14 (the E2M1 subnormal
// 0.5 lands on an fp16 subnormal), and mxfp4_scale folds the 2^14 back in.

// 2^(s - 127) · 2^14 = 2^(s - 113), built from its exponent bits. Every s below 241 gives a
// normal float, s == 0 too (2^-113: MLX's fp8_e8m0 reads it as 2^-127), so the scale never passes
// through a float denormal, which Metal may flush to zero; s >= 241 overflows to infinity, as
// 2^(s - 127) · 2^14 does.
METAL_FUNC float mxfp4_scale(uchar s) {
  return as_type<float>(min(uint(s) + 14u, 255u) << 23);
}

// The eight values of one word, each times 2^-14, exactly, as half: `low` holds values 0..3,
// `high` values 4..7. Four bytes at a time (SWAR): each nibble becomes the top byte of an fp16,
// `s ee m` → `s000 eem0` (2n + 0x70 carries the sign into bit 7).
METAL_FUNC void mxfp4_decode_word(uint word, thread half4& low, thread half4& high) {
  const uint even = (((word << 1) & 0x1E1E1E1Eu) + 0x70707070u) & 0x8E8E8E8Eu;  // values 0, 2, 4, 6
  const uint odd = (((word >> 3) & 0x1E1E1E1Eu) + 0x70707070u) & 0x8E8E8E8Eu;   // values 1, 3, 5, 7
  const half4 even_values = as_type<half4>(uint2((even << 8) & 0xFF00FF00u, even & 0xFF00FF00u));
  const half4 odd_values = as_type<half4>(uint2((odd << 8) & 0xFF00FF00u, odd & 0xFF00FF00u));
  // even_values = (v0, v4, v2, v6), odd_values = (v1, v5, v3, v7).
  low = half4(even_values.x, odd_values.x, even_values.z, odd_values.z);
  high = half4(even_values.y, odd_values.y, even_values.w, odd_values.w);
}

// The same eight values as float.
METAL_FUNC void mxfp4_decode_word(uint word, thread float4& low, thread float4& high) {
  half4 low_values, high_values;
  mxfp4_decode_word(word, low_values, high_values);
  low = float4(low_values);
  high = float4(high_values);
}

// Σ value_i · x_i over one word's eight values (each times 2^-14; multiply by mxfp4_scale).
METAL_FUNC float mxfp4_word_dot(uint word, float4 x_low, float4 x_high) {
  float4 low, high;
  mxfp4_decode_word(word, low, high);
  return dot(low, x_low) + dot(high, x_high);
}
