#include "client/producer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fjord/v1/produce.grpc.pb.h"
#include "glog/logging.h"

namespace fjord::client {

struct Producer::Batch {
  TopicPartition tp;
  // The records, in Send() order; acks already set.
  fjord::v1::ProduceRequest request;
  std::vector<DeliveryCallback> callbacks;
  size_t bytes = 0;
  absl::Time created;
  // created + delivery_timeout: no attempt starts after it.
  absl::Time deadline;
  // Earliest time of the next attempt (backoff).
  absl::Time not_before = absl::InfinitePast();
  int attempts = 0;
  // Failed tries, including those that never reached a broker; drives backoff.
  int retries = 0;
  // Some attempt ended without a definite answer.
  bool maybe_appended = false;
  // A batch being retried takes no more records.
  bool sealed = false;
  absl::Status last_error;
  // The ErrorInfo reason of the last failed attempt, if the broker gave one.
  fjord::v1::ErrorInfo::Reason last_reason =
      fjord::v1::ErrorInfo::REASON_UNSPECIFIED;
};

// One Produce RPC in flight; owns everything the RPC touches until its
// callback.
struct Producer::InFlight {
  std::unique_ptr<Batch> batch;
  std::unique_ptr<fjord::v1::ProduceService::Stub> stub;
  grpc::ClientContext context;
  fjord::v1::ProduceResponse response;
};

namespace {

fjord::v1::Acks ToProto(Acks acks) {
  switch (acks) {
    case Acks::kNone:
      return fjord::v1::ACKS_NONE;
    case Acks::kLeader:
      return fjord::v1::ACKS_LEADER;
    case Acks::kAll:
      return fjord::v1::ACKS_ALL;
  }
  return fjord::v1::ACKS_ALL;
}

size_t RecordBytes(const ProducerRecord& r) {
  size_t n = r.value.size() + (r.key ? r.key->size() : 0);
  for (const auto& [k, v] : r.headers) n += k.size() + v.size();
  return n;
}

}  // namespace

absl::StatusOr<Acks> ParseAcks(absl::string_view text) {
  if (text == "0") return Acks::kNone;
  if (text == "1") return Acks::kLeader;
  if (text == "all" || text == "-1") return Acks::kAll;
  return absl::InvalidArgumentError(
      absl::StrCat("bad acks '", text, "': want 0, 1 or all"));
}

absl::string_view AcksName(Acks acks) {
  switch (acks) {
    case Acks::kNone:
      return "0";
    case Acks::kLeader:
      return "1";
    case Acks::kAll:
      return "all";
  }
  return "all";
}

bool IsIndeterminate(const absl::Status& status) {
  return status.code() == absl::StatusCode::kDeadlineExceeded;
}

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(
    std::shared_ptr<Cluster> cluster, ProducerOptions options) {
  if (cluster == nullptr) return absl::InvalidArgumentError("no cluster");
  if (options.batch_max_records < 1 || options.batch_max_bytes < 1 ||
      options.max_in_flight < 1 || options.max_in_flight_per_partition < 1 ||
      options.buffer_max_bytes < 1) {
    return absl::InvalidArgumentError(
        "producer batch, in-flight and buffer limits must be positive");
  }
  return std::unique_ptr<Producer>(
      new Producer(std::move(cluster), std::move(options)));
}

Producer::Producer(std::shared_ptr<Cluster> cluster, ProducerOptions options)
    : cluster_(std::move(cluster)), options_(std::move(options)) {
  sender_ = std::thread([this] { SenderLoop(); });
}

Producer::~Producer() { Close(); }

absl::Status Producer::Send(ProducerRecord record, DeliveryCallback callback) {
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return absl::FailedPreconditionError("producer is closed");
  }
  if (record.topic.empty()) return absl::InvalidArgumentError("empty topic");
  // Like Kafka's max.block.ms: wait (with backoff) for metadata while no broker
  // answers, e.g. during a restart or an election.
  const absl::Time metadata_until = absl::Now() + options_.max_block;
  absl::Duration backoff = options_.retry_backoff;
  auto info = cluster_->Topic(record.topic);
  while (!info.ok() &&
         (info.status().code() == absl::StatusCode::kUnavailable ||
          info.status().code() == absl::StatusCode::kDeadlineExceeded) &&
         absl::Now() + backoff < metadata_until) {
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, options_.retry_backoff_max);
    info = cluster_->Topic(record.topic, /*refresh=*/true);
  }
  if (!info.ok()) return info.status();
  const int32_t partitions = (*info)->partitions_size();
  if (partitions < 1) {
    return absl::UnavailableError(
        absl::StrCat("topic '", record.topic, "' has no partitions yet"));
  }
  int32_t partition;
  if (record.partition.has_value()) {
    partition = *record.partition;
    if (partition < 0 || partition >= partitions) {
      return absl::NotFoundError(absl::StrCat("unknown partition ", partition,
                                              " of topic '", record.topic,
                                              "' (it has ", partitions, ")"));
    }
  } else {
    partition = partitioner_.Partition(record.topic, record.key, partitions);
  }
  const size_t bytes = RecordBytes(record);
  // Refuse what the broker would refuse, so one oversized record does not fail
  // the records batched with it.
  if (auto it = (*info)->configs().find("max.message.bytes");
      it != (*info)->configs().end()) {
    int64_t limit = 0;
    if (absl::SimpleAtoi(it->second, &limit) && limit > 0 &&
        bytes > static_cast<uint64_t>(limit)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "record is ", bytes, " bytes (key + value + headers); topic ",
          record.topic, " allows at most ", limit, " (max.message.bytes)"));
    }
  }

  fjord::v1::Record proto;
  if (record.key.has_value()) proto.set_key(std::move(*record.key));
  proto.set_value(std::move(record.value));
  for (auto& [k, v] : record.headers) {
    fjord::v1::Header* h = proto.add_headers();
    h->set_key(std::move(k));
    h->set_value(std::move(v));
  }
  proto.set_timestamp_ms(record.timestamp_ms);

  absl::MutexLock lock(&mu_);
  const absl::Time block_until = absl::Now() + options_.max_block;
  while (!closing_ && buffered_bytes_ > 0 &&
         buffered_bytes_ + bytes > options_.buffer_max_bytes) {
    if (cv_.WaitWithDeadline(&mu_, block_until) && absl::Now() >= block_until) {
      return absl::ResourceExhaustedError(
          "producer buffer stayed full for max_block");
    }
  }
  if (closing_) return absl::FailedPreconditionError("producer is closed");

  PartitionQueue& q = queues_[TopicPartition{record.topic, partition}];
  Batch* batch = q.batches.empty() ? nullptr : q.batches.back().get();
  if (batch == nullptr || batch->sealed ||
      batch->request.records_size() >= options_.batch_max_records ||
      (batch->bytes > 0 && batch->bytes + bytes > options_.batch_max_bytes)) {
    auto fresh = std::make_unique<Batch>();
    fresh->tp = TopicPartition{record.topic, partition};
    fresh->request.set_topic(record.topic);
    fresh->request.set_partition(partition);
    fresh->request.set_acks(ToProto(options_.acks));
    fresh->created = absl::Now();
    fresh->deadline = fresh->created + options_.delivery_timeout;
    batch = fresh.get();
    q.batches.push_back(std::move(fresh));
    cv_.SignalAll();  // The sender must arm this batch's linger timer.
  }
  *batch->request.add_records() = std::move(proto);
  batch->callbacks.push_back(std::move(callback));
  batch->bytes += bytes;
  buffered_bytes_ += bytes;
  ++pending_records_;
  if (batch->request.records_size() >= options_.batch_max_records ||
      batch->bytes >= options_.batch_max_bytes) {
    cv_.SignalAll();
  }
  return absl::OkStatus();
}

