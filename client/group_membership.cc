#include "client/group_membership.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "glog/logging.h"

namespace fjord::client {
namespace {

// When the coordinator gives no heartbeat interval.
constexpr absl::Duration kDefaultHeartbeatInterval = absl::Seconds(3);

void AddPartitions(
    const std::set<TopicPartition>& partitions,
    google::protobuf::RepeatedPtrField<fjord::v1::TopicPartitions>* out) {
  fjord::v1::TopicPartitions* current = nullptr;
  for (const TopicPartition& tp : partitions) {  // Sorted by topic, partition.
    if (current == nullptr || current->topic() != tp.topic) {
      current = out->Add();
      current->set_topic(tp.topic);
    }
    current->add_partitions(tp.partition);
  }
}

std::set<TopicPartition> FromProto(
    const google::protobuf::RepeatedPtrField<fjord::v1::TopicPartitions>& in) {
  std::set<TopicPartition> out;
  for (const auto& t : in) {
    for (int32_t p : t.partitions()) out.insert(TopicPartition{t.topic(), p});
  }
  return out;
}

std::string Describe(const std::set<TopicPartition>& partitions) {
  std::vector<std::string> names;
  for (const auto& tp : partitions) names.push_back(tp.ToString());
  return absl::StrCat("[", absl::StrJoin(names, ","), "]");
}

}  // namespace

GroupMembership::GroupMembership(std::shared_ptr<GroupCoordinator> coordinator,
                                 GroupMembershipOptions options,
                                 std::function<void()> on_change)
    : coordinator_(std::move(coordinator)),
      options_(std::move(options)),
      on_change_(std::move(on_change)),
      backoff_(options_.retry_backoff) {
  thread_ = std::thread([this] { Run(); });
}

GroupMembership::~GroupMembership() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    cv_.SignalAll();
  }
  canceller_.Cancel();
  if (thread_.joinable()) thread_.join();
}

void GroupMembership::Subscribe(std::vector<std::string> topics) {
  absl::MutexLock lock(&mu_);
  topics_ = std::move(topics);
  if (state_ == State::kIdle || state_ == State::kFatal) {
    state_ = State::kJoining;
    member_id_.clear();
    member_epoch_ = 0;
    fatal_ = absl::OkStatus();
    has_assignment_ = false;
    assignment_.clear();
    backoff_ = options_.retry_backoff;
    last_poll_ = MonotonicNow();
  }
  heartbeat_now_ = true;
  cv_.SignalAll();
}

GroupMembership::View GroupMembership::Snapshot() const {
  absl::MutexLock lock(&mu_);
  View v;
  v.state = state_;
  v.lost_count = lost_count_;
  v.lost_reason = lost_reason_;
  v.has_assignment = has_assignment_;
  v.assignment = assignment_;
  v.fatal = fatal_;
  v.member_id = member_id_;
  v.member_epoch = member_epoch_;
  v.coordinator_reachable = reachable_;
  return v;
}

void GroupMembership::SetOwned(const std::set<TopicPartition>& owned) {
  absl::MutexLock lock(&mu_);
  if (owned == owned_) return;
  VLOG(1) << "[group=" << options_.group_id << " member=" << member_id_
          << "] owns " << Describe(owned);
  owned_ = owned;
  heartbeat_now_ = true;
  cv_.SignalAll();
}

void GroupMembership::AcknowledgeLost() {
  absl::MutexLock lock(&mu_);
  if (state_ != State::kLost) return;
  state_ = State::kJoining;
  member_id_.clear();
  member_epoch_ = 0;
  owned_.clear();
  has_assignment_ = false;
  assignment_.clear();
  heartbeat_now_ = true;
  cv_.SignalAll();
}

void GroupMembership::PollStarted() {
  absl::MutexLock lock(&mu_);
  in_poll_ = true;
  last_poll_ = MonotonicNow();
}

void GroupMembership::PollEnded() {
  absl::MutexLock lock(&mu_);
  in_poll_ = false;
  last_poll_ = MonotonicNow();
}

