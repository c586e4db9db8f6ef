// The group checker of a chaos run: judges what consumers in one group saw
// (group_workload.h) against the final read of the topic and the group's final
// committed offsets.
//
//   double_owned        two consumer instances owning one partition at
//                       overlapping times. Ownership is observed after each
//                       Poll() (a consumer's partitions change only inside
//                       Poll()), so an observed run of polls owning a partition
//                       lies within the real ownership: overlapping runs prove
//                       overlapping ownership.
//                       A run of ownership ends with a Poll after which the
//                       consumer no longer owns the partition, or during
//                       which it released it (revoked or lost, seen through
//                       the rebalance callbacks); owning it again starts a
//                       new run.
//   skipped / backwards within one run of ownership, a record whose offset is
//                       not the previous one plus one (skipped) or not above it
//                       (backwards).
//   commit_regressions  a new owner's first record below an offset committed
//                       (and acknowledged) for the partition before it took the
//                       partition over: a commit lost or gone back.
//   final_commit_behind the group's final committed offset below an
//                       acknowledged commit.
//   missed              records of the final read that no consumer ever
//                       returned (the consumers were given time to catch up).
#ifndef FJORD_INTEGRATION_TESTS_CHAOS_GROUP_CHECKER_H_
#define FJORD_INTEGRATION_TESTS_CHAOS_GROUP_CHECKER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "integration_tests/chaos/group_workload.h"
#include "integration_tests/chaos/history.h"

namespace fjord::testing::chaos {

struct GroupCheckResult {
  int64_t consumers = 0;
  int64_t polls = 0;
  int64_t records_returned = 0;
  int64_t commits = 0;
  int64_t handovers = 0;  // runs of ownership that began after another consumer's

  int64_t double_owned = 0;
  int64_t skipped = 0;
  int64_t backwards = 0;
  int64_t commit_regressions = 0;
  int64_t final_commit_behind = 0;
  int64_t missed = 0;
  std::vector<std::string> details;

  bool valid() const;
  std::string Report() const;
};

// `final_read`: partition -> every committed record from offset 0.
// `final_committed`: partition -> the group's committed offset at the end.
GroupCheckResult CheckGroup(const std::vector<GroupPoll>& polls,
                            const std::vector<GroupCommit>& commits,
                            const std::map<int32_t, std::vector<ReadRecord>>& final_read,
                            const std::map<int32_t, int64_t>& final_committed);

}  // namespace fjord::testing::chaos

#endif  // FJORD_INTEGRATION_TESTS_CHAOS_GROUP_CHECKER_H_