std::future<absl::StatusOr<RecordMetadata>> Producer::Send(
    ProducerRecord record) {
  auto promise =
      std::make_shared<std::promise<absl::StatusOr<RecordMetadata>>>();
  auto future = promise->get_future();
  absl::Status status = Send(
      std::move(record), [promise](const absl::StatusOr<RecordMetadata>& r) {
        promise->set_value(r);
      });
  if (!status.ok()) promise->set_value(status);
  return future;
}

absl::Status Producer::Flush(absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  ++flushing_;
  cv_.SignalAll();
  while (pending_records_ > 0) {
    if (cv_.WaitWithDeadline(&mu_, until) && absl::Now() >= until) break;
  }
  --flushing_;
  if (pending_records_ > 0) {
    return absl::DeadlineExceededError(absl::StrCat(
        "flush timed out with ", pending_records_, " records undelivered"));
  }
  return absl::OkStatus();
}

void Producer::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return;
  }
  Flush().IgnoreError();
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    cv_.SignalAll();
  }
  if (sender_.joinable()) sender_.join();
}

void Producer::SenderLoop() {
  mu_.Lock();
  while (!(closing_ && pending_records_ == 0)) {
    const absl::Time now = absl::Now();
    absl::Time wake = absl::InfiniteFuture();
    std::vector<std::unique_ptr<Batch>> ready, expired;
    for (auto& [tp, q] : queues_) {
      while (!q.batches.empty() && q.batches.front()->deadline <= now) {
        expired.push_back(std::move(q.batches.front()));
        q.batches.pop_front();
      }
      if (q.batches.empty()) continue;
      Batch& b = *q.batches.front();
      wake = std::min(wake, b.deadline);
      if (q.in_flight >= options_.max_in_flight_per_partition ||
          in_flight_ >= options_.max_in_flight) {
        continue;  // A finishing request signals cv_.
      }
      const bool full =
          q.batches.size() > 1 || b.sealed ||
          b.request.records_size() >= options_.batch_max_records ||
          b.bytes >= options_.batch_max_bytes;
      absl::Time send_at = b.not_before;
      if (!full && flushing_ == 0 && !closing_) {
        send_at = std::max(send_at, b.created + options_.linger);
      }
      if (send_at <= now) {
        ready.push_back(std::move(q.batches.front()));
        q.batches.pop_front();
        ++q.in_flight;
        ++in_flight_;
      } else {
        wake = std::min(wake, send_at);
      }
    }
    if (ready.empty() && expired.empty()) {
      cv_.WaitWithDeadline(&mu_, wake);
      continue;
    }
    mu_.Unlock();
    for (auto& b : expired) {
      const absl::Status error = GiveUpError(*b);
      Complete(std::move(b), nullptr, error, /*held_slot=*/false);
    }
    for (auto& b : ready) Dispatch(std::move(b));
    mu_.Lock();
  }
  mu_.Unlock();
}

