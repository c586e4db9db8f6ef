// A local Fjord cluster of real processes on 127.0.0.1: C controllers (0, 1, 3
// or 5) and B brokers, each with its own free port, data directory and log file
// under one base directory. (Or, for network-partition tests, each node in a
// network namespace of its own on that namespace's address:
// ClusterOptions::node_networks.) The same code serves the integration tests
// (which own the processes: they die with the Cluster object) and the launcher
// `deploy/local/cluster` (which starts them in sessions of their own so they
// outlive it, and finds them again from the state file on the next run).
//
//   ClusterOptions options;
//   options.base_dir = dir;
//   options.controllers = 0;   // single-node broker
//   options.brokers = 1;
//   options.broker_binary = ...; options.cli_binary = ...;
//   ASSIGN_OR_RETURN(std::unique_ptr<Cluster> cluster, Cluster::Up(options));
//   cluster->Kill("broker-1");     // SIGKILL
//   cluster->Restart("broker-1");  // same port and data dir, waits for SERVING
//   cluster->Down();
//
// Layout of the base directory DIR:
//   DIR/state                  every node (see "State file" below)
//   DIR/bootstrap              the brokers' host:port list, comma-separated
//   DIR/<node>/data/           the node's --data-dir
//   DIR/<node>/<node>.log      the node's stdout and stderr, over all its runs
// where <node> is "controller-<id>" or "broker-<id>", ids counting from 1.
//
// Safety: a Cluster only ever signals PIDs it started and recorded, one at a
// time, never by name or group. A PID read back from the state file is
// signalled only after /proc/<pid>/stat shows the start time recorded at spawn
// and /proc/<pid>/cmdline names the recorded binary, so a recycled PID is never
// hit (a zombie has an empty cmdline and counts as exited).
//
// Nodes: controllers get --node-id, --listen, --data-dir and
// --controller-quorum-voters; brokers get --node-id, --listen, --advertised,
// --data-dir, --fsync and, when C > 0, --controller-quorum-voters with the same
// list (C = 0: single-node mode, and --create-topics goes to broker-1). The
// caller's FJORD_* environment is not passed on: a node is configured by its
// command line, plus the per-role extra arguments and ClusterOptions::env.
//
// Not thread-safe. Two launcher invocations changing one DIR at once may lose
// one's state-file update (the nodes still run; `status` shows the survivor).
#ifndef FJORD_INTEGRATION_TESTS_CLUSTER_H_
#define FJORD_INTEGRATION_TESTS_CLUSTER_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "integration_tests/process.h"

namespace fjord::testing {

enum class NodeRole { kController, kBroker };

// What the operating system says about a node's process.
enum class NodeState {
  kRunning,  // alive and scheduled (R, S, D in /proc/<pid>/stat)
  kPaused,   // stopped by SIGSTOP (T)
  kExited,   // gone, a zombie, never started, or the PID now names another
             // process
};

// "running", "paused", "exited".
absl::string_view NodeStateName(NodeState state);

// One node: everything needed to find, signal and restart it. This is what the
// state file holds.
struct NodeInfo {
  std::string name;  // "controller-<id>" or "broker-<id>"
  NodeRole role = NodeRole::kBroker;
  int id = 0;
  int port = 0;  // on `host`
  // The address the node listens on and advertises: 127.0.0.1, or its
  // network namespace's address (ClusterOptions::node_networks).
  std::string host = "127.0.0.1";
  // The network namespace the node runs in ("" for the caller's own).
  std::string netns;
  std::string data_dir;
  std::string log_path;
  std::string binary;             // absolute path, also argv[0]
  std::vector<std::string> args;  // without argv[0]; reused by Restart
  EnvVars env;                    // set on top of the cleaned environment
  pid_t pid = 0;                  // the server's own PID; 0 if never started
  // Field 22 of /proc/<pid>/stat (start time in clock ticks since boot) read
  // right after spawning: tells this process from a later one with the same
  // PID.
  int64_t start_ticks = 0;

