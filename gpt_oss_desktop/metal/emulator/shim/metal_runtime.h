// The dispatch runtime: runs a kernel over the grid with Metal's threadgroup semantics.
//
// Threadgroups are shared out over OS worker threads. Inside a threadgroup every GPU thread is a
// fiber; the scheduler runs each runnable fiber (in the order the schedule picks) until it
// waits at a barrier or a SIMD-group function, or returns. When none can run:
//   1. In every SIMD-group, the lanes waiting at the earliest call site (in source order) of a
//      SIMD-group function are resolved together: they are the active lanes.
//   2. Otherwise every live thread must wait at the same threadgroup_barrier; it is released.
//      A barrier that some threads never reach (they returned, or wait at another barrier) is
//      reported as an error: it is undefined behaviour on Metal.
// Kernels with neither barriers nor SIMD-group functions skip fibers and run each thread as a
// plain call. threadgroup variables are poisoned (0xFF bytes) before every threadgroup.
#pragma once

namespace metal {

enum class mem_flags : uint32_t {
  mem_none = 0,
  mem_device = 1,
  mem_threadgroup = 2,
  mem_texture = 4,
  mem_threadgroup_imageblock = 8,
};
constexpr mem_flags operator|(mem_flags a, mem_flags b) {
  return mem_flags(uint32_t(a) | uint32_t(b));
}

}  // namespace metal

namespace metal_emu {

inline constexpr uint32_t kSimdWidth = 32;
inline constexpr uint32_t kQuadWidth = 4;

// Where a thread waits: the call site of a barrier or SIMD-group function.
struct Site {
  const char* file;
  uint32_t line;
  uint32_t column;

  static Site at(const std::source_location& location) {
    return {location.file_name(), location.line(), location.column()};
  }
  bool operator==(const Site& other) const {
    return line == other.line && column == other.column &&
           (file == other.file || std::strcmp(file, other.file) == 0);
  }
  bool before(const Site& other) const {
    if (const int c = std::strcmp(file, other.file); c != 0) return c < 0;
    return line != other.line ? line < other.line : column < other.column;
  }
  std::string describe() const {
    return std::string(file) + ":" + std::to_string(line) + ":" + std::to_string(column);
  }
};

struct Lane;
// Computes a SIMD-group function for the lanes that take part (nullptr for the others).
using Collective = void (*)(Lane* const* lanes);

enum class LaneState : uint8_t { runnable, at_collective, at_barrier, done };

// One GPU thread run as a fiber.
struct Lane {
  FiberContext context;
  LaneState state = LaneState::runnable;
  uint32_t index = 0;  // thread_index_in_threadgroup
  Site site{};
  Collective collective = nullptr;
  const void* input = nullptr;
  void* output = nullptr;
  uint32_t parameter = 0;
};

struct ThreadAttributes {
  uint32_t dispatch_quadgroups_per_threadgroup;
  uint32_t dispatch_simdgroups_per_threadgroup;
  metal::uint3 dispatch_threads_per_threadgroup;
  metal::uint3 grid_origin;
  metal::uint3 grid_size;
  uint32_t quadgroup_index_in_threadgroup;
  uint32_t quadgroups_per_threadgroup;
  uint32_t simdgroup_index_in_threadgroup;
  uint32_t simdgroups_per_threadgroup;
  uint32_t thread_execution_width;
  uint32_t thread_index_in_quadgroup;
  uint32_t thread_index_in_simdgroup;
  uint32_t thread_index_in_threadgroup;
  metal::uint3 thread_position_in_grid;
  metal::uint3 thread_position_in_threadgroup;
  metal::uint3 threadgroup_position_in_grid;
  metal::uint3 threadgroups_per_grid;
  metal::uint3 threads_per_grid;
  uint32_t threads_per_simdgroup;
  metal::uint3 threads_per_threadgroup;
};

using ThreadFunction = void (*)(const ThreadAttributes&, void* const* buffers);

enum class Schedule : int32_t { forward = 0, reverse = 1, random = 2 };

// Mirrored by ctypes in metal/emulator/runtime.py.
struct LaunchConfig {
  uint32_t grid[3];
  uint32_t threadgroup[3];
  int32_t schedule;
  int32_t workers;
  uint64_t seed;
  int32_t uses_fibers;
};

// A failure inside the kernel when it runs without fibers (fibers report by switching away).
struct KernelFault {
  std::string message;
};

inline uint32_t ceil_div(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

// Float denormals are flushed to zero, in results and in operands, on the calling OS thread
// (fibers start with the same mode: kFiberMxcsr). Metal lets a GPU flush float denormals and
// Apple's do under fast math; half denormals are kept (their conversions are exact).
inline void flush_denormals_to_zero() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr(_mm_getcsr() | 0x8040u);
#elif defined(__aarch64__)
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (uint64_t(1) << 24)));
#endif
}

