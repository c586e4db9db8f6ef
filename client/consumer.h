// Consuming records: from partitions the application assigns, or as a member
// of a consumer group whose coordinator assigns them.
#ifndef FJORD_CLIENT_CONSUMER_H_
#define FJORD_CLIENT_CONSUMER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/cluster.h"
#include "client/group_coordinator.h"
#include "client/group_membership.h"

namespace fjord::client {

struct ConsumerRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  // Absent for a null key.
  std::optional<std::string> key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  // Ms since the Unix epoch (producer's, or the broker's append time).
  int64_t timestamp_ms = 0;
  int32_t leader_epoch = 0;
};

// Where a partition starts when it has no position: when it is assigned
// (without a committed offset, in a group), and, for a partition started from
// a committed offset, when that offset is outside the log.
enum class OffsetReset {
  // The log start (ListOffsets EARLIEST).
  kEarliest,
  // The high watermark (ListOffsets LATEST): only records produced later.
  kLatest,
  // Nowhere: the partition is owned but not read, Poll() returns
  // FAILED_PRECONDITION for it (once), and Position() does too, until Seek() /
  // SeekToBeginning() / SeekToEnd() gives it a position (Kafka's
  // NoOffsetForPartitionException).
  kNone,
};

struct ConsumerOptions {
  OffsetReset auto_offset_reset = OffsetReset::kLatest;
  // Per Fetch response: byte budget (0: broker default) and how long the broker
  // holds an idle stream before an empty response.
  int32_t fetch_max_bytes = 0;
  int32_t fetch_max_wait_ms = 500;
  // Records buffered ahead of Poll(), over all partitions. Readers pause (and
  // the broker's stream with them, by flow control) while the buffer is full.
  size_t buffer_max_records = 20000;
  // Records returned by one Poll() at most.
  size_t max_poll_records = 1000;
  // Fetch streams are re-opened after this long (each stream carries a
  // deadline), and after an error with a backoff.
  absl::Duration stream_lifetime = absl::Minutes(5);
  absl::Duration reconnect_backoff = absl::Milliseconds(200);
  absl::Duration reconnect_backoff_max = absl::Seconds(2);
  // Like Kafka's default.api.timeout.ms: how long Position() waits for a
  // partition's offset reset (ListOffsets) to succeed, and how long a fetch
  // offset that the partition's leader already reported as valid may be
  // refused as OUT_OF_RANGE (a new leader whose high watermark is still
  // catching up) before the error reaches Poll(). Also the bound of Commit(),
  // Committed(), Unsubscribe() and of Assign()'s committed-offset lookup.
  absl::Duration api_timeout = absl::Seconds(60);

  // --- Consumer groups (see the class comment) ---

  // The consumer group (group.id): 1 to 249 characters, ASCII letters,
  // digits, '.', '_' and '-'. Empty: no group (Subscribe(), Commit() and
  // Committed() are then unavailable).
  std::string group_id;
  // group.instance.id: static membership. A consumer that comes back with
  // the same instance id within the session timeout gets its partitions back
  // without a rebalance; Close() leaves with member_epoch -2 so that the
  // coordinator keeps them for it meanwhile. Empty: a dynamic member.
  std::string group_instance_id;
  // Commit the positions of owned partitions automatically: from Poll()
  // every auto_commit_interval, before partitions are released, and in
  // Close(). Without a group_id there is nothing to commit to and this is
  // ignored.
  bool enable_auto_commit = true;
  absl::Duration auto_commit_interval = absl::Seconds(5);
  // How long the coordinator waits for a heartbeat before removing the
  // member. Zero: the broker's default (45 s); otherwise within the broker's
  // bounds, or heartbeats fail with INVALID_ARGUMENT (reported by Poll()).
  absl::Duration session_timeout = absl::ZeroDuration();
  // Server-side assignor: "uniform" (sticky; default) or "range". The group
  // uses the one its first member asked for until it is empty again.
  std::string assignor = "uniform";
  // When the application does not call Poll() for this long, the consumer
  // leaves the group (its partitions go to other members; like Kafka's
  // max.poll.interval.ms). The next Poll() drops its partitions without
  // committing and joins again.
  absl::Duration max_poll_interval = absl::Minutes(5);
  // Bound of Close(): its final commit and the leave.
  absl::Duration close_timeout = absl::Seconds(30);

