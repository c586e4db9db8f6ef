// The consumer-group side of a chaos run: consumers in one group (the C++
// client's Consumer with Subscribe) reading a topic and committing what each
// Poll() returned, while the nemesis runs. Each consumer is closed and
// recreated now and then (a new member: a rebalance). Everything they see is
// logged for the group checker (group_checker.h): what each consumer owned after
// every Poll(), the records it returned, and every commit that succeeded.
#ifndef FJORD_INTEGRATION_TESTS_CHAOS_GROUP_WORKLOAD_H_
#define FJORD_INTEGRATION_TESTS_CHAOS_GROUP_WORKLOAD_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "integration_tests/chaos/history.h"

namespace fjord::testing::chaos {

// What one consumer instance saw when one Poll() returned.
struct GroupPoll {
  // The consumer instance (a recreated consumer is a new one).
  int consumer = 0;
  absl::Time at;
  // Partitions of the topic it owned after the Poll.
  std::set<int32_t> owned;
  // Partitions of the topic it released during the Poll (the rebalance
  // callbacks: revoked or lost), before the Poll's records were handed out.
  // Owned again after the Poll means taken on anew: a new run of ownership
  // (after a lost membership it restarts from the committed offset).
  std::set<int32_t> released;
  // The records the Poll returned: partition, record.
  std::vector<std::pair<int32_t, ReadRecord>> records;
};

// A commit the coordinator acknowledged.
struct GroupCommit {
  int consumer = 0;
  int32_t partition = 0;
  int64_t offset = 0;  // the next offset to read
  absl::Time at;       // when the acknowledgement arrived
};

// Thread-safe.
class GroupLog {
 public:
  void AddPoll(GroupPoll poll);
  void AddCommit(GroupCommit commit);
  std::vector<GroupPoll> polls() const;
  std::vector<GroupCommit> commits() const;
  // The highest offset any consumer returned per partition, plus one.
  std::map<int32_t, int64_t> read_ends() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<GroupPoll> polls_ ABSL_GUARDED_BY(mu_);
  std::vector<GroupCommit> commits_ ABSL_GUARDED_BY(mu_);
  std::map<int32_t, int64_t> read_ends_ ABSL_GUARDED_BY(mu_);
};

struct GroupWorkloadOptions {
  std::string bootstrap;  // brokers, "host:port,..."
  std::string topic;
  std::string group;
  int consumers = 2;
  // Each consumer closes and starts again as a new member after about this long
  // (staggered per consumer), for rebalances during the run.
  absl::Duration lifetime = absl::Seconds(20);
  // Longer than a coordinator failover, so members are not expired by one.
  absl::Duration session_timeout = absl::Seconds(10);
};

class GroupWorkload {
 public:
  GroupWorkload(GroupWorkloadOptions options, GroupLog* log) : options_(std::move(options)), log_(log) {}
  ~GroupWorkload() { Stop(); }

  // Starts the consumer threads.
  void Start();
  // Waits until the consumers have returned every partition's records below
  // `ends` (partition -> end offset), at most `timeout`. False at the deadline.
  bool WaitCaughtUp(const std::map<int32_t, int64_t>& ends, absl::Duration timeout) const;
  // Closes every consumer (a leave) and joins the threads.
  void Stop();
  // The group's committed offsets now (partition -> offset), through
  // GroupService at the group's coordinator.
  absl::StatusOr<std::map<int32_t, int64_t>> Committed() const;

 private:
  void Run(int slot);

  const GroupWorkloadOptions options_;
  GroupLog* const log_;
  std::atomic<bool> stop_{false};
  std::atomic<int> next_consumer_{0};
  std::vector<std::thread> threads_;
};

}  // namespace fjord::testing::chaos

#endif  // FJORD_INTEGRATION_TESTS_CHAOS_GROUP_WORKLOAD_H_
