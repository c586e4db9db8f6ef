#include "client/consumer.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "fjord/v1/fetch.grpc.pb.h"
#include "glog/logging.h"

namespace fjord::client {
namespace {

// Errors after which re-opening the stream at the same offset cannot help.
bool IsFatalFetchError(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::DATA_LOSS:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::UNIMPLEMENTED:
      return true;
    default:
      return false;
  }
}

// A stream or offset reset failing with anything else is retried.
bool IsFatal(absl::StatusCode code) {
  return IsFatalFetchError(static_cast<grpc::StatusCode>(code));
}

// The first reset attempt is made synchronously by Assign() / SeekTo*(); a
// broker that does not answer quickly is left to the reader's retries.
constexpr absl::Duration kFirstResetTimeout = absl::Seconds(2);

// One ListOffsets EARLIEST / LATEST for `tp` to its leader (from the cache,
// refreshed first when `refresh`). Errors carry the partition in the message.
// `context`: a fresh context for the call, or null.
absl::StatusOr<int64_t> ListOffsetOnce(Cluster& cluster,
                                       const TopicPartition& tp, bool earliest,
                                       bool refresh, absl::Duration timeout,
                                       grpc::ClientContext* context = nullptr) {
  auto channel = cluster.LeaderChannel(tp, refresh);
  if (!channel.ok()) return channel.status();
  fjord::v1::ListOffsetsRequest request;
  request.set_topic(tp.topic);
  request.set_partition(tp.partition);
  request.set_spec(earliest ? fjord::v1::ListOffsetsRequest::EARLIEST
                            : fjord::v1::ListOffsetsRequest::LATEST);
  grpc::ClientContext own_context;
  if (context == nullptr) context = &own_context;
  SetDeadline(context, timeout);
  fjord::v1::ListOffsetsResponse response;
  const grpc::Status status =
      fjord::v1::FetchService::NewStub(*channel)->ListOffsets(context, request,
                                                              &response);
  if (status.ok()) return response.offset();
  return absl::Status(
      static_cast<absl::StatusCode>(status.error_code()),
      absl::StrCat(tp.ToString(), ": ", status.error_message()));
}

ConsumerRecord FromProto(const TopicPartition& tp,
                         fjord::v1::ConsumedRecord& r) {
  ConsumerRecord out;
  out.topic = tp.topic;
  out.partition = tp.partition;
  out.offset = r.offset();
  if (r.has_key()) out.key = std::move(*r.mutable_key());
  out.value = std::move(*r.mutable_value());
  for (auto& h : *r.mutable_headers()) {
    out.headers.emplace_back(std::move(*h.mutable_key()),
                             std::move(*h.mutable_value()));
  }
  out.timestamp_ms = r.timestamp_ms();
  out.leader_epoch = r.leader_epoch();
  return out;
}

}  // namespace

// Where a partition's reader starts.
struct Consumer::Start {
  // Absent: at an offset reset (when `reset`), or nowhere (kNone).
  std::optional<int64_t> offset;
  bool reset = true;
  // The reset's target: the log start, else the high watermark.
  bool earliest = false;
  // `offset` is the group's committed offset: reset it (to `earliest`) when
  // the leader says it lies outside the log.
  bool from_committed = false;
};

// Owns one partition's Fetch stream and the thread reading it.
class Consumer::Reader {
 public:
  // Reads from start.offset, or from the ListOffsets EARLIEST
  // (start.earliest) / LATEST answer when there is none.
  Reader(std::shared_ptr<Cluster> cluster, const ConsumerOptions& options,
         std::shared_ptr<Shared> shared, TopicPartition tp, const Start& start)
      : cluster_(std::move(cluster)),
        options_(options),
        shared_(std::move(shared)),
        tp_(std::move(tp)),
        next_(start.offset.value_or(-1)),
        needs_reset_(!start.offset.has_value()),
        earliest_(start.earliest),
        reset_if_outside_(start.offset.has_value() && start.from_committed) {
    thread_ = std::thread([this] { Run(); });
  }

  ~Reader() { Stop(); }

