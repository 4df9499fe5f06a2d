// SIMD-group functions over 32 lanes. The active lanes are those waiting at the same call site
// (see metal_runtime.h). Reductions combine in xor-butterfly order (offsets 16, 8, 4, 2, 1), so
// every lane gets the same bits; bfloat is reduced in float and rounded once, as in MLX.
// A shuffle whose source lane is out of range or inactive returns the lane's own value.
#pragma once

namespace metal_emu {

template <class T>
const T& input_of(const Lane* lane) {
  return *static_cast<const T*>(lane->input);
}
template <class T>
T& output_of(Lane* lane) {
  return *static_cast<T*>(lane->output);
}

// Waits at a SIMD-group function; `collective` computes it for the active lanes.
template <class R, class T>
R collective(const T& value, uint32_t parameter, Collective collective,
             const std::source_location& where, const char* name) {
  Lane& lane = lane_for(name);
  R result{};
  lane.input = &value;
  lane.output = &result;
  lane.parameter = parameter;
  lane.collective = collective;
  lane.site = Site::at(where);
  lane.state = LaneState::at_collective;
  current_worker->yield();
  return result;
}

struct Sum {
  template <class A>
  static A apply(const A& a, const A& b) { return a + b; }
  static constexpr int identity = 0;
};
struct Product {
  template <class A>
  static A apply(const A& a, const A& b) { return a * b; }
  static constexpr int identity = 1;
};
struct Max {
  template <class A>
  static A apply(const A& a, const A& b) { return metal::max(a, b); }
};
struct Min {
  template <class A>
  static A apply(const A& a, const A& b) { return metal::min(a, b); }
};
struct And {
  template <class A>
  static A apply(const A& a, const A& b) { return a & b; }
};
struct Or {
  template <class A>
  static A apply(const A& a, const A& b) { return a | b; }
};
struct Xor {
  template <class A>
  static A apply(const A& a, const A& b) { return a ^ b; }
};

template <class T>
using accumulator_t = std::conditional_t<std::is_same_v<T, metal::bfloat>, float, T>;

template <class T, class Op>
void reduce(Lane* const* lanes) {
  using A = accumulator_t<T>;
  A value[kSimdWidth];
  bool present[kSimdWidth];
  for (uint32_t l = 0; l < kSimdWidth; ++l) {
    present[l] = lanes[l] != nullptr;
    if (present[l]) value[l] = A(input_of<T>(lanes[l]));
  }
  for (uint32_t offset = kSimdWidth / 2; offset > 0; offset /= 2) {
    A next[kSimdWidth];
    bool next_present[kSimdWidth];
    for (uint32_t l = 0; l < kSimdWidth; ++l) {
      const uint32_t o = l ^ offset;
      if (present[l] && present[o]) next[l] = Op::apply(value[l], value[o]);
      else if (present[o]) next[l] = value[o];
      else if (present[l]) next[l] = value[l];
      next_present[l] = present[l] || present[o];
    }
    std::copy(next, next + kSimdWidth, value);
    std::copy(next_present, next_present + kSimdWidth, present);
  }
  for (uint32_t l = 0; l < kSimdWidth; ++l)
    if (lanes[l] != nullptr) output_of<T>(lanes[l]) = T(value[l]);
}

template <class T, class Op, bool Inclusive>
void prefix(Lane* const* lanes) {
  using A = accumulator_t<T>;
  A running = A(Op::identity);
  for (uint32_t l = 0; l < kSimdWidth; ++l) {
    if (lanes[l] == nullptr) continue;
    const A next = Op::apply(running, A(input_of<T>(lanes[l])));
    output_of<T>(lanes[l]) = T(Inclusive ? next : running);
    running = next;
  }
}

enum class Source { lane, xor_mask, up, down, rotate_down, rotate_up, first_active };

template <class T, Source S>
void shuffle(Lane* const* lanes) {
  uint32_t first = 0;
  while (lanes[first] == nullptr) ++first;
  T value[kSimdWidth];
  for (uint32_t l = 0; l < kSimdWidth; ++l)
    if (lanes[l] != nullptr) value[l] = input_of<T>(lanes[l]);
  for (uint32_t l = 0; l < kSimdWidth; ++l) {
    if (lanes[l] == nullptr) continue;
    const int64_t p = lanes[l]->parameter;
    int64_t source = l;
    switch (S) {
      case Source::lane: source = p; break;
      case Source::xor_mask: source = l ^ p; break;
      case Source::up: source = int64_t(l) - p; break;
      case Source::down: source = l + p; break;
      case Source::rotate_down: source = (l + p) % kSimdWidth; break;
      case Source::rotate_up: source = (l + kSimdWidth - p % kSimdWidth) % kSimdWidth; break;
      case Source::first_active: source = first; break;
    }
    const bool valid = source >= 0 && source < int64_t(kSimdWidth) && lanes[source] != nullptr;
    output_of<T>(lanes[l]) = value[valid ? source : l];
  }
}

enum class Vote { all, any, ballot, is_first };

template <Vote V>
void vote(Lane* const* lanes) {
  uint64_t ballot = 0;
  bool all = true;
  int32_t first = -1;
  for (uint32_t l = 0; l < kSimdWidth; ++l) {
    if (lanes[l] == nullptr) continue;
    if (first < 0) first = int32_t(l);
    const bool bit = input_of<bool>(lanes[l]);
    ballot |= uint64_t(bit) << l;
    all = all && bit;
  }
  for (uint32_t l = 0; l < kSimdWidth; ++l) {
    if (lanes[l] == nullptr) continue;
    if constexpr (V == Vote::all) output_of<bool>(lanes[l]) = all;
    if constexpr (V == Vote::any) output_of<bool>(lanes[l]) = ballot != 0;
    if constexpr (V == Vote::ballot) output_of<uint64_t>(lanes[l]) = ballot;
    if constexpr (V == Vote::is_first) output_of<bool>(lanes[l]) = int32_t(l) == first;
  }
}

inline void synchronize(Lane* const*) {}

}  // namespace metal_emu

