// Producing records: key partitioning, per-partition batching with linger,
// bounded in-flight requests, and retries with backoff until a delivery
// timeout.
#ifndef FJORD_CLIENT_PRODUCER_H_
#define FJORD_CLIENT_PRODUCER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/cluster.h"
#include "client/partitioner.h"
#include "fjord/v1/produce.pb.h"

namespace fjord::client {

struct ProducerRecord {
  std::string topic;
  // Absent: a null key (round-robin partition). Present, even empty: hashed.
  std::optional<std::string> key;
  std::string value;
  // Headers in order; keys need not be unique.
  std::vector<std::pair<std::string, std::string>> headers;
  // Ms since the Unix epoch; 0 lets the broker stamp its append time.
  int64_t timestamp_ms = 0;
  // Overrides the partitioner when set.
  std::optional<int32_t> partition;
};

// Where an acknowledged record landed.
struct RecordMetadata {
  std::string topic;
  int32_t partition = 0;
  // -1 with acks=0 (the broker does not say).
  int64_t offset = -1;
  // The record's timestamp, or the broker's append time when it had none
  // (-1 with acks=0 and no timestamp).
  int64_t timestamp_ms = -1;
};

// Called exactly once per record accepted by Send(), from a producer thread
// (never while the producer holds its lock, so it may call Send()). Keep it
// short: it delays other deliveries.
using DeliveryCallback =
    std::function<void(const absl::StatusOr<RecordMetadata>&)>;

enum class Acks { kNone, kLeader, kAll };

// "0" / "1" / "all" (also "-1", as Kafka accepts). INVALID_ARGUMENT otherwise.
absl::StatusOr<Acks> ParseAcks(absl::string_view text);
// "0" / "1" / "all".
absl::string_view AcksName(Acks acks);

// True when a delivery failed with an unknown outcome: the delivery timeout ran
// out after at least one attempt whose answer never arrived, so the record may
// or may not be in the log. Any other failure is definite: the record was not
// appended. (Reported as DEADLINE_EXCEEDED with a message starting
// "indeterminate".)
bool IsIndeterminate(const absl::Status& status);

struct ProducerOptions {
  Acks acks = Acks::kAll;
  // How long a partition's batch waits for more records before it is sent,
  // unless it fills first or Flush() is called.
  absl::Duration linger = absl::Milliseconds(5);
  // A batch is sent once it holds this many records or bytes (key + value +
  // headers). A single record larger than batch_max_bytes gets a batch of its
  // own.
  int batch_max_records = 1000;
  size_t batch_max_bytes = 512 * 1024;
  // Produce requests outstanding at once, per partition and in all. One per
  // partition keeps records in order across retries.
  int max_in_flight_per_partition = 1;
  int max_in_flight = 64;
  // Bytes of records buffered (queued or in flight); Send() blocks while the
  // buffer is full, for at most max_block, then fails with RESOURCE_EXHAUSTED.
  // Send() also waits up to max_block for topic metadata while no broker
  // answers.
  size_t buffer_max_bytes = 64 * 1024 * 1024;
  absl::Duration max_block = absl::Seconds(60);
  // Deadline of each Produce RPC.
  absl::Duration request_timeout = absl::Seconds(30);
  // Bound on the time from Send() to the callback: retries stop when it is
  // reached.
  absl::Duration delivery_timeout = absl::Minutes(2);
  // Backoff between attempts, doubling from retry_backoff up to
  // retry_backoff_max.
  absl::Duration retry_backoff = absl::Milliseconds(100);
  absl::Duration retry_backoff_max = absl::Seconds(1);
};

// Asynchronous producer. Send() queues a record into its partition's current
// batch; a sender thread ships batches to partition leaders via the Produce
// RPC.
//
// Without idempotence (not built yet), a retry after an attempt whose answer
// was lost may store the batch twice.
//
// Retries: UNAVAILABLE (not leader: metadata is refreshed and the batch
// re-routed; electing; too few in-sync replicas (NOT_ENOUGH_REPLICAS, as Kafka
// retries it); broker unreachable),
// DEADLINE_EXCEEDED, CANCELLED (a broker shutting down mid-request) and ABORTED
// are retried with backoff until
// delivery_timeout. Other errors (NOT_FOUND, INVALID_ARGUMENT,
// RESOURCE_EXHAUSTED, ...) fail the batch's records at once, with the broker's
// code and message. When the delivery timeout ends the retries, the records
// fail as indeterminate (see IsIndeterminate()) if any attempt may have
// appended them, else with the last refusal, its ErrorInfo reason named
// (e.g. "(NOT_ENOUGH_REPLICAS)").
//
// Thread-safe: any thread may call Send() and Flush().
class Producer {
 public:
  // Starts the sender thread. INVALID_ARGUMENT for nonsensical options.
  static absl::StatusOr<std::unique_ptr<Producer>> Create(
      std::shared_ptr<Cluster> cluster, ProducerOptions options = {});

