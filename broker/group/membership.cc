#include "broker/group/membership.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/errors.h"
#include "broker/topic_config.h"
#include "common/status_macros.h"

namespace fjord::broker::group {
namespace {

using fjord::v1::ErrorInfo;

// How often a member with work to do (partitions to release or to receive) is
// asked to heartbeat.
constexpr int32_t kReconcilingHeartbeatMs = 200;

absl::Status Invalid(std::string message) {
  return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::INVALID_REQUEST,
                   std::move(message));
}

bool Contains(const Assignment& a, const std::string& topic, int32_t partition) {
  auto it = a.find(topic);
  return it != a.end() && it->second.contains(partition);
}

// Whether every partition of `a` is in `b`.
bool SubsetOf(const Assignment& a, const Assignment& b) {
  for (const auto& [topic, partitions] : a) {
    for (int32_t p : partitions) {
      if (!Contains(b, topic, p)) return false;
    }
  }
  return true;
}

Assignment Intersect(const Assignment& a, const Assignment& b) {
  Assignment out;
  for (const auto& [topic, partitions] : a) {
    for (int32_t p : partitions) {
      if (Contains(b, topic, p)) out[topic].insert(p);
    }
  }
  return out;
}

std::vector<std::string> SortedUnique(const google::protobuf::RepeatedPtrField<std::string>& in) {
  std::vector<std::string> out(in.begin(), in.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

Assignment FromProto(const google::protobuf::RepeatedPtrField<fjord::v1::TopicPartitions>& in) {
  Assignment out;
  for (const fjord::v1::TopicPartitions& tp : in) {
    for (int32_t p : tp.partitions()) out[tp.topic()].insert(p);
  }
  return out;
}

void ToProto(const Assignment& in,
             google::protobuf::RepeatedPtrField<fjord::v1::TopicPartitions>* out) {
  for (const auto& [topic, partitions] : in) {
    if (partitions.empty()) continue;
    fjord::v1::TopicPartitions* tp = out->Add();
    tp->set_topic(topic);
    for (int32_t p : partitions) tp->add_partitions(p);
  }
}

int32_t GroupMembership::HeartbeatIntervalMs(int32_t session_timeout_ms,
                                             const MembershipLimits& limits) {
  // About ten heartbeats per session (Kafka: 5 s in a 45 s session), so a member
  // that misses a few is not removed, and free partitions reach the others
  // soon after a member expires.
  return std::clamp(session_timeout_ms / 10, 100, limits.max_heartbeat_interval_ms);
}

absl::StatusOr<fjord::v1::GroupHeartbeatResponse> GroupMembership::Heartbeat(
    const fjord::v1::GroupHeartbeatRequest& req, const MembershipLimits& limits,
    const PartitionCountFn& partitions, const MemberIdFn& new_member_id, absl::Time now,
    bool* changed) {
  *changed = false;
  fjord::v1::GroupHeartbeatResponse response;
  const int32_t epoch = req.member_epoch();
  if (epoch < -2) {
    return Invalid(absl::StrCat("member_epoch ", epoch,
                                " is invalid: use 0 to join, -1 or -2 to leave, or the "
                                "epoch the coordinator gave"));
  }
  if (epoch != 0 && req.member_id().empty()) {
    return Invalid(absl::StrCat("member_epoch ", epoch,
                                " needs the member_id the coordinator gave at join"));
  }
  if (req.member_id().size() > 255 || req.instance_id().size() > 249) {
    return Invalid("member_id is limited to 255 characters and instance_id to 249");
  }

  // Leaving.
  if (epoch < 0) {
    response.set_member_id(req.member_id());
    response.set_member_epoch(epoch);
    auto it = members_.find(req.member_id());
    if (it == members_.end()) return response;  // already gone: nothing to do
    if (epoch == -2 && !it->second.instance_id.empty()) {
      it->second.departed = true;
      it->second.deadline = now + absl::Milliseconds(it->second.session_timeout_ms);
    } else {
      RemoveMember(req.member_id());
      CheckPartitionCounts(partitions);
      MaybeAssign();
    }
    *changed = true;
    return response;
  }

  // Validate what a joining or staying member sends.
  const std::vector<std::string> subscribed = SortedUnique(req.subscribed_topics());
  if (subscribed.empty()) {
    return Invalid("subscribed_topics is empty: a member must subscribe to at least one topic");
  }
  if (static_cast<int32_t>(subscribed.size()) > limits.max_subscribed_topics) {
    return Invalid(absl::StrCat("a member may subscribe to at most ",
                                limits.max_subscribed_topics, " topics; got ",
                                subscribed.size()));
  }
  for (const std::string& topic : subscribed) {
    absl::Status s = ValidateTopicName(topic);
    if (!s.ok()) return WithPrefix(s, "subscribed_topics: ");
  }
  if (!req.assignor().empty() && !IsKnownAssignor(req.assignor())) {
    return Invalid(absl::StrCat("unknown assignor \"", req.assignor().substr(0, 100),
                                "\"; use \"uniform\" or \"range\""));
  }
  const int32_t session_ms = req.session_timeout_ms() == 0 ? limits.default_session_timeout_ms
                                                           : req.session_timeout_ms();
  if (session_ms < limits.min_session_timeout_ms || session_ms > limits.max_session_timeout_ms) {
    return Invalid(absl::StrCat("session_timeout_ms ", req.session_timeout_ms(),
                                " is outside the broker's bounds [",
                                limits.min_session_timeout_ms, ", ",
                                limits.max_session_timeout_ms,
                                "] (--group-min-session-timeout-ms, "
                                "--group-max-session-timeout-ms)"));
  }
  const Assignment owned = FromProto(req.owned_partitions());

  Member* member = nullptr;
  if (epoch == 0) {
    if (members_.empty()) {
      assignor_ = req.assignor().empty() ? kUniformAssignor : req.assignor();
    }
    // A static member coming back takes its predecessor's place: same epoch, same
    // partitions, no rebalance.
    std::string predecessor;
    if (!req.instance_id().empty()) {
      for (const auto& [id, m] : members_) {
        if (m.instance_id == req.instance_id()) predecessor = id;
      }
    }
    if (!predecessor.empty() && !members_[predecessor].departed &&
        predecessor != req.member_id()) {
      return MakeError(
          absl::StatusCode::kFailedPrecondition, ErrorInfo::UNRELEASED_INSTANCE_ID,
          absl::StrCat("instance id ", req.instance_id(), " is still held by member ",
                       predecessor, " of group ", group_id_,
                       "; it must leave (member_epoch -2) or its session (",
                       members_[predecessor].session_timeout_ms,
                       " ms) expire before another process may use it"));
    }
    if (!predecessor.empty() && predecessor != req.member_id()) {
      const std::string id = req.member_id().empty() ? new_member_id() : req.member_id();
      Member m = members_[predecessor];
      Assignment target = targets_[predecessor];
      members_.erase(predecessor);
      targets_.erase(predecessor);
      m.member_id = id;
      m.departed = false;
      members_[id] = std::move(m);
      targets_[id] = std::move(target);
      member = &members_[id];
    } else if (auto it = members_.find(req.member_id());
               !req.member_id().empty() && it != members_.end()) {
      // A member rejoining under its id after being fenced: it owns only what it
      // reports.
      member = &it->second;
      member->assigned = Intersect(member->assigned, owned);
    } else {
      const std::string id = req.member_id().empty() ? new_member_id() : req.member_id();
      Member m;
      m.member_id = id;
      m.instance_id = req.instance_id();
      m.member_epoch = 0;
      m.subscribed = subscribed;
      m.session_timeout_ms = session_ms;
      members_[id] = std::move(m);
      member = &members_[id];
      ++group_epoch_;
    }
    *changed = true;
  } else {
    auto it = members_.find(req.member_id());
    if (it == members_.end()) {
      return MakeError(absl::StatusCode::kFailedPrecondition, ErrorInfo::UNKNOWN_MEMBER_ID,
                       absl::StrCat("member ", req.member_id().substr(0, 255),
                                    " is not in group ", group_id_,
                                    " (its session expired or it left); drop its "
                                    "partitions and join again with member_epoch 0"));
    }
    member = &it->second;
    if (epoch != member->member_epoch &&
        !(epoch == member->previous_epoch && SubsetOf(owned, member->assigned))) {
      return MakeError(absl::StatusCode::kFailedPrecondition, ErrorInfo::FENCED_MEMBER_EPOCH,
                       absl::StrCat("member ", req.member_id(), " of group ", group_id_,
                                    " sent epoch ", epoch, " but its epoch is ",
                                    member->member_epoch,
                                    "; drop its partitions and join again with member_epoch 0"));
    }
  }
  if (member->subscribed != subscribed) {
    member->subscribed = subscribed;
    ++group_epoch_;
    *changed = true;
  }
  if (member->session_timeout_ms != session_ms) {
    member->session_timeout_ms = session_ms;
    *changed = true;
  }
  if (member->departed) {
    member->departed = false;
    *changed = true;
  }
  member->deadline = now + absl::Milliseconds(session_ms);
  const int32_t before = group_epoch_;
  CheckPartitionCounts(partitions);
  if (group_epoch_ != before) *changed = true;
  const int32_t target_before = target_epoch_;
  MaybeAssign();
  if (target_epoch_ != target_before) *changed = true;
  if (Reconcile(*member, &owned)) *changed = true;

  const Assignment& target = targets_[member->member_id];
  const Assignment allowed = Intersect(member->assigned, target);
  const bool revoking = !SubsetOf(member->assigned, target);
  const bool pending = !SubsetOf(target, member->assigned);
  response.set_member_id(member->member_id);
  response.set_member_epoch(member->member_epoch);
  int32_t interval = HeartbeatIntervalMs(session_ms, limits);
  if (revoking || pending) interval = std::min(interval, kReconcilingHeartbeatMs);
  response.set_heartbeat_interval_ms(interval);
  ToProto(allowed, response.mutable_assignment());
  response.set_assignment_pending(pending);
  return response;
}

bool GroupMembership::ExpireMembers(absl::Time now, const PartitionCountFn& partitions) {
  std::vector<std::string> expired;
  for (const auto& [id, m] : members_) {
    if (m.deadline < now) expired.push_back(id);
  }
  for (const std::string& id : expired) RemoveMember(id);
  if (expired.empty()) return false;
  CheckPartitionCounts(partitions);
  MaybeAssign();
  return true;
}

void GroupMembership::RemoveMember(const std::string& member_id) {
  members_.erase(member_id);
  targets_.erase(member_id);
  ++group_epoch_;
  if (members_.empty()) assignor_.clear();
}

void GroupMembership::CheckPartitionCounts(const PartitionCountFn& partitions) {
  PartitionCounts counts;
  for (const auto& [id, m] : members_) {
    for (const std::string& topic : m.subscribed) {
      if (counts.contains(topic)) continue;
      const int32_t n = partitions(topic);
      if (n > 0) counts[topic] = n;
    }
  }
  if (counts != partition_counts_) {
    partition_counts_ = std::move(counts);
    if (!members_.empty()) ++group_epoch_;
  }
}

void GroupMembership::MaybeAssign() {
  if (target_epoch_ >= group_epoch_) return;
  std::vector<AssignorMember> in;
  for (const auto& [id, m] : members_) {
    AssignorMember a;
    a.member_id = id;
    a.instance_id = m.instance_id;
    a.subscribed = m.subscribed;
    if (auto t = targets_.find(id); t != targets_.end()) a.previous = t->second;
    in.push_back(std::move(a));
  }
  absl::StatusOr<std::map<std::string, Assignment>> targets =
      Assign(assignor_.empty() ? kUniformAssignor : assignor_, in, partition_counts_);
  // The assignor name was checked when the first member joined.
  targets_ = targets.ok() ? *std::move(targets) : UniformAssign(in, partition_counts_);
  target_epoch_ = group_epoch_;
}

bool GroupMembership::Reconcile(Member& member, const Assignment* owned) {
  const Assignment& target = targets_[member.member_id];
  bool changed = false;
  if (!SubsetOf(member.assigned, target)) {
    const Assignment keep = Intersect(member.assigned, target);
    // Partitions leave a member only once it says it released them.
    if (owned == nullptr || !SubsetOf(*owned, keep)) return false;
    member.assigned = keep;
    changed = true;
  }
  for (const auto& [topic, partitions] : target) {
    for (int32_t p : partitions) {
      if (Contains(member.assigned, topic, p)) continue;
      bool free = true;
      for (const auto& [id, other] : members_) {
        if (id != member.member_id && Contains(other.assigned, topic, p)) {
          free = false;
          break;
        }
      }
      if (free) {
        member.assigned[topic].insert(p);
        changed = true;
      }
    }
  }
  if (member.member_epoch != target_epoch_) {
    member.previous_epoch = member.member_epoch;
    member.member_epoch = target_epoch_;
    changed = true;
  }
  return changed;
}

absl::Status GroupMembership::CheckCommit(
    absl::string_view member_id, int32_t member_epoch,
    const std::vector<std::pair<std::string, int32_t>>& partitions) const {
  if (member_id.empty()) {
    if (member_epoch != -1) {
      return Invalid("a commit without member_id must have member_epoch -1");
    }
    if (!members_.empty()) {
      return MakeError(absl::StatusCode::kFailedPrecondition, ErrorInfo::GROUP_NOT_EMPTY,
                       absl::StrCat("group ", group_id_, " has ", members_.size(),
                                    " member(s); offsets can be changed from outside the "
                                    "group only while it is empty"));
    }
    return absl::OkStatus();
  }
  auto it = members_.find(std::string(member_id));
  if (it == members_.end()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, ErrorInfo::UNKNOWN_MEMBER_ID,
                     absl::StrCat("member ", member_id.substr(0, 255), " is not in group ",
                                  group_id_, "; nothing was committed"));
  }
  const Member& m = it->second;
  if (member_epoch > m.member_epoch) {
    return MakeError(absl::StatusCode::kFailedPrecondition, ErrorInfo::FENCED_MEMBER_EPOCH,
                     absl::StrCat("member ", member_id, " of group ", group_id_,
                                  " committed with epoch ", member_epoch,
                                  " but its epoch is only ", m.member_epoch,
                                  "; nothing was committed"));
  }
  if (member_epoch < m.member_epoch && member_epoch != m.previous_epoch) {
    return MakeError(absl::StatusCode::kFailedPrecondition, ErrorInfo::STALE_MEMBER_EPOCH,
                     absl::StrCat("member ", member_id, " of group ", group_id_,
                                  " committed with epoch ", member_epoch,
                                  " but its epoch is ", m.member_epoch,
                                  "; heartbeat, then commit again. Nothing was committed"));
  }
  for (const auto& [topic, partition] : partitions) {
    if (!Contains(m.assigned, topic, partition)) {
      return MakeError(absl::StatusCode::kFailedPrecondition,
                       ErrorInfo::PARTITION_NOT_ASSIGNED,
                       absl::StrCat("member ", member_id, " of group ", group_id_,
                                    " does not own ", topic, "-", partition,
                                    "; nothing was committed"));
    }
  }
  return absl::OkStatus();
}

const Assignment& GroupMembership::Target(const std::string& member_id) const {
  static const Assignment* const kEmpty = new Assignment();
  auto it = targets_.find(member_id);
  return it == targets_.end() ? *kEmpty : it->second;
}

fjord::v1::GroupState GroupMembership::state() const {
  if (members_.empty()) return fjord::v1::EMPTY;
  if (target_epoch_ < group_epoch_) return fjord::v1::ASSIGNING;
  for (const auto& [id, m] : members_) {
    if (m.member_epoch != target_epoch_ || m.assigned != Target(id)) {
      return fjord::v1::RECONCILING;
    }
  }
  return fjord::v1::STABLE;
}

namespace {

void AssignmentToRecord(
    const Assignment& in,
    google::protobuf::RepeatedPtrField<fjord::internal::v1::GroupPartitions>* out) {
  for (const auto& [topic, partitions] : in) {
    if (partitions.empty()) continue;
    auto* gp = out->Add();
    gp->set_topic(topic);
    for (int32_t p : partitions) gp->add_partitions(p);
  }
}

Assignment AssignmentFromRecord(
    const google::protobuf::RepeatedPtrField<fjord::internal::v1::GroupPartitions>& in) {
  Assignment out;
  for (const auto& gp : in) {
    for (int32_t p : gp.partitions()) out[gp.topic()].insert(p);
  }
  return out;
}

}  // namespace

fjord::internal::v1::GroupMetadataValue GroupMembership::ToRecord() const {
  fjord::internal::v1::GroupMetadataValue record;
  record.set_version(1);
  record.set_group_epoch(group_epoch_);
  record.set_assignor(assignor_);
  record.set_target_epoch(target_epoch_);
  for (const auto& [id, m] : members_) {
    auto* v = record.add_members();
    v->set_member_id(id);
    v->set_instance_id(m.instance_id);
    v->set_member_epoch(m.member_epoch);
    for (const std::string& t : m.subscribed) v->add_subscribed_topics(t);
    AssignmentToRecord(m.assigned, v->mutable_assigned());
    v->set_session_timeout_ms(m.session_timeout_ms);
    v->set_departed(m.departed);
  }
  for (const auto& [id, target] : targets_) {
    AssignmentToRecord(target, (*record.mutable_targets())[id].mutable_partitions());
  }
  for (const auto& [topic, n] : partition_counts_) (*record.mutable_partition_counts())[topic] = n;
  return record;
}

void GroupMembership::FromRecord(const fjord::internal::v1::GroupMetadataValue& record,
                                 absl::Time now) {
  group_epoch_ = record.group_epoch();
  assignor_ = record.assignor();
  target_epoch_ = record.target_epoch();
  members_.clear();
  targets_.clear();
  partition_counts_.clear();
  for (const auto& v : record.members()) {
    Member m;
    m.member_id = v.member_id();
    m.instance_id = v.instance_id();
    m.member_epoch = v.member_epoch();
    m.subscribed.assign(v.subscribed_topics().begin(), v.subscribed_topics().end());
    m.assigned = AssignmentFromRecord(v.assigned());
    m.session_timeout_ms = v.session_timeout_ms();
    m.departed = v.departed();
    m.deadline = now + absl::Milliseconds(m.session_timeout_ms);
    members_[m.member_id] = std::move(m);
  }
  for (const auto& [id, target] : record.targets()) {
    targets_[id] = AssignmentFromRecord(target.partitions());
  }
  for (const auto& [topic, n] : record.partition_counts()) partition_counts_[topic] = n;
}

}  // namespace fjord::broker::group