fjord::v1::GroupHeartbeatRequest GroupMembership::LeaveRequest() const {
  fjord::v1::GroupHeartbeatRequest request;
  request.set_group_id(options_.group_id);
  request.set_member_id(member_id_);
  request.set_instance_id(options_.instance_id);
  request.set_member_epoch(options_.instance_id.empty() ? -1 : -2);
  return request;
}

void GroupMembership::Lose(const std::string& why) {
  LOG(WARNING) << "[group=" << options_.group_id << " member=" << member_id_
               << " epoch=" << member_epoch_ << "] lost partitions "
               << Describe(owned_) << ": " << why << "; joining again";
  state_ = State::kLost;
  ++lost_count_;
  lost_reason_ = why;
  member_epoch_ = 0;
  has_assignment_ = false;
  assignment_.clear();
  on_change_();
}

void GroupMembership::Run() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    if (!Active() || leaving_) {
      cv_.Wait(&mu_);
      continue;
    }
    // Timers on the monotonic clock (common/clock.h): a jump of the host's
    // wall clock must not make the member leave or heartbeat in a burst.
    const absl::Time now = MonotonicNow();
    const absl::Time poll_deadline = last_poll_ + options_.max_poll_interval;
    if (state_ == State::kMember && !in_poll_ && now >= poll_deadline) {
      // Like Kafka's max.poll.interval.ms: an application that stopped
      // polling cannot release partitions, so it gives them up.
      const fjord::v1::GroupHeartbeatRequest request = LeaveRequest();
      Lose(absl::StrCat("no Poll() for ",
                        absl::FormatDuration(options_.max_poll_interval),
                        " (max_poll_interval)"));
      in_flight_ = true;
      mu_.Unlock();
      fjord::v1::GroupHeartbeatResponse response;
      const grpc::Status status = coordinator_->Call(
          [&](fjord::v1::GroupService::Stub& stub,
              grpc::ClientContext& context) {
            return stub.Heartbeat(&context, request, &response);
          },
          absl::Now() + coordinator_->cluster()->options().rpc_timeout,
          &canceller_);
      mu_.Lock();
      in_flight_ = false;
      cv_.SignalAll();
      if (!status.ok()) {
        VLOG(1) << "[group=" << options_.group_id
                << "] leave after poll timeout: " << status.error_message();
      }
      continue;
    }
    absl::Time wake = heartbeat_now_ ? now : next_heartbeat_;
    if (state_ == State::kMember && !in_poll_) {
      wake = std::min(wake, poll_deadline);
    }
    if (now < wake) {
      cv_.WaitWithTimeout(&mu_, wake - now);
      continue;
    }
    Heartbeat();
  }
}

