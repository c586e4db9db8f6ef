// Broker: one fjord-broker process: its store, its metadata, and its gRPC server.
#ifndef FJORD_BROKER_BROKER_H_
#define FJORD_BROKER_BROKER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "broker/cluster_metadata.h"
#include "broker/group_coordinator.h"
#include "broker/replica_manager.h"
#include "controller/controller_node.h"
#include "broker/services.h"
#include "grpcpp/server.h"
#include "storage/log_store.h"

namespace fjord::broker {

struct BrokerOptions {
  int32_t node_id = 1;
  // host:port the gRPC server binds; port 0 picks a free port (see Broker::port()).
  std::string listen = "0.0.0.0:9092";
  // host:port clients are told to use; empty means the listen address, with a
  // wildcard host replaced by 127.0.0.1.
  std::string advertised;
  std::string data_dir = "var/broker";
  std::string rack;
  storage::FsyncPolicy fsync = storage::FsyncPolicy::kAlways;
  // Topics to create at start-up, "name:partitions:replicas,...". A topic that
  // already exists is left alone.
  std::string create_topics;
  // "id@host:port,..." of the controller quorum; empty for a single-node cluster.
  std::string controller_quorum_voters;
  Limits limits;
  // replica.lag.time.max.ms: a follower behind for longer leaves the ISR.
  absl::Duration replica_lag_time_max = absl::Seconds(10);
  // Consumer groups: __consumer_offsets and session bounds.
  GroupCoordinatorOptions groups;
  // Damaged data (broker/damage.h): verify every table file's checksums at
  // start-up; and, in a cluster, move a damaged store aside and recover the
  // replicas from the other brokers instead of refusing to start.
  bool verify_checksums_on_start = true;
  bool recover_damaged_data = true;
  // Testing only: a bug planted on purpose, to show that the chaos suite's
  // checker catches it. Set from $FJORD_TESTING_PLANTED_BUG (there is no flag);
  // "ack-before-replication" makes acks=all answer before followers have the
  // batch; "skip-fsync" acknowledges appends without syncing them. Empty (the
  // default) plants nothing.
  std::string planted_bug;
  // Testing only ($FJORD_TESTING_SYNC_JOURNAL=1): journal every sync of the
  // store to <data-dir>.sync-journal, so a test can drop unsynced data after a
  // kill (//storage:drop-unsynced).
  bool testing_sync_journal = false;
};

class Broker {
 public:
  // Opens the data directory, loads metadata, creates `create_topics` and starts
  // serving. Fails (with nothing left running) on a bad option, a data directory
  // another process holds, or a port in use.
  static absl::StatusOr<std::unique_ptr<Broker>> Start(const BrokerOptions& options);

  // Calls Shutdown().
  ~Broker();

  // The port the server listens on.
  int port() const { return port_; }

  // Stops taking requests, ends fetch streams, waits (a few seconds at most) for
  // in-flight requests, then syncs and closes the store. Idempotent.
  void Shutdown();

 private:
  Broker() = default;
  absl::Status CreateStartupTopics(const std::string& spec);
  // Start-up is complete: health turns SERVING.
  void MarkReady();
  // The controller fenced or unfenced this broker: health follows.
  void OnFenceChange(bool fenced, bool embedded);

  BrokerOptions options_;
  std::unique_ptr<storage::LogStore> store_;
  // The embedded one-voter controller of a single-node cluster (null in a
  // cluster with separate controllers).
  std::unique_ptr<controller::ControllerNode> controller_;
  std::unique_ptr<ClusterMetadata> cluster_;
  std::unique_ptr<ReplicaManager> replicas_;
  absl::Mutex ready_mu_;
  bool ready_ ABSL_GUARDED_BY(ready_mu_) = false;
  std::atomic<bool> shutting_down_{false};
  // Mirrors ready_ for the request handlers (ServiceContext::ready).
  std::atomic<bool> serving_{false};
  std::unique_ptr<ProduceServiceImpl> produce_;
  std::unique_ptr<FetchServiceImpl> fetch_;
  std::unique_ptr<MetadataServiceImpl> metadata_service_;
  std::unique_ptr<AdminServiceImpl> admin_;
  std::unique_ptr<GroupCoordinator> groups_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool stopped_ = false;
};

}  // namespace fjord::broker

#endif  // FJORD_BROKER_BROKER_H_