  // Cancels the stream and joins the thread; after it returns, the reader adds
  // nothing more to the shared buffer.
  void Stop() {
    stopping_flag_ = true;
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    {
      absl::MutexLock lock(&shared_->mu);
      shared_->cv.SignalAll();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  bool stopping() {
    absl::MutexLock lock(&mu_);
    return stopping_;
  }

  // Sleeps for `d` or until Stop().
  void Sleep(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
  }

  // Sleeps for the current backoff and doubles it.
  void Backoff() {
    Sleep(backoff_);
    backoff_ = std::min(backoff_ * 2, options_.reconnect_backoff_max);
  }

  void PostError(const absl::Status& status) {
    LOG(WARNING) << "[tp=" << tp_.ToString() << "] fetch stopped: " << status;
    absl::MutexLock lock(&shared_->mu);
    if (stopping_flag_.load()) return;
    shared_->errors.emplace_back(tp_, status);
    shared_->retrying.erase(tp_);
    shared_->cv.SignalAll();
  }

  // Records a transient error about to be retried.
  void NoteRetrying(const absl::Status& status) {
    VLOG(1) << "[tp=" << tp_.ToString() << "] " << status << "; retrying";
    absl::MutexLock lock(&shared_->mu);
    shared_->retrying[tp_] = status;
  }

  // ListOffsetOnce() for this partition (refreshing the metadata first), with
  // a context Stop() can cancel.
  absl::StatusOr<int64_t> ListOffset(bool earliest) {
    grpc::ClientContext context;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::CancelledError("consumer stopping");
      context_ = &context;
    }
    auto offset = ListOffsetOnce(*cluster_, tp_, earliest, /*refresh=*/true,
                                 cluster_->options().rpc_timeout, &context);
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
    return offset;
  }

  // Resolves next_ with ListOffsets, retrying transient errors (after a
  // metadata refresh) until it succeeds. False when stopping or after a fatal
  // error (posted).
  bool Reset() {
    while (!stopping()) {
      // The caller's attempt failed with the cached metadata: refresh first.
      auto offset = ListOffset(earliest_);
      if (offset.ok()) {
        next_ = *offset;
        valid_up_to_ = std::max(valid_up_to_, next_);
        backoff_ = options_.reconnect_backoff;
        absl::MutexLock lock(&shared_->mu);
        if (stopping_flag_.load()) return false;
        shared_->positions[tp_] = next_;
        shared_->retrying.erase(tp_);
        shared_->cv.SignalAll();
        return true;
      }
      if (IsFatal(offset.status().code())) {
        PostError(offset.status());
        return false;
      }
      NoteRetrying(offset.status());
      Backoff();
    }
    return false;
  }

  // After OUT_OF_RANGE at a committed offset, before any record: when the
  // leader confirms that next_ lies outside [log start, high watermark],
  // moves next_ to the log start (earliest_) or the high watermark, as
  // Kafka's auto.offset.reset does, and returns true.
  bool ResetIfOutside() {
    auto start = ListOffset(/*earliest=*/true);
    auto end = ListOffset(/*earliest=*/false);
    if (!start.ok() || !end.ok()) return false;
    valid_up_to_ = std::max(valid_up_to_, *end);
    if (next_ >= *start && next_ <= *end) return false;
    const int64_t from = next_;
    next_ = earliest_ ? *start : *end;
    LOG(WARNING) << "[tp=" << tp_.ToString() << "] committed offset " << from
                 << " is outside the log [" << *start << ", " << *end
                 << "]; resetting to " << next_;
    reset_if_outside_ = false;
    absl::MutexLock lock(&shared_->mu);
    if (stopping_flag_.load()) return false;
    shared_->positions[tp_] = next_;
    shared_->retrying.erase(tp_);
    shared_->cv.SignalAll();
    return true;
  }

  // After OUT_OF_RANGE at next_: whether it is worth retrying. It is when a
  // leader already reported next_ as valid (so a new leader's high watermark
  // is probably still catching up), next_ is not below the log start, and this
  // has not lasted api_timeout.
  bool OutOfRangeIsTransient() {
    if (next_ > valid_up_to_) return false;
    const absl::Time now = absl::Now();
    if (!out_of_range_since_.has_value()) out_of_range_since_ = now;
    if (now - *out_of_range_since_ >= options_.api_timeout) return false;
    auto start = ListOffset(/*earliest=*/true);
    return !start.ok() || next_ >= *start;
  }

  void Run() {
    if (needs_reset_ && !Reset()) return;
    bool refresh = false;
    while (!stopping()) {
      auto channel = cluster_->LeaderChannel(tp_, refresh);
      if (!channel.ok()) {
        if (IsFatal(channel.status().code())) {
          PostError(channel.status());
          return;
        }
        NoteRetrying(channel.status());
        refresh = true;
        Backoff();
        continue;
      }
      grpc::ClientContext context;
      SetDeadline(&context, options_.stream_lifetime);
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        context_ = &context;
      }
      fjord::v1::FetchRequest request;
      request.set_topic(tp_.topic);
      request.set_partition(tp_.partition);
      request.set_offset(next_);
      request.set_max_bytes(options_.fetch_max_bytes);
      request.set_max_wait_ms(options_.fetch_max_wait_ms);
      auto stub = fjord::v1::FetchService::NewStub(*channel);
      auto stream = stub->Fetch(&context, request);
      fjord::v1::FetchResponse response;
      bool got_any = false;
      while (stream->Read(&response)) {
        if (!got_any) {
          got_any = true;
          backoff_ = options_.reconnect_backoff;
          out_of_range_since_.reset();
          reset_if_outside_ = false;  // The committed offset is in the log.
        }
        if (!Deliver(response)) break;
      }
      if (stopping()) context.TryCancel();
      const grpc::Status status = stream->Finish();
      {
        absl::MutexLock lock(&mu_);
        context_ = nullptr;
        if (stopping_) return;
      }
      refresh = false;
      if (status.ok() ||
          (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
           got_any)) {
        continue;  // Stream lifetime over: open the next one at once.
      }
      const absl::Status error(
          static_cast<absl::StatusCode>(status.error_code()),
          absl::StrCat(tp_.ToString(), ": ", status.error_message()));
      if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE &&
          reset_if_outside_ && ResetIfOutside()) {
        continue;
      }
      if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE &&
          OutOfRangeIsTransient()) {
        NoteRetrying(error);
        refresh = true;
        Backoff();
        continue;
      }
      if (IsFatalFetchError(status.error_code())) {
        PostError(error);
        return;
      }
      // UNAVAILABLE (NOT_LEADER, electing, a dead or unreachable broker),
      // CANCELLED (a broker shutting down), ...: ask the current leader.
      NoteRetrying(error);
      refresh = true;
      Backoff();
    }
  }

  // Moves the response's records into the shared buffer, waiting while it is
  // full. Returns false when stopping.
  bool Deliver(fjord::v1::FetchResponse& response) {
    valid_up_to_ = std::max(valid_up_to_, response.high_watermark());
    absl::MutexLock lock(&shared_->mu);
    shared_->high_watermarks[tp_] = response.high_watermark();
    shared_->retrying.erase(tp_);
    for (auto& r : *response.mutable_records()) {
      if (r.offset() < next_) continue;  // Already delivered.
      while (shared_->buffer.size() >= options_.buffer_max_records &&
             !stopping_flag_.load()) {
        shared_->cv.Wait(&shared_->mu);
      }
      if (stopping_flag_.load()) return false;
      next_ = r.offset() + 1;
      shared_->buffer.push_back(FromProto(tp_, r));
    }
    shared_->cv.SignalAll();
    return !stopping_flag_.load();
  }

  const std::shared_ptr<Cluster> cluster_;
  const ConsumerOptions options_;
  const std::shared_ptr<Shared> shared_;
  const TopicPartition tp_;
  // Reader-thread state. next_: the next offset to ask the broker for.
  int64_t next_;
  bool needs_reset_;
  const bool earliest_;
  // next_ is a committed offset not yet confirmed by a fetch: reset it when
  // the leader says it is outside the log.
  bool reset_if_outside_;
  // The highest offset a leader reported as inside the log (a high watermark
  // or a ListOffsets answer).
  int64_t valid_up_to_ = -1;
  // Since when fetches at next_ keep failing with OUT_OF_RANGE.
  std::optional<absl::Time> out_of_range_since_;
  absl::Duration backoff_ = options_.reconnect_backoff;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;

 public:
  // Mirrors stopping_ for checks made under shared_->mu (set before the
  // reader is woken through shared_->cv).
  std::atomic<bool> stopping_flag_{false};
};

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(
    std::shared_ptr<Cluster> cluster, ConsumerOptions options) {
  if (cluster == nullptr) return absl::InvalidArgumentError("no cluster");
  if (options.buffer_max_records < 1 || options.max_poll_records < 1) {
    return absl::InvalidArgumentError("consumer buffer sizes must be positive");
  }
  if (options.api_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("api_timeout must be positive");
  }
  if (options.group_id.empty()) {
    if (!options.group_instance_id.empty()) {
      return absl::InvalidArgumentError("group_instance_id needs a group_id");
    }
  } else {
    RETURN_IF_ERROR(ValidateGroupId(options.group_id));
    if (options.group_instance_id.size() > 249) {
      return absl::InvalidArgumentError(
          "group_instance_id is longer than 249 characters");
    }
    if (options.assignor.empty()) options.assignor = "uniform";
    if (options.assignor != "uniform" && options.assignor != "range") {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown assignor '", options.assignor, "': want uniform or range"));
    }
    if (options.enable_auto_commit &&
        options.auto_commit_interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          "auto_commit_interval must be positive");
    }
    if (options.session_timeout < absl::ZeroDuration() ||
        options.session_timeout > absl::Milliseconds(INT32_MAX)) {
      return absl::InvalidArgumentError(
          "session_timeout must be zero (the broker's default) or a positive "
          "number of milliseconds");
    }
    if (options.max_poll_interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("max_poll_interval must be positive");
    }
    if (options.close_timeout < absl::ZeroDuration()) {
      return absl::InvalidArgumentError("close_timeout must not be negative");
    }
  }
  return std::unique_ptr<Consumer>(
      new Consumer(std::move(cluster), std::move(options)));
}

