// ControllerNode: one complete controller quorum voter in a process: the Raft
// node (controller/raft), the metadata state machine it applies, the
// ControllerServer on top, and the gRPC server that carries them. fjord-controller
// is one of these; a single-node fjord-broker embeds one with a single voter on a
// loopback port of its own, so that it runs the same metadata code as a cluster.
#ifndef FJORD_CONTROLLER_CONTROLLER_NODE_H_
#define FJORD_CONTROLLER_CONTROLLER_NODE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/controller_server.h"
#include "controller/metadata_state_machine.h"
#include "controller/raft/node.h"
#include "grpcpp/server.h"

namespace fjord::controller {

struct ControllerNodeOptions {
  int32_t node_id = 1;
  // host:port to bind.
  std::string listen = "0.0.0.0:9093";
  // Directory of the Raft log and snapshots.
  std::string data_dir = "var/controller";
  // "id@host:port,..."; must name node_id.
  std::string voters;
  absl::Duration session_timeout = absl::Seconds(6);
  absl::Duration heartbeat_interval = absl::Milliseconds(500);
  absl::Duration tick = absl::Milliseconds(100);
  absl::Duration election_timeout = absl::Seconds(1);
};

class ControllerNode {
 public:
  // Opens the Raft log, starts serving and joins the quorum. INVALID_ARGUMENT for
  // bad options; UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<ControllerNode>> Start(
      const ControllerNodeOptions& options);
  // Shutdown(false) if not done.
  ~ControllerNode();

  // Stops serving. With `transfer_leadership` a leader first hands leadership to
  // another voter (a clean shutdown). Idempotent.
  void Shutdown(bool transfer_leadership);

  int port() const { return port_; }
  ControllerServer& server() { return *controller_; }

 private:
  ControllerNode() = default;

  class StateMachineAdapter;
  class RaftConsensus;

  MetadataStateMachine state_;
  std::unique_ptr<StateMachineAdapter> adapter_;
  std::unique_ptr<raft::RaftNode> raft_;
  std::unique_ptr<RaftConsensus> consensus_;
  std::unique_ptr<ControllerServer> controller_;
  std::unique_ptr<grpc::Server> grpc_;
  int port_ = 0;
  bool stopped_ = false;
};

}  // namespace fjord::controller

#endif  // FJORD_CONTROLLER_CONTROLLER_NODE_H_
