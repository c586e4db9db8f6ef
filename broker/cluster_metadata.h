// ClusterMetadata: the metadata of a broker that belongs to a cluster run by a
// controller quorum (--controller-quorum-voters).
//
// The broker registers with the active controller (getting a broker epoch),
// heartbeats, and follows the metadata log (ControllerService.FetchMetadata) into
// its own MetadataImage, the same state machine the controllers apply. After every
// batch it reconciles its store with the image: it creates the logs of the
// partition replicas assigned to it and drops those of deleted topics. Topic
// creation and deletion are forwarded to the active controller; the call returns
// once this broker's image shows the change, so a client that created a topic
// through a broker can use it there at once.
//
// The broker is ready (health SERVING) once it is registered, has applied the
// metadata log up to its registration and the controller has unfenced it.
//
// Thread-safe. Two background threads: heartbeats, and the metadata follower.
#ifndef FJORD_BROKER_CLUSTER_METADATA_H_
#define FJORD_BROKER_CLUSTER_METADATA_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "broker/metadata_view.h"
#include "controller/metadata/metadata_image.h"
#include "fjord/internal/v1/controller.grpc.pb.h"
#include "fjord/v1/admin.grpc.pb.h"
#include "storage/log_store.h"

namespace fjord::broker {

struct ClusterOptions {
  int32_t node_id = 1;
  // Controller voters: id -> host:port.
  std::map<int32_t, std::string> voters;
  std::string rack;
  // What clients are told to use.
  std::string advertised_host;
  int advertised_port = 0;
  // Identifies this broker's data directory to the controller; empty picks a
  // random one.
  std::string incarnation_id;
  // Until the controller says otherwise.
  absl::Duration heartbeat_interval = absl::Milliseconds(500);
  // Deadline of each controller RPC.
  absl::Duration rpc_timeout = absl::Seconds(3);
};

// Calls the active controller, whichever voter that is: it follows NOT_LEADER
// hints and otherwise tries the voters in turn.
class ControllerClient {
 public:
  explicit ControllerClient(std::map<int32_t, std::string> voters);

  struct Stubs {
    std::unique_ptr<fjord::internal::v1::ControllerService::Stub> controller;
    std::unique_ptr<fjord::v1::AdminService::Stub> admin;
  };

  // Runs `call` against the active controller until it answers anything but
  // UNAVAILABLE / DEADLINE_EXCEEDED, or `timeout` passes (then the last error).
  // `call` gets a fresh ClientContext with a per-attempt deadline.
  absl::Status Call(
      const std::function<grpc::Status(Stubs&, grpc::ClientContext*)>& call,
      absl::Duration timeout, absl::Duration attempt_timeout);

  // The voter currently believed active, for long-lived streams.
  Stubs& Current();
  // Moves to the next voter (or to `hint` when it is a voter id).
  void Rotate(int32_t hint = -1);

 private:
  absl::Mutex mu_;
  std::vector<int32_t> ids_;
  std::map<int32_t, Stubs> stubs_;
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;
};

class ClusterMetadata final : public MetadataView {
 public:
  // Makes the metadata view; nothing runs until Run. `store` must outlive this.
  // `on_fence_change` (may be empty) runs on the heartbeat thread whenever the
  // controller fences or unfences this broker, with the new state.
  static absl::StatusOr<std::unique_ptr<ClusterMetadata>> Create(
      storage::LogStore* store, ClusterOptions options,
      std::function<void(bool fenced)> on_fence_change);

  // Starts registering (with this advertised endpoint, which overrides the
  // options') and following the metadata log; does not wait.
  void Run(std::string advertised_host, int advertised_port);

  // Waits until the controller has unfenced this broker, up to `timeout`.
  bool WaitUnfenced(absl::Duration timeout) const;

  using TopicTable = std::map<std::string, std::shared_ptr<const TopicState>, std::less<>>;
  // Called (under this object's lock; it must not call back) after every metadata
  // change with the topic table, every broker's host:port and the image. Set
  // before Run.
  void set_on_metadata(std::function<void(const TopicTable&, const std::map<int32_t, std::string>&,
                                          const controller::MetadataImage&)>
                           fn) {
    on_metadata_ = std::move(fn);
  }

  // Forwards an ISR change to the active controller.
  absl::StatusOr<fjord::internal::v1::AlterPartitionResponse> AlterPartition(
      const fjord::internal::v1::AlterPartitionRequest& request);
  ~ClusterMetadata() override;

  // Controlled shutdown: asks the controller to move this broker's leaderships
  // away and waits (up to `timeout`) until it may stop; then stops the threads.
  void Shutdown(absl::Duration timeout);

  // MetadataView.
  absl::StatusOr<PartitionHandle> Lookup(absl::string_view topic,
                                         int32_t partition) const override;
  absl::StatusOr<std::shared_ptr<const TopicState>> GetTopic(
      absl::string_view name) const override;
  std::vector<std::shared_ptr<const TopicState>> ListTopics() const override;
  absl::StatusOr<std::vector<fjord::v1::TopicInfo>> CreateTopics(
      const std::vector<fjord::v1::NewTopic>& topics, bool validate_only) override;
  absl::StatusOr<std::vector<std::string>> DeleteTopics(
      const std::vector<std::string>& names) override;
  std::vector<fjord::v1::BrokerInfo> Brokers() const override;
  absl::StatusOr<fjord::v1::DescribeClusterResponse> DescribeCluster() override;
  int32_t controller_id() const override;
  std::string cluster_id() const override;
  int32_t node_id() const override { return options_.node_id; }

  // For tests and logs.
  int64_t broker_epoch() const { return epoch_.load(); }
  bool fenced() const { return fenced_.load(); }
  int64_t next_offset() const;

 private:
  ClusterMetadata(storage::LogStore* store, ClusterOptions options,
                  std::function<void(bool)> on_fence_change);

  void HeartbeatLoop();
  // Records the fenced state and reports a change.
  void SetFenced(bool fenced);
  void FollowLoop();
  absl::Status Register();
  // Applies one FetchMetadata response, then reconciles the store.
  absl::Status ApplyLocked(const fjord::internal::v1::FetchMetadataResponse& response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReconcileLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits until `done` holds on the image, up to `timeout`.
  bool AwaitImage(const std::function<bool(const controller::MetadataImage&)>& done,
                  absl::Duration timeout);
  bool Stopping() const { return stopping_.load(); }

  storage::LogStore* const store_;
  ClusterOptions options_;  // the advertised endpoint is set by Run
  const std::string incarnation_id_;
  std::function<void(bool)> on_fence_change_;
  std::function<void(const TopicTable&, const std::map<int32_t, std::string>&,
                     const controller::MetadataImage&)>
      on_metadata_;
  ControllerClient client_;

  std::atomic<int64_t> epoch_{-1};
  std::atomic<bool> fenced_{true};
  std::atomic<bool> want_shutdown_{false};
  std::atomic<bool> may_shutdown_{false};
  std::atomic<bool> stopping_{false};

  mutable absl::Mutex mu_;
  controller::MetadataImage image_ ABSL_GUARDED_BY(mu_);
  int64_t next_offset_ ABSL_GUARDED_BY(mu_) = 0;
  std::string cluster_id_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<const TopicState>, std::less<>> topics_
      ABSL_GUARDED_BY(mu_);
  std::atomic<int32_t> controller_id_{-1};

  std::thread heartbeat_thread_;
  std::thread follow_thread_;
};

}  // namespace fjord::broker

#endif  // FJORD_BROKER_CLUSTER_METADATA_H_
