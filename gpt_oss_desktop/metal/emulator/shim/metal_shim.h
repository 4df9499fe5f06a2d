// Metal Shading Language on the host, for metal.emulator: the translated kernel includes this.
// Standard headers come first: the address-space macros at the end would break them.
#pragma once

#include <sys/mman.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <source_location>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "metal_types.h"
#include "metal_math.h"
#include "metal_fiber.h"
#include "metal_runtime.h"
#include "metal_simd.h"
#include "metal_vector_store.h"
#include "metal_atomic.h"
#include "metal_simdgroup_matrix.h"
#include "mlx_preamble.h"

using namespace metal;

// Address spaces carry no meaning on the host. (`threadgroup` declarations of variables are
// rewritten by the translator before compiling; other uses of the word are pointer qualifiers.)
#define device
#define constant
#define thread
#define threadgroup
