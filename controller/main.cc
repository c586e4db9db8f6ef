// fjord-controller: one voter of the controller quorum that replaces ZooKeeper.
// It runs Raft with the other voters (controller/raft), applies the committed
// metadata log to its MetadataStateMachine, and, when it is the Raft leader (the
// active controller), registers brokers, tracks their sessions and decides topic
// placement and leadership (ControllerServer).
#include <csignal>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "controller/controller_server.h"
#include "controller/metadata_state_machine.h"
#include "controller/raft/node.h"
#include "controller/raft/voters.h"
#include "glog/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace fjord::controller {
namespace {

// The metadata state machine, as Raft applies to it.
class StateMachineAdapter final : public raft::StateMachine {
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
class RaftConsensus final : public Consensus {
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

int Run(int argc, char** argv) {
  int64_t node_id = 1;
  std::string listen = "0.0.0.0:9093";
  std::string data_dir = "var/controller";
  std::string voters_flag;
  int64_t session_timeout_ms = 6000;
  int64_t heartbeat_interval_ms = 500;
  int64_t tick_ms = 100;
  int64_t election_timeout_ms = 1000;
  FlagSet flags("fjord-controller",
                "One voter of Fjord's Raft controller quorum. Every voter gets the same\n"
                "--controller-quorum-voters list.");
  flags.Int("node-id", &node_id, "this voter's id (>= 1), one of the voters");
  flags.String("listen", &listen, "gRPC listen address host:port");
  flags.String("data-dir", &data_dir, "directory for the Raft log and snapshots");
  flags.String("controller-quorum-voters", &voters_flag,
               "id@host:port,... of every voter (1, 3 or 5), the same on every voter "
               "and broker; empty means a single voter at --listen");
  flags.Int("session-timeout-ms", &session_timeout_ms,
            "a broker silent this long is fenced");
  flags.Int("heartbeat-interval-ms", &heartbeat_interval_ms,
            "how often brokers are told to heartbeat");
  flags.Int("tick-ms", &tick_ms, "Raft tick; heartbeats go out every tick");
  flags.Int("election-timeout-ms", &election_timeout_ms,
            "minimum Raft election timeout (randomised up to twice this)");
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::Status parsed = flags.Parse(args);
  if (parsed.code() == absl::StatusCode::kCancelled) {
    std::cout << parsed.message();
    return 0;
  }
  auto fail = [](absl::string_view why) {
    std::cerr << "fjord-controller: " << why << "\n";
    return 2;
  };
  if (!parsed.ok()) return fail(parsed.message());
  if (node_id < 1 || node_id > INT32_MAX) return fail("--node-id must be at least 1");
  if (tick_ms < 10 || election_timeout_ms < 2 * tick_ms) {
    return fail("--tick-ms must be >= 10 and --election-timeout-ms >= 2 ticks");
  }
  if (session_timeout_ms < 2 * heartbeat_interval_ms || heartbeat_interval_ms < 10) {
    return fail("--session-timeout-ms must be at least twice --heartbeat-interval-ms");
  }
  if (voters_flag.empty()) {
    std::string host = listen.substr(0, listen.rfind(':'));
    if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
    voters_flag = absl::StrCat(node_id, "@", host, listen.substr(listen.rfind(':')));
  }
  absl::StatusOr<std::vector<raft::Voter>> voters = raft::ParseVoters(voters_flag);
  if (!voters.ok()) {
    return fail(absl::StrCat("--controller-quorum-voters: ", voters.status().message()));
  }

  MetadataStateMachine state;
  StateMachineAdapter adapter(&state);
  raft::RaftNodeOptions raft_options;
  raft_options.id = raft::NodeId(static_cast<uint64_t>(node_id));
  raft_options.voters = *voters;
  raft_options.data_dir = data_dir;
  raft_options.tick_interval = absl::Milliseconds(tick_ms);
  raft_options.election_ticks = static_cast<int>(election_timeout_ms / tick_ms);
  absl::StatusOr<std::unique_ptr<raft::RaftNode>> node =
      raft::RaftNode::Create(raft_options, &adapter);
  if (!node.ok()) return fail(node.status().ToString());

  RaftConsensus consensus(node->get());
  ControllerServerOptions server_options;
  server_options.node_id = static_cast<int32_t>(node_id);
  for (const raft::Voter& v : *voters) {
    server_options.voters[static_cast<int32_t>(v.id.value())] = v.address;
  }
  server_options.logic.session_timeout = absl::Milliseconds(session_timeout_ms);
  server_options.heartbeat_interval = absl::Milliseconds(heartbeat_interval_ms);
  ControllerServer controller(server_options, &consensus, &state);

  // SIGTERM / SIGINT are handled on this thread only (blocked before any other
  // thread starts, so every thread inherits the mask).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  (*node)->RegisterService(&builder);
  builder.RegisterService(controller.controller_service());
  builder.RegisterService(controller.admin_service());
  builder.RegisterService(controller.metadata_service());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return fail(absl::StrCat("cannot listen on ", listen));
  }
  if (absl::Status s = (*node)->Start(); !s.ok()) return fail(s.ToString());
  controller.Start();
  LOG(INFO) << "controller " << node_id << " listening on " << listen << " voters "
            << voters_flag << " data-dir=" << data_dir;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  LOG(INFO) << "signal " << sig << ": shutting down";
  server->GetHealthCheckService()->SetServingStatus(false);
  controller.Stop();
  (*node)->Stop(/*transfer_leadership=*/true);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  LOG(INFO) << "controller " << node_id << " stopped";
  return 0;
}

}  // namespace
}  // namespace fjord::controller

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  return fjord::controller::Run(argc, argv);
}