Consumer::Consumer(std::shared_ptr<Cluster> cluster, ConsumerOptions options)
    : cluster_(std::move(cluster)),
      options_(std::move(options)),
      offsets_backoff_(options_.reconnect_backoff),
      shared_(std::make_shared<Shared>()) {
  if (options_.group_id.empty()) return;
  GroupCoordinator::Options coordinator_options;
  coordinator_options.retry_backoff =
      std::min(options_.reconnect_backoff, absl::Milliseconds(100));
  coordinator_options.retry_backoff_max = options_.reconnect_backoff_max;
  coordinator_ = std::make_shared<GroupCoordinator>(cluster_, options_.group_id,
                                                    coordinator_options);
  GroupMembershipOptions membership;
  membership.group_id = options_.group_id;
  membership.instance_id = options_.group_instance_id;
  membership.assignor = options_.assignor;
  membership.session_timeout = options_.session_timeout;
  membership.max_poll_interval = options_.max_poll_interval;
  membership.retry_backoff = coordinator_options.retry_backoff;
  membership.retry_backoff_max = options_.reconnect_backoff_max;
  membership_ = std::make_unique<GroupMembership>(
      coordinator_, std::move(membership), [shared = shared_] {
        absl::MutexLock lock(&shared->mu);
        ++shared->group_events;
        shared->cv.SignalAll();
      });
}

