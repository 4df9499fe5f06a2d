// gpt-oss's clamped SwiGLU on one interleaved (gate, linear) pair of the first expert projection:
// min(gate, limit) · sigmoid(alpha · min(gate, limit)) · (clamp(linear, -limit, limit) + 1).
METAL_FUNC float clamped_swiglu(float gate, float linear, float limit, float alpha) {
  const float g = min(gate, limit);
  const float l = clamp(linear, -limit, limit);
  return g / (1.0f + exp(-alpha * g)) * (l + 1.0f);
}