// The order in which a schedule visits n items; `round` varies the random order.
inline void schedule_order(std::vector<uint32_t>& order, uint32_t n, Schedule schedule,
                           uint64_t seed, uint64_t round) {
  order.resize(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = schedule == Schedule::reverse ? n - 1 - i : i;
  if (schedule == Schedule::random) {
    std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull + round);
    std::shuffle(order.begin(), order.end(), rng);
  }
}

// State shared by the workers of one dispatch.
class Dispatch {
 public:
  Dispatch(const LaunchConfig& config, ThreadFunction function, void* const* buffers)
      : config(config), function(function), buffers(buffers) {
    for (int d = 0; d < 3; ++d) {
      group_size[d] = std::min(config.threadgroup[d], config.grid[d]);
      group_count[d] = config.grid[d] == 0 ? 0 : ceil_div(config.grid[d], group_size[d]);
    }
    schedule_order(group_order, group_count[0] * group_count[1] * group_count[2],
                   Schedule(config.schedule), config.seed, ~0ull);
  }

  // Records the first failure; every worker stops at its next threadgroup.
  void fail(const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!failed.load()) {
      failure_ = message;
      failed.store(true);
    }
  }
  std::string failure() {
    std::lock_guard<std::mutex> lock(mutex_);
    return failure_;
  }

  const LaunchConfig config;
  const ThreadFunction function;
  void* const* const buffers;
  uint32_t group_size[3];  // min(threadgroup, grid): the dispatched threadgroup size
  uint32_t group_count[3];
  std::vector<uint32_t> group_order;
  std::atomic<uint32_t> next_group{0};
  std::atomic<bool> failed{false};

 private:
  std::mutex mutex_;
  std::string failure_;
};

class Worker;
inline thread_local Worker* current_worker = nullptr;
inline thread_local Lane* current_lane = nullptr;

// threadgroup variables are `static thread_local` (one copy per worker; a worker runs one
// threadgroup at a time) and register here at their declaration so they can be poisoned.
inline thread_local std::vector<std::pair<void*, size_t>> threadgroup_memory;

inline void poison(void* p, size_t n) { std::memset(p, 0xff, n); }

inline void register_threadgroup_memory(void* p, size_t n) {
  for (const auto& region : threadgroup_memory)
    if (region.first == p) return;
  threadgroup_memory.emplace_back(p, n);
  poison(p, n);
}

class Worker {
 public:
  explicit Worker(Dispatch& dispatch) : dispatch_(dispatch) {}

  // Runs threadgroups until none is left or the dispatch failed.
  void run() {
    current_worker = this;
    flush_denormals_to_zero();
    const uint32_t total = uint32_t(dispatch_.group_order.size());
    try {
      for (uint32_t k; !dispatch_.failed.load() && (k = dispatch_.next_group++) < total;)
        run_threadgroup(dispatch_.group_order[k]);
    } catch (const KernelFault& fault) {
      dispatch_.fail(fault.message);
    } catch (const std::exception& error) {
      dispatch_.fail(error.what());
    }
    current_worker = nullptr;
  }

  // Called on a lane's fiber: records the failure and leaves the fiber for good.
  [[noreturn]] void fail_on_fiber(const std::string& message) {
    dispatch_.fail(message);
    for (;;) yield();
  }

  void yield() { FiberContext::switch_to(current_lane->context, scheduler_); }

  void run_lane_body(Lane& lane) {
    dispatch_.function(attributes(lane.index), dispatch_.buffers);
    lane.state = LaneState::done;
  }

