// The checker of a chaos run: judges an operation history (history.h) against
// a final read of every partition from offset 0, taken after every fault was
// healed and the partitions had leaders again.
//
// What it counts (per run; "value" means a topic's unique record value):
//
//   acked             distinct values with at least one ok produce.
//   lost              acked values absent from the final read of their
//                     partition. acks=all promises they survive.
//   unexpected        values read (final or mid-run) on a partition that no
//                     produce ever sent them to.
//   read_from_failed  values read although every produce of them definitely
//                     failed (see history.h for what "definitely" means).
//   duplicated        values at more than one offset of the final read (a
//                     retry of an indeterminate produce that had in fact been
//                     appended). Allowed until the idempotent producer exists;
//                     counted, never a failure.
//   double_valued     offsets seen with two different values: an ok produce's
//                     offset holding another value in the final read, or a
//                     mid-run read of committed records disagreeing with the
//                     final read (including records it saw that are gone).
//   reordered         pairs of values acknowledged one after the other by one
//                     sequential producer (process) on one partition whose
//                     first offsets in the final read are in the opposite
//                     order.
//   offset_gaps       final-read records whose offset is not the previous one
//                     plus one (the log starts at 0; no retention runs).
//   recovery          per healed fault: the time from the heal to the first ok
//                     produce on every partition that was written after it
//                     (the slowest partition counts); -1 and `unrecovered` when
//                     some partition never took a write again.
//
// Every anomaly but duplicates fails the run (valid() is false).
#ifndef FJORD_INTEGRATION_TESTS_CHAOS_CHECKER_H_
#define FJORD_INTEGRATION_TESTS_CHAOS_CHECKER_H_

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "integration_tests/chaos/history.h"

namespace fjord::testing::chaos {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;

  auto operator<=>(const TopicPartition&) const = default;
};

// Every committed record of each partition, from offset 0 up to the high
// watermark, in offset order.
using FinalReads = std::map<TopicPartition, std::vector<ReadRecord>>;

struct Recovery {
  int fault_index = 0;
  std::string kind;
  std::string target;
  // Heal to the first ok produce on the slowest partition; -1 if some
  // partition written after the heal never acknowledged a write again.
  int64_t recovery_ms = -1;
  std::string slowest;  // "topic/partition"
};

struct CheckResult {
  int64_t produce_ops = 0;
  int64_t read_ops = 0;
  int64_t acked = 0;
  int64_t indeterminate = 0;  // values with no ok and some unknown outcome
  int64_t failed = 0;         // values whose every produce definitely failed
  int64_t records_read = 0;   // in the final read

  int64_t lost = 0;
  int64_t unexpected = 0;
  int64_t read_from_failed = 0;
  int64_t duplicated = 0;
  int64_t double_valued = 0;
  int64_t reordered = 0;
  int64_t offset_gaps = 0;
  int64_t unrecovered = 0;
  int64_t max_recovery_ms = 0;
  // Set by the caller from the group checker (group_checker.h): partitions two
  // group members owned at once. 0 when the run had no group consumers.
  int64_t double_owned = 0;
  std::vector<Recovery> recoveries;

  // One line per anomaly instance (duplicates included), at most 20 per kind,
  // e.g. "lost: orders/1 value=p1-17 acked at offset 17 by op 342".
  std::vector<std::string> details;

  // No anomaly but duplicates. Unrecovered faults count as anomalies: after a
  // heal the cluster must take acks=all writes again.
  bool valid() const;

  // `run seed=S faults=F acked=N lost=L unexpected=U duplicated=D reordered=R
  // double_owned=O max_recovery_ms=M`. The counters the line has no field for (read_from_failed,
  // double_valued, offset_gaps, unrecovered) are in Report().
  std::string Summary(uint64_t seed, int faults) const;
  // Every counter, each recovery and the details, several lines.
  std::string Report() const;
};

CheckResult Check(const std::vector<Op>& ops, const FinalReads& final_reads,
                  const std::vector<FaultRecord>& faults);

}  // namespace fjord::testing::chaos

#endif  // FJORD_INTEGRATION_TESTS_CHAOS_CHECKER_H_
