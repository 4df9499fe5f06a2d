// How attention_decode and attention_prefill read K and V, 16-bit variant (the model's dtype,
// as the 16-bit cache holds them): each value as stored, so the scale is 1 and the product exact.
#define K_SCALE(key) 1.0f
#define V_SCALE(key) 1.0f
