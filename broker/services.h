// The public gRPC services of a broker (proto/fjord/v1): produce, fetch, metadata
// and admin. Every handler validates its request fully before touching storage, and
// answers errors through ToGrpcStatus (errors.h), the one place where internal
// statuses become gRPC statuses.
#ifndef FJORD_BROKER_SERVICES_H_
#define FJORD_BROKER_SERVICES_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "broker/metadata_view.h"
#include "broker/replica_manager.h"
#include "fjord/v1/admin.grpc.pb.h"
#include "fjord/v1/fetch.grpc.pb.h"
#include "fjord/v1/metadata.grpc.pb.h"
#include "fjord/v1/produce.grpc.pb.h"

namespace fjord::broker {

// Request limits, explicit so clients can be told exactly what they exceeded.
struct Limits {
  // Largest produce request, in serialized bytes (also the gRPC receive limit).
  int64_t max_batch_bytes = 8 << 20;
  // Most records in one produce request.
  int64_t max_batch_records = 100000;
  // Fetch: bytes per response when the request leaves max_bytes at 0, and the cap.
  int64_t default_fetch_bytes = 1 << 20;
  int64_t max_fetch_bytes = 16 << 20;
  // Fetch: long-poll wait when the request leaves max_wait_ms at 0, and the cap.
  int64_t default_fetch_wait_ms = 500;
  int64_t max_fetch_wait_ms = 30000;
};

// What the services share.
struct ServiceContext {
  MetadataView* metadata = nullptr;
  Limits limits;
  // Set when the broker starts shutting down; handlers then answer UNAVAILABLE and
  // fetch streams end.
  std::atomic<bool>* shutting_down = nullptr;
  // False until start-up is complete (health SERVING for the first time):
  // until then handlers answer UNAVAILABLE (BROKER_STARTING) instead of, say,
  // NOT_FOUND for a start-up topic not created yet. Null: always ready.
  const std::atomic<bool>* ready = nullptr;
  // High watermarks, ISRs and acks=all waits.
  ReplicaManager* replicas = nullptr;
  // A planted bug for the chaos suite's checker test (BrokerOptions::planted_bug):
  // acks=all answers right after the leader's append, before any follower has
  // the batch. Never set in production.
  bool planted_ack_before_replication = false;
};

// OK while the broker serves; UNAVAILABLE (BROKER_STARTING / SHUTTING_DOWN)
// before start-up is complete and once shutdown began.
absl::Status CheckServing(const ServiceContext& ctx);

// Appends acks=0 batches off the request path. The queue is bounded: when it is
// full, Produce waits for room, which is the only back-pressure acks=0 has.
class AsyncAppender {
 public:
  explicit AsyncAppender(size_t capacity);
  // Drains the queue and stops the thread.
  ~AsyncAppender();
  // Appends `batch` later, then runs `on_appended` (on the appender's thread).
  void Enqueue(std::shared_ptr<storage::PartitionLog> log, std::string batch,
               std::function<void()> on_appended);

 private:
  void Run();
  struct Item {
    std::shared_ptr<storage::PartitionLog> log;
    std::string batch;
    std::function<void()> on_appended;
  };
  const size_t capacity_;
  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

class ProduceServiceImpl final : public fjord::v1::ProduceService::Service {
 public:
  explicit ProduceServiceImpl(ServiceContext ctx) : ctx_(ctx), async_(1024) {}
  grpc::Status Produce(grpc::ServerContext* context,
                       const fjord::v1::ProduceRequest* request,
                       fjord::v1::ProduceResponse* response) override;

 private:
  absl::Status DoProduce(const fjord::v1::ProduceRequest& request, absl::Time deadline,
                         fjord::v1::ProduceResponse* response);
  ServiceContext ctx_;
  AsyncAppender async_;
};

class FetchServiceImpl final : public fjord::v1::FetchService::Service {
 public:
  explicit FetchServiceImpl(ServiceContext ctx) : ctx_(ctx) {}
  grpc::Status Fetch(grpc::ServerContext* context,
                     const fjord::v1::FetchRequest* request,
                     grpc::ServerWriter<fjord::v1::FetchResponse>* writer) override;
  grpc::Status ListOffsets(grpc::ServerContext* context,
                           const fjord::v1::ListOffsetsRequest* request,
                           fjord::v1::ListOffsetsResponse* response) override;

 private:
  absl::Status DoFetch(grpc::ServerContext* context,
                       const fjord::v1::FetchRequest& request,
                       grpc::ServerWriter<fjord::v1::FetchResponse>* writer);
  absl::Status DoListOffsets(const fjord::v1::ListOffsetsRequest& request,
                             fjord::v1::ListOffsetsResponse* response);
  ServiceContext ctx_;
};

class MetadataServiceImpl final : public fjord::v1::MetadataService::Service {
 public:
  explicit MetadataServiceImpl(ServiceContext ctx) : ctx_(ctx) {}
  grpc::Status Metadata(grpc::ServerContext* context,
                        const fjord::v1::MetadataRequest* request,
                        fjord::v1::MetadataResponse* response) override;

 private:
  ServiceContext ctx_;
};

class AdminServiceImpl final : public fjord::v1::AdminService::Service {
 public:
  explicit AdminServiceImpl(ServiceContext ctx) : ctx_(ctx) {}
  grpc::Status CreateTopics(grpc::ServerContext* context,
                            const fjord::v1::CreateTopicsRequest* request,
                            fjord::v1::CreateTopicsResponse* response) override;
  grpc::Status DeleteTopics(grpc::ServerContext* context,
                            const fjord::v1::DeleteTopicsRequest* request,
                            fjord::v1::DeleteTopicsResponse* response) override;
  grpc::Status ListTopics(grpc::ServerContext* context,
                          const fjord::v1::ListTopicsRequest* request,
                          fjord::v1::ListTopicsResponse* response) override;
  grpc::Status DescribeTopics(grpc::ServerContext* context,
                              const fjord::v1::DescribeTopicsRequest* request,
                              fjord::v1::DescribeTopicsResponse* response) override;
  grpc::Status DescribeCluster(grpc::ServerContext* context,
                               const fjord::v1::DescribeClusterRequest* request,
                               fjord::v1::DescribeClusterResponse* response) override;

 private:
  ServiceContext ctx_;
};

}  // namespace fjord::broker

#endif  // FJORD_BROKER_SERVICES_H_
