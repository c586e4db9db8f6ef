// The clock for timeouts.
//
// The wall clock (absl::Now) can jump: NTP steps it, an operator sets it, a
// virtual machine resumes, the chaos suite skews it with libfaketime. A
// session, lag, election or request timeout measured on it fires early or
// late by the jump, and on a forward jump every such timer in the process
// fires at once (the chaos suite's clock faults expired every consumer's
// session that way). So every duration Fjord waits for or judges by is
// measured on the monotonic clock; the wall clock is kept for timestamps
// people and clients read (record timestamps, commit times, logs).
//
// MonotonicNow() is an absl::Time on CLOCK_MONOTONIC's scale: its epoch is
// arbitrary (boot), so it compares only with other MonotonicNow() values.
// Never mix the two clocks; convert with WallDeadline() where an API takes a
// wall-clock deadline (Abseil's timed waits, gRPC deadlines).
#ifndef FJORD_COMMON_CLOCK_H_
#define FJORD_COMMON_CLOCK_H_

#include <chrono>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fjord {

inline absl::Time MonotonicNow() {
  return absl::UnixEpoch() +
         absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

// The wall-clock instant as far from now as the monotonic `deadline` is
// (InfiniteFuture / InfinitePast stay infinite).
inline absl::Time WallDeadline(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture() || deadline == absl::InfinitePast()) {
    return deadline;
  }
  return absl::Now() + (deadline - MonotonicNow());
}

// The monotonic instant as far from now as the wall-clock `deadline` is (a
// gRPC context's deadline, for instance).
inline absl::Time MonotonicDeadline(absl::Time wall_deadline) {
  if (wall_deadline == absl::InfiniteFuture() ||
      wall_deadline == absl::InfinitePast()) {
    return wall_deadline;
  }
  return MonotonicNow() + (wall_deadline - absl::Now());
}

}  // namespace fjord

#endif  // FJORD_COMMON_CLOCK_H_
