#include "broker/services.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/damage.h"
#include "broker/errors.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "storage/record_batch.h"

namespace fjord::broker {
namespace {

using fjord::v1::ErrorInfo;

// Topics whose names start with "__" belong to the broker (__consumer_offsets):
// clients may read them but not write, create or delete them.
bool IsInternalTopic(absl::string_view name) { return absl::StartsWith(name, "__"); }

absl::Status InternalTopicError(absl::string_view name, absl::string_view what) {
  return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::INVALID_TOPIC_NAME,
                   absl::StrCat("topic ", name, " is internal (names starting with \"__\" "
                                "are reserved for the broker); it cannot be ", what));
}

absl::Status ShuttingDown() {
  return MakeError(absl::StatusCode::kUnavailable, ErrorInfo::SHUTTING_DOWN,
                   "the broker is shutting down; retry on another broker or later");
}

// Bytes a record counts against max.message.bytes.
int64_t RecordSize(const fjord::v1::Record& r) {
  int64_t size = static_cast<int64_t>(r.key().size() + r.value().size());
  for (const fjord::v1::Header& h : r.headers()) {
    size += static_cast<int64_t>(h.key().size() + h.value().size());
  }
  return size;
}

void FillOffsets(const PartitionHandle& handle, fjord::v1::PartitionOffsets* out) {
  out->set_partition(handle.partition);
  out->set_log_start_offset(handle.log().log_start_offset());
  out->set_log_end_offset(handle.log().log_end_offset());
  out->set_high_watermark(handle.high_watermark());
}

// Waits up to `max_wait` for committed records at `offset`, in short slices so that a
// cancelled stream or a shutting-down broker frees its thread promptly.
bool WaitForData(grpc::ServerContext* context, storage::PartitionLog& log,
                 int64_t offset, absl::Duration max_wait,
                 const std::atomic<bool>& shutting_down) {
  const absl::Time deadline = MonotonicNow() + max_wait;
  while (true) {
    const absl::Duration slice = std::min(deadline - MonotonicNow(), absl::Milliseconds(100));
    if (log.WaitForHighWatermark(offset, slice)) return true;
    if (MonotonicNow() >= deadline || context->IsCancelled() || shutting_down.load()) {
      return false;
    }
  }
}

}  // namespace

absl::Status CheckServing(const ServiceContext& ctx) {
  if (ctx.shutting_down != nullptr && ctx.shutting_down->load()) return ShuttingDown();
  if (ctx.ready != nullptr && !ctx.ready->load()) {
    return MakeError(absl::StatusCode::kUnavailable, ErrorInfo::BROKER_STARTING,
                     "the broker is starting (loading metadata, creating start-up topics); "
                     "retry in a moment");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// AsyncAppender

AsyncAppender::AsyncAppender(size_t capacity)
    : capacity_(capacity), thread_([this] { Run(); }) {}

AsyncAppender::~AsyncAppender() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void AsyncAppender::Enqueue(std::shared_ptr<storage::PartitionLog> log,
                            std::string batch, std::function<void()> on_appended) {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](AsyncAppender* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return a->queue_.size() < a->capacity_;
      },
      this));
  queue_.push_back({std::move(log), std::move(batch), std::move(on_appended)});
}

void AsyncAppender::Run() {
  while (true) {
    Item item;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](AsyncAppender* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return !a->queue_.empty() || a->stopping_;
          },
          this));
      if (queue_.empty()) return;  // stopping, and drained
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::StatusOr<storage::AppendResult> result =
        item.log->Append(std::move(item.batch));
    if (!result.ok()) {
      LOG(WARNING) << "acks=0 append to " << item.log->id().ColumnFamilyName()
                   << " failed: " << result.status();
    } else if (item.on_appended) {
      item.on_appended();
    }
  }
}

// ---------------------------------------------------------------------------
// Produce