 private:
  void run_threadgroup(uint32_t linear) {
    const uint32_t gx = dispatch_.group_count[0], gy = dispatch_.group_count[1];
    position_ = metal::uint3(linear % gx, (linear / gx) % gy, linear / (gx * gy));
    for (int d = 0; d < 3; ++d)
      size_[d] = std::min(dispatch_.group_size[d],
                          dispatch_.config.grid[d] - position_[d] * dispatch_.group_size[d]);
    threads_ = size_[0] * size_[1] * size_[2];
    for (const auto& region : threadgroup_memory) poison(region.first, region.second);
    if (dispatch_.config.uses_fibers) {
      run_fibers(linear);
    } else {
      schedule_order(order_, threads_, schedule(), dispatch_.config.seed, linear);
      for (uint32_t i : order_) dispatch_.function(attributes(i), dispatch_.buffers);
    }
  }

  void run_fibers(uint32_t linear) {
    if (!stacks_ || lanes_.size() < threads_) {
      stacks_ = std::make_unique<StackPool>(threads_);
      lanes_ = std::vector<Lane>(threads_);
    }
    for (uint32_t i = 0; i < threads_; ++i) {
      lanes_[i].index = i;
      lanes_[i].state = LaneState::runnable;
      lanes_[i].context.start(stacks_->top(i), &lanes_[i]);
    }
    for (uint64_t round = 0;; ++round) {
      schedule_order(order_, threads_, schedule(), dispatch_.config.seed,
                     (uint64_t(linear) << 32) + round);
      for (uint32_t i : order_) {
        Lane& lane = lanes_[i];
        if (lane.state != LaneState::runnable) continue;
        current_lane = &lane;
        FiberContext::switch_to(scheduler_, lane.context);
        current_lane = nullptr;
        if (dispatch_.failed.load()) return;
      }
      if (resolve_collectives()) continue;
      if (!release_barrier()) return;
    }
  }

  // Resolves, in every SIMD-group, the lanes waiting at the earliest collective call site.
  bool resolve_collectives() {
    bool resolved = false;
    for (uint32_t first = 0; first < threads_; first += kSimdWidth) {
      const uint32_t end = std::min(threads_, first + kSimdWidth);
      const Lane* earliest = nullptr;
      for (uint32_t i = first; i < end; ++i) {
        const Lane& lane = lanes_[i];
        if (lane.state == LaneState::at_collective &&
            (earliest == nullptr || lane.site.before(earliest->site)))
          earliest = &lane;
      }
      if (earliest == nullptr) continue;
      Lane* active[kSimdWidth] = {};
      const Site site = earliest->site;
      const Collective collective = earliest->collective;
      for (uint32_t i = first; i < end; ++i) {
        Lane& lane = lanes_[i];
        if (lane.state == LaneState::at_collective && lane.site == site &&
            lane.collective == collective)
          active[i - first] = &lane;
      }
      collective(active);
      for (Lane* lane : active)
        if (lane != nullptr) lane->state = LaneState::runnable;
      resolved = true;
    }
    return resolved;
  }

  // Releases the barrier every live thread waits at; false when all threads are done or the
  // threads do not meet at one barrier (then the dispatch has failed).
  bool release_barrier() {
    const Lane* waiting = nullptr;
    uint32_t returned = 0, at_barrier = 0;
    for (uint32_t i = 0; i < threads_; ++i) {
      const Lane& lane = lanes_[i];
      if (lane.state == LaneState::done) {
        ++returned;
        continue;
      }
      ++at_barrier;
      if (waiting == nullptr) {
        waiting = &lane;
      } else if (!(lane.site == waiting->site)) {
        dispatch_.fail("threads of threadgroup " + describe_group() +
                       " wait at different threadgroup_barrier calls: " +
                       waiting->site.describe() + " (thread " + std::to_string(waiting->index) +
                       ") and " + lane.site.describe() + " (thread " +
                       std::to_string(lane.index) + ")");
        return false;
      }
    }
    if (waiting == nullptr) return false;
    if (returned != 0) {
      dispatch_.fail("threadgroup_barrier at " + waiting->site.describe() + " is reached by " +
                     std::to_string(at_barrier) + " threads of threadgroup " + describe_group() +
                     " while " + std::to_string(returned) +
                     " returned before it (undefined behaviour on Metal)");
      return false;
    }
    for (uint32_t i = 0; i < threads_; ++i) lanes_[i].state = LaneState::runnable;
    return true;
  }