namespace metal {

struct simd_vote {
  using vote_t = uint64_t;
  vote_t bits;
  explicit constexpr operator vote_t() const { return bits; }
  constexpr bool all() const { return bits == 0xffffffffull; }
  constexpr bool any() const { return bits != 0; }
};

#define METAL_EMU_HERE std::source_location where = std::source_location::current()

#define METAL_EMU_REDUCTION(NAME, OP)                                                        \
  template <class T>                                                                        \
  T NAME(T value, METAL_EMU_HERE) {                                                         \
    return metal_emu::collective<T>(value, 0, &metal_emu::reduce<T, metal_emu::OP>, where,  \
                                    #NAME);                                                 \
  }
METAL_EMU_REDUCTION(simd_sum, Sum)
METAL_EMU_REDUCTION(simd_product, Product)
METAL_EMU_REDUCTION(simd_max, Max)
METAL_EMU_REDUCTION(simd_min, Min)
METAL_EMU_REDUCTION(simd_and, And)
METAL_EMU_REDUCTION(simd_or, Or)
METAL_EMU_REDUCTION(simd_xor, Xor)
#undef METAL_EMU_REDUCTION

#define METAL_EMU_PREFIX(NAME, OP, INCLUSIVE)                                                \
  template <class T>                                                                        \
  T NAME(T value, METAL_EMU_HERE) {                                                         \
    return metal_emu::collective<T>(value, 0, &metal_emu::prefix<T, metal_emu::OP, INCLUSIVE>, \
                                    where, #NAME);                                          \
  }
METAL_EMU_PREFIX(simd_prefix_exclusive_sum, Sum, false)
METAL_EMU_PREFIX(simd_prefix_inclusive_sum, Sum, true)
METAL_EMU_PREFIX(simd_prefix_exclusive_product, Product, false)
METAL_EMU_PREFIX(simd_prefix_inclusive_product, Product, true)
#undef METAL_EMU_PREFIX

#define METAL_EMU_SHUFFLE(NAME, SOURCE)                                                       \
  template <class T>                                                                         \
  T NAME(T value, uint16_t parameter, METAL_EMU_HERE) {                                      \
    return metal_emu::collective<T>(value, parameter,                                        \
                                    &metal_emu::shuffle<T, metal_emu::Source::SOURCE>, where, \
                                    #NAME);                                                  \
  }
METAL_EMU_SHUFFLE(simd_shuffle, lane)
METAL_EMU_SHUFFLE(simd_broadcast, lane)
METAL_EMU_SHUFFLE(simd_shuffle_xor, xor_mask)
METAL_EMU_SHUFFLE(simd_shuffle_up, up)
METAL_EMU_SHUFFLE(simd_shuffle_down, down)
METAL_EMU_SHUFFLE(simd_shuffle_rotate_down, rotate_down)
METAL_EMU_SHUFFLE(simd_shuffle_rotate_up, rotate_up)
#undef METAL_EMU_SHUFFLE

template <class T>
T simd_broadcast_first(T value, METAL_EMU_HERE) {
  return metal_emu::collective<T>(value, 0,
                                  &metal_emu::shuffle<T, metal_emu::Source::first_active>,
                                  where, "simd_broadcast_first");
}

inline bool simd_all(bool value, METAL_EMU_HERE) {
  return metal_emu::collective<bool>(value, 0, &metal_emu::vote<metal_emu::Vote::all>, where,
                                     "simd_all");
}
inline bool simd_any(bool value, METAL_EMU_HERE) {
  return metal_emu::collective<bool>(value, 0, &metal_emu::vote<metal_emu::Vote::any>, where,
                                     "simd_any");
}
inline simd_vote simd_ballot(bool value, METAL_EMU_HERE) {
  return {metal_emu::collective<uint64_t>(value, 0, &metal_emu::vote<metal_emu::Vote::ballot>,
                                          where, "simd_ballot")};
}
inline bool simd_is_first(METAL_EMU_HERE) {
  return metal_emu::collective<bool>(true, 0, &metal_emu::vote<metal_emu::Vote::is_first>,
                                     where, "simd_is_first");
}
inline void simdgroup_barrier(mem_flags, METAL_EMU_HERE) {
  metal_emu::collective<bool>(true, 0, &metal_emu::synchronize, where, "simdgroup_barrier");
}

#undef METAL_EMU_HERE

}  // namespace metal
