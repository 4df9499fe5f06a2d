// How attention_decode and attention_prefill read K and V, 8-bit variant (the 8-bit KV cache,
// kernels.QuantizedKV): k and v are int8 [B, Hkv, S, D] and k_scales, v_scales float
// [B, Hkv, S], one scale per (batch, KV head, token), read through their strides (cache views);
// a value is int8 · scale, dequantised in registers as the kernel reads it. The thread layout is
// the kernel's own (see its header comment); each lane reads the scale of the key it reads.
#define K_SCALE(key) \
  float(k_scales[batch * k_scales_strides[0] + kv_head * k_scales_strides[1] + (key) * k_scales_strides[2]])
#define V_SCALE(key) \
  float(v_scales[batch * v_scales_strides[0] + kv_head * v_scales_strides[1] + (key) * v_scales_strides[2]])
