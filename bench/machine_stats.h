// What the benchmarks read off the machine they run on (all from /proc), so
// every figure is printed with its context.
#ifndef FJORD_BENCH_MACHINE_STATS_H_
#define FJORD_BENCH_MACHINE_STATS_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"

namespace fjord::bench {

// The CPU's "model name" from /proc/cpuinfo, or "unknown".
std::string CpuModel();

// The 1, 5 and 15 minute load averages ("0.12 0.30 0.45"): other work on the
// machine skews figures.
std::string LoadAverage();

// CPU seconds (user + system) process `pid` has used; 0 when it is gone.
double ProcessCpuSeconds(pid_t pid);

// CPU seconds this process has used (getrusage).
double SelfCpuSeconds();

// Busy CPU seconds of the whole machine since boot: every state in the first
// line of /proc/stat except idle and iowait.
double MachineCpuSeconds();

// A fresh directory named `name`-XXXXXX under `dir`, or under $TMPDIR (else
// /tmp) when `dir` is empty: where a benchmark puts its data and logs. The
// error names the parent directory and the reason.
absl::StatusOr<std::string> MakeScratchDir(const std::string& dir, const std::string& name);

}  // namespace fjord::bench

#endif  // FJORD_BENCH_MACHINE_STATS_H_
