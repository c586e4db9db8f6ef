// A preload library used next to libfaketime in the chaos suite's clock faults
// (integration_tests/chaos/clock.h). Test-only; never loaded by a production
// start-up.
//
// libfaketime shifts the wall clock a process sees through libc
// (clock_gettime, gettimeofday, pthread_cond_timedwait, ...), but not through
// the raw futex system call. Abseil 20220623 (Debian 12) implements every
// timed wait (Mutex::AwaitWithDeadline, CondVar::WaitWithTimeout, ...) as a
// FUTEX_WAIT_BITSET with an absolute CLOCK_REALTIME deadline computed from the
// faked clock, so under libfaketime alone the kernel, which was not told about
// the skew, waits the skew longer (ahead) or not at all (behind): every timed
// wait in the process breaks permanently. That is an artifact of the tool, not
// what a skewed machine does (there the kernel and the process agree on the
// time), and it would hide the effects the fault is meant to show.
//
// This shim intercepts syscall(SYS_futex, ...) with FUTEX_CLOCK_REALTIME and
// an absolute deadline and moves the deadline from the faked clock to the
// kernel's by the current skew (faked now - real now), so a wait lasts what
// the process asked for. Everything else passes through unchanged.
//
// Load order: LD_PRELOAD="<this>.so <libfaketimeMT.so.1>"; clock_gettime here
// resolves to libfaketime's (the faked clock), the real time is read with the
// raw system call.

#include <dlfcn.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <time.h>

#include <atomic>
#include <cstdint>

namespace {

using SyscallFn = long (*)(long, ...);

SyscallFn RealSyscall() {
  static std::atomic<SyscallFn> real{nullptr};
  SyscallFn fn = real.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = reinterpret_cast<SyscallFn>(dlsym(RTLD_NEXT, "syscall"));
    real.store(fn, std::memory_order_release);
  }
  return fn;
}

int64_t ToNanos(const timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// Faked wall clock minus the kernel's, in nanoseconds.
int64_t SkewNanos() {
  timespec faked{};
  timespec real{};
  clock_gettime(CLOCK_REALTIME, &faked);  // libfaketime's, when preloaded
  RealSyscall()(SYS_clock_gettime, CLOCK_REALTIME, &real);
  return ToNanos(faked) - ToNanos(real);
}

}  // namespace

extern "C" long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (long& arg : a) arg = va_arg(ap, long);
  va_end(ap);

  if (number == SYS_futex) {
    const int op = static_cast<int>(a[1]);
    const int cmd = op & FUTEX_CMD_MASK;
    auto* deadline = reinterpret_cast<const timespec*>(a[3]);
    if ((op & FUTEX_CLOCK_REALTIME) != 0 && deadline != nullptr &&
        (cmd == FUTEX_WAIT_BITSET || cmd == FUTEX_LOCK_PI2)) {
      int64_t nanos = ToNanos(*deadline) - SkewNanos();
      if (nanos < 0) nanos = 0;
      timespec moved{static_cast<time_t>(nanos / 1000000000),
                     static_cast<long>(nanos % 1000000000)};
      return RealSyscall()(number, a[0], a[1], a[2], &moved, a[4], a[5]);
    }
  }
  return RealSyscall()(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