grpc::Status ProduceServiceImpl::Produce(grpc::ServerContext* context,
                                         const fjord::v1::ProduceRequest* request,
                                         fjord::v1::ProduceResponse* response) {
  // acks=all waits at most until the client's deadline (30 s without one),
  // measured from here on the monotonic clock.
  const absl::Time deadline = MonotonicDeadline(
      std::min(absl::FromChrono(context->deadline()), absl::Now() + absl::Seconds(30)));
  return ToGrpcStatus(DoProduce(*request, deadline, response));
}

absl::Status ProduceServiceImpl::DoProduce(const fjord::v1::ProduceRequest& req,
                                           absl::Time deadline,
                                           fjord::v1::ProduceResponse* response) {
  RETURN_IF_ERROR(CheckServing(ctx_));
  if (IsInternalTopic(req.topic())) return InternalTopicError(req.topic(), "produced to");
  ASSIGN_OR_RETURN(PartitionHandle handle,
                   ctx_.metadata->Lookup(req.topic(), req.partition()));
  if (!fjord::v1::Acks_IsValid(req.acks())) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::INVALID_REQUEST,
                     absl::StrCat("acks value ", req.acks(), " is not one of the Acks enum"));
  }
  fjord::v1::Acks acks =
      req.acks() == fjord::v1::ACKS_UNSPECIFIED ? fjord::v1::ACKS_ALL : req.acks();
  if (req.records_size() == 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::INVALID_REQUEST,
                     "a produce request needs at least one record");
  }
  if (req.records_size() > ctx_.limits.max_batch_records) {
    return MakeError(absl::StatusCode::kResourceExhausted, ErrorInfo::BATCH_TOO_LARGE,
                     absl::StrCat("the batch has ", req.records_size(),
                                  " records; the broker accepts at most ",
                                  ctx_.limits.max_batch_records, " per request"));
  }
  if (const int64_t size = static_cast<int64_t>(req.ByteSizeLong());
      size > ctx_.limits.max_batch_bytes) {
    return MakeError(absl::StatusCode::kResourceExhausted, ErrorInfo::BATCH_TOO_LARGE,
                     absl::StrCat("the produce request is ", size,
                                  " bytes; the broker accepts at most ",
                                  ctx_.limits.max_batch_bytes,
                                  " (--max-batch-bytes); send smaller batches"));
  }
  const int64_t max_record = handle.config().max_message_bytes;
  for (int i = 0; i < req.records_size(); ++i) {
    const fjord::v1::Record& r = req.records(i);
    if (int64_t size = RecordSize(r); size > max_record) {
      return MakeError(absl::StatusCode::kResourceExhausted,
                       ErrorInfo::RECORD_TOO_LARGE,
                       absl::StrCat("record ", i, " is ", size,
                                    " bytes (key + value + headers); topic ",
                                    req.topic(), " allows at most ", max_record,
                                    " (max.message.bytes)"));
    }
    if (r.timestamp_ms() < 0) {
      return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::INVALID_REQUEST,
                       absl::StrCat("record ", i, " has a negative timestamp ",
                                    r.timestamp_ms()));
    }
  }
  if (acks == fjord::v1::ACKS_ALL) {
    // Kafka checks the ISR before appending: too few in-sync replicas and the
    // batch is refused, nothing appended.
    const size_t isr = ctx_.replicas->Isr(handle).size();
    if (static_cast<int64_t>(isr) < handle.config().min_insync_replicas) {
      return MakeError(
          absl::StatusCode::kUnavailable, ErrorInfo::NOT_ENOUGH_REPLICAS,
          absl::StrCat("acks=all needs ", handle.config().min_insync_replicas,
                       " in-sync replicas (min.insync.replicas) but partition ",
                       req.topic(), "-", req.partition(), " has ", isr,
                       "; nothing was appended"));
    }
  }
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  ASSIGN_OR_RETURN(std::string batch,
                   storage::EncodeBatch(req.records(),
                                        handle.topic->info.partitions(handle.partition)
                                            .leader_epoch(),
                                        now_ms));
  response->set_append_time_ms(now_ms);
  if (acks == fjord::v1::ACKS_NONE) {
    ReplicaManager* replicas = ctx_.replicas;
    async_.Enqueue(handle.topic->logs[handle.partition], std::move(batch),
                   [replicas, handle] { replicas->OnLeaderAppend(handle); });
    response->set_base_offset(-1);
    response->set_last_offset(-1);
    response->set_log_start_offset(handle.log().log_start_offset());
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(storage::AppendResult result, handle.log().Append(std::move(batch)));
  ctx_.replicas->OnLeaderAppend(handle);
  if (acks == fjord::v1::ACKS_ALL && !ctx_.planted_ack_before_replication) {
    RETURN_IF_ERROR(ctx_.replicas->WaitForCommit(handle, result.last_offset, deadline));
  }
  response->set_base_offset(result.base_offset);
  response->set_last_offset(result.last_offset);
  response->set_log_start_offset(handle.log().log_start_offset());
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Fetch

grpc::Status FetchServiceImpl::Fetch(
    grpc::ServerContext* context, const fjord::v1::FetchRequest* request,
    grpc::ServerWriter<fjord::v1::FetchResponse>* writer) {
  return ToGrpcStatus(DoFetch(context, *request, writer));
}

absl::Status FetchServiceImpl::DoFetch(
    grpc::ServerContext* context, const fjord::v1::FetchRequest& req,
    grpc::ServerWriter<fjord::v1::FetchResponse>* writer) {
  RETURN_IF_ERROR(CheckServing(ctx_));
  ASSIGN_OR_RETURN(PartitionHandle handle,
                   ctx_.metadata->Lookup(req.topic(), req.partition()));
  if (req.max_bytes() < 0 || req.max_wait_ms() < 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::INVALID_REQUEST,
                     "max_bytes and max_wait_ms must not be negative");
  }
  const size_t max_bytes = static_cast<size_t>(
      req.max_bytes() == 0 ? ctx_.limits.default_fetch_bytes
                           : std::min<int64_t>(req.max_bytes(), ctx_.limits.max_fetch_bytes));
  const absl::Duration max_wait = absl::Milliseconds(
      req.max_wait_ms() == 0
          ? ctx_.limits.default_fetch_wait_ms
          : std::min<int64_t>(req.max_wait_ms(), ctx_.limits.max_fetch_wait_ms));

  storage::PartitionLog& log = handle.log();
  int64_t next = req.offset();
  {
    // Offsets between the high watermark and the log end are valid: they are
    // not committed yet (or a new leader has not yet learned that they are), so
    // the stream waits for them, as Kafka answers such fetches with no records.
    const int64_t start = log.log_start_offset();
    const int64_t end = log.log_end_offset();
    if (next < start || next > end) {
      return MakeError(absl::StatusCode::kOutOfRange, ErrorInfo::OFFSET_OUT_OF_RANGE,
                       absl::StrCat("offset ", next, " is outside partition ",
                                    req.topic(), "-", req.partition(),
                                    ": valid offsets are ", start, " to ", end,
                                    " (the next offset to be written)"));
    }
  }

  fjord::v1::FetchResponse response;
  while (!context->IsCancelled()) {
    if (ctx_.shutting_down->load()) return ShuttingDown();
    const int64_t hw = handle.high_watermark();
    response.Clear();
    if (next < hw) {
      // Damage found reading this broker's own store stops the broker
      // (broker/damage.h): nothing is served from it.
      absl::StatusOr<std::vector<storage::StoredBatch>> batches = log.Read(next, max_bytes);
      RETURN_IF_ERROR(CheckDamage(batches.status(), "fetch"));
      for (const storage::StoredBatch& batch : *batches) {
        if (batch.base_offset >= hw) break;
        RETURN_IF_ERROR(CheckDamage(storage::DecodeBatch(batch.data, batch.base_offset, next,
                                                         response.mutable_records()),
                                    "fetch"));
      }
      // Never expose records at or above the high watermark.
      while (response.records_size() > 0 &&
             response.records(response.records_size() - 1).offset() >= hw) {
        response.mutable_records()->RemoveLast();
      }
      if (response.records_size() > 0) {
        next = response.records(response.records_size() - 1).offset() + 1;
      }
    } else if (WaitForData(context, log, next, max_wait, *ctx_.shutting_down)) {
      continue;
    } else {
      // Nothing new within max_wait. A read at the log end is empty, unless the
      // partition was dropped (its topic deleted) meanwhile: then it is NOT_FOUND,
      // which ends the stream.
      RETURN_IF_ERROR(log.Read(next, 1).status());
    }
    response.set_high_watermark(hw);
    response.set_log_start_offset(log.log_start_offset());
    if (!writer->Write(response)) break;  // the client went away
  }
  return absl::OkStatus();
}