Consumer::~Consumer() { (void)Close(); }

absl::Status Consumer::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  const absl::Time deadline = absl::Now() + options_.close_timeout;
  absl::Status status;
  if (membership_ != nullptr && options_.enable_auto_commit &&
      !owned_.empty()) {
    const GroupMembership::View view = membership_->Snapshot();
    // Partitions lost (or not yet known to be) are not ours to commit.
    const bool ours = mode_ == Mode::kAssigned ||
                      (view.state == GroupMembership::State::kMember &&
                       view.lost_count == lost_seen_);
    if (ours) status = CommitMoved(deadline);
  }
  for (auto& [tp, o] : owned_) {
    if (o.reader != nullptr) o.reader->stopping_flag_ = true;
  }
  for (auto& [tp, o] : owned_) {
    if (o.reader != nullptr) o.reader->Stop();
  }
  owned_.clear();
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->buffer.clear();
    shared_->errors.clear();
  }
  if (membership_ != nullptr) {
    absl::Status left = membership_->Leave(deadline);
    if (status.ok()) status = left;
  }
  mode_ = Mode::kNone;
  subscription_.clear();
  return status;
}

void Consumer::StartReader(const TopicPartition& tp, const Start& start) {
  Owned& o = owned_.at(tp);
  o.needs_reset = !start.offset.has_value() && start.reset;
  o.reset_earliest = start.earliest;
  {
    absl::MutexLock lock(&shared_->mu);
    if (start.offset.has_value()) {
      shared_->positions[tp] = *start.offset;
    } else {
      shared_->positions.erase(tp);  // Unknown until the reset succeeds.
    }
    shared_->retrying.erase(tp);
    if (!start.offset.has_value() && !start.reset) {
      shared_->errors.emplace_back(
          tp, absl::FailedPreconditionError(absl::StrCat(
                  tp.ToString(),
                  ": no committed offset and auto_offset_reset is none; "
                  "Seek() the partition to read it")));
      shared_->cv.SignalAll();
      return;
    }
  }
  if (o.paused) return;  // Resume() starts the reader.
  o.reader = std::make_unique<Reader>(cluster_, options_, shared_, tp, start);
}

void Consumer::StopReader(const TopicPartition& tp) {
  auto it = owned_.find(tp);
  if (it != owned_.end() && it->second.reader != nullptr) {
    it->second.reader->stopping_flag_ = true;
    it->second.reader->Stop();
    it->second.reader = nullptr;
  }
  absl::MutexLock lock(&shared_->mu);
  auto& buffer = shared_->buffer;
  buffer.erase(std::remove_if(buffer.begin(), buffer.end(),
                              [&](const ConsumerRecord& r) {
                                return r.partition == tp.partition &&
                                       r.topic == tp.topic;
                              }),
               buffer.end());
  auto& errors = shared_->errors;
  errors.erase(std::remove_if(errors.begin(), errors.end(),
                              [&](const auto& e) { return e.first == tp; }),
               errors.end());
  shared_->cv.SignalAll();
}

void Consumer::Release(const TopicPartition& tp) {
  StopReader(tp);
  owned_.erase(tp);
  committed_.erase(tp);
  absl::MutexLock lock(&shared_->mu);
  shared_->positions.erase(tp);
  shared_->high_watermarks.erase(tp);
  shared_->retrying.erase(tp);
}

absl::StatusOr<Consumer::Start> Consumer::StartFor(
    const TopicPartition& tp, std::optional<int64_t> committed) {
  Start start;
  start.earliest = options_.auto_offset_reset == OffsetReset::kEarliest;
  if (committed.has_value()) {
    start.offset = *committed;
    start.from_committed = options_.auto_offset_reset != OffsetReset::kNone;
    return start;
  }
  if (options_.auto_offset_reset == OffsetReset::kNone) {
    start.reset = false;
    return start;
  }
  auto offset = ListOffsetOnce(
      *cluster_, tp, start.earliest, /*refresh=*/false,
      std::min(kFirstResetTimeout, cluster_->options().rpc_timeout));
  if (offset.ok()) {
    start.offset = *offset;
  } else if (IsFatal(offset.status().code())) {
    return offset.status();
  } else {
    VLOG(1) << "[tp=" << tp.ToString() << "] " << offset.status()
            << "; the reader retries the offset reset";
  }
  return start;
}

