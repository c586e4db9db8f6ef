// GroupMembership: the members of one consumer group, their epochs and
// assignments, and the rules that move partitions between them (Kafka's KIP-848
// consumer protocol, run by the coordinator). Pure state: no I/O, no clock of its
// own, no locking. The coordinator copies it, applies a request to the copy,
// persists the copy when it changed (GroupMetadataValue), and only then keeps it.
//
// Epochs. The group epoch increases whenever the membership, a subscription or a
// subscribed topic's partition count changes; the target assignment is then
// recomputed by the group's assignor and stamped with that epoch. Each member has
// its own epoch, which reaches the target epoch once it has released whatever the
// new target took from it.
//
// Ownership. `assigned` is what the coordinator lets a member own. A partition
// leaves a member's `assigned` only when the member's heartbeat reports it no
// longer owns it (or the member is removed), and enters another member's only when
// no member has it in `assigned`. So no partition is ever owned by two members.
#ifndef FJORD_BROKER_GROUP_MEMBERSHIP_H_
#define FJORD_BROKER_GROUP_MEMBERSHIP_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "broker/group/assignor.h"
#include "fjord/internal/v1/group_records.pb.h"
#include "fjord/v1/group.pb.h"

namespace fjord::broker::group {

struct Member {
  std::string member_id;
  std::string instance_id;
  int32_t member_epoch = 0;
  // The epoch before the last bump: a member whose answer was lost may still use
  // it once (KIP-848 lets it, when it owns nothing it should not).
  int32_t previous_epoch = -1;
  std::vector<std::string> subscribed;  // sorted, unique
  Assignment assigned;
  int32_t session_timeout_ms = 0;
  // A static member that left with epoch -2: its partitions wait for it.
  bool departed = false;
  // When the coordinator removes it unless it heartbeats (not persisted: a new
  // coordinator gives every member a full session).
  absl::Time deadline;
};

// Bounds the coordinator enforces on members.
struct MembershipLimits {
  int32_t default_session_timeout_ms = 45000;
  int32_t min_session_timeout_ms = 1000;
  int32_t max_session_timeout_ms = 300000;
  int32_t max_heartbeat_interval_ms = 5000;
  // Most topics one member may subscribe to.
  int32_t max_subscribed_topics = 1000;
};

// Partition count of a topic, 0 when it does not exist.
using PartitionCountFn = std::function<int32_t(const std::string& topic)>;

// Generates member ids (the coordinator's is random; tests use a counter).
using MemberIdFn = std::function<std::string()>;

class GroupMembership {
 public:
  explicit GroupMembership(std::string group_id) : group_id_(std::move(group_id)) {}

  // Applies one heartbeat (join, stay, leave). `changed` is set when the
  // persistent state changed (then it must be written before the answer is
  // sent). Errors: INVALID_ARGUMENT (bad request), FAILED_PRECONDITION with
  // UNKNOWN_MEMBER_ID or FENCED_MEMBER_EPOCH.
  absl::StatusOr<fjord::v1::GroupHeartbeatResponse> Heartbeat(
      const fjord::v1::GroupHeartbeatRequest& request, const MembershipLimits& limits,
      const PartitionCountFn& partitions, const MemberIdFn& new_member_id, absl::Time now,
      bool* changed);

  // Removes members whose session expired. True when any was removed. Every
  // `now` given to this class must come from one clock: the coordinator uses
  // the monotonic one (common/clock.h), so a wall-clock jump expires no session.
  bool ExpireMembers(absl::Time now, const PartitionCountFn& partitions);

  // Whether `member_id` at `member_epoch` may commit offsets for `topic`
  // partitions: the member exists, its epoch is current (or older, if it still
  // owns the partitions), and it owns every partition. An empty member id with
  // epoch -1 is an admin commit, allowed only while the group has no members.
  absl::Status CheckCommit(absl::string_view member_id, int32_t member_epoch,
                           const std::vector<std::pair<std::string, int32_t>>& partitions) const;

  const std::string& group_id() const { return group_id_; }
  bool empty() const { return members_.empty(); }
  int32_t group_epoch() const { return group_epoch_; }
  const std::string& assignor() const { return assignor_; }
  const std::map<std::string, Member>& members() const { return members_; }
  const Assignment& Target(const std::string& member_id) const;
  fjord::v1::GroupState state() const;

  // Persistence.
  fjord::internal::v1::GroupMetadataValue ToRecord() const;
  // Replaces this state with `record`; every member gets a fresh session from `now`.
  void FromRecord(const fjord::internal::v1::GroupMetadataValue& record, absl::Time now);

  // Heartbeat interval for a member with this session timeout.
  static int32_t HeartbeatIntervalMs(int32_t session_timeout_ms, const MembershipLimits& limits);

 private:
  // Bumps the group epoch when the subscribed topics' partition counts changed.
  void CheckPartitionCounts(const PartitionCountFn& partitions);
  // Recomputes the target assignment if it is older than the group epoch.
  void MaybeAssign();
  // Moves `member` towards its target as far as ownership allows; `owned` is what
  // it reported owning (null when unknown).
  bool Reconcile(Member& member, const Assignment* owned);
  void RemoveMember(const std::string& member_id);

  std::string group_id_;
  int32_t group_epoch_ = 0;
  std::string assignor_;
  std::map<std::string, Member> members_;
  std::map<std::string, Assignment> targets_;
  int32_t target_epoch_ = 0;
  PartitionCounts partition_counts_;
};

// Conversions between Assignment and its proto forms.
Assignment FromProto(const google::protobuf::RepeatedPtrField<fjord::v1::TopicPartitions>& in);
void ToProto(const Assignment& in,
             google::protobuf::RepeatedPtrField<fjord::v1::TopicPartitions>* out);

}  // namespace fjord::broker::group

#endif  // FJORD_BROKER_GROUP_MEMBERSHIP_H_
