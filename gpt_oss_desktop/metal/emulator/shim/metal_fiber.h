// Fibers: one per GPU thread, switched cooperatively on one OS thread. On x86-64 ELF a 20-line
// assembly switch saves the callee-saved registers and the FP control words (about 10 ns);
// elsewhere, or with METAL_EMU_UCONTEXT defined, ucontext is used (about 0.5 us per switch).
#pragma once

namespace metal_emu {
inline constexpr size_t kFiberStackSize = 128 * 1024;
// SSE control word of a new fiber: all exceptions masked, round to nearest, and denormals
// flushed to zero (FTZ, 0x8000) and read as zero (DAZ, 0x0040), as Apple GPUs may do with float.
inline constexpr uint64_t kFiberMxcsr = 0x1f80u | 0x8000u | 0x0040u;
}

#if defined(__x86_64__) && defined(__ELF__) && !defined(METAL_EMU_UCONTEXT)

extern "C" {
void metal_emu_switch_stack(void** save_stack_pointer, void* load_stack_pointer);
void metal_emu_fiber_trampoline();
[[noreturn]] void metal_emu_fiber_main(void* argument);
}

asm(R"(
    .text
    .globl metal_emu_switch_stack
    .hidden metal_emu_switch_stack
    .type metal_emu_switch_stack, @function
metal_emu_switch_stack:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size metal_emu_switch_stack, .-metal_emu_switch_stack

    .globl metal_emu_fiber_trampoline
    .hidden metal_emu_fiber_trampoline
    .type metal_emu_fiber_trampoline, @function
metal_emu_fiber_trampoline:
    movq %rbx, %rdi
    andq $-16, %rsp
    call metal_emu_fiber_main
    ud2
    .size metal_emu_fiber_trampoline, .-metal_emu_fiber_trampoline
)");

namespace metal_emu {

class FiberContext {
 public:
  // Prepares a fresh stack so that the first switch to it calls metal_emu_fiber_main(argument).
  void start(char* stack_top, void* argument) {
    auto* sp = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(stack_top) & ~uintptr_t(15));
    *--sp = 0;                                                      // alignment padding
    *--sp = reinterpret_cast<uint64_t>(&metal_emu_fiber_trampoline);  // return address
    *--sp = 0;                                                      // rbp
    *--sp = reinterpret_cast<uint64_t>(argument);                   // rbx
    for (int i = 0; i < 4; ++i) *--sp = 0;                          // r12..r15
    *--sp = kFiberMxcsr | (0x037full << 32);                        // mxcsr, x87 cw
    stack_pointer_ = sp;
  }
  static void switch_to(FiberContext& from, FiberContext& to) {
    metal_emu_switch_stack(&from.stack_pointer_, to.stack_pointer_);
  }

 private:
  void* stack_pointer_ = nullptr;
};

}  // namespace metal_emu

#else  // portable fallback

#include <ucontext.h>

extern "C" [[noreturn]] void metal_emu_fiber_main(void* argument);

namespace metal_emu {

class FiberContext {
 public:
  void start(char* stack_top, void* argument) {
    getcontext(&context_);
    context_.uc_stack.ss_sp = stack_top - kFiberStackSize;
    context_.uc_stack.ss_size = kFiberStackSize;
    context_.uc_link = nullptr;
    const auto bits = reinterpret_cast<uintptr_t>(argument);
    makecontext(&context_, reinterpret_cast<void (*)()>(&entry), 2, unsigned(bits >> 32),
                unsigned(bits & 0xffffffffu));
  }
  static void switch_to(FiberContext& from, FiberContext& to) {
    swapcontext(&from.context_, &to.context_);
  }

 private:
  static void entry(unsigned high, unsigned low) {
    metal_emu_fiber_main(reinterpret_cast<void*>((uintptr_t(high) << 32) | low));
  }
  ucontext_t context_;
};

}  // namespace metal_emu

#endif

namespace metal_emu {

// Stacks for the fibers of one threadgroup, each with a guard page below it so that an
// overflow faults instead of corrupting the neighbour.
class StackPool {
 public:
  explicit StackPool(size_t count) : count_(count) {
    if (count_ == 0) return;
    base_ = static_cast<char*>(mmap(nullptr, count_ * kStride, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (base_ == MAP_FAILED) throw std::runtime_error("cannot map fiber stacks");
    for (size_t i = 0; i < count_; ++i) mprotect(base_ + i * kStride, kGuardSize, PROT_NONE);
  }
  ~StackPool() {
    if (count_ != 0) munmap(base_, count_ * kStride);
  }
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  char* top(size_t i) const { return base_ + (i + 1) * kStride; }

 private:
  static constexpr size_t kGuardSize = 4096;
  static constexpr size_t kStride = kFiberStackSize + kGuardSize;
  size_t count_;
  char* base_ = nullptr;
};

}  // namespace metal_emu