grpc::Status FetchServiceImpl::ListOffsets(
    grpc::ServerContext* context, const fjord::v1::ListOffsetsRequest* request,
    fjord::v1::ListOffsetsResponse* response) {
  return ToGrpcStatus(DoListOffsets(*request, response));
}

absl::Status FetchServiceImpl::DoListOffsets(
    const fjord::v1::ListOffsetsRequest& req,
    fjord::v1::ListOffsetsResponse* response) {
  RETURN_IF_ERROR(CheckServing(ctx_));
  ASSIGN_OR_RETURN(PartitionHandle handle,
                   ctx_.metadata->Lookup(req.topic(), req.partition()));
  response->set_timestamp_ms(-1);
  switch (req.spec()) {
    case fjord::v1::ListOffsetsRequest::EARLIEST:
      response->set_offset(handle.log().log_start_offset());
      return absl::OkStatus();
    case fjord::v1::ListOffsetsRequest::LATEST:
      response->set_offset(handle.high_watermark());
      return absl::OkStatus();
    case fjord::v1::ListOffsetsRequest::TIMESTAMP: {
      if (req.timestamp_ms() < 0) {
        return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::INVALID_REQUEST,
                         "timestamp_ms must not be negative");
      }
      ASSIGN_OR_RETURN(auto found, handle.log().OffsetForTimestamp(req.timestamp_ms()));
      const int64_t hw = handle.high_watermark();
      if (found.first >= hw) {
        response->set_offset(hw);
      } else {
        response->set_offset(found.first);
        response->set_timestamp_ms(found.second);
      }
      return absl::OkStatus();
    }
    default:
      return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::INVALID_REQUEST,
                       "spec must be EARLIEST, LATEST or TIMESTAMP");
  }
}