void GroupMembership::Heartbeat() {
  const bool joining = state_ == State::kJoining;
  fjord::v1::GroupHeartbeatRequest request;
  request.set_group_id(options_.group_id);
  request.set_member_id(joining ? "" : member_id_);
  request.set_member_epoch(joining ? 0 : member_epoch_);
  request.set_instance_id(options_.instance_id);
  for (const auto& t : topics_) request.add_subscribed_topics(t);
  request.set_assignor(options_.assignor);
  request.set_session_timeout_ms(static_cast<int32_t>(
      absl::ToInt64Milliseconds(options_.session_timeout)));
  AddPartitions(owned_, request.mutable_owned_partitions());
  heartbeat_now_ = false;
  in_flight_ = true;
  // Regular heartbeats keep their rhythm even when this one is late.
  next_heartbeat_ = MonotonicNow() + interval_;
  const uint64_t lost_before = lost_count_;
  const std::string group = options_.group_id;
  mu_.Unlock();

  fjord::v1::GroupHeartbeatResponse response;
  const grpc::Status status = coordinator_->Call(
      [&](fjord::v1::GroupService::Stub& stub, grpc::ClientContext& context) {
        response.Clear();
        return stub.Heartbeat(&context, request, &response);
      },
      absl::Now() + coordinator_->cluster()->options().rpc_timeout,
      &canceller_);

  mu_.Lock();
  in_flight_ = false;
  ++answers_;
  cv_.SignalAll();
  if (stop_ || !Active() || lost_count_ != lost_before) return;
  reachable_ = status.ok() || !IsRetriableGroupError(status);
  if (status.ok()) {
    std::set<TopicPartition> assignment = FromProto(response.assignment());
    const bool changed = state_ != State::kMember || !has_assignment_ ||
                         assignment != assignment_ ||
                         member_epoch_ != response.member_epoch();
    if (state_ != State::kMember) {
      LOG(INFO) << "[group=" << group << "] joined as member "
                << response.member_id() << " epoch " << response.member_epoch();
    }
    if (assignment != assignment_ || !has_assignment_) {
      VLOG(1) << "[group=" << group << " member=" << response.member_id()
              << " epoch=" << response.member_epoch() << "] assignment "
              << Describe(assignment)
              << (response.assignment_pending() ? " (more pending)" : "");
    }
    state_ = State::kMember;
    member_id_ = response.member_id();
    member_epoch_ = response.member_epoch();
    interval_ = response.heartbeat_interval_ms() > 0
                    ? absl::Milliseconds(response.heartbeat_interval_ms())
                    : kDefaultHeartbeatInterval;
    next_heartbeat_ = MonotonicNow() + interval_;
    has_assignment_ = true;
    assignment_ = std::move(assignment);
    backoff_ = options_.retry_backoff;
    if (changed) on_change_();
    return;
  }
  if (status.error_code() == grpc::StatusCode::CANCELLED &&
      canceller_.cancelled()) {
    return;
  }
  if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
      (HasReason(status, fjord::v1::ErrorInfo::UNKNOWN_MEMBER_ID) ||
       HasReason(status, fjord::v1::ErrorInfo::FENCED_MEMBER_EPOCH))) {
    // The coordinator removed the member (e.g. its session expired) or moved
    // on without it: its partitions may belong to others already.
    Lose(status.error_message());
    next_heartbeat_ = MonotonicNow() + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.retry_backoff_max);
    return;
  }
  if (joining && status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
      HasReason(status, fjord::v1::ErrorInfo::UNRELEASED_INSTANCE_ID)) {
    // Another process still holds this instance id: wait for it to leave or
    // for its session to expire.
    if (backoff_ == options_.retry_backoff) {
      LOG(WARNING) << "[group=" << group << "] " << status.error_message()
                   << "; retrying";
    }
    next_heartbeat_ = MonotonicNow() + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.retry_backoff_max);
    return;
  }
  if (IsRetriableGroupError(status)) {
    VLOG(1) << "[group=" << group << "] heartbeat: " << status.error_message()
            << "; retrying in " << backoff_;
    next_heartbeat_ = MonotonicNow() + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.retry_backoff_max);
    return;
  }
  LOG(WARNING) << "[group=" << group
               << "] heartbeat refused: " << status.error_message();
  state_ = State::kFatal;
  fatal_ = absl::Status(
      static_cast<absl::StatusCode>(status.error_code()),
      absl::StrCat("group '", group, "': ",
                   status.error_code() == grpc::StatusCode::UNIMPLEMENTED
                       ? "the broker does not support consumer groups: "
                       : "",
                   status.error_message()));
  on_change_();
}

absl::Status GroupMembership::Leave(absl::Time deadline) {
  State was;
  fjord::v1::GroupHeartbeatRequest request;
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kIdle) return absl::OkStatus();
    leaving_ = true;
    cv_.SignalAll();
    auto idle = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return !in_flight_; };
    mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
    was = state_;
    request = LeaveRequest();
    state_ = State::kIdle;
    member_id_.clear();
    member_epoch_ = -1;
    has_assignment_ = false;
    assignment_.clear();
    owned_.clear();
    topics_.clear();
    fatal_ = absl::OkStatus();
    heartbeat_now_ = false;
    leaving_ = false;
  }
  if (was != State::kMember || request.member_id().empty()) {
    return absl::OkStatus();
  }
  fjord::v1::GroupHeartbeatResponse response;
  const grpc::Status status = coordinator_->Call(
      [&](fjord::v1::GroupService::Stub& stub, grpc::ClientContext& context) {
        return stub.Heartbeat(&context, request, &response);
      },
      deadline);
  if (status.ok() ||
      (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
       (HasReason(status, fjord::v1::ErrorInfo::UNKNOWN_MEMBER_ID) ||
        HasReason(status, fjord::v1::ErrorInfo::FENCED_MEMBER_EPOCH)))) {
    VLOG(1) << "[group=" << options_.group_id << "] left as member "
            << request.member_id();
    return absl::OkStatus();
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("leaving group '", options_.group_id,
                                   "': ", status.error_message()));
}