void Producer::Dispatch(std::unique_ptr<Batch> batch) {
  auto channel = cluster_->LeaderChannel(batch->tp);
  if (!channel.ok()) {
    if (channel.status().code() == absl::StatusCode::kUnavailable ||
        channel.status().code() == absl::StatusCode::kDeadlineExceeded) {
      cluster_->Invalidate(batch->tp.topic);
      batch->last_reason = fjord::v1::ErrorInfo::REASON_UNSPECIFIED;
      RetryOrFail(std::move(batch), channel.status(), false);
    } else {
      Complete(std::move(batch), nullptr, channel.status(), true);
    }
    return;
  }
  auto* call = new InFlight;
  call->batch = std::move(batch);
  call->stub = fjord::v1::ProduceService::NewStub(*channel);
  SetDeadline(&call->context, options_.request_timeout);
  ++call->batch->attempts;
  call->stub->async()->Produce(
      &call->context, &call->batch->request, &call->response,
      [this, call](grpc::Status status) { OnProduceDone(call, status); });
}

void Producer::OnProduceDone(InFlight* call, const grpc::Status& status) {
  std::unique_ptr<Batch> batch = std::move(call->batch);
  const fjord::v1::ProduceResponse response = std::move(call->response);
  // Frees the stub and its channel reference now, while this producer (so the
  // Cluster and its channels) is certainly alive: once Complete() runs, Close()
  // may return and the Cluster go, and dropping the last reference to a
  // grpc::Channel on a gRPC callback thread aborts the process.
  delete call;
  if (status.ok()) {
    Complete(std::move(batch), &response, absl::OkStatus(), true);
    return;
  }
  const grpc::StatusCode code = status.error_code();
  const std::optional<fjord::v1::ErrorInfo> info = ErrorInfoOf(status);
  const absl::Status error(
      static_cast<absl::StatusCode>(code),
      absl::StrCat(batch->tp.ToString(), ": ", status.error_message()));
  VLOG(1) << "produce to " << batch->tp.ToString() << " attempt "
          << batch->attempts << ": " << error;
  // CANCELLED: we never cancel, so the broker did (shutting down mid-request).
  if (code == grpc::StatusCode::UNAVAILABLE ||
      code == grpc::StatusCode::DEADLINE_EXCEEDED ||
      code == grpc::StatusCode::CANCELLED ||
      code == grpc::StatusCode::ABORTED) {
    // Definite refusals: the broker said it is not the leader, is shutting
    // down or has too few in-sync replicas for acks=all (all checked before
    // appending), or the connection never came up. Anything else may have
    // been appended, including NOT_LEADER from a leader that appended the
    // batch and then lost leadership while waiting for its followers ("may or
    // may not be committed").
    bool maybe_appended = true;
    batch->last_reason = fjord::v1::ErrorInfo::REASON_UNSPECIFIED;
    if (info.has_value()) {
      batch->last_reason = info->reason();
      switch (info->reason()) {
        case fjord::v1::ErrorInfo::NOT_LEADER:
          maybe_appended =
              absl::StrContains(status.error_message(), "may or may not");
          break;
        case fjord::v1::ErrorInfo::SHUTTING_DOWN:
        case fjord::v1::ErrorInfo::NOT_ENOUGH_REPLICAS:
          maybe_appended = false;
          break;
        default:
          break;
      }
    } else if (code == grpc::StatusCode::UNAVAILABLE &&
               (absl::StrContains(status.error_message(),
                                  "failed to connect") ||
                absl::StrContains(status.error_message(),
                                  "Connection refused"))) {
      maybe_appended = false;
    } else if (code == grpc::StatusCode::ABORTED) {
      maybe_appended = false;  // Fenced epoch: refused before appending.
    }
    cluster_->Invalidate(batch->tp.topic);
    RetryOrFail(std::move(batch), error, maybe_appended);
    return;
  }
  Complete(std::move(batch), nullptr, error, true);
}