absl::Status Consumer::Assign(const std::vector<TopicPartition>& partitions) {
  if (closed_) return absl::FailedPreconditionError("the consumer is closed");
  if (mode_ == Mode::kSubscribed) {
    return absl::FailedPreconditionError(
        "Assign() while subscribed: Subscribe() and Assign() are exclusive "
        "(Unsubscribe() first)");
  }
  const std::set<TopicPartition> wanted(partitions.begin(), partitions.end());
  std::set<TopicPartition> added;
  for (const TopicPartition& tp : wanted) {
    if (owned_.count(tp) == 0) added.insert(tp);
  }
  std::map<TopicPartition, int64_t> committed;
  if (membership_ != nullptr && !added.empty()) {
    ASSIGN_OR_RETURN(committed, membership_->FetchCommitted(
                                    added, absl::Now() + options_.api_timeout));
  }
  std::map<TopicPartition, Start> starts;
  for (const TopicPartition& tp : added) {
    auto c = committed.find(tp);
    ASSIGN_OR_RETURN(
        starts[tp],
        StartFor(tp, c == committed.end() ? std::nullopt
                                          : std::optional<int64_t>(c->second)));
  }
  std::vector<TopicPartition> removed;
  for (const auto& [tp, o] : owned_) {
    if (wanted.count(tp) == 0) removed.push_back(tp);
  }
  if (!removed.empty() && membership_ != nullptr &&
      options_.enable_auto_commit) {
    // Like Kafka: commit the old assignment's positions before replacing it.
    if (absl::Status s =
            CommitMoved(absl::Now() + cluster_->options().rpc_timeout);
        !s.ok()) {
      LOG(WARNING) << "auto-commit before Assign(): " << s;
    }
  }
  for (const TopicPartition& tp : removed) Release(tp);
  for (const auto& [tp, start] : starts) {
    owned_[tp];
    if (auto c = committed.find(tp); c != committed.end()) {
      committed_[tp] = c->second;
    }
    StartReader(tp, start);
  }
  mode_ = owned_.empty() ? Mode::kNone : Mode::kAssigned;
  if (mode_ == Mode::kAssigned && next_auto_commit_ == absl::InfiniteFuture()) {
    next_auto_commit_ = absl::Now() + options_.auto_commit_interval;
  }
  return absl::OkStatus();
}

absl::Status Consumer::Subscribe(const std::vector<std::string>& topics) {
  if (closed_) return absl::FailedPreconditionError("the consumer is closed");
  if (membership_ == nullptr) {
    return absl::FailedPreconditionError(
        "Subscribe() needs a group_id in the consumer's options");
  }
  if (mode_ == Mode::kAssigned) {
    return absl::FailedPreconditionError(
        "Subscribe() while partitions are assigned: Assign() and Subscribe() "
        "are exclusive (Assign({}) first)");
  }
  if (topics.empty()) return Unsubscribe();
  std::set<std::string> unique;
  for (const std::string& t : topics) {
    if (t.empty()) return absl::InvalidArgumentError("empty topic name");
    unique.insert(t);
  }
  if (membership_->Snapshot().state == GroupMembership::State::kFatal) {
    // The member joins again under a new id: what the old one owned is not
    // this consumer's any more.
    const std::vector<TopicPartition> lost = Assignment();
    if (!lost.empty() && options_.on_partitions_lost) options_.on_partitions_lost(lost);
    for (const TopicPartition& tp : lost) Release(tp);
  }
  subscription_.assign(unique.begin(), unique.end());
  mode_ = Mode::kSubscribed;
  next_auto_commit_ = absl::Now() + options_.auto_commit_interval;
  membership_->Subscribe(subscription_);
  return absl::OkStatus();
}

absl::Status Consumer::Unsubscribe() {
  if (mode_ == Mode::kNone || membership_ == nullptr) {
    mode_ = Mode::kNone;
    return absl::OkStatus();
  }
  const absl::Time deadline = absl::Now() + options_.api_timeout;
  absl::Status status;
  if (options_.enable_auto_commit && !owned_.empty()) {
    const GroupMembership::View view = membership_->Snapshot();
    if (mode_ == Mode::kAssigned ||
        (view.state == GroupMembership::State::kMember &&
         view.lost_count == lost_seen_)) {
      status = CommitMoved(deadline);
    }
  }
  std::vector<TopicPartition> all = Assignment();
  if (mode_ == Mode::kSubscribed && !all.empty() && options_.on_partitions_revoked) {
    options_.on_partitions_revoked(all);
  }
  for (const TopicPartition& tp : all) Release(tp);
  if (mode_ == Mode::kSubscribed) {
    absl::Status left = membership_->Leave(deadline);
    if (status.ok()) status = left;
    lost_seen_ = membership_->Snapshot().lost_count;
  }
  subscription_.clear();
  mode_ = Mode::kNone;
  return status;
}

