// Metal's atomics on device and threadgroup memory: atomic<T> is a plain T operated on through
// std::atomic_ref, so it is correct across the OS threads that run different threadgroups.
#pragma once

namespace metal {

enum memory_order {
  memory_order_relaxed,
  memory_order_acquire,
  memory_order_release,
  memory_order_acq_rel,
  memory_order_seq_cst,
};

template <class T>
struct atomic {
  static_assert(std::is_integral_v<T> || std::is_same_v<T, float>,
                "metal emulator: atomic<T> needs an integer type or float");
  T value;
};
using atomic_int = atomic<int>;
using atomic_uint = atomic<uint32_t>;
using atomic_bool = atomic<bool>;
using atomic_float = atomic<float>;
using atomic_ulong = atomic<uint64_t>;

}  // namespace metal

namespace metal_emu {

template <class T>
std::atomic_ref<T> atomic_ref_of(const volatile metal::atomic<T>* object) {
  return std::atomic_ref<T>(const_cast<metal::atomic<T>*>(object)->value);
}

// fetch_max / fetch_min through compare-exchange; a NaN operand leaves the value unchanged.
template <class T, class Choose>
T fetch_update(const volatile metal::atomic<T>* object, T operand, Choose choose) {
  auto ref = atomic_ref_of(object);
  T old = ref.load(std::memory_order_relaxed);
  while (!ref.compare_exchange_weak(old, choose(old, operand), std::memory_order_relaxed)) {
  }
  return old;
}

}  // namespace metal_emu

namespace metal {

template <class T>
T atomic_load_explicit(const volatile atomic<T>* object, memory_order) {
  return metal_emu::atomic_ref_of(object).load(std::memory_order_relaxed);
}
template <class T, class U>
void atomic_store_explicit(volatile atomic<T>* object, U value, memory_order) {
  metal_emu::atomic_ref_of(object).store(T(value), std::memory_order_relaxed);
}
template <class T, class U>
bool atomic_compare_exchange_weak_explicit(volatile atomic<T>* object, T* expected, U desired,
                                           memory_order, memory_order) {
  return metal_emu::atomic_ref_of(object).compare_exchange_strong(*expected, T(desired),
                                                                  std::memory_order_relaxed);
}

#define METAL_EMU_ATOMIC_FETCH(NAME, METHOD)                                                \
  template <class T, class U>                                                              \
  T NAME(volatile atomic<T>* object, U operand, memory_order) {                            \
    return metal_emu::atomic_ref_of(object).METHOD(T(operand), std::memory_order_relaxed); \
  }
METAL_EMU_ATOMIC_FETCH(atomic_fetch_add_explicit, fetch_add)
METAL_EMU_ATOMIC_FETCH(atomic_fetch_sub_explicit, fetch_sub)
METAL_EMU_ATOMIC_FETCH(atomic_fetch_and_explicit, fetch_and)
METAL_EMU_ATOMIC_FETCH(atomic_fetch_or_explicit, fetch_or)
METAL_EMU_ATOMIC_FETCH(atomic_fetch_xor_explicit, fetch_xor)
METAL_EMU_ATOMIC_FETCH(atomic_exchange_explicit, exchange)
#undef METAL_EMU_ATOMIC_FETCH

template <class T, class U>
T atomic_fetch_max_explicit(volatile atomic<T>* object, U operand, memory_order) {
  return metal_emu::fetch_update(object, T(operand), [](T a, T b) { return max(a, b); });
}
template <class T, class U>
T atomic_fetch_min_explicit(volatile atomic<T>* object, U operand, memory_order) {
  return metal_emu::fetch_update(object, T(operand), [](T a, T b) { return min(a, b); });
}

}  // namespace metal