void GroupMembership::HeartbeatAndWait(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  if (!Active() || leaving_) return;
  // An answer to a heartbeat sent before now would not do.
  const uint64_t target = answers_ + (in_flight_ ? 2 : 1);
  heartbeat_now_ = true;
  cv_.SignalAll();
  auto done = [this, target]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return answers_ >= target || !Active() || stop_;
  };
  mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
}

absl::Status GroupMembership::Commit(
    const std::map<TopicPartition, int64_t>& offsets, absl::Time deadline) {
  if (offsets.empty()) return absl::OkStatus();
  const std::string& group = options_.group_id;
  for (int attempt = 0;; ++attempt) {
    fjord::v1::CommitOffsetsRequest request;
    request.set_group_id(group);
    {
      absl::MutexLock lock(&mu_);
      switch (state_) {
        case State::kIdle:
          request.set_member_epoch(-1);  // Outside the membership.
          break;
        case State::kMember:
          request.set_member_id(member_id_);
          request.set_member_epoch(member_epoch_);
          break;
        case State::kJoining:
          return absl::FailedPreconditionError(
              absl::StrCat("cannot commit offsets of group '", group,
                           "': the consumer is still joining the group"));
        case State::kLost:
          return absl::FailedPreconditionError(absl::StrCat(
              "cannot commit offsets of group '", group,
              "': the consumer lost its partitions (", lost_reason_,
              "); it joins again at the next Poll()"));
        case State::kFatal:
          return fatal_;
      }
    }
    for (const auto& [tp, offset] : offsets) {
      auto* o = request.add_offsets();
      o->set_topic(tp.topic);
      o->set_partition(tp.partition);
      o->set_offset(offset);
    }
    fjord::v1::CommitOffsetsResponse response;
    const grpc::Status status = coordinator_->Call(
        [&](fjord::v1::GroupService::Stub& stub, grpc::ClientContext& context) {
          return stub.CommitOffsets(&context, request, &response);
        },
        deadline);
    if (status.ok()) return absl::OkStatus();
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      if (attempt == 0 && !request.member_id().empty() &&
          HasReason(status, fjord::v1::ErrorInfo::STALE_MEMBER_EPOCH)) {
        // The epoch moved on (a newer answer is on its way): learn it.
        HeartbeatAndWait(deadline);
        continue;
      }
      if (HasReason(status, fjord::v1::ErrorInfo::UNKNOWN_MEMBER_ID) ||
          HasReason(status, fjord::v1::ErrorInfo::FENCED_MEMBER_EPOCH)) {
        absl::MutexLock lock(&mu_);
        heartbeat_now_ = true;  // Find out at once.
        cv_.SignalAll();
      }
    }
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat("committing offsets of group '", group,
                                     "': ", status.error_message()));
  }
}

absl::StatusOr<std::map<TopicPartition, int64_t>>
GroupMembership::FetchCommitted(const std::set<TopicPartition>& partitions,
                                absl::Time deadline) {
  std::map<TopicPartition, int64_t> out;
  if (partitions.empty()) return out;
  fjord::v1::FetchOffsetsRequest request;
  request.set_group_id(options_.group_id);
  AddPartitions(partitions, request.mutable_partitions());
  fjord::v1::FetchOffsetsResponse response;
  const grpc::Status status = coordinator_->Call(
      [&](fjord::v1::GroupService::Stub& stub, grpc::ClientContext& context) {
        response.Clear();
        return stub.FetchOffsets(&context, request, &response);
      },
      deadline);
  if (!status.ok()) {
    return absl::Status(
        static_cast<absl::StatusCode>(status.error_code()),
        absl::StrCat("fetching committed offsets of group '", options_.group_id,
                     "': ", status.error_message()));
  }
  for (const auto& o : response.offsets()) {
    TopicPartition tp{o.topic(), o.partition()};
    if (o.offset() >= 0 && partitions.count(tp) > 0) out[tp] = o.offset();
  }
  return out;
}

}  // namespace fjord::client