std::vector<std::string> Consumer::Subscription() const {
  return subscription_;
}

std::vector<TopicPartition> Consumer::Assignment() const {
  std::vector<TopicPartition> out;
  for (const auto& [tp, o] : owned_) out.push_back(tp);
  return out;
}

absl::Status Consumer::CheckOwned(
    const std::vector<TopicPartition>& partitions) const {
  for (const TopicPartition& tp : partitions) {
    if (owned_.count(tp) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("partition ", tp.ToString(), " is not assigned"));
    }
  }
  return absl::OkStatus();
}

absl::Status Consumer::Seek(const TopicPartition& tp, int64_t offset) {
  RETURN_IF_ERROR(CheckOwned({tp}));
  StopReader(tp);
  Start start;
  start.offset = offset;
  StartReader(tp, start);
  return absl::OkStatus();
}

absl::Status Consumer::ResetOffset(const TopicPartition& tp, bool earliest) {
  RETURN_IF_ERROR(CheckOwned({tp}));
  auto offset = ListOffsetOnce(
      *cluster_, tp, earliest, /*refresh=*/false,
      std::min(kFirstResetTimeout, cluster_->options().rpc_timeout));
  if (!offset.ok() && IsFatal(offset.status().code())) return offset.status();
  if (!offset.ok()) {
    VLOG(1) << "[tp=" << tp.ToString() << "] " << offset.status()
            << "; the reader retries the offset reset";
  }
  StopReader(tp);
  Start start;
  if (offset.ok()) start.offset = *offset;
  start.earliest = earliest;
  StartReader(tp, start);
  return absl::OkStatus();
}

absl::Status Consumer::SeekToBeginning(
    const std::vector<TopicPartition>& partitions) {
  const std::vector<TopicPartition> tps =
      partitions.empty() ? Assignment() : partitions;
  RETURN_IF_ERROR(CheckOwned(tps));
  for (const TopicPartition& tp : tps) {
    RETURN_IF_ERROR(ResetOffset(tp, /*earliest=*/true));
  }
  return absl::OkStatus();
}

