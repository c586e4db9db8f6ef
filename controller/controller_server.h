// ControllerServer: the gRPC face of one fjord-controller. It serves
// ControllerService (brokers register, heartbeat and follow the metadata log)
// and the public AdminService and MetadataService, on top of a replicated log
// (Consensus) and the MetadataStateMachine that every controller applies it to.
//
// Only the active controller (the Raft leader) makes changes. It handles one
// change at a time (write_mu_): ask ControllerLogic for the records, propose them
// as one entry, wait until the entry is committed and applied, answer. So the
// logic always decides on the committed image, and the metadata offset the
// records will occupy is known when they are made. Metadata changes are rare
// (registrations, heartbeats that change state, topic admin), so one at a time
// is fast enough; reads do not take write_mu_.
//
// TODO(controller): pipeline changes as Kafka's QuorumController does (decide on
// the image plus the changes proposed but not yet committed, roll back on
// leadership loss). bench/controller_bench shows one change in flight limits a
// quorum to ~500 writes/s and queues heartbeats behind topic creation.
//
// On becoming leader a controller first commits an empty barrier entry and waits
// until it is applied (so its image holds every entry of earlier terms), then
// calls ControllerLogic::Activate, which gives every broker a fresh session.
//
// Thread-safe.
#ifndef FJORD_CONTROLLER_CONTROLLER_SERVER_H_
#define FJORD_CONTROLLER_CONTROLLER_SERVER_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "controller/metadata/controller_logic.h"
#include "controller/metadata_state_machine.h"
#include "fjord/internal/v1/controller.grpc.pb.h"
#include "fjord/v1/admin.grpc.pb.h"
#include "fjord/v1/metadata.grpc.pb.h"

namespace fjord::controller {

// The replicated log, as the controller needs it. RaftNode implements it; tests
// may use a local one.
class Consensus {
 public:
  virtual ~Consensus() = default;
  // Appends `data` as one entry and returns its index once it is committed and
  // applied to the local state machine. UNAVAILABLE when this node is not the
  // leader (or stops being it); DEADLINE_EXCEEDED when the outcome is unknown.
  virtual absl::StatusOr<int64_t> Propose(std::string data, absl::Time deadline) = 0;
  // Returns once the local state machine has applied everything committed
  // before the call (a linearizable read point). UNAVAILABLE without a leader.
  virtual absl::Status ReadBarrier(absl::Time deadline) = 0;
  virtual bool IsLeader() const = 0;
  // The current leader's id, -1 when unknown.
  virtual int32_t LeaderId() const = 0;
  virtual int64_t Term() const = 0;
  virtual int64_t CommitIndex() const = 0;
};

struct ControllerServerOptions {
  int32_t node_id = 1;
  // Voter id -> host:port, from --controller-quorum-voters.
  std::map<int32_t, std::string> voters;
  ControllerOptions logic;
  // Told to brokers; they heartbeat this often.
  absl::Duration heartbeat_interval = absl::Milliseconds(500);
  // How often the active controller fences expired sessions.
  absl::Duration session_check_interval = absl::Milliseconds(100);
  // How often it moves leadership back to preferred replicas (0 disables).
  absl::Duration preferred_leader_interval = absl::Seconds(5);
  // Deadline for one proposal.
  absl::Duration propose_timeout = absl::Seconds(5);
};

class ControllerServer {
 public:
  // `consensus` and `state` must outlive the server.
  ControllerServer(ControllerServerOptions options, Consensus* consensus,
                   MetadataStateMachine* state);
  ~ControllerServer();

  // Starts the background loop (activation, session expiry, preferred leaders).
  void Start();
  // Stops it; in-flight RPCs then fail with UNAVAILABLE.
  void Stop();

  grpc::Service* controller_service();
  grpc::Service* admin_service();
  grpc::Service* metadata_service();

  // True once this controller is leader and has activated.
  bool active() const { return active_.load(); }

  // --- The operations behind the services (public for tests). ---
  absl::StatusOr<int64_t> RegisterBroker(
      const fjord::internal::v1::RegisterBrokerRequest& request);
  absl::StatusOr<fjord::internal::v1::BrokerHeartbeatResponse> Heartbeat(
      const fjord::internal::v1::BrokerHeartbeatRequest& request);
  absl::StatusOr<fjord::internal::v1::AlterPartitionResponse> AlterPartition(
      const fjord::internal::v1::AlterPartitionRequest& request);
  absl::StatusOr<std::vector<fjord::v1::TopicInfo>> CreateTopics(
      const fjord::v1::CreateTopicsRequest& request);
  absl::StatusOr<std::vector<std::string>> DeleteTopics(
      const fjord::v1::DeleteTopicsRequest& request);

  // UNAVAILABLE with ErrorInfo{NOT_LEADER, leader id and address}.
  absl::Status NotLeader() const;
  std::string cluster_id() const;
  const ControllerServerOptions& options() const { return options_; }
  Consensus* consensus() const { return consensus_; }
  MetadataStateMachine* state() const { return state_; }

 private:
  class ControllerServiceImpl;
  class AdminServiceImpl;
  class MetadataServiceImpl;

  // Proposes `records` as one entry and waits for it to apply. Empty batches
  // (nothing to change) return at once.
  absl::Status ProposeLocked(const RecordBatch& records)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Checks leadership and activation before a change.
  absl::Status CheckActiveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void Loop();
  void ActivateIfLeader();

  const ControllerServerOptions options_;
  Consensus* const consensus_;
  MetadataStateMachine* const state_;

  absl::Mutex write_mu_;
  // Reads state_'s image, which only the Raft thread changes; calls are made
  // inside MetadataStateMachine::WithImage.
  ControllerLogic logic_ ABSL_GUARDED_BY(write_mu_);
  std::atomic<bool> active_{false};
  std::atomic<int64_t> active_term_{-1};

  std::atomic<bool> stopping_{false};
  std::thread loop_;

  std::unique_ptr<grpc::Service> controller_service_;
  std::unique_ptr<grpc::Service> admin_service_;
  std::unique_ptr<grpc::Service> metadata_service_;
};

}  // namespace fjord::controller

#endif  // FJORD_CONTROLLER_CONTROLLER_SERVER_H_