// ---------------------------------------------------------------------------
// Metadata

grpc::Status MetadataServiceImpl::Metadata(grpc::ServerContext* context,
                                           const fjord::v1::MetadataRequest* request,
                                           fjord::v1::MetadataResponse* response) {
  if (absl::Status s = CheckServing(ctx_); !s.ok()) return ToGrpcStatus(s);
  MetadataView& md = *ctx_.metadata;
  for (auto& broker : md.Brokers()) *response->add_brokers() = std::move(broker);
  response->set_controller_id(md.controller_id());
  response->set_cluster_id(md.cluster_id());
  if (request->topics_size() == 0) {
    for (const auto& topic : md.ListTopics()) *response->add_topics() = topic->info;
    return grpc::Status::OK;
  }
  std::vector<std::string> names(request->topics().begin(), request->topics().end());
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  for (const std::string& name : names) {
    absl::StatusOr<std::shared_ptr<const TopicState>> topic = md.GetTopic(name);
    if (!topic.ok()) {
      response->Clear();
      return ToGrpcStatus(topic.status());
    }
    *response->add_topics() = (*topic)->info;
  }
  return grpc::Status::OK;
}

// ---------------------------------------------------------------------------
// Admin

grpc::Status AdminServiceImpl::CreateTopics(
    grpc::ServerContext* context, const fjord::v1::CreateTopicsRequest* request,
    fjord::v1::CreateTopicsResponse* response) {
  if (absl::Status s = CheckServing(ctx_); !s.ok()) return ToGrpcStatus(s);
  if (request->topics_size() == 0) {
    return ToGrpcStatus(MakeError(absl::StatusCode::kInvalidArgument,
                                  ErrorInfo::INVALID_REQUEST,
                                  "CreateTopics needs at least one topic"));
  }
  std::vector<fjord::v1::NewTopic> topics(request->topics().begin(),
                                          request->topics().end());
  for (const fjord::v1::NewTopic& t : topics) {
    if (IsInternalTopic(t.name())) {
      return ToGrpcStatus(InternalTopicError(t.name(), "created by clients"));
    }
  }
  absl::StatusOr<std::vector<fjord::v1::TopicInfo>> created =
      ctx_.metadata->CreateTopics(topics, request->validate_only());
  if (!created.ok()) return ToGrpcStatus(created.status());
  for (auto& info : *created) *response->add_topics() = std::move(info);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::DeleteTopics(
    grpc::ServerContext* context, const fjord::v1::DeleteTopicsRequest* request,
    fjord::v1::DeleteTopicsResponse* response) {
  if (absl::Status s = CheckServing(ctx_); !s.ok()) return ToGrpcStatus(s);
  if (request->topics_size() == 0) {
    return ToGrpcStatus(MakeError(absl::StatusCode::kInvalidArgument,
                                  ErrorInfo::INVALID_REQUEST,
                                  "DeleteTopics needs at least one topic"));
  }
  std::vector<std::string> names(request->topics().begin(), request->topics().end());
  for (const std::string& name : names) {
    if (IsInternalTopic(name)) return ToGrpcStatus(InternalTopicError(name, "deleted"));
  }
  absl::StatusOr<std::vector<std::string>> ids = ctx_.metadata->DeleteTopics(names);
  if (!ids.ok()) return ToGrpcStatus(ids.status());
  for (auto& id : *ids) response->add_topic_ids(std::move(id));
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListTopics(grpc::ServerContext* context,
                                          const fjord::v1::ListTopicsRequest* request,
                                          fjord::v1::ListTopicsResponse* response) {
  if (absl::Status s = CheckServing(ctx_); !s.ok()) return ToGrpcStatus(s);
  for (const auto& topic : ctx_.metadata->ListTopics()) {
    const std::string& name = topic->info.name();
    if (!request->include_internal() && name.rfind("__", 0) == 0) continue;
    response->add_topics(name);
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::DescribeTopics(
    grpc::ServerContext* context, const fjord::v1::DescribeTopicsRequest* request,
    fjord::v1::DescribeTopicsResponse* response) {
  if (absl::Status s = CheckServing(ctx_); !s.ok()) return ToGrpcStatus(s);
  if (request->topics_size() == 0) {
    return ToGrpcStatus(MakeError(absl::StatusCode::kInvalidArgument,
                                  ErrorInfo::INVALID_REQUEST,
                                  "DescribeTopics needs at least one topic"));
  }
  for (const std::string& name : request->topics()) {
    absl::StatusOr<std::shared_ptr<const TopicState>> topic =
        ctx_.metadata->GetTopic(name);
    if (!topic.ok()) {
      response->Clear();
      return ToGrpcStatus(topic.status());
    }
    fjord::v1::TopicDescription* desc = response->add_topics();
    *desc->mutable_topic() = (*topic)->info;
    for (int p = 0; p < (*topic)->info.partitions_size(); ++p) {
      // Offsets of the partitions this broker leads; the others' leaders know
      // theirs.
      if ((*topic)->logs[p] == nullptr ||
          (*topic)->info.partitions(p).leader_id() != ctx_.metadata->node_id()) {
        continue;
      }
      FillOffsets(PartitionHandle{*topic, p}, desc->add_offsets());
    }
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::DescribeCluster(
    grpc::ServerContext* context, const fjord::v1::DescribeClusterRequest* request,
    fjord::v1::DescribeClusterResponse* response) {
  if (absl::Status s = CheckServing(ctx_); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<fjord::v1::DescribeClusterResponse> cluster =
      ctx_.metadata->DescribeCluster();
  if (!cluster.ok()) return ToGrpcStatus(cluster.status());
  *response = std::move(*cluster);
  return grpc::Status::OK;
}

}  // namespace fjord::broker