  // "<host>:<port>" ("127.0.0.1:<port>" by default).
  std::string address() const;
};

// Status() of one node.
struct NodeStatus {
  std::string name;
  NodeState state = NodeState::kExited;
  // gRPC health of a running node: "SERVING", "NOT_SERVING", "UNKNOWN",
  // "UNREACHABLE" (no answer within a second); "-" when paused or exited.
  std::string health;
  pid_t pid = 0;
  int port = 0;
  std::string data_dir;
  std::string log_path;
};

// Where one node runs when the cluster is spread over network namespaces
// (integration_tests/netns.h).
struct NodeNetwork {
  std::string netns;  // an existing namespace (`ip netns list`)
  std::string host;   // an IPv4 address of that namespace
  int port = 0;
};

struct ClusterOptions {
  // Holds every node's directory, the state file and the bootstrap file.
  // Created if missing; made absolute.
  std::string base_dir;
  int controllers = 0;  // 0, 1, 3 or 5; 0 runs one single-node broker
  int brokers = 1;      // at least 1; exactly 1 when controllers == 0
  // Absolute or relative paths (made absolute). The controller binary is needed
  // only when controllers > 0, the CLI only to create topics when
  // controllers > 0 and for RunCli.
  std::string broker_binary;
  std::string controller_binary;
  std::string cli_binary;
  // Appended to every controller's / broker's command line, e.g. shorter
  // election or session timeouts for tests.
  std::vector<std::string> controller_args;
  std::vector<std::string> broker_args;
  // Added to every node's environment.
  EnvVars env;
  // Added to one node's environment after `env`, by node name ("broker-2"):
  // e.g. the chaos suite's per-node clock (integration_tests/chaos/clock.h).
  std::map<std::string, EnvVars> node_env;
  // Topics to create once the cluster is up, "name:partitions:replicas,..."
  // (the seed's form). nullopt: $FJORD_CREATE_TOPICS (unset means none).
  std::optional<std::string> create_topics;
  std::string fsync = "always";  // the brokers' --fsync
  // Start every node in a session of its own and leave it running when the
  // Cluster is destroyed (the launcher). Otherwise the Cluster owns its
  // processes and SIGKILLs the ones still running in its destructor (tests).
  bool detach = false;
  // Bounds Up (every node SERVING, topics created) and Restart.
  absl::Duration start_timeout = absl::Seconds(60);
  // Empty (the default): every node on 127.0.0.1 with a free port, in this
  // process's network namespace. Otherwise one entry per node name
  // ("controller-1", "broker-2", ...): the node is started inside that
  // namespace with `ip netns exec <netns> <binary> ...` (which execs the
  // server in place, so the recorded PID is the server's own; Spawn checks
  // that the PID runs the binary in that namespace) and listens on, advertises
  // and is listed among the voters with host:port. The namespaces must stay
  // until the nodes are gone. Needs root.
  std::map<std::string, NodeNetwork> node_networks;
};

class Cluster {
 public:
  // Starts every node (controllers first), writes the state file, waits until
  // every node's health answers SERVING, creates the topics, and writes the
  // bootstrap file. Node directories already in base_dir are reused (data
  // kept), as are the ports of the previous state file while they are free.
  //
  // INVALID_ARGUMENT for a bad topology (controllers not 0/1/3/5, brokers < 1,
  // brokers > 1 without controllers), a missing binary or a bad topic spec;
  // FAILED_PRECONDITION when a node of an earlier Up in base_dir is still
  // running; DEADLINE_EXCEEDED or FAILED_PRECONDITION (a node exited) naming
  // the node, the last line of its log and the log's path when start-up fails,
  // in which case every node started is SIGKILLed again.
  static absl::StatusOr<std::unique_ptr<Cluster>> Up(ClusterOptions options);

  // The cluster recorded in `base_dir`'s state file, as another invocation
  // left it. Nodes it restarts are detached. NOT_FOUND when there is no state
  // file; INVALID_ARGUMENT when it does not parse.
  static absl::StatusOr<std::unique_ptr<Cluster>> Attach(
      const std::string& base_dir);

