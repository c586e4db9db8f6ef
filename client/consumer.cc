#include "client/consumer.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
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

// Owns one partition's Fetch stream and the thread reading it.
class Consumer::Reader {
 public:
  // Reads from `offset`, or from the ListOffsets EARLIEST (`earliest`) /
  // LATEST answer when there is none.
  Reader(std::shared_ptr<Cluster> cluster, const ConsumerOptions& options,
         std::shared_ptr<Shared> shared, TopicPartition tp,
         std::optional<int64_t> offset, bool earliest)
      : cluster_(std::move(cluster)),
        options_(options),
        shared_(std::move(shared)),
        tp_(std::move(tp)),
        next_(offset.value_or(-1)),
        needs_reset_(!offset.has_value()),
        earliest_(earliest) {
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
  return std::unique_ptr<Consumer>(
      new Consumer(std::move(cluster), std::move(options)));
}

Consumer::Consumer(std::shared_ptr<Cluster> cluster, ConsumerOptions options)
    : cluster_(std::move(cluster)),
      options_(std::move(options)),
      shared_(std::make_shared<Shared>()) {}

Consumer::~Consumer() { Close(); }

void Consumer::Close() {
  for (auto& [tp, reader] : readers_) reader->stopping_flag_ = true;
  for (auto& [tp, reader] : readers_) reader->Stop();
  readers_.clear();
}

void Consumer::StartReader(const TopicPartition& tp,
                           std::optional<int64_t> offset, bool earliest) {
  {
    absl::MutexLock lock(&shared_->mu);
    if (offset.has_value()) {
      shared_->positions[tp] = *offset;
    } else {
      shared_->positions.erase(tp);  // Unknown until the reset succeeds.
    }
    shared_->retrying.erase(tp);
  }
  readers_[tp] = std::make_unique<Reader>(cluster_, options_, shared_, tp,
                                          offset, earliest);
}

void Consumer::StopReader(const TopicPartition& tp) {
  auto it = readers_.find(tp);
  if (it != readers_.end()) {
    it->second->stopping_flag_ = true;
    it->second->Stop();
    readers_.erase(it);
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

absl::Status Consumer::Assign(const std::vector<TopicPartition>& partitions) {
  std::set<TopicPartition> wanted(partitions.begin(), partitions.end());
  const bool earliest = options_.auto_offset_reset == OffsetReset::kEarliest;
  // Absent offset: the reader resets it.
  std::map<TopicPartition, std::optional<int64_t>> starts;
  for (const TopicPartition& tp : wanted) {
    if (readers_.count(tp) > 0) continue;
    auto offset = ListOffsetOnce(
        *cluster_, tp, earliest, /*refresh=*/false,
        std::min(kFirstResetTimeout, cluster_->options().rpc_timeout));
    if (offset.ok()) {
      starts[tp] = *offset;
    } else if (IsFatal(offset.status().code())) {
      return offset.status();
    } else {
      VLOG(1) << "[tp=" << tp.ToString() << "] " << offset.status()
              << "; the reader retries the offset reset";
      starts[tp] = std::nullopt;
    }
  }
  std::vector<TopicPartition> removed;
  for (const auto& [tp, reader] : readers_) {
    if (wanted.count(tp) == 0) removed.push_back(tp);
  }
  for (const TopicPartition& tp : removed) {
    StopReader(tp);
    absl::MutexLock lock(&shared_->mu);
    shared_->positions.erase(tp);
    shared_->high_watermarks.erase(tp);
    shared_->retrying.erase(tp);
  }
  for (const auto& [tp, offset] : starts) StartReader(tp, offset, earliest);
  return absl::OkStatus();
}

std::vector<TopicPartition> Consumer::Assignment() const {
  std::vector<TopicPartition> out;
  for (const auto& [tp, reader] : readers_) out.push_back(tp);
  return out;
}

absl::Status Consumer::Seek(const TopicPartition& tp, int64_t offset) {
  if (readers_.count(tp) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("partition ", tp.ToString(), " is not assigned"));
  }
  StopReader(tp);
  StartReader(tp, offset, /*earliest=*/false);
  return absl::OkStatus();
}

absl::Status Consumer::ResetOffset(const TopicPartition& tp, bool earliest) {
  if (readers_.count(tp) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("partition ", tp.ToString(), " is not assigned"));
  }
  auto offset = ListOffsetOnce(
      *cluster_, tp, earliest, /*refresh=*/false,
      std::min(kFirstResetTimeout, cluster_->options().rpc_timeout));
  if (!offset.ok() && IsFatal(offset.status().code())) return offset.status();
  if (!offset.ok()) {
    VLOG(1) << "[tp=" << tp.ToString() << "] " << offset.status()
            << "; the reader retries the offset reset";
  }
  StopReader(tp);
  StartReader(tp, offset.ok() ? std::optional<int64_t>(*offset) : std::nullopt,
              earliest);
  return absl::OkStatus();
}

absl::Status Consumer::SeekToBeginning(
    const std::vector<TopicPartition>& partitions) {
  const std::vector<TopicPartition> tps =
      partitions.empty() ? Assignment() : partitions;
  for (const TopicPartition& tp : tps) {
    if (readers_.count(tp) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("partition ", tp.ToString(), " is not assigned"));
    }
  }
  for (const TopicPartition& tp : tps) {
    absl::Status s = ResetOffset(tp, /*earliest=*/true);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Consumer::SeekToEnd(
    const std::vector<TopicPartition>& partitions) {
  const std::vector<TopicPartition> tps =
      partitions.empty() ? Assignment() : partitions;
  for (const TopicPartition& tp : tps) {
    if (readers_.count(tp) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("partition ", tp.ToString(), " is not assigned"));
    }
  }
  for (const TopicPartition& tp : tps) {
    absl::Status s = ResetOffset(tp, /*earliest=*/false);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Consumer::Position(const TopicPartition& tp) const {
  if (readers_.count(tp) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("partition ", tp.ToString(), " is not assigned"));
  }
  const absl::Time until = absl::Now() + options_.api_timeout;
  absl::MutexLock lock(&shared_->mu);
  while (true) {
    auto it = shared_->positions.find(tp);
    if (it != shared_->positions.end()) return it->second;
    for (const auto& [etp, error] : shared_->errors) {
      if (etp == tp) return error;
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

absl::StatusOr<std::vector<ConsumerRecord>> Consumer::Poll(
    absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  absl::MutexLock lock(&shared_->mu);
  while (shared_->buffer.empty() && shared_->errors.empty()) {
    if (shared_->cv.WaitWithDeadline(&shared_->mu, until) &&
        absl::Now() >= until) {
      break;
    }
  }
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

}  // namespace fjord::client
