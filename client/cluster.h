// Connections to a Fjord cluster: the bootstrap list, one gRPC channel per
// broker, and a cache of topic metadata (partition counts and leaders) learned
// through the Metadata RPC. Producer, Consumer and Admin share one Cluster.
#ifndef FJORD_CLIENT_CLUSTER_H_
#define FJORD_CLIENT_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fjord/v1/metadata.pb.h"
#include "fjord/v1/record.pb.h"
#include "grpcpp/grpcpp.h"

namespace fjord::client {

// A partition of a topic.
struct TopicPartition {
  std::string topic;
  int32_t partition = 0;

  // "topic-partition", as Kafka prints it.
  std::string ToString() const;

  friend bool operator==(const TopicPartition& a, const TopicPartition& b) {
    return a.partition == b.partition && a.topic == b.topic;
  }
  friend bool operator<(const TopicPartition& a, const TopicPartition& b) {
    return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
  }
  template <typename H>
  friend H AbslHashValue(H h, const TopicPartition& tp) {
    return H::combine(std::move(h), tp.topic, tp.partition);
  }
};

struct ClientOptions {
  // Comma-separated "host:port" list of brokers to learn the cluster from.
  std::string bootstrap = "127.0.0.1:9092";
  // Deadline of every unary RPC (Metadata, Admin, ListOffsets).
  absl::Duration rpc_timeout = absl::Seconds(10);
  // Cached topic metadata older than this is fetched again before use.
  absl::Duration metadata_max_age = absl::Minutes(1);
  // HTTP/2 keepalive pings on otherwise quiet connections.
  absl::Duration keepalive_time = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
};

// Splits "host:port,host:port" into addresses. Blank entries are skipped.
// Returns INVALID_ARGUMENT when the list is empty or an entry lacks a port.
absl::StatusOr<std::vector<std::string>> ParseBootstrap(absl::string_view list);

// The same code and message as `status`.
absl::Status FromGrpcStatus(const grpc::Status& status);

// The fjord.v1.ErrorInfo a broker attached to a failed status (in the
// google.rpc.Status details), if any.
std::optional<fjord::v1::ErrorInfo> ErrorInfoOf(const grpc::Status& status);

// Whether a failed unary call may be retried on another broker or later:
// UNAVAILABLE (not leader, electing, transport down) or DEADLINE_EXCEEDED.
bool IsRetriable(grpc::StatusCode code);

// Sets a deadline `timeout` from now on `context`.
void SetDeadline(grpc::ClientContext* context, absl::Duration timeout);

// Thread-safe. Channels are created lazily and kept for the Cluster's life.
class Cluster {
 public:
  // Parses the bootstrap list; sends nothing. INVALID_ARGUMENT for a bad list.
  static absl::StatusOr<std::shared_ptr<Cluster>> Create(
      const ClientOptions& options);

  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const ClientOptions& options() const { return options_; }

  // Sends a Metadata RPC for `topics` (every topic when empty), trying the
  // broker that last answered, then the known brokers, then the bootstrap list,
  // moving on only on UNAVAILABLE / DEADLINE_EXCEEDED. Refreshes the broker
  // list and the cached metadata of the topics returned. Errors: the broker's
  // status (e.g. NOT_FOUND for a named unknown topic), or the last transport
  // error.
  absl::StatusOr<fjord::v1::MetadataResponse> FetchMetadata(
      const std::vector<std::string>& topics);

  // The topic's metadata from the cache, fetched first when absent, older than
  // metadata_max_age, or when `refresh`. Errors as FetchMetadata.
  absl::StatusOr<std::shared_ptr<const fjord::v1::TopicInfo>> Topic(
      const std::string& topic, bool refresh = false);

  // Forgets the cached metadata of `topic` so the next use fetches it again
  // (after NOT_LEADER or a transport error).
  void Invalidate(const std::string& topic);

  // The channel to the current leader of `tp` according to the (possibly
  // refreshed) cache. Errors: NOT_FOUND for an unknown topic or partition,
  // UNAVAILABLE when the partition has no leader or its broker is unknown.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> LeaderChannel(
      const TopicPartition& tp, bool refresh = false);

  // The channel to broker `id`, as the (possibly refreshed) metadata advertises
  // it. UNAVAILABLE when the broker is unknown even after a refresh.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> BrokerChannel(
      int32_t id, bool refresh = false);

  // Runs `call` against one broker after another (same order as FetchMetadata)
  // until it returns a status that IsRetriable() does not accept; returns that
  // status, or the last one when every broker failed.
  grpc::Status CallAnyBroker(
      const std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&)>&
          call);

  // The channel to "host:port", created on first use with keepalive settings.
  std::shared_ptr<grpc::Channel> ChannelFor(const std::string& address);

 private:
  explicit Cluster(ClientOptions options, std::vector<std::string> bootstrap);

  // Addresses to try, most promising first.
  std::vector<std::string> CandidateAddresses();

  struct CachedTopic {
    std::shared_ptr<const fjord::v1::TopicInfo> info;
    absl::Time fetched;
  };

  const ClientOptions options_;
  const std::vector<std::string> bootstrap_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<grpc::Channel>> channels_
      ABSL_GUARDED_BY(mu_);
  // Broker id -> "host:port".
  absl::flat_hash_map<int32_t, std::string> brokers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, CachedTopic> topics_ ABSL_GUARDED_BY(mu_);
  // The address that answered last; tried first.
  std::string last_good_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fjord::client

#endif  // FJORD_CLIENT_CLUSTER_H_
