#include "client/consumer.h"

#include <algorithm>
#include <atomic>
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
  Reader(std::shared_ptr<Cluster> cluster, const ConsumerOptions& options,
         std::shared_ptr<Shared> shared, TopicPartition tp, int64_t offset)
      : cluster_(std::move(cluster)),
        options_(options),
        shared_(std::move(shared)),
        tp_(std::move(tp)),
        next_(offset) {
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

  void PostError(const absl::Status& status) {
    LOG(WARNING) << "[tp=" << tp_.ToString() << "] fetch stopped: " << status;
    absl::MutexLock lock(&shared_->mu);
    if (stopping_flag_.load()) return;
    shared_->errors.emplace_back(tp_, status);
    shared_->cv.SignalAll();
  }

  void Run() {
    absl::Duration backoff = options_.reconnect_backoff;
    bool refresh = false;
    while (!stopping()) {
      auto channel = cluster_->LeaderChannel(tp_, refresh);
      if (!channel.ok()) {
        if (channel.status().code() == absl::StatusCode::kNotFound) {
          PostError(channel.status());
          return;
        }
        VLOG(1) << "[tp=" << tp_.ToString() << "] " << channel.status();
        refresh = true;
        Sleep(backoff);
        backoff = std::min(backoff * 2, options_.reconnect_backoff_max);
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
        got_any = true;
        if (!Deliver(response)) break;
      }
      if (stopping()) context.TryCancel();
      const grpc::Status status = stream->Finish();
      {
        absl::MutexLock lock(&mu_);
        context_ = nullptr;
        if (stopping_) return;
      }
      if (got_any) backoff = options_.reconnect_backoff;
      if (status.ok() ||
          status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        continue;  // Stream lifetime over: open the next one at once.
      }
      if (IsFatalFetchError(status.error_code())) {
        PostError(absl::Status(
            static_cast<absl::StatusCode>(status.error_code()),
            absl::StrCat(tp_.ToString(), ": ", status.error_message())));
        return;
      }
      VLOG(1) << "[tp=" << tp_.ToString()
              << "] fetch stream: " << status.error_message()
              << "; reconnecting at " << next_;
      refresh = true;
      Sleep(backoff);
      backoff = std::min(backoff * 2, options_.reconnect_backoff_max);
    }
  }

  // Moves the response's records into the shared buffer, waiting while it is
  // full. Returns false when stopping.
  bool Deliver(fjord::v1::FetchResponse& response) {
    absl::MutexLock lock(&shared_->mu);
    shared_->high_watermarks[tp_] = response.high_watermark();
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
  // Next offset to ask the broker for; only the reader thread touches it.
  int64_t next_;

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

absl::StatusOr<int64_t> Consumer::ListOffset(const TopicPartition& tp,
                                             bool earliest) {
  fjord::v1::ListOffsetsRequest request;
  request.set_topic(tp.topic);
  request.set_partition(tp.partition);
  request.set_spec(earliest ? fjord::v1::ListOffsetsRequest::EARLIEST
                            : fjord::v1::ListOffsetsRequest::LATEST);
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto channel = cluster_->LeaderChannel(tp, attempt > 0);
    if (!channel.ok()) {
      last = channel.status();
      if (last.code() != absl::StatusCode::kUnavailable) return last;
    } else {
      grpc::ClientContext context;
      SetDeadline(&context, cluster_->options().rpc_timeout);
      fjord::v1::ListOffsetsResponse response;
      grpc::Status status =
          fjord::v1::FetchService::NewStub(*channel)->ListOffsets(
              &context, request, &response);
      if (status.ok()) return response.offset();
      last = absl::Status(
          static_cast<absl::StatusCode>(status.error_code()),
          absl::StrCat(tp.ToString(), ": ", status.error_message()));
      if (!IsRetriable(status.error_code())) return last;
    }
    absl::SleepFor(absl::Milliseconds(200) * (attempt + 1));
  }
  return last;
}

void Consumer::StartReader(const TopicPartition& tp, int64_t offset) {
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->positions[tp] = offset;
  }
  readers_[tp] =
      std::make_unique<Reader>(cluster_, options_, shared_, tp, offset);
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
  std::map<TopicPartition, int64_t> starts;
  for (const TopicPartition& tp : wanted) {
    if (readers_.count(tp) > 0) continue;
    auto offset =
        ListOffset(tp, options_.auto_offset_reset == OffsetReset::kEarliest);
    if (!offset.ok()) return offset.status();
    starts[tp] = *offset;
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
  }
  for (const auto& [tp, offset] : starts) StartReader(tp, offset);
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
  StartReader(tp, offset);
  return absl::OkStatus();
}

absl::Status Consumer::SeekToBeginning(
    const std::vector<TopicPartition>& partitions) {
  for (const TopicPartition& tp :
       partitions.empty() ? Assignment() : partitions) {
    auto offset = ListOffset(tp, /*earliest=*/true);
    if (!offset.ok()) return offset.status();
    absl::Status s = Seek(tp, *offset);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Consumer::SeekToEnd(
    const std::vector<TopicPartition>& partitions) {
  for (const TopicPartition& tp :
       partitions.empty() ? Assignment() : partitions) {
    auto offset = ListOffset(tp, /*earliest=*/false);
    if (!offset.ok()) return offset.status();
    absl::Status s = Seek(tp, *offset);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Consumer::Position(const TopicPartition& tp) const {
  absl::MutexLock lock(&shared_->mu);
  auto it = shared_->positions.find(tp);
  if (it == shared_->positions.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("partition ", tp.ToString(), " is not assigned"));
  }
  return it->second;
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