  // Owned (non-detached) processes still running are SIGKILLed and reaped.
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Fault injection on one node, by name. NOT_FOUND for an unknown name;
  // FAILED_PRECONDITION when the node is not running (or, for Resume, not
  // paused).
  //
  // SIGKILL, then waits (10 s at most) until the process is gone.
  absl::Status Kill(absl::string_view node);
  // SIGSTOP, then waits until /proc shows it stopped.
  absl::Status Pause(absl::string_view node);
  // SIGCONT, then waits until /proc shows it running (not until SERVING: use
  // WaitServing).
  absl::Status Resume(absl::string_view node);
  // SIGTERM (plus SIGCONT, so a paused node sees it), then waits `timeout` for
  // the exit; DEADLINE_EXCEEDED leaves it running.
  absl::Status Terminate(absl::string_view node,
                         absl::Duration timeout = absl::Seconds(10));
  // Stops the node if it is running or paused (SIGTERM, SIGKILL after 10 s),
  // starts it again with the same command line (same port and data dir),
  // records the new PID and waits until SERVING (start_timeout).
  absl::Status Restart(absl::string_view node);

  // Polls the node's health until SERVING, at most `timeout`. Fails early when
  // the process exits, with its log's last line.
  absl::Status WaitServing(absl::string_view node, absl::Duration timeout);

  // Every node, controllers first, with its process state and health.
  std::vector<NodeStatus> Status();

  // SIGTERM to every running or paused node (brokers first, then controllers),
  // SIGKILL for those still alive `timeout` later per role. OK once every node
  // is gone; the state file stays, so Up can reuse the ports and data.
  absl::Status Down(absl::Duration timeout = absl::Seconds(10));

  // Runs the CLI with `--bootstrap bootstrap()` and `args`.
  absl::StatusOr<CommandResult> RunCli(
      const std::vector<std::string>& args, const std::string& stdin_text = "",
      absl::Duration timeout = absl::Seconds(60)) const;

  // Creates the topics of a "name:partitions:replicas,..." spec through the
  // CLI, retrying (until `timeout`) while the cluster is not ready yet; a topic
  // that already exists counts as created.
  absl::Status CreateTopics(absl::string_view spec, absl::Duration timeout);

  // Every node, controllers first (a copy).
  std::vector<NodeInfo> nodes() const;
  // nullptr for an unknown name.
  const NodeInfo* Find(absl::string_view node) const;
  // The current state of one node's process (no health check).
  NodeState State(absl::string_view node);

  int controllers() const { return controllers_; }
  int brokers() const { return brokers_; }
  const std::string& base_dir() const { return base_dir_; }
  std::string state_path() const;
  std::string bootstrap_path() const;
  // The brokers' "127.0.0.1:port,..." list.
  std::string bootstrap() const;

  // Every node's paths and the last `lines` lines of its log, for a failing
  // test to print.
  std::string DescribeForDebugging(int lines = 30) const;

 private:
  Cluster() = default;

  struct Node {
    NodeInfo info;
    // Set while this Cluster owns the process (not detached, not attached).
    std::unique_ptr<Process> process;
  };

  absl::StatusOr<Node*> Lookup(absl::string_view name);
  NodeState Probe(Node& node);
  absl::Status SendSignal(Node& node, int signal);
  // Waits until Probe(node) is `want`, at most `timeout`.
  bool WaitForState(Node& node, NodeState want, absl::Duration timeout);
  absl::Status Spawn(Node& node);
  absl::Status WaitServing(Node& node, absl::Time deadline);
  // SIGTERM + SIGCONT, wait `timeout`, then SIGKILL; OK once it is gone.
  absl::Status Stop(Node& node, absl::Duration timeout);
  absl::Status WriteState() const;
  absl::Status WriteBootstrap() const;
  static absl::StatusOr<std::vector<NodeInfo>> ReadState(
      const std::string& path, std::map<std::string, std::string>* globals);

  std::string base_dir_;
  int controllers_ = 0;
  int brokers_ = 0;
  std::string cli_binary_;
  bool detach_ = true;
  absl::Duration start_timeout_ = absl::Seconds(60);
  std::vector<Node> nodes_;  // controllers by id, then brokers by id
};

}  // namespace fjord::testing

#endif  // FJORD_INTEGRATION_TESTS_CLUSTER_H_