  // Rebalance callbacks (Kafka's ConsumerRebalanceListener) for a subscribed
  // consumer, each run inside Poll() (or Unsubscribe()) on the calling thread
  // with the partitions concerned, sorted, never empty. They may call
  // Commit(), Position() and Assignment(), not Poll(). Unset: not called.
  //
  // Partitions the group moves to other members, or all of them on
  // Unsubscribe(): called after the auto-commit (when enabled) and before the
  // partitions are released, the last moment to commit their positions.
  std::function<void(const std::vector<TopicPartition>&)> on_partitions_revoked;
  // Partitions lost with the membership (session expired, member fenced,
  // max_poll_interval exceeded): other members may own them already, so
  // their positions can no longer be committed. Called before they are
  // released; the consumer then joins again.
  std::function<void(const std::vector<TopicPartition>&)> on_partitions_lost;
  // Partitions newly taken on, once their start positions are known.
  std::function<void(const std::vector<TopicPartition>&)> on_partitions_assigned;
};

// Reads partitions through one long-lived Fetch stream per partition, each
// served by a reader thread that feeds a bounded buffer. A stream that fails
// with a transient error (UNAVAILABLE, NOT_LEADER, a dead broker,
// DEADLINE_EXCEEDED, ...) is opened again, after a metadata refresh and a
// backoff, against the partition's current leader, from the next offset not
// yet received, so no record is skipped or repeated; the other partitions keep
// flowing meanwhile. OUT_OF_RANGE, NOT_FOUND, INVALID_ARGUMENT and DATA_LOSS
// stop that partition's reader and are returned by Poll(); Seek() restarts it.
//
// Offset resets (Assign() of a new partition without a committed offset,
// SeekToBeginning(), SeekToEnd()) ask the partition's leader with ListOffsets
// once, synchronously; when that fails with a transient error, the
// partition's reader keeps retrying it (with a metadata refresh and backoff)
// until it succeeds, like Kafka's lazy offset reset, and Position() waits for
// it.
//
// The partitions come either from Assign() (the application chooses them) or,
// with a group_id, from Subscribe() (the group's coordinator assigns them);
// the two are exclusive, as in Kafka.
//
// Consumer groups. With a group_id, the consumer stores its positions as the
// group's committed offsets (Commit(), auto-commit), and Assign()ed
// partitions start at the group's committed offset when there is one. After
// Subscribe(topics) it is also a member of the group (see
// proto/fjord/v1/group.proto):
//   - A background thread finds the group's coordinator (FindCoordinator at
//     any broker; it follows NOT_COORDINATOR and finds it again after
//     COORDINATOR_LOADING or a transport error, with a backoff) and
//     heartbeats at the interval the coordinator gives: member_epoch 0 to
//     join, then the member id and epoch of the last answer, the subscribed
//     topics and the partitions the consumer owns now.
//   - Each answer's assignment is the set of partitions the consumer may own.
//     Poll(), on the application's thread, reconciles with it before
//     returning records: partitions no longer assigned are released (their
//     positions committed first when auto-commit is on, their readers
//     stopped, their buffered records dropped) and a heartbeat saying so goes
//     out at once; a released partition's records are never returned
//     afterwards. Newly assigned partitions start at the group's committed
//     offset (FetchOffsets), or at auto_offset_reset without one; a committed
//     offset that turns out to lie outside the log (retention, a recreated
//     topic) is reset to auto_offset_reset too, unless that is kNone.
//   - When the coordinator says the member is unknown or fenced
//     (FAILED_PRECONDITION UNKNOWN_MEMBER_ID / FENCED_MEMBER_EPOCH; e.g. its
//     session expired while the broker was unreachable), or when Poll() was
//     not called for max_poll_interval, the partitions are lost: the next
//     Poll() drops them all without committing (another member may own them
//     already) and the consumer joins again with epoch 0.
//   - A static member (group_instance_id) whose instance id another process
//     still holds (UNRELEASED_INSTANCE_ID) keeps trying to join until that
//     one leaves or its session expires.
//   - A heartbeat refused for good (INVALID_ARGUMENT: a bad topic name,
//     assignor or session timeout; UNIMPLEMENTED: a broker without groups) is
//     returned by every Poll() until the next Subscribe().
//   - Commits are synchronous: the member's id and epoch with the positions
//     (the offset of the next record Poll() would return); a commit refused
//     with STALE_MEMBER_EPOCH is retried once after a heartbeat. Commits from
//     an Assign()ed consumer go as member "" with epoch -1, which the
//     coordinator accepts only while the group has no members.
// Reconciliation and auto-commit make RPCs on Poll()'s thread, so a Poll()
// may take longer than its timeout (each bounded by the cluster's
// rpc_timeout; a failed auto-commit or revocation commit is logged, not
// returned, and the partitions are released anyway). A subscribed consumer
// skips the periodic auto-commit while its heartbeats cannot reach the
// coordinator, so Poll() keeps returning buffered records meanwhile.
//
// Not thread-safe: use one Consumer from one thread at a time (like Kafka's).
class Consumer {
 public:
  // INVALID_ARGUMENT for bad options (buffer sizes, group id characters,
  // group settings without a group_id, an unknown assignor, non-positive
  // intervals, a negative session timeout).
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(
      std::shared_ptr<Cluster> cluster, ConsumerOptions options = {});
  // Close()s.
  ~Consumer();

  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Makes `partitions` the assignment, replacing the previous one (an empty
  // list unassigns everything). Partitions kept keep their positions; new
  // ones start at the group's committed offset (with a group_id; looked up
  // within api_timeout), else at auto_offset_reset (resolved now with
  // ListOffsets, or in the background when the leader is unavailable: see the
  // class comment). Errors: FAILED_PRECONDITION while subscribed; NOT_FOUND
  // for an unknown topic or partition, or another definite ListOffsets error;
  // the FetchOffsets error; the assignment is then unchanged.
  absl::Status Assign(const std::vector<TopicPartition>& partitions);

  // Joins the group (group_id) and consumes the partitions of `topics` its
  // coordinator assigns to this consumer; replaces an earlier subscription
  // (the next heartbeat carries the new topics). Returns at once: joining and
  // reconciling happen in the background and in Poll(). An empty list is
  // Unsubscribe(). Topics need not exist yet. Errors: FAILED_PRECONDITION
  // without a group_id or while partitions are Assign()ed; INVALID_ARGUMENT
  // for an empty topic name.
  absl::Status Subscribe(const std::vector<std::string>& topics);

  // Commits the positions of owned partitions (when auto-commit is on),
  // releases them all and leaves the group (also drops Assign()ed
  // partitions, as Kafka's unsubscribe() does). Errors: the commit's or the
  // leave's (the consumer is unsubscribed regardless).
  absl::Status Unsubscribe();

  // The topics Subscribe() set, sorted; empty when not subscribed.
  std::vector<std::string> Subscription() const;

  // The partitions this consumer owns, sorted: those Assign()ed, or those its
  // group assigned to it and that Poll() has taken on.
  std::vector<TopicPartition> Assignment() const;

  // Makes `offset` the next offset Poll() returns for `tp` (owned), dropping
  // records buffered for it and restarting its reader (unless paused). The
  // offset is checked by the broker: an offset outside the log comes back as
  // OUT_OF_RANGE from Poll().
  absl::Status Seek(const TopicPartition& tp, int64_t offset);

  // Seek() to the log start / to the high watermark (ListOffsets EARLIEST /
  // LATEST) for each of `partitions` (empty: every owned partition),
  // retried in the background while the leader is unavailable.
  // FAILED_PRECONDITION for a partition not owned (nothing moves then).
  absl::Status SeekToBeginning(const std::vector<TopicPartition>& partitions);
  absl::Status SeekToEnd(const std::vector<TopicPartition>& partitions);

  // The offset of the next record Poll() will return for `tp`. While the
  // partition's offset reset is still being retried, waits for it up to
  // api_timeout (then DEADLINE_EXCEEDED with the last error), or returns the
  // reset's fatal error. FAILED_PRECONDITION when `tp` is not owned, or has no
  // position (auto_offset_reset kNone without a committed offset; paused
  // before its offset reset finished).
  absl::StatusOr<int64_t> Position(const TopicPartition& tp) const;

  // The high watermark the broker last reported for `tp`, -1 before any answer.
  int64_t HighWatermark(const TopicPartition& tp) const;

  // Stops fetching `partitions` (owned): Poll() returns none of their records
  // until Resume(); their positions stay (buffered records are dropped and
  // fetched again later). A paused partition stays paused across Seek(), and
  // is unpaused when released. FAILED_PRECONDITION for a partition not owned
  // (nothing changes then).
  absl::Status Pause(const std::vector<TopicPartition>& partitions);
  absl::Status Resume(const std::vector<TopicPartition>& partitions);
  // The paused partitions, sorted.
  std::vector<TopicPartition> Paused() const;

  // Commits the position of every owned partition that has one, and waits
  // for the answer (up to api_timeout). Errors: FAILED_PRECONDITION without a
  // group_id, while joining or after losing the partitions, or the
  // coordinator's refusal (see GroupMembership::Commit); UNAVAILABLE /
  // DEADLINE_EXCEEDED when the coordinator could not be reached in time.
  absl::Status Commit();
  // Commits `offsets` (the next offset to read, per partition) as given.
  // Same errors.
  absl::Status Commit(const std::map<TopicPartition, int64_t>& offsets);

  // The group's committed offsets for `partitions` (FetchOffsets at the
  // coordinator, within api_timeout); partitions without one are absent.
  // FAILED_PRECONDITION without a group_id.
  absl::StatusOr<std::map<TopicPartition, int64_t>> Committed(
      const std::vector<TopicPartition>& partitions);

  // Waits up to `timeout` for records and returns those available (at most
  // max_poll_records, in offset order per partition; possibly none), advancing
  // positions past them. Returns a partition's fatal error (OUT_OF_RANGE,
  // NOT_FOUND, FAILED_PRECONDITION for kNone...) once, with the partition in
  // the message, before any further records of that partition. In a group,
  // first reconciles the owned partitions with the assignment and
  // auto-commits (see the class comment); returns the group's fatal error
  // (kFatal) every time until the next Subscribe().
  absl::StatusOr<std::vector<ConsumerRecord>> Poll(absl::Duration timeout);

  // Commits the positions (when auto-commit is on and the consumer has a
  // group and still owns its partitions), stops every reader and leaves the
  // group (member_epoch -1, or -2 with a group_instance_id), all within
  // close_timeout. Returns the commit's or the leave's error; the consumer
  // is closed regardless. Idempotent (later calls return OK).
  absl::Status Close();

 private:
  class Reader;
  struct Start;

  // What the consumer knows about one owned partition (app thread only).
  struct Owned {
    // Null while paused or without a position (kNone).
    std::unique_ptr<Reader> reader;
    bool paused = false;
    // How to find the start when there is no position: a pending offset
    // reset (towards the log start when `reset_earliest`), or none at all.
    bool needs_reset = false;
    bool reset_earliest = false;
  };

  enum class Mode { kNone, kAssigned, kSubscribed };

  Consumer(std::shared_ptr<Cluster> cluster, ConsumerOptions options);

  // Starts `tp`'s reader (owned_[tp] must exist) as `start` says, or only
  // records where it would start when the partition is paused.
  void StartReader(const TopicPartition& tp, const Start& start);
  // Stops `tp`'s reader and drops its buffered records and pending errors.
  void StopReader(const TopicPartition& tp);
  // StopReader() and forget everything about `tp`.
  void Release(const TopicPartition& tp);
  // Where a new partition starts: at `committed` if given, else an offset
  // reset (one synchronous ListOffsets attempt) per auto_offset_reset.
  // Errors: the definite ListOffsets errors.
  absl::StatusOr<Start> StartFor(const TopicPartition& tp,
                                 std::optional<int64_t> committed);
  // One synchronous reset attempt and, if it failed transiently, a reader
  // that retries it. Errors: the definite ListOffsets errors.
  absl::Status ResetOffset(const TopicPartition& tp, bool earliest);
  absl::Status CheckOwned(const std::vector<TopicPartition>& partitions) const;

  // The known positions of owned partitions.
  std::map<TopicPartition, int64_t> Positions() const;
  // Commits `offsets` and remembers them as committed.
  absl::Status CommitOffsets(const std::map<TopicPartition, int64_t>& offsets,
                             absl::Time deadline);
  // Commits the positions that moved since the last commit (auto-commit).
  absl::Status CommitMoved(absl::Time deadline);

  // Poll()'s group work: reconciliation with the membership's view.
  absl::Status Reconcile();
  void MaybeAutoCommit();

  const std::shared_ptr<Cluster> cluster_;
  const ConsumerOptions options_;

  Mode mode_ = Mode::kNone;
  bool closed_ = false;
  std::vector<std::string> subscription_;
  // Owned partitions; touched only by the owning (caller's) thread.
  std::map<TopicPartition, Owned> owned_;
  // The offsets this consumer last committed (or found committed), per
  // owned partition.
  std::map<TopicPartition, int64_t> committed_;
  absl::Time next_auto_commit_ = absl::InfiniteFuture();
  // Group state seen by Reconcile().
  uint64_t lost_seen_ = 0;
  // Newly assigned partitions whose committed offsets could not be fetched
  // are retried from this time on.
  absl::Time next_offsets_attempt_ = absl::InfinitePast();
  absl::Duration offsets_backoff_;

  // State shared with the reader threads.
  struct Shared {
    absl::Mutex mu;
    absl::CondVar cv;
    std::deque<ConsumerRecord> buffer ABSL_GUARDED_BY(mu);
    std::deque<std::pair<TopicPartition, absl::Status>> errors
        ABSL_GUARDED_BY(mu);
    std::map<TopicPartition, int64_t> positions ABSL_GUARDED_BY(mu);
    std::map<TopicPartition, int64_t> high_watermarks ABSL_GUARDED_BY(mu);
    // The last transient error of partitions being retried (for messages).
    std::map<TopicPartition, absl::Status> retrying ABSL_GUARDED_BY(mu);
    // Bumped by the group membership whenever its view may have changed, to
    // wake Poll().
    uint64_t group_events ABSL_GUARDED_BY(mu) = 0;
  };
  std::shared_ptr<Shared> shared_;

  // With a group_id; declared last so that the heartbeat thread (which
  // signals shared_) stops first.
  std::shared_ptr<GroupCoordinator> coordinator_;
  std::unique_ptr<GroupMembership> membership_;
};

}  // namespace fjord::client

#endif  // FJORD_CLIENT_CONSUMER_H_
