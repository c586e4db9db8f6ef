// What every chaos test does around a run: find runfiles, wait for partition
// leaders, read partitions back until their end is stable, and dump a history
// for a failed run. Shared by chaos_test and partition_test.
#ifndef FJORD_INTEGRATION_TESTS_CHAOS_RUN_SUPPORT_H_
#define FJORD_INTEGRATION_TESTS_CHAOS_RUN_SUPPORT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "integration_tests/chaos/checker.h"
#include "integration_tests/chaos/history.h"
#include "integration_tests/chaos/workload.h"
#include "integration_tests/cluster.h"

namespace fjord::testing::chaos {

// $TEST_SRCDIR/$TEST_WORKSPACE/<path>, or <path> outside Bazel.
std::string Runfile(const std::string& path);

// A fresh 3-controller, 3-broker cluster's options: the binaries from the
// runfiles, DESIGN.md's test timings (3 s sessions and replica lag), `topics`
// ("name:partitions:replicas,...") created at start, nodes under
// $FJORD_CHAOS_DIR (kept after the test) or $TEST_TMPDIR, in `name`, which is
// emptied first (a Cluster reuses the data it finds).
ClusterOptions ChaosClusterOptions(const std::string& name, const std::string& topics);

// Broker id -> "host:port", for a ChaosClient.
std::map<int, std::string> BrokerAddresses(const Cluster& cluster);

// The standard workload: one unique-value producer per partition of `topic`,
// two keyed producers on `keyed_topic` (keys k0..k7) and a reader of both
// every 500 ms. Returns the next free process number.
int StartProducersAndReader(Workload& workload, const std::string& topic,
                            const std::string& keyed_topic, int partitions);

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
