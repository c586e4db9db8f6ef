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
#include "common/network_faults.h"
#include "controller/controller_node.h"
#include "glog/logging.h"

namespace fjord::controller {
namespace {

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
  if (voters_flag.empty()) {
    std::string host = listen.substr(0, listen.rfind(':'));
    if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
    voters_flag = absl::StrCat(node_id, "@", host, listen.substr(listen.rfind(':')));
  }

  if (absl::Status faults =
          InitNetworkFaultsFromEnv(listen.substr(0, listen.rfind(':')));
      !faults.ok()) {
    return fail(faults.message());
  }

  // SIGTERM / SIGINT are handled on this thread only (blocked before any other
  // thread starts, so every thread inherits the mask).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  ControllerNodeOptions options;
  options.node_id = static_cast<int32_t>(node_id);
  options.listen = listen;
  options.data_dir = data_dir;
  options.voters = voters_flag;
  options.session_timeout = absl::Milliseconds(session_timeout_ms);
  options.heartbeat_interval = absl::Milliseconds(heartbeat_interval_ms);
  options.tick = absl::Milliseconds(tick_ms);
  options.election_timeout = absl::Milliseconds(election_timeout_ms);
  absl::StatusOr<std::unique_ptr<ControllerNode>> node = ControllerNode::Start(options);
  if (!node.ok()) return fail(node.status().ToString());

  int sig = 0;
  sigwait(&stop_signals, &sig);
  LOG(INFO) << "signal " << sig << ": shutting down";
  (*node)->Shutdown(/*transfer_leadership=*/true);
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
