// What every chaos test does around a run: find runfiles, wait for partition
// leaders, read partitions back until their end is stable, and dump a history
// for a failed run. Shared by chaos_test and partition_test.
#ifndef FJORD_INTEGRATION_TESTS_CHAOS_RUN_SUPPORT_H_
#define FJORD_INTEGRATION_TESTS_CHAOS_RUN_SUPPORT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "integration_tests/chaos/checker.h"
#include "integration_tests/chaos/history.h"
#include "integration_tests/chaos/workload.h"

namespace fjord::testing::chaos {

// $TEST_SRCDIR/$TEST_WORKSPACE/<path>, or <path> outside Bazel.
std::string Runfile(const std::string& path);

// Waits until every partition of `topics` (each with `partitions`) has a leader
// and, when `full_isr`, all 3 replicas in sync. False at the deadline.
bool WaitForLeaders(ChaosClient& client, const std::vector<std::string>& topics, int partitions,
                    bool full_isr, absl::Duration timeout);

struct FinalRead {
  std::vector<ReadRecord> records;
  int leader = 0;
  int64_t first_end = 0;  // where the first read ended
  int first_leader = 0;
};

// Reads a partition from offset 0 (retrying unavailable reads for 30 s), then
// again every second until two reads in a row end at the same offset (at most
// 10 s more): a new leader's high watermark may still be catching up.
absl::StatusOr<FinalRead> ReadUntilStable(ChaosClient& client, const std::string& topic, int p);

// ReadUntilStable for every partition of `topics` into `out`, logging each
// (with `log_prefix`) and marking reads whose end moved as LATE. False, with a
// test failure, when a partition cannot be read.
bool ReadAll(ChaosClient& client, const std::vector<std::string>& topics, int partitions,
             const std::string& log_prefix, FinalReads* out);

// Writes the history, one operation per line, and the faults to
// $TEST_UNDECLARED_OUTPUTS_DIR/<name>-history.txt (or /tmp).
void DumpHistory(const History& history, const std::string& name);

}  // namespace fjord::testing::chaos

#endif  // FJORD_INTEGRATION_TESTS_CHAOS_RUN_SUPPORT_H_
