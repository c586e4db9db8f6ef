// A consumer's membership in a group: joining, heartbeats, leaving, and the
// group's offset commits, on behalf of a Consumer (client/consumer.h), which
// owns the partitions and reconciles them with the assignment this class
// reports. See proto/fjord/v1/group.proto for the protocol.
#ifndef FJORD_CLIENT_GROUP_MEMBERSHIP_H_
#define FJORD_CLIENT_GROUP_MEMBERSHIP_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/cluster.h"
#include "client/group_coordinator.h"
#include "common/clock.h"

namespace fjord::client {

struct GroupMembershipOptions {
  std::string group_id;
  // group.instance.id (static membership); empty for a dynamic member.
  std::string instance_id;
  // "uniform" or "range".
  std::string assignor = "uniform";
  // Zero: the broker's default.
  absl::Duration session_timeout = absl::ZeroDuration();
  // A member whose application has not called Poll() for this long leaves
  // the group (see PollStarted()).
  absl::Duration max_poll_interval = absl::Minutes(5);
  // Backoff between heartbeats that failed with a retriable error.
  absl::Duration retry_backoff = absl::Milliseconds(100);
  absl::Duration retry_backoff_max = absl::Seconds(2);
};

// The membership state machine and its heartbeat thread.
//
//   kIdle --Subscribe--> kJoining --answer--> kMember --Leave--> kIdle
//                           ^                   |
//                           |   fenced / unknown member / poll timeout
//                           |                   v
//                           +--AcknowledgeLost-- kLost
//
// kJoining heartbeats with member_epoch 0; kMember every heartbeat interval the
// coordinator gave (at once after SetOwned() or Subscribe()), with the member
// id and epoch of the last answer, the subscribed topics and the partitions
// SetOwned() last reported. In kLost (FAILED_PRECONDITION UNKNOWN_MEMBER_ID or
// FENCED_MEMBER_EPOCH, or max_poll_interval without a Poll) the member has
// lost its partitions: they may already belong to another member, so the
// consumer must drop them without committing; heartbeats stop until it says
// so with AcknowledgeLost(), and the member then joins again. A join refused
// with UNRELEASED_INSTANCE_ID (another process still holds the static
// instance id) is retried with a backoff until it succeeds. A heartbeat
// refused with any other non-retriable error (INVALID_ARGUMENT: bad group id,
// topics, assignor or session timeout; UNIMPLEMENTED: a broker without
// consumer groups) is kFatal until the next Subscribe(). Retriable errors
// (see IsRetriableGroupError) are retried with a backoff, against the
// coordinator found again as needed.
//
// Thread-safe. `on_change` runs on the heartbeat thread with this object's
// lock held, whenever Snapshot() may have changed; it must not call back into
// this object (it is meant to wake the consumer's Poll()).
class GroupMembership {
 public:
  enum class State { kIdle, kJoining, kMember, kLost, kFatal };

  struct View {
    State state = State::kIdle;
    // How many times the member lost its partitions (kLost) so far.
    uint64_t lost_count = 0;
    // Why, for the last time (for logs).
    std::string lost_reason;
    // Whether `assignment` holds an answer received since (re)joining.
    bool has_assignment = false;
    // Every partition the member may own now (the last answer's assignment).
    std::set<TopicPartition> assignment;
    // In kFatal: why.
    absl::Status fatal;
    std::string member_id;
    int32_t member_epoch = -1;
    // False while the last heartbeat failed with a retriable error (the
    // coordinator is down, moving or unreachable): a commit now would wait.
    bool coordinator_reachable = true;
  };

  GroupMembership(std::shared_ptr<GroupCoordinator> coordinator,
                  GroupMembershipOptions options,
                  std::function<void()> on_change);
  // Stops the heartbeat thread without leaving (Leave() first to leave).
  ~GroupMembership();

  GroupMembership(const GroupMembership&) = delete;
  GroupMembership& operator=(const GroupMembership&) = delete;

  // Sets the subscribed topics, sent with the next heartbeat (at once). From
  // kIdle or kFatal, starts joining.
  void Subscribe(std::vector<std::string> topics);

