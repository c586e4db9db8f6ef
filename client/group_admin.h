// Consumer group administration: list, describe and delete groups, read and
// overwrite their committed offsets, and look up partition offsets to compute
// lag or new positions (what `fjord group ...` needs).
#ifndef FJORD_CLIENT_GROUP_ADMIN_H_
#define FJORD_CLIENT_GROUP_ADMIN_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/cluster.h"
#include "fjord/v1/fetch.pb.h"
#include "fjord/v1/group.pb.h"

namespace fjord::client {

struct GroupListing {
  std::string group_id;
  fjord::v1::GroupState state = fjord::v1::GROUP_STATE_UNSPECIFIED;
  int32_t members = 0;
  // The broker that coordinates it.
  int32_t coordinator_id = -1;
};

struct GroupList {
  // Sorted by group id; a group listed by two brokers (its coordinator moving
  // while we ask) appears once, from the lower broker id.
  std::vector<GroupListing> groups;
  // Brokers that did not answer, by id: their groups are missing.
  std::map<int32_t, absl::Status> failed;
};

// "EMPTY", "STABLE", ... ("UNKNOWN" for anything else).
std::string GroupStateName(fjord::v1::GroupState state);

// Synchronous and thread-safe. Calls that go to a group's coordinator find it
// first and follow it when it moves (see GroupCoordinator), retrying
// retriable errors until `timeout` after the call began; errors carry the
// broker's code and message, prefixed with what was being done.
class GroupAdmin {
 public:
  explicit GroupAdmin(std::shared_ptr<Cluster> cluster,
                      absl::Duration timeout = absl::Seconds(30));

  // ListGroups at every broker the metadata lists, merged. Errors: the
  // metadata request's, or UNAVAILABLE when no broker answered.
  absl::StatusOr<GroupList> ListGroups();

  // The group's state, members and committed offsets, at its coordinator.
  // NOT_FOUND (UNKNOWN_GROUP) when it has neither members nor offsets;
  // INVALID_ARGUMENT for a bad group id.
  absl::StatusOr<fjord::v1::DescribeGroupResponse> DescribeGroup(
      const std::string& group_id);

  // Deletes an empty group and its offsets. FAILED_PRECONDITION
  // (GROUP_NOT_EMPTY) while it has members; NOT_FOUND (UNKNOWN_GROUP).
  absl::Status DeleteGroup(const std::string& group_id);

  // The group's committed offsets for `partitions` (empty: every partition
  // with one); partitions without a committed offset are absent.
  absl::StatusOr<std::map<TopicPartition, fjord::v1::CommittedOffset>>
  FetchOffsets(const std::string& group_id,
               const std::vector<TopicPartition>& partitions = {});

  // Overwrites committed offsets from outside the group's membership (member
  // "" with epoch -1), all or none. FAILED_PRECONDITION (GROUP_NOT_EMPTY)
  // while the group has members; OUT_OF_RANGE (beyond the high watermark, or
  // negative); NOT_FOUND (unknown topic or partition).
  absl::Status CommitOffsets(const std::string& group_id,
                             const std::map<TopicPartition, int64_t>& offsets);

  // ListOffsets for each partition at its leader (EARLIEST: the log start;
  // LATEST: the high watermark; TIMESTAMP: the first offset whose timestamp
  // is >= timestamp_ms, else the high watermark). A leader that moved is
  // asked again once after a metadata refresh. Each partition has its own
  // answer or error.
  std::map<TopicPartition, absl::StatusOr<int64_t>> ListOffsets(
      const std::vector<TopicPartition>& partitions,
      fjord::v1::ListOffsetsRequest::Spec spec, int64_t timestamp_ms = 0);

 private:
  const std::shared_ptr<Cluster> cluster_;
  const absl::Duration timeout_;
};

}  // namespace fjord::client

#endif  // FJORD_CLIENT_GROUP_ADMIN_H_
