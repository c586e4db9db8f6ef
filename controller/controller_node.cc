#include "controller/controller_node.h"

#include "absl/strings/str_cat.h"
#include "controller/raft/voters.h"
#include "glog/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace fjord::controller {

// The metadata state machine, as Raft applies to it.
class ControllerNode::StateMachineAdapter final : public raft::StateMachine {
 public:
  explicit StateMachineAdapter(MetadataStateMachine* state) : state_(state) {}
  void Apply(raft::LogIndex index, raft::Term, absl::string_view data) override {
    state_->Apply(static_cast<int64_t>(index.value()), data);
  }
  std::string Snapshot() override { return state_->Snapshot(); }
  absl::Status Restore(absl::string_view data) override { return state_->Restore(data); }

 private:
  MetadataStateMachine* const state_;
};

// The replicated log, as ControllerServer uses it.
class ControllerNode::RaftConsensus final : public Consensus {
 public:
  explicit RaftConsensus(raft::RaftNode* node) : node_(node) {}
  absl::StatusOr<int64_t> Propose(std::string data, absl::Time deadline) override {
    absl::StatusOr<raft::LogIndex> index = node_->Propose(std::move(data), deadline);
    if (!index.ok()) return index.status();
    return static_cast<int64_t>(index->value());
  }
  absl::Status ReadBarrier(absl::Time deadline) override {
    return node_->ReadIndex(deadline);
  }
  bool IsLeader() const override { return node_->IsLeader(); }
  int32_t LeaderId() const override {
    raft::NodeId leader = node_->LeaderId();
    return leader == raft::kNoNode ? -1 : static_cast<int32_t>(leader.value());
  }
  int64_t Term() const override {
    return static_cast<int64_t>(node_->GetStatus().term.value());
  }
  int64_t CommitIndex() const override {
    return static_cast<int64_t>(node_->GetStatus().commit.value());
  }

 private:
  raft::RaftNode* const node_;
};

absl::StatusOr<std::unique_ptr<ControllerNode>> ControllerNode::Start(
    const ControllerNodeOptions& options) {
  if (options.node_id < 1) {
    return absl::InvalidArgumentError("a controller's node id must be at least 1");
  }
  if (options.tick < absl::Milliseconds(10) || options.election_timeout < 2 * options.tick) {
    return absl::InvalidArgumentError(
        "the Raft tick must be >= 10 ms and the election timeout at least two ticks");
  }
  if (options.session_timeout < 2 * options.heartbeat_interval) {
    return absl::InvalidArgumentError(
        "the broker session timeout must be at least twice the heartbeat interval");
  }
  absl::StatusOr<std::vector<raft::Voter>> voters = raft::ParseVoters(options.voters);
  if (!voters.ok()) return voters.status();

  std::unique_ptr<ControllerNode> node(new ControllerNode());
  node->adapter_ = std::make_unique<StateMachineAdapter>(&node->state_);
  raft::RaftNodeOptions raft_options;
  raft_options.id = raft::NodeId(static_cast<uint64_t>(options.node_id));
  raft_options.voters = *voters;
  raft_options.data_dir = options.data_dir;
  raft_options.tick_interval = options.tick;
  raft_options.election_ticks =
      static_cast<int>(options.election_timeout / options.tick);
  absl::StatusOr<std::unique_ptr<raft::RaftNode>> raft =
      raft::RaftNode::Create(raft_options, node->adapter_.get());
  if (!raft.ok()) return raft.status();
  node->raft_ = std::move(*raft);
  node->consensus_ = std::make_unique<RaftConsensus>(node->raft_.get());

  ControllerServerOptions server_options;
  server_options.node_id = options.node_id;
  for (const raft::Voter& v : *voters) {
    server_options.voters[static_cast<int32_t>(v.id.value())] = v.address;
  }
  server_options.logic.session_timeout = options.session_timeout;
  server_options.heartbeat_interval = options.heartbeat_interval;
  node->controller_ = std::make_unique<ControllerServer>(
      server_options, node->consensus_.get(), &node->state_);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &node->port_);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  node->raft_->RegisterService(&builder);
  builder.RegisterService(node->controller_->controller_service());
  builder.RegisterService(node->controller_->admin_service());
  builder.RegisterService(node->controller_->metadata_service());
  node->grpc_ = builder.BuildAndStart();
  if (node->grpc_ == nullptr || node->port_ == 0) {
    node->grpc_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  if (absl::Status s = node->raft_->Start(); !s.ok()) return s;
  node->controller_->Start();
  LOG(INFO) << "controller " << options.node_id << " listening on " << options.listen
            << " (port " << node->port_ << ") voters " << options.voters
            << " data-dir=" << options.data_dir;
  return node;
}

ControllerNode::~ControllerNode() { Shutdown(false); }

void ControllerNode::Shutdown(bool transfer_leadership) {
  if (stopped_) return;
  stopped_ = true;
  if (grpc_ != nullptr) {
    if (auto* health = grpc_->GetHealthCheckService(); health != nullptr) {
      health->SetServingStatus(false);
    }
  }
  if (controller_ != nullptr) controller_->Stop();
  if (raft_ != nullptr) raft_->Stop(transfer_leadership);
  // The RaftService lives inside raft_: stop the server before raft_ goes.
  if (grpc_ != nullptr) {
    grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc_->Wait();
  }
}

}  // namespace fjord::controller
