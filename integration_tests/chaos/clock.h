// Per-process wall clocks for the chaos suite's clock faults: each node runs
// under libfaketime (Debian's `libfaketime`), reading its offset from a file
// of its own, which the nemesis rewrites to make that node's wall clock jump
// or drift away from the others'. The monotonic clock is left alone
// (FAKETIME_DONT_FAKE_MONOTONIC=1), as on a real machine whose clock is
// stepped by NTP or an operator.
//
// Next to libfaketime every node also preloads //integration_tests/chaos:
// clock_skew_shim, which moves Abseil's futex deadlines onto the kernel's clock
// (see clock_skew_shim.cc for why that is needed to make the fault faithful).
//
//   ClockSkew clock = *ClockSkew::Create(dir, {"controller-1", "broker-1"}, shim);
//   options.node_env["broker-1"] = clock.EnvFor("broker-1");
//   clock.Set("broker-1", absl::Seconds(-90));  // its clock steps back 90 s
//   clock.ResetAll();                           // every clock right again
#ifndef FJORD_INTEGRATION_TESTS_CHAOS_CLOCK_H_
#define FJORD_INTEGRATION_TESTS_CHAOS_CLOCK_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "integration_tests/cluster.h"  // EnvVars

namespace fjord::testing::chaos {

// Debian's multi-threaded libfaketime.
inline constexpr char kLibFaketime[] =
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

class ClockSkew {
 public:
  // Writes a "+0" offset file per node into `dir` (created). FAILED_PRECONDITION
  // naming the package when libfaketime or the shim (`shim_path`) is missing.
  static absl::StatusOr<std::unique_ptr<ClockSkew>> Create(
      const std::string& dir, const std::vector<std::string>& nodes,
      const std::string& shim_path);

  // The environment that puts `node` under its own clock.
  EnvVars EnvFor(const std::string& node) const;

  // Sets `node`'s wall clock to the real time plus `offset` (whole seconds;
  // the file is replaced atomically). Every process reads its file again at
  // most a second later (FAKETIME_CACHE_DURATION=1).
  absl::Status Set(const std::string& node, absl::Duration offset);
  // Every node's offset back to zero.
  absl::Status ResetAll();

 private:
  ClockSkew(std::string dir, std::vector<std::string> nodes,
            std::string shim_path);
  std::string FileOf(const std::string& node) const;

  std::string dir_;
  std::vector<std::string> nodes_;
  std::string shim_path_;
};

// "+90s", "-15s": the offset as libfaketime reads it.
std::string FaketimeOffset(absl::Duration offset);

}  // namespace fjord::testing::chaos

#endif  // FJORD_INTEGRATION_TESTS_CHAOS_CLOCK_H_
