// Clients of a chaos run: a small raw-gRPC client that finds partition leaders
// through MetadataService and produces one record at a time or reads committed
// records, and the workloads built on it (sequential acks=all producers of
// unique values, a keyed producer, a reader of committed records), each
// recording every operation in a History.
//
// Every call carries a deadline; every loop ends when its stop flag is set (and
// each iteration is bounded by those deadlines), so joining a workload thread
// takes at most one produce timeout.
#ifndef FJORD_INTEGRATION_TESTS_CHAOS_WORKLOAD_H_
#define FJORD_INTEGRATION_TESTS_CHAOS_WORKLOAD_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fjord/v1/metadata.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/status.h"
#include "integration_tests/chaos/history.h"

namespace fjord::testing::chaos {

// A channel with a short reconnect back-off (nodes restart on the same port).
std::shared_ptr<grpc::Channel> MakeChaosChannel(const std::string& address);

// Thread-safe. Caches each partition's leader; a NOT_LEADER answer naming the
// new leader, or any other error, updates or drops the cached entry.
class ChaosClient {
 public:
  // broker id -> "127.0.0.1:port". Ports never change across restarts.
  explicit ChaosClient(std::map<int, std::string> brokers);

  // The topic as the first broker that answers within `per_broker` sees it
  // (brokers tried in turn from a rotating start). UNAVAILABLE when none does.
  absl::StatusOr<fjord::v1::TopicInfo> Describe(
      const std::string& topic, absl::Duration per_broker = absl::Seconds(1));

  // The partition's leader id from the cache, asking the brokers when it is
  // unknown; nullopt when nobody knows a leader.
  std::optional<int> Leader(const std::string& topic, int32_t partition);

  // One acks=all produce of one record to the partition's leader. A client-side
  // refusal (no leader known) is FAILED_PRECONDITION with "not sent" in the
  // message; see SentNothing.
  // `*broker` is the broker it went to (0 when none).
  grpc::Status Produce(const std::string& topic, int32_t partition,
                       const std::string& key, const std::string& value,
                       absl::Duration timeout, int64_t* offset, int* broker);

  // Every committed record of a partition from `from` up to the high watermark
  // the leader reports when the read starts, within `timeout`.
  // `*leader` (optional) is the broker that answered.
  absl::StatusOr<std::vector<ReadRecord>> Read(const std::string& topic,
                                               int32_t partition, int64_t from,
                                               absl::Duration timeout,
                                               int* leader = nullptr);

  // Drops every cached leader (the next call asks the brokers).
  void ForgetAll();

  std::shared_ptr<grpc::Channel> Channel(int broker);

 private:
  void Forget(const std::string& topic, int32_t partition);

  const std::map<int, std::string> brokers_;
  std::atomic<int> rotate_{0};
  absl::Mutex mu_;
  std::map<int, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int32_t>, int> leaders_ ABSL_GUARDED_BY(mu_);
};

// True for the status Produce returns when it sent nothing.
bool SentNothing(const grpc::Status& status);

// The keyed workload's partitioner: FNV-1a of the key, modulo `partitions`.
int32_t PartitionForKey(const std::string& key, int32_t partitions);

struct WorkloadOptions {
  absl::Duration produce_timeout = absl::Seconds(5);
  // A value is retried (as a new operation, same value) until acknowledged or
  // this many attempts; then the producer moves on to the next value.
  int max_attempts = 10;
  absl::Duration retry_backoff = absl::Milliseconds(100);
};

// Runs the workload threads until Stop. Each producer is one sequential
// process in the history.
class Workload {
 public:
  Workload(ChaosClient* client, History* history, WorkloadOptions options)
      : client_(client), history_(history), options_(options) {}
  ~Workload() { Stop(); }

  // Process `process` writes "<prefix><seq>" values to `partition`, no key.
  void StartUniqueProducer(int process, const std::string& topic,
                           int32_t partition);
  // Process `process` writes values "<key>:<process>:<seq>" under keys drawn
  // in turn from `keys`, each to PartitionForKey(key, partitions).
  void StartKeyedProducer(int process, const std::string& topic,
                          int32_t partitions, std::vector<std::string> keys);
  // Process `process` reads, every `period`, the last records of one partition
  // of `topics` (round robin) below its high watermark.
  void StartReader(int process, std::vector<std::string> topics,
                   int32_t partitions, absl::Duration period);

  // Sets the stop flag and joins every thread (each ends within one produce
  // timeout plus a back-off).
  void Stop();

  // Produces `value` until ok or max_attempts, on the caller's thread, as
  // process `process`; records every attempt.
  void ProduceWithRetries(int process, const std::string& topic,
                          int32_t partition, const std::string& key,
                          const std::string& value);

 private:

  ChaosClient* client_;
  History* history_;
  WorkloadOptions options_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace fjord::testing::chaos

#endif  // FJORD_INTEGRATION_TESTS_CHAOS_WORKLOAD_H_