  ThreadAttributes attributes(uint32_t index) const {
    ThreadAttributes a;
    const auto& config = dispatch_.config;
    const uint32_t dispatched = dispatch_.group_size[0] * dispatch_.group_size[1] *
                                dispatch_.group_size[2];
    a.dispatch_threads_per_threadgroup =
        metal::uint3(dispatch_.group_size[0], dispatch_.group_size[1], dispatch_.group_size[2]);
    a.dispatch_simdgroups_per_threadgroup = ceil_div(dispatched, kSimdWidth);
    a.dispatch_quadgroups_per_threadgroup = ceil_div(dispatched, kQuadWidth);
    a.grid_origin = metal::uint3(0u);
    a.grid_size = metal::uint3(config.grid[0], config.grid[1], config.grid[2]);
    a.threads_per_grid = a.grid_size;
    a.threadgroups_per_grid = metal::uint3(dispatch_.group_count[0], dispatch_.group_count[1],
                                           dispatch_.group_count[2]);
    a.threads_per_threadgroup = size_;
    a.threadgroup_position_in_grid = position_;
    a.thread_index_in_threadgroup = index;
    a.thread_position_in_threadgroup = metal::uint3(
        index % size_.x, (index / size_.x) % size_.y, index / (size_.x * size_.y));
    a.thread_position_in_grid =
        position_ * a.dispatch_threads_per_threadgroup + a.thread_position_in_threadgroup;
    a.simdgroup_index_in_threadgroup = index / kSimdWidth;
    a.thread_index_in_simdgroup = index % kSimdWidth;
    a.simdgroups_per_threadgroup = ceil_div(threads_, kSimdWidth);
    a.quadgroup_index_in_threadgroup = index / kQuadWidth;
    a.thread_index_in_quadgroup = index % kQuadWidth;
    a.quadgroups_per_threadgroup = ceil_div(threads_, kQuadWidth);
    a.thread_execution_width = kSimdWidth;
    a.threads_per_simdgroup = kSimdWidth;
    return a;
  }

  Schedule schedule() const { return Schedule(dispatch_.config.schedule); }

  std::string describe_group() const {
    return "(" + std::to_string(position_.x) + ", " + std::to_string(position_.y) + ", " +
           std::to_string(position_.z) + ")";
  }

  Dispatch& dispatch_;
  FiberContext scheduler_;
  std::unique_ptr<StackPool> stacks_;
  std::vector<Lane> lanes_;
  std::vector<uint32_t> order_;
  metal::uint3 position_;
  metal::uint3 size_;
  uint32_t threads_ = 0;
};

// Reports a kernel error: from a fiber by leaving it, from a plain call by unwinding.
[[noreturn]] inline void fail(const std::string& message) {
  if (current_lane != nullptr) current_worker->fail_on_fiber(message);
  throw KernelFault{message};
}

inline Lane& lane_for(const char* function) {
  if (current_lane == nullptr)
    fail(std::string(function) +
         " was called, but the emulator found no barrier or SIMD-group function in the "
         "kernel's text and ran it without fibers");
  return *current_lane;
}

// Runs the whole dispatch; returns 0, or 1 with a message in `error`.
inline int launch(const LaunchConfig& config, ThreadFunction function, void* const* buffers,
                  char* error, size_t error_size) {
  Dispatch dispatch(config, function, buffers);
  std::vector<std::thread> workers;
  const int count = std::max(1, config.workers);
  for (int w = 0; w < count; ++w) workers.emplace_back([&dispatch] { Worker(dispatch).run(); });
  for (auto& worker : workers) worker.join();
  if (!dispatch.failed.load()) return 0;
  std::snprintf(error, error_size, "%s", dispatch.failure().c_str());
  return 1;
}

}  // namespace metal_emu

extern "C" [[noreturn]] void metal_emu_fiber_main(void* argument) {
  auto& lane = *static_cast<metal_emu::Lane*>(argument);
  metal_emu::current_worker->run_lane_body(lane);
  for (;;) metal_emu::current_worker->yield();
}

namespace metal {

inline void threadgroup_barrier(mem_flags,
                                std::source_location where = std::source_location::current()) {
  metal_emu::Lane& lane = metal_emu::lane_for("threadgroup_barrier");
  lane.site = metal_emu::Site::at(where);
  lane.state = metal_emu::LaneState::at_barrier;
  metal_emu::current_worker->yield();
}

}  // namespace metal