absl::Status Producer::GiveUpError(const Batch& batch) {
  if (batch.maybe_appended) {
    return absl::DeadlineExceededError(absl::StrCat(
        "indeterminate: ", batch.tp.ToString(), ": delivery timed out after ",
        batch.attempts,
        " attempts, records may or may not be stored; last error: ",
        batch.last_error.message()));
  }
  // Every attempt was refused before appending: a definite failure, with the
  // last refusal's code (never DEADLINE_EXCEEDED, which means indeterminate)
  // and reason.
  absl::StatusCode code = batch.last_error.code();
  if (code == absl::StatusCode::kOk ||
      code == absl::StatusCode::kDeadlineExceeded) {
    code = absl::StatusCode::kUnavailable;
  }
  std::string reason;
  if (batch.last_reason != fjord::v1::ErrorInfo::REASON_UNSPECIFIED) {
    reason = absl::StrCat(
        " (", fjord::v1::ErrorInfo::Reason_Name(batch.last_reason), ")");
  }
  return absl::Status(
      code, absl::StrCat("not delivered: gave up after ", batch.attempts,
                         " attempts within the delivery timeout", reason,
                         batch.last_error.ok() ? "" : ": ",
                         batch.last_error.message()));
}

void Producer::RetryOrFail(std::unique_ptr<Batch> batch, absl::Status error,
                           bool maybe_appended) {
  batch->maybe_appended |= maybe_appended;
  batch->last_error = std::move(error);
  ++batch->retries;
  absl::Duration backoff = options_.retry_backoff;
  for (int i = 1; i < batch->retries && backoff < options_.retry_backoff_max;
       ++i) {
    backoff *= 2;
  }
  backoff = std::min(backoff, options_.retry_backoff_max);
  const absl::Time now = absl::Now();
  if (now + backoff >= batch->deadline) {
    const absl::Status final_error = GiveUpError(*batch);
    Complete(std::move(batch), nullptr, final_error, true);
    return;
  }
  absl::MutexLock lock(&mu_);
  PartitionQueue& q = queues_[batch->tp];
  batch->not_before = now + backoff;
  batch->sealed = true;
  q.batches.push_front(std::move(batch));
  --q.in_flight;
  --in_flight_;
  cv_.SignalAll();
}

void Producer::Complete(std::unique_ptr<Batch> batch,
                        const fjord::v1::ProduceResponse* response,
                        const absl::Status& error, bool held_slot) {
  const int n = batch->request.records_size();
  if (error.ok() && response->base_offset() >= 0 &&
      response->last_offset() - response->base_offset() + 1 != n) {
    LOG(ERROR) << "[tp=" << batch->tp.ToString() << "] broker answered offsets "
               << response->base_offset() << ".." << response->last_offset()
               << " for a batch of " << n << " records";
  }
  VLOG(2) << "[tp=" << batch->tp.ToString() << "] batch of " << n
          << " records attempt " << batch->attempts << ": "
          << (error.ok() ? absl::StrCat("offsets ", response->base_offset(),
                                        "..", response->last_offset())
                         : error.ToString());
  if (!error.ok()) {
    VLOG(1) << "failed " << n << " records to " << batch->tp.ToString() << ": "
            << error;
  }
  for (int i = 0; i < n; ++i) {
    if (!batch->callbacks[i]) continue;
    if (!error.ok()) {
      batch->callbacks[i](error);
      continue;
    }
    RecordMetadata md;
    md.topic = batch->tp.topic;
    md.partition = batch->tp.partition;
    md.offset = response->base_offset() >= 0 ? response->base_offset() + i : -1;
    const int64_t ts = batch->request.records(i).timestamp_ms();
    md.timestamp_ms =
        ts != 0 ? ts
                : (response->append_time_ms() > 0 ? response->append_time_ms()
                                                  : -1);
    batch->callbacks[i](md);
  }
  absl::MutexLock lock(&mu_);
  buffered_bytes_ -= batch->bytes;
  pending_records_ -= n;
  if (held_slot) {
    --queues_[batch->tp].in_flight;
    --in_flight_;
  }
  cv_.SignalAll();
}

}  // namespace fjord::client