  // Stops heartbeating and, when a member, leaves the group (member_epoch -1,
  // or -2 with an instance id: the coordinator then keeps the member's
  // partitions for it until its session times out). Waits (up to `deadline`)
  // for a heartbeat in flight first, so that a join cannot land after the
  // leave. Back in kIdle afterwards, whatever happens. Errors: the leave's
  // status (UNKNOWN_MEMBER_ID counts as left).
  absl::Status Leave(absl::Time deadline);

  View Snapshot() const;

  // The partitions the consumer owns now; a heartbeat saying so goes out at
  // once (after releasing partitions, that is what lets the coordinator hand
  // them to their next owner).
  void SetOwned(const std::set<TopicPartition>& owned);

  // The consumer has dropped every partition after kLost: join again.
  void AcknowledgeLost();

  // Bracket each Poll(): the heartbeat thread makes the member leave the group
  // when no Poll() has been running for max_poll_interval.
  void PollStarted();
  void PollEnded();

  // Commits `offsets` (next offsets to read) as this member (as member ""
  // with epoch -1 in kIdle: only allowed while the group has no members).
  // Retries retriable errors until `deadline`; after STALE_MEMBER_EPOCH,
  // heartbeats (waiting for the answer) and retries once with the new epoch.
  // Errors: FAILED_PRECONDITION in kJoining / kLost / kFatal or from the
  // coordinator (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH, PARTITION_NOT_ASSIGNED,
  // GROUP_NOT_EMPTY), NOT_FOUND, OUT_OF_RANGE, or the last retriable error.
  absl::Status Commit(const std::map<TopicPartition, int64_t>& offsets,
                      absl::Time deadline);

  // The group's committed offsets for `partitions`; partitions without one
  // are absent. Retries retriable errors until `deadline`.
  absl::StatusOr<std::map<TopicPartition, int64_t>> FetchCommitted(
      const std::set<TopicPartition>& partitions, absl::Time deadline);

  const GroupMembershipOptions& options() const { return options_; }

 private:
  bool Active() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return state_ == State::kJoining || state_ == State::kMember;
  }
  void Run();
  // Sends one heartbeat built from the current state and applies its answer.
  // Called with mu_ held; releases it during the RPC.
  void Heartbeat() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // kMember -> kLost.
  void Lose(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Leave request for the current member (epoch -1 or -2).
  fjord::v1::GroupHeartbeatRequest LeaveRequest() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks for a heartbeat now and waits for its answer (or deadline).
  void HeartbeatAndWait(absl::Time deadline);

  const std::shared_ptr<GroupCoordinator> coordinator_;
  const GroupMembershipOptions options_;
  const std::function<void()> on_change_;
  // Cancels the heartbeat in flight on destruction.
  CallCanceller canceller_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  State state_ ABSL_GUARDED_BY(mu_) = State::kIdle;
  std::vector<std::string> topics_ ABSL_GUARDED_BY(mu_);
  std::string member_id_ ABSL_GUARDED_BY(mu_);
  int32_t member_epoch_ ABSL_GUARDED_BY(mu_) = -1;
  absl::Duration interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(3);
  bool has_assignment_ ABSL_GUARDED_BY(mu_) = false;
  std::set<TopicPartition> assignment_ ABSL_GUARDED_BY(mu_);
  std::set<TopicPartition> owned_ ABSL_GUARDED_BY(mu_);
  uint64_t lost_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::string lost_reason_ ABSL_GUARDED_BY(mu_);
  absl::Status fatal_ ABSL_GUARDED_BY(mu_);
  bool reachable_ ABSL_GUARDED_BY(mu_) = true;
  // When the next regular heartbeat is due; heartbeat_now_ asks for one at
  // once.
  absl::Time next_heartbeat_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();  // monotonic
  bool heartbeat_now_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  // A heartbeat is in flight; Leave() waits for it. Answers received so far.
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t answers_ ABSL_GUARDED_BY(mu_) = 0;
  // Leave() in progress: send no more heartbeats.
  bool leaving_ ABSL_GUARDED_BY(mu_) = false;
  // Poll() bookkeeping for max_poll_interval.
  bool in_poll_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_poll_ ABSL_GUARDED_BY(mu_) = MonotonicNow();

  std::thread thread_;
};

}  // namespace fjord::client

#endif  // FJORD_CLIENT_GROUP_MEMBERSHIP_H_