absl::Status Consumer::SeekToEnd(
    const std::vector<TopicPartition>& partitions) {
  const std::vector<TopicPartition> tps =
      partitions.empty() ? Assignment() : partitions;
  RETURN_IF_ERROR(CheckOwned(tps));
  for (const TopicPartition& tp : tps) {
    RETURN_IF_ERROR(ResetOffset(tp, /*earliest=*/false));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Consumer::Position(const TopicPartition& tp) const {
  auto owned = owned_.find(tp);
  if (owned == owned_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("partition ", tp.ToString(), " is not assigned"));
  }
  // Only a running reader can still find the position.
  const bool reading = owned->second.reader != nullptr;
  const absl::Time until = absl::Now() + options_.api_timeout;
  absl::MutexLock lock(&shared_->mu);
  while (true) {
    auto it = shared_->positions.find(tp);
    if (it != shared_->positions.end()) return it->second;
    for (const auto& [etp, error] : shared_->errors) {
      if (etp == tp) return error;
    }
    if (!reading) {
      return absl::FailedPreconditionError(absl::StrCat(
          tp.ToString(), " has no position: ",
          owned->second.needs_reset
              ? "it was paused before its offset reset finished"
              : "no committed offset and auto_offset_reset is none"));
    }
    if (shared_->cv.WaitWithDeadline(&shared_->mu, until) &&
        absl::Now() >= until) {
      break;
    }
  }
  std::string why;
  if (auto it = shared_->retrying.find(tp); it != shared_->retrying.end()) {
    why = absl::StrCat("; last error: ", it->second.message());
  }
  return absl::DeadlineExceededError(
      absl::StrCat("the position of ", tp.ToString(),
                   " is not known: its offset reset did not succeed within ",
                   absl::FormatDuration(options_.api_timeout), why));
}

int64_t Consumer::HighWatermark(const TopicPartition& tp) const {
  absl::MutexLock lock(&shared_->mu);
  auto it = shared_->high_watermarks.find(tp);
  return it == shared_->high_watermarks.end() ? -1 : it->second;
}

absl::Status Consumer::Pause(const std::vector<TopicPartition>& partitions) {
  RETURN_IF_ERROR(CheckOwned(partitions));
  for (const TopicPartition& tp : partitions) {
    Owned& o = owned_.at(tp);
    if (o.paused) continue;
    o.paused = true;
    StopReader(tp);  // The position stays: buffered records come again.
  }
  return absl::OkStatus();
}

absl::Status Consumer::Resume(const std::vector<TopicPartition>& partitions) {
  RETURN_IF_ERROR(CheckOwned(partitions));
  for (const TopicPartition& tp : partitions) {
    Owned& o = owned_.at(tp);
    if (!o.paused) continue;
    o.paused = false;
    Start start;
    {
      absl::MutexLock lock(&shared_->mu);
      auto it = shared_->positions.find(tp);
      if (it != shared_->positions.end()) start.offset = it->second;
    }
    if (!start.offset.has_value()) {
      if (!o.needs_reset) continue;  // kNone: waits for a Seek().
      start.earliest = o.reset_earliest;
    }
    StartReader(tp, start);
  }
  return absl::OkStatus();
}

std::vector<TopicPartition> Consumer::Paused() const {
  std::vector<TopicPartition> out;
  for (const auto& [tp, o] : owned_) {
    if (o.paused) out.push_back(tp);
  }
  return out;
}

std::map<TopicPartition, int64_t> Consumer::Positions() const {
  std::map<TopicPartition, int64_t> out;
  absl::MutexLock lock(&shared_->mu);
  for (const auto& [tp, o] : owned_) {
    auto it = shared_->positions.find(tp);
    if (it != shared_->positions.end()) out[tp] = it->second;
  }
  return out;
}

absl::Status Consumer::CommitOffsets(
    const std::map<TopicPartition, int64_t>& offsets, absl::Time deadline) {
  if (membership_ == nullptr) {
    return absl::FailedPreconditionError(
        "committing offsets needs a group_id in the consumer's options");
  }
  RETURN_IF_ERROR(membership_->Commit(offsets, deadline));
  for (const auto& [tp, offset] : offsets) {
    if (owned_.count(tp) > 0) committed_[tp] = offset;
  }
  return absl::OkStatus();
}

absl::Status Consumer::CommitMoved(absl::Time deadline) {
  std::map<TopicPartition, int64_t> moved;
  for (const auto& [tp, position] : Positions()) {
    auto it = committed_.find(tp);
    if (it == committed_.end() || it->second != position) {
      moved[tp] = position;
    }
  }
  if (moved.empty()) return absl::OkStatus();
  return CommitOffsets(moved, deadline);
}

absl::Status Consumer::Commit() {
  if (closed_) return absl::FailedPreconditionError("the consumer is closed");
  return CommitOffsets(Positions(), absl::Now() + options_.api_timeout);
}

absl::Status Consumer::Commit(
    const std::map<TopicPartition, int64_t>& offsets) {
  if (closed_) return absl::FailedPreconditionError("the consumer is closed");
  return CommitOffsets(offsets, absl::Now() + options_.api_timeout);
}

absl::StatusOr<std::map<TopicPartition, int64_t>> Consumer::Committed(
    const std::vector<TopicPartition>& partitions) {
  if (membership_ == nullptr) {
    return absl::FailedPreconditionError(
        "committed offsets need a group_id in the consumer's options");
  }
  return membership_->FetchCommitted(
      std::set<TopicPartition>(partitions.begin(), partitions.end()),
      absl::Now() + options_.api_timeout);
}

void Consumer::MaybeAutoCommit() {
  if (membership_ == nullptr || !options_.enable_auto_commit ||
      mode_ == Mode::kNone || absl::Now() < next_auto_commit_) {
    return;
  }
  next_auto_commit_ = absl::Now() + options_.auto_commit_interval;
  if (mode_ == Mode::kSubscribed) {
    const GroupMembership::View view = membership_->Snapshot();
    if (view.state != GroupMembership::State::kMember) return;
    if (!view.coordinator_reachable) {
      // The heartbeats cannot reach the coordinator either: do not hold up
      // Poll() for a commit bound to fail; the next interval tries again.
      VLOG(1) << "[group=" << options_.group_id
              << "] auto-commit skipped: the coordinator is unreachable";
      return;
    }
  }
  if (absl::Status s =
          CommitMoved(absl::Now() + cluster_->options().rpc_timeout);
      !s.ok()) {
    LOG(WARNING) << "auto-commit: " << s;
  }
}

absl::Status Consumer::Reconcile() {
  const GroupMembership::View view = membership_->Snapshot();
  if (view.state == GroupMembership::State::kFatal) return view.fatal;
  if (view.lost_count != lost_seen_) {
    // Another member may own these partitions already: drop them without
    // committing, then join again.
    const std::vector<TopicPartition> lost = Assignment();
    if (!lost.empty()) {
      LOG(WARNING) << "[group=" << options_.group_id << "] dropping "
                   << lost.size()
                   << " partitions without committing: " << view.lost_reason;
      if (options_.on_partitions_lost) options_.on_partitions_lost(lost);
    }
    for (const TopicPartition& tp : lost) Release(tp);
    lost_seen_ = view.lost_count;
    membership_->AcknowledgeLost();
    return absl::OkStatus();
  }
  if (!view.has_assignment) return absl::OkStatus();

  std::vector<TopicPartition> revoked;
  for (const auto& [tp, o] : owned_) {
    if (view.assignment.count(tp) == 0) revoked.push_back(tp);
  }
  if (!revoked.empty()) {
    if (options_.enable_auto_commit) {
      // Commits every moved position (not only the revoked ones): one RPC.
      if (absl::Status s =
              CommitMoved(absl::Now() + cluster_->options().rpc_timeout);
          !s.ok()) {
        LOG(WARNING) << "[group=" << options_.group_id
                     << "] commit before releasing partitions: " << s;
      }
    }
    if (options_.on_partitions_revoked) options_.on_partitions_revoked(revoked);
    for (const TopicPartition& tp : revoked) {
      VLOG(1) << "[group=" << options_.group_id << "] releasing "
              << tp.ToString();
      Release(tp);
    }
    std::set<TopicPartition> owned;
    for (const auto& [tp, o] : owned_) owned.insert(tp);
    membership_->SetOwned(owned);
  }

  std::set<TopicPartition> added;
  for (const TopicPartition& tp : view.assignment) {
    if (owned_.count(tp) == 0) added.insert(tp);
  }
  if (added.empty() || absl::Now() < next_offsets_attempt_) {
    return absl::OkStatus();
  }
  auto committed = membership_->FetchCommitted(
      added, absl::Now() + cluster_->options().rpc_timeout);
  if (!committed.ok()) {
    LOG(WARNING) << "[group=" << options_.group_id
                 << "] cannot start newly assigned partitions yet: "
                 << committed.status();
    next_offsets_attempt_ = absl::Now() + offsets_backoff_;
    offsets_backoff_ =
        std::min(offsets_backoff_ * 2, options_.reconnect_backoff_max);
    return absl::OkStatus();
  }
  offsets_backoff_ = options_.reconnect_backoff;
  std::vector<TopicPartition> assigned;
  for (const TopicPartition& tp : added) {
    auto c = committed->find(tp);
    const std::optional<int64_t> offset =
        c == committed->end() ? std::nullopt
                              : std::optional<int64_t>(c->second);
    VLOG(1) << "[group=" << options_.group_id << "] taking " << tp.ToString()
            << (offset.has_value()
                    ? absl::StrCat(" at committed offset ", *offset)
                    : std::string(" without committed offset"));
    auto start = StartFor(tp, offset);
    owned_[tp];
    assigned.push_back(tp);
    if (offset.has_value()) committed_[tp] = *offset;
    if (start.ok()) {
      StartReader(tp, *start);
    } else {
      // A definite ListOffsets error (e.g. the topic is gone): owned but not
      // read; Poll() reports it, Seek() may restart it.
      absl::MutexLock lock(&shared_->mu);
      shared_->errors.emplace_back(tp, start.status());
      shared_->cv.SignalAll();
    }
  }
  std::set<TopicPartition> owned;
  for (const auto& [tp, o] : owned_) owned.insert(tp);
  membership_->SetOwned(owned);
  if (options_.on_partitions_assigned && !assigned.empty()) {
    options_.on_partitions_assigned(assigned);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ConsumerRecord>> Consumer::Poll(
    absl::Duration timeout) {
  if (closed_) return absl::FailedPreconditionError("the consumer is closed");
  const absl::Time until = absl::Now() + timeout;
  const bool group = mode_ == Mode::kSubscribed;
  if (group) membership_->PollStarted();
  struct PollEnd {
    GroupMembership* membership;
    ~PollEnd() {
      if (membership != nullptr) membership->PollEnded();
    }
  } poll_end{group ? membership_.get() : nullptr};

  while (true) {
    uint64_t events;
    {
      absl::MutexLock lock(&shared_->mu);
      events = shared_->group_events;
    }
    if (group) RETURN_IF_ERROR(Reconcile());
    MaybeAutoCommit();

    absl::MutexLock lock(&shared_->mu);
    while (shared_->buffer.empty() && shared_->errors.empty() &&
           !(group && shared_->group_events != events)) {
      if (shared_->cv.WaitWithDeadline(&shared_->mu, until) &&
          absl::Now() >= until) {
        break;
      }
    }
    // The group's view changed: reconcile before handing out records.
    if (group && shared_->group_events != events) continue;
    std::vector<ConsumerRecord> out;
    if (shared_->buffer.empty() && !shared_->errors.empty()) {
      absl::Status error = shared_->errors.front().second;
      shared_->errors.pop_front();
      return error;
    }
    while (!shared_->buffer.empty() && out.size() < options_.max_poll_records) {
      ConsumerRecord& r = shared_->buffer.front();
      shared_->positions[TopicPartition{r.topic, r.partition}] = r.offset + 1;
      out.push_back(std::move(r));
      shared_->buffer.pop_front();
    }
    shared_->cv.SignalAll();
    return out;
  }
}

}  // namespace fjord::client
