"""The MSL surface the project's kernels use: vectors and swizzles, reinterpretation, bit
operations, half and bfloat, literals, math, limits, the MLX preamble helpers and SIMD-group
functions on vectors and bfloat."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.metal.emulator import MetalKernel

HEADER = """
// MXFP4: an E2M1 nibble becomes a half by placing its bits (as MLX's fp4.h does).
inline float dequant_fp4(uchar nibble) {
  half magnitude = as_type<half>(ushort((nibble & 7) << 9)) * half(16384.0f);
  return (nibble & 8) ? -float(magnitude) : float(magnitude);
}
"""

SOURCE = """
uint t = thread_position_in_grid.x;
fp4[t] = dequant_fp4(uchar(t));
float4 vector_sum = simd_sum(float4(float(t), 1.0f, 2.0f, 3.0f));
half2 swapped = simd_shuffle_xor(half2(half(t), 1.0h), 1);
bfloat16_t largest = simd_max(bfloat16_t(float(t) * 0.5f));
if (t != 0) return;
checks[22] = vector_sum.x + vector_sum.y + vector_sum.w;
checks[23] = float(swapped.x) + float(swapped.y);
checks[24] = float(largest);

float4 v(1.0f, 2.0f, 3.0f, 4.0f);
float2 s = v.xy + v.zw;
checks[0] = s.x + 10.0f * s.y;
float2 r = v.wx;
checks[1] = r.x * 10.0f + r.y;

const device uint4* words = (const device uint4*)bytes;
uint4 w = words[1];
checks[2] = float((w.x >> 8) & 0xFFu);
uint4 m = (w >> 4) & 0x0F0F0F0Fu;
checks[3] = float(m.x ^ m.y) + float(m.z | m.w);

uint2 pair = uint2(0x3C003800u, 0x40004400u);
half4 h4 = as_type<half4>(pair);
checks[4] = dot(float4(h4), float4(1.0f, 10.0f, 100.0f, 1000.0f));
checks[5] = as_type<float>(0x3F800000u) + as_type<float>(uint(130) << 23)
    + float(as_type<uint>(2.0f) == 0x40000000u);

checks[6] = metal::precise::exp(1.0f) + fast::exp(0.0f) + metal::fast::exp(half(0.0h));
half hl = 1.5h;
checks[7] = float(hl * 2.0h);
bfloat16_t tie_even = bfloat16_t(1.00390625f);
bfloat16_t tie_odd = bfloat16_t(1.01171875f);
checks[8] = float(tie_even + tie_odd) + float(0.5bf);

checks[9] = clamp(5.0f, 0.0f, 2.0f) + select(1.0f, 3.0f, true) + fma(2.0f, 3.0f, 4.0f)
    + min(2.0f, 7.0f) + float(max(-3, 4));
checks[10] = float(Limits<float>::finite_min == -numeric_limits<float>::max()
    && Limits<half>::finite_max == 65504.0h && Limits<int>::min < 0);
checks[11] = float(sizeof(float3) == 16 && sizeof(half) == 2 && sizeof(bfloat16_t) == 2
    && sizeof(half4) == 8 && alignof(float4) == 16 && sizeof(uchar4) == 4);
checks[12] = float(ceildiv(10, 3));

float4 a(1.0f, 5.0f, 3.0f, 7.0f);
float4 b(4.0f, 2.0f, 6.0f, 0.0f);
checks[13] = dot(select(a, b, a < b), float4(1.0f, 10.0f, 100.0f, 1000.0f));
float3 f3 = float3(v.xy, 9.0f);
checks[14] = f3.x + f3.y + f3.z + float4(f3, 1.0f).w;

threadgroup float scratch[4];
threadgroup float* p = scratch + 1;
p[0] = 3.0f;
checks[15] = scratch[1];

half hx = half(0.1f);
checks[16] = float(hx * hx);
uchar4 c4 = ((const device uchar4*)bytes)[2];
checks[17] = float(c4.x + c4.w);
checks[18] = float(metal::abs(-2)) + abs(-1.5f);
checks[19] = precise::rsqrt(4.0f) + metal::fast::tanh(0.0f);
half4 hv = half4(1.0h, 2.0h, 3.0h, 4.0h) * 0.5h;
checks[20] = dot(float4(hv), float4(1.0f));
float4 acc = 0.0f;
acc += v;
acc *= 2.0f;
acc.xy = float2(9.0f, 8.0f);
checks[21] = acc.x + acc.y + acc.w;
"""

EXPECTED_FP4 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]


@pytest.fixture(scope="module")
def results() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kernel = MetalKernel(
        name="emu_shim_surface", input_names=["bytes"], output_names=["fp4", "checks"],
        source=SOURCE, header=HEADER,
    )
    data = np.arange(32, dtype=np.uint8) * 7
    fp4, checks = kernel(
        inputs=[data], output_shapes=[(16,), (25,)], output_dtypes=[mx.float32, mx.float32],
        grid=(16, 1, 1), threadgroup=(16, 1, 1),
    )
    return np.array(fp4), np.array(checks), data


def test_mxfp4_nibbles_dequantize_by_bit_placement(results):
    fp4, _, _ = results
    np.testing.assert_array_equal(fp4, EXPECTED_FP4 + [-v for v in EXPECTED_FP4])


def test_every_construct_computes_what_metal_computes(results):
    _, checks, data = results
    words = data.view(np.uint32).reshape(-1, 4)[1]
    m = (words >> 4) & 0x0F0F0F0F
    half_sq = float(np.float16(0.1) * np.float16(0.1))
    expected = {
        0: 4 + 10 * 6,
        1: 41,
        2: data[17],
        3: float(m[0] ^ m[1]) + float(m[2] | m[3]),
        4: 0.5 + 10 + 400 + 2000,
        5: 1 + 8 + 1,
        6: math.e + 2,
        7: 3,
        8: 1.0 + 1.015625 + 0.5,
        9: 2 + 3 + 10 + 2 + 4,
        10: 1,
        11: 1,
        12: 4,
        13: 4 + 50 + 600 + 7000,
        14: 13,
        15: 3,
        16: half_sq,
        17: int(data[8]) + int(data[11]),
        18: 3.5,
        19: 0.5,
        20: 5,
        21: 25,
        22: sum(range(16)) + 16 + 3 * 16,
        23: 1 + 1,
        24: 7.5,
    }
    for index, value in expected.items():
        assert checks[index] == pytest.approx(value, rel=1e-6), f"checks[{index}]"