  // Close()s.
  ~Producer();

  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Queues `record`; `callback` later reports its fate. Returns an error (and
  // never calls `callback`) when the record cannot be queued: NOT_FOUND for an
  // unknown topic or partition, UNAVAILABLE when metadata could not be fetched
  // within max_block,
  // RESOURCE_EXHAUSTED for a record above the topic's max.message.bytes or when
  // the buffer stayed full for max_block,
  // FAILED_PRECONDITION after Close(). May block on metadata or a full buffer.
  absl::Status Send(ProducerRecord record, DeliveryCallback callback);

  // Send() with a future instead of a callback; a refused record's future holds
  // the refusal.
  std::future<absl::StatusOr<RecordMetadata>> Send(ProducerRecord record);

  // Sends every queued batch now (ignoring linger) and waits until every record
  // queued before and during the call has been delivered or has failed, or
  // `timeout` passes (then DEADLINE_EXCEEDED). Callbacks have run on OK.
  absl::Status Flush(absl::Duration timeout = absl::InfiniteDuration());

  // Flushes, then stops the sender thread. Later Send()s fail. Idempotent.
  void Close();

 private:
  struct Batch;
  struct InFlight;
  struct PartitionQueue {
    std::deque<std::unique_ptr<Batch>> batches;
    int in_flight = 0;
  };

  Producer(std::shared_ptr<Cluster> cluster, ProducerOptions options);

  void SenderLoop();
  // Routes and starts the RPC for `batch` (taken out of its queue). Called
  // without mu_.
  void Dispatch(std::unique_ptr<Batch> batch);
  void OnProduceDone(InFlight* call, const grpc::Status& status);
  // Puts a failed attempt back at the head of its queue after a backoff, or
  // fails it when the delivery timeout would pass. Called without mu_.
  void RetryOrFail(std::unique_ptr<Batch> batch, absl::Status error,
                   bool maybe_appended);
  // The error of a batch whose delivery timeout ran out: indeterminate
  // (DEADLINE_EXCEEDED) if any attempt may have appended it, else the last
  // definite refusal.
  static absl::Status GiveUpError(const Batch& batch);
  // Runs the callbacks of `batch` and releases its buffer space. Without mu_.
  // `held_slot`: the batch holds an in-flight slot to give back.
  void Complete(std::unique_ptr<Batch> batch,
                const fjord::v1::ProduceResponse* response,
                const absl::Status& error, bool held_slot);

  const std::shared_ptr<Cluster> cluster_;
  const ProducerOptions options_;
  Partitioner partitioner_;

  absl::Mutex mu_;
  // Signalled on every change a waiter might wait for: a new or full batch, a
  // finished request, freed buffer space, Flush() and Close().
  absl::CondVar cv_;
  std::map<TopicPartition, PartitionQueue> queues_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  size_t buffered_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Records accepted and not yet completed.
  int64_t pending_records_ ABSL_GUARDED_BY(mu_) = 0;
  // While > 0, linger is ignored.
  int flushing_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::thread sender_;
};

}  // namespace fjord::client

#endif  // FJORD_CLIENT_PRODUCER_H_
