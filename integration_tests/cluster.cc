#include "integration_tests/cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "broker/topic_config.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

extern char** environ;

namespace fjord::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kStateFile[] = "state";
constexpr char kBootstrapFile[] = "bootstrap";
constexpr char kStateHeader[] =
    "# Fjord local cluster state (integration_tests/cluster.h): key=value "
    "lines;\n# \"node=\" starts a node's section. Written by fjord-cluster; do "
    "not edit while it runs.\n";
// How often waits poll /proc, waitpid or health.
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);
// Deadline of one health RPC.
constexpr absl::Duration kHealthRpcTimeout = absl::Seconds(1);
// Bound on waiting for a signal's effect that the kernel applies by itself
// (SIGKILL, SIGSTOP, SIGCONT).
constexpr absl::Duration kSignalEffectTimeout = absl::Seconds(10);
// How long Restart lets a node shut down cleanly before SIGKILL.
constexpr absl::Duration kRestartStopTimeout = absl::Seconds(10);

absl::Status ErrnoError(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

absl::string_view RoleName(NodeRole role) {
  return role == NodeRole::kController ? "controller" : "broker";
}

std::string NodeName(NodeRole role, int id) {
  return absl::StrCat(RoleName(role), "-", id);
}

// The state letter and start time of a live (or zombie) process.
struct ProcStat {
  char state = '?';
  int64_t start_ticks = 0;
};

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  std::string text = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so the
  // fields start after the last ')'.
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::vector<absl::string_view> fields = absl::StrSplit(
      absl::string_view(text).substr(paren + 1), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
  ProcStat stat;
  if (fields.size() < 20 || fields[0].empty()) return std::nullopt;
  stat.state = fields[0][0];
  if (!absl::SimpleAtoi(fields[19], &stat.start_ticks)) return std::nullopt;
  return stat;
}

std::vector<std::string> ReadCmdline(pid_t pid) {
  std::string text = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/cmdline"));
  return absl::StrSplit(text, '\0', absl::SkipEmpty());
}

NodeState StateFromLetter(char state) {
  switch (state) {
    case 'T':  // stopped by a signal
    case 't':  // stopped by a debugger
      return NodeState::kPaused;
    case 'Z':  // zombie: exited, not reaped yet
    case 'X':
    case 'x':
      return NodeState::kExited;
    default:
      return NodeState::kRunning;
  }
}

bool PortIsFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// The health of the server at `address`: SERVING, NOT_SERVING, UNKNOWN,
// SERVICE_UNKNOWN or UNREACHABLE.
std::string CheckHealth(const std::string& address) {
  grpc::ChannelArguments args;
  // A fresh connection per check: no back-off inherited from a refused one.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 250);
  auto channel = grpc::CreateCustomChannel(
      absl::StrCat("ipv4:", address), grpc::InsecureChannelCredentials(), args);
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kHealthRpcTimeout));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status s = stub->Check(&ctx, req, &resp);
  if (!s.ok()) return "UNREACHABLE";
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
      resp.status());
}

// The last non-empty line of the file at `path`, at most 300 characters.
std::string LastLogLine(const std::string& path) {
  std::string tail = TailLines(ReadFileOrEmpty(path), 1);
  if (tail.size() > 300) tail = "..." + tail.substr(tail.size() - 297);
  return tail;
}

// " (last log line: \"...\"; log: PATH)", for one-line error messages.
std::string LogHint(const NodeInfo& info) {
  return absl::StrCat(" (last log line: \"", LastLogLine(info.log_path),
                      "\"; log: ", info.log_path, ")");
}

// The FJORD_* variables of this process, which must not configure nodes
// behind the cluster's back.
std::vector<std::string> InheritedFjordVariables(const EnvVars& keep) {
  std::vector<std::string> names;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view entry(*e);
    absl::string_view name = entry.substr(0, entry.find('='));
    if (!absl::StartsWith(name, "FJORD_")) continue;
    bool kept = false;
    for (const auto& [k, v] : keep) kept |= (k == name);
    if (!kept) names.emplace_back(name);
  }
  return names;
}

absl::StatusOr<std::string> ResolveBinary(const std::string& path,
                                          absl::string_view what) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no ", what, " binary given"));
  }
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  if (ec || access(abs.c_str(), X_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " binary ", path, " is not an executable file"));
  }
  return abs.lexically_normal().string();
}

// `ip` (iproute2) in the usual system directories, or "".
std::string FindIpBinary() {
  for (const char* c : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(c, X_OK) == 0) return c;
  }
  return "";
}

// The inode of a network namespace file ("/proc/<pid>/ns/net" or
// "/var/run/netns/<name>"), 0 when it cannot be read.
ino_t NetnsInode(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

absl::Status CheckValue(absl::string_view key, absl::string_view value) {
  if (absl::StrContains(value, '\n') || absl::StrContains(value, '\r')) {
    return absl::InvalidArgumentError(
        absl::StrCat("state file value of ", key, " holds a line break"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kRunning:
      return "running";
    case NodeState::kPaused:
      return "paused";
    case NodeState::kExited:
      return "exited";
  }
  return "exited";
}

std::string NodeInfo::address() const { return absl::StrCat(host, ":", port); }

// ---------------------------------------------------------------------------
// Start-up

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Up(ClusterOptions options) {
  const int c = options.controllers, b = options.brokers;
  if (c != 0 && c != 1 && c != 3 && c != 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--controllers must be 0, 1, 3 or 5 (a Raft quorum of an odd size), "
        "not ",
        c));
  }
  if (b < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--brokers must be at least 1, not ", b));
  }
  if (c == 0 && b > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--controllers 0 runs one single-node broker, so --brokers must be 1 "
        "(got ",
        b, "); use --controllers 1 or 3 for a multi-broker cluster"));
  }
  if (options.base_dir.empty()) {
    return absl::InvalidArgumentError("no cluster directory given");
  }
  std::string topics =
      options.create_topics.has_value()
          ? *options.create_topics
          : std::string(getenv("FJORD_CREATE_TOPICS") != nullptr
                            ? getenv("FJORD_CREATE_TOPICS")
                            : "");
  if (absl::StatusOr<std::vector<broker::TopicSpec>> parsed =
          broker::ParseCreateTopics(topics);
      !parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("FJORD_CREATE_TOPICS: ", parsed.status().message()));
  }

  auto cluster = std::unique_ptr<Cluster>(new Cluster());
  std::error_code ec;
  cluster->base_dir_ =
      fs::absolute(options.base_dir, ec).lexically_normal().string();
  while (cluster->base_dir_.size() > 1 && cluster->base_dir_.back() == '/') {
    cluster->base_dir_.pop_back();
  }
  fs::create_directories(cluster->base_dir_, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("creating ", cluster->base_dir_, ": ", ec.message()));
  }
  cluster->controllers_ = c;
  cluster->brokers_ = b;
  cluster->detach_ = options.detach;
  cluster->start_timeout_ = options.start_timeout;

  absl::StatusOr<std::string> broker_bin =
      ResolveBinary(options.broker_binary, "broker");
  if (!broker_bin.ok()) return broker_bin.status();
  std::string controller_bin;
  if (c > 0) {
    absl::StatusOr<std::string> bin =
        ResolveBinary(options.controller_binary, "controller");
    if (!bin.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--controllers ", c,
                       " needs fjord-controller: ", bin.status().message()));
    }
    controller_bin = *bin;
  }
  if (!options.cli_binary.empty()) {
    absl::StatusOr<std::string> cli = ResolveBinary(options.cli_binary, "CLI");
    if (!cli.ok()) return cli.status();
    cluster->cli_binary_ = *cli;
  } else if (c > 0 && !topics.empty()) {
    return absl::InvalidArgumentError(
        "creating topics on a cluster with controllers needs the fjord CLI "
        "binary");
  }

  // An earlier cluster in this directory: refuse while any of it runs; reuse
  // its ports (the controllers' addresses are part of the brokers' and each
  // other's configuration, and clients may still hold the bootstrap list).
  std::map<std::string, int> previous_ports;
  if (fs::exists(cluster->state_path())) {
    std::map<std::string, std::string> globals;
    absl::StatusOr<std::vector<NodeInfo>> previous =
        ReadState(cluster->state_path(), &globals);
    if (previous.ok()) {
      Cluster old;
      old.detach_ = true;
      for (NodeInfo& info : *previous) {
        old.nodes_.push_back(Node{std::move(info), nullptr});
      }
      for (Node& n : old.nodes_) {
        if (old.Probe(n) != NodeState::kExited) {
          return absl::FailedPreconditionError(absl::StrCat(
              "a cluster is already running in ", cluster->base_dir_, " (",
              n.info.name, " is pid ", n.info.pid,
              "); run `down` first or use another --dir"));
        }
        previous_ports[n.info.name] = n.info.port;
      }
    }
  }

  // Names and ports, controllers first.
  std::set<int> used_ports;
  auto assign_port = [&](const std::string& name) -> absl::StatusOr<int> {
    auto it = previous_ports.find(name);
    if (it != previous_ports.end() && used_ports.count(it->second) == 0 &&
        PortIsFree(it->second)) {
      used_ports.insert(it->second);
      return it->second;
    }
    for (int attempt = 0; attempt < 100; ++attempt) {
      absl::StatusOr<int> port = PickFreePort();
      if (!port.ok()) return port.status();
      if (used_ports.insert(*port).second) return *port;
    }
    return absl::ResourceExhaustedError("no free port on 127.0.0.1");
  };
  const bool in_namespaces = !options.node_networks.empty();
  if (in_namespaces && FindIpBinary().empty()) {
    return absl::InvalidArgumentError(
        "node_networks needs the `ip` binary (iproute2)");
  }
  auto add_node = [&](NodeRole role, int id) -> absl::Status {
    Node node;
    node.info.role = role;
    node.info.id = id;
    node.info.name = NodeName(role, id);
    if (in_namespaces) {
      auto it = options.node_networks.find(node.info.name);
      if (it == options.node_networks.end() || it->second.netns.empty() ||
          it->second.host.empty() || it->second.port <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("node_networks has no namespace, host and port for ",
                         node.info.name));
      }
      if (access(absl::StrCat("/var/run/netns/", it->second.netns).c_str(),
                 F_OK) != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("network namespace ", it->second.netns, " of ",
                         node.info.name, " does not exist"));
      }
      node.info.netns = it->second.netns;
      node.info.host = it->second.host;
      node.info.port = it->second.port;
    } else {
      absl::StatusOr<int> port = assign_port(node.info.name);
      if (!port.ok()) return port.status();
      node.info.port = *port;
    }
    fs::path dir = fs::path(cluster->base_dir_) / node.info.name;
    node.info.data_dir = (dir / "data").string();
    node.info.log_path = (dir / (node.info.name + ".log")).string();
    node.info.binary =
        role == NodeRole::kController ? controller_bin : *broker_bin;
    node.info.env = options.env;
    if (auto it = options.node_env.find(node.info.name);
        it != options.node_env.end()) {
      node.info.env.insert(node.info.env.end(), it->second.begin(),
                           it->second.end());
    }
    cluster->nodes_.push_back(std::move(node));
    return absl::OkStatus();
  };
  for (int id = 1; id <= c; ++id) {
    if (absl::Status s = add_node(NodeRole::kController, id); !s.ok()) return s;
  }
  for (int id = 1; id <= b; ++id) {
    if (absl::Status s = add_node(NodeRole::kBroker, id); !s.ok()) return s;
  }

  std::vector<std::string> voters;
  for (const Node& n : cluster->nodes_) {
    if (n.info.role == NodeRole::kController) {
      voters.push_back(absl::StrCat(n.info.id, "@", n.info.address()));
    }
  }
  const std::string voter_list = absl::StrJoin(voters, ",");
  for (Node& n : cluster->nodes_) {
    NodeInfo& info = n.info;
    info.args = {absl::StrCat("--node-id=", info.id),
                 absl::StrCat("--listen=", info.address()),
                 absl::StrCat("--data-dir=", info.data_dir)};
    if (info.role == NodeRole::kController) {
      info.args.push_back(
          absl::StrCat("--controller-quorum-voters=", voter_list));
      info.args.insert(info.args.end(), options.controller_args.begin(),
                       options.controller_args.end());
    } else {
      info.args.push_back(absl::StrCat("--advertised=", info.address()));
      info.args.push_back(absl::StrCat("--fsync=", options.fsync));
      if (c > 0) {
        info.args.push_back(
            absl::StrCat("--controller-quorum-voters=", voter_list));
      } else if (!topics.empty()) {
        // Single-node mode: the broker is its own controller and creates the
        // topics before it reports SERVING.
        info.args.push_back(absl::StrCat("--create-topics=", topics));
      }
      info.args.insert(info.args.end(), options.broker_args.begin(),
                       options.broker_args.end());
    }
  }

  // Start everything, then wait for everything: the nodes start in parallel.
  absl::Status status = absl::OkStatus();
  const absl::Time deadline = absl::Now() + options.start_timeout;
  for (Node& n : cluster->nodes_) {
    status = cluster->Spawn(n);
    if (!status.ok()) break;
  }
  if (status.ok()) {
    for (Node& n : cluster->nodes_) {
      status = cluster->WaitServing(n, deadline);
      if (!status.ok()) break;
    }
  }
  if (status.ok() && c > 0 && !topics.empty()) {
    status = cluster->CreateTopics(
        topics, std::max(deadline - absl::Now(), absl::Seconds(10)));
  }
  if (status.ok()) status = cluster->WriteBootstrap();
  if (!status.ok()) {
    // A half-started cluster helps nobody: stop what started, keep the logs.
    for (Node& n : cluster->nodes_) {
      if (cluster->Probe(n) != NodeState::kExited) {
        (void)cluster->SendSignal(n, SIGKILL);
        (void)cluster->WaitForState(n, NodeState::kExited,
                                    kSignalEffectTimeout);
      }
    }
    (void)cluster->WriteState();
    return status;
  }
  return cluster;
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Attach(
    const std::string& base_dir) {
  auto cluster = std::unique_ptr<Cluster>(new Cluster());
  std::error_code ec;
  cluster->base_dir_ = fs::absolute(base_dir, ec).lexically_normal().string();
  while (cluster->base_dir_.size() > 1 && cluster->base_dir_.back() == '/') {
    cluster->base_dir_.pop_back();
  }
  if (!fs::exists(cluster->state_path())) {
    return absl::NotFoundError(
        absl::StrCat("no cluster in ", cluster->base_dir_, " (no state file ",
                     cluster->state_path(), "); start one with `up`"));
  }
  std::map<std::string, std::string> globals;
  absl::StatusOr<std::vector<NodeInfo>> nodes =
      ReadState(cluster->state_path(), &globals);
  if (!nodes.ok()) return nodes.status();
  cluster->detach_ = true;
  cluster->cli_binary_ = globals["cli"];
  (void)absl::SimpleAtoi(globals["controllers"], &cluster->controllers_);
  (void)absl::SimpleAtoi(globals["brokers"], &cluster->brokers_);
  int64_t timeout_s = 0;
  if (absl::SimpleAtoi(globals["start_timeout_s"], &timeout_s) &&
      timeout_s > 0) {
    cluster->start_timeout_ = absl::Seconds(timeout_s);
  }
  for (NodeInfo& info : *nodes) {
    cluster->nodes_.push_back(Node{std::move(info), nullptr});
  }
  return cluster;
}

Cluster::~Cluster() {
  for (Node& n : nodes_) {
    if (n.process != nullptr) (void)n.process->Kill();
  }
}

// ---------------------------------------------------------------------------
// Processes

absl::Status Cluster::Spawn(Node& node) {
  NodeInfo& info = node.info;
  std::error_code ec;
  fs::create_directories(info.data_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("creating ", info.data_dir, ": ", ec.message()));
  }
  if (FILE* f = fopen(info.log_path.c_str(), "a"); f != nullptr) {
    // Marks each run, so restarts are easy to tell apart in the log.
    std::string line = absl::StrCat(
        "=== fjord-cluster: starting ", info.name, " on ", info.address(),
        " at ", absl::FormatTime(absl::Now(), absl::UTCTimeZone()), "\n");
    fputs(line.c_str(), f);
    fclose(f);
  }
  Process::Options p;
  p.binary = info.binary;
  p.args = info.args;
  p.env = info.env;
  p.unset_env = InheritedFjordVariables(info.env);
  p.log_path = info.log_path;
  p.new_session = detach_;
  if (!info.netns.empty()) {
    // `ip netns exec NS BINARY ARGS` enters the namespace and execs BINARY in
    // place (no fork outside batch mode), so the PID is the server's own.
    p.binary = FindIpBinary();
    if (p.binary.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot start ", info.name, " in ", info.netns, ": no `ip` binary"));
    }
    p.args = {"netns", "exec", info.netns, info.binary};
    p.args.insert(p.args.end(), info.args.begin(), info.args.end());
  }
  absl::StatusOr<std::unique_ptr<Process>> process = Process::Spawn(p);
  if (!process.ok()) return process.status();
  info.pid = (*process)->pid();
  std::optional<ProcStat> stat = ReadProcStat(info.pid);
  info.start_ticks = stat.has_value() ? stat->start_ticks : 0;
  // Let execve finish setting up the command line (posix_spawn returns as soon
  // as the child has left the parent's memory), so that a later invocation
  // reading the state file sees it. Bounded; a child that dies meanwhile ends
  // the wait. In a namespace, wait until `ip` has exec'd the server itself.
  const absl::Time exec_deadline = absl::Now() + absl::Seconds(2);
  auto exec_done = [&] {
    std::vector<std::string> argv = ReadCmdline(info.pid);
    if (info.netns.empty()) return !argv.empty();
    return !argv.empty() && argv[0] == info.binary;
  };
  while (absl::Now() < exec_deadline && !exec_done() &&
         ReadProcStat(info.pid).has_value() &&
         ReadProcStat(info.pid)->state != 'Z') {
    absl::SleepFor(absl::Milliseconds(1));
  }
  if (!info.netns.empty()) {
    // The recorded PID must be the server, in its namespace: never a wrapper
    // that a signal would miss the server behind.
    const ino_t want = NetnsInode(absl::StrCat("/var/run/netns/", info.netns));
    const ino_t have = NetnsInode(absl::StrCat("/proc/", info.pid, "/ns/net"));
    if (!exec_done() || want == 0 || want != have) {
      std::string why = !(*process)->Running()
                            ? "exited before it ran the server"
                        : exec_done() ? "runs outside its namespace"
                                      : "did not exec the server within 2 s";
      (void)(*process)->Kill();
      return absl::FailedPreconditionError(
          absl::StrCat(info.name, " (pid ", info.pid, ", `ip netns exec ",
                       info.netns, "`) ", why, LogHint(info)));
    }
  }
  if (detach_) {
    (*process)->Release();
    node.process.reset();
  } else {
    node.process = std::move(*process);
  }
  return WriteState();
}

NodeState Cluster::Probe(Node& node) {
  const NodeInfo& info = node.info;
  if (node.process != nullptr) {
    // Our child: not reaped means the PID is still this process.
    if (!node.process->Running()) return NodeState::kExited;
    std::optional<ProcStat> stat = ReadProcStat(info.pid);
    return stat.has_value() ? StateFromLetter(stat->state) : NodeState::kExited;
  }
  if (info.pid <= 0) return NodeState::kExited;
  std::optional<ProcStat> stat = ReadProcStat(info.pid);
  if (!stat.has_value()) return NodeState::kExited;
  if (info.start_ticks != 0 && stat->start_ticks != info.start_ticks) {
    return NodeState::kExited;  // the PID was recycled
  }
  NodeState state = StateFromLetter(stat->state);
  if (state == NodeState::kExited) return state;
  std::vector<std::string> argv = ReadCmdline(info.pid);
  // The command line reads empty for a moment while execve sets up the new
  // image; a matching start time already identifies the process then.
  if (argv.empty() && info.start_ticks != 0) return state;
  if (argv.empty() || argv[0] != info.binary) return NodeState::kExited;
  return state;
}

absl::Status Cluster::SendSignal(Node& node, int signal) {
  if (node.process != nullptr) return node.process->Signal(signal);
  if (Probe(node) == NodeState::kExited) {
    return absl::FailedPreconditionError(absl::StrCat(
        node.info.name, " (pid ", node.info.pid, ") is not running"));
  }
  if (kill(node.info.pid, signal) != 0) {
    return ErrnoError(absl::StrCat("signalling ", node.info.name), errno);
  }
  return absl::OkStatus();
}

bool Cluster::WaitForState(Node& node, NodeState want, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (Probe(node) == want) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::StatusOr<Cluster::Node*> Cluster::Lookup(absl::string_view name) {
  for (Node& n : nodes_) {
    if (n.info.name == name) return &n;
  }
  std::vector<std::string> names;
  for (const Node& n : nodes_) names.push_back(n.info.name);
  return absl::NotFoundError(
      absl::StrCat("no node ", name, " in ", base_dir_,
                   " (nodes: ", absl::StrJoin(names, ", "), ")"));
}

const NodeInfo* Cluster::Find(absl::string_view node) const {
  for (const Node& n : nodes_) {
    if (n.info.name == node) return &n.info;
  }
  return nullptr;
}

std::vector<NodeInfo> Cluster::nodes() const {
  std::vector<NodeInfo> out;
  for (const Node& n : nodes_) out.push_back(n.info);
  return out;
}

NodeState Cluster::State(absl::string_view name) {
  absl::StatusOr<Node*> node = Lookup(name);
  return node.ok() ? Probe(**node) : NodeState::kExited;
}

absl::Status Cluster::WaitServing(Node& node, absl::Time deadline) {
  std::string last = "no answer yet";
  while (true) {
    NodeState state = Probe(node);
    if (state == NodeState::kExited) {
      std::string how;
      if (node.process != nullptr && node.process->exit_info().has_value()) {
        how = absl::StrCat(" (", node.process->exit_info()->ToString(), ")");
      }
      return absl::FailedPreconditionError(absl::StrCat(
          node.info.name, " exited before serving", how, LogHint(node.info)));
    }
    if (state == NodeState::kRunning) {
      last = CheckHealth(node.info.address());
      if (last == "SERVING") return absl::OkStatus();
    } else {
      last = "paused";
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          node.info.name, " on ", node.info.address(),
          " is not SERVING in time (last: ", last, ")", LogHint(node.info)));
    }
    absl::SleepFor(kPollInterval);
  }
}

absl::Status Cluster::WaitServing(absl::string_view name,
                                  absl::Duration timeout) {
  absl::StatusOr<Node*> node = Lookup(name);
  if (!node.ok()) return node.status();
  return WaitServing(**node, absl::Now() + timeout);
}

// ---------------------------------------------------------------------------
// Verbs

absl::Status Cluster::Kill(absl::string_view name) {
  absl::StatusOr<Node*> found = Lookup(name);
  if (!found.ok()) return found.status();
  Node& node = **found;
  if (Probe(node) == NodeState::kExited) {
    return absl::FailedPreconditionError(
        absl::StrCat(node.info.name, " is not running"));
  }
  if (absl::Status s = SendSignal(node, SIGKILL); !s.ok()) return s;
  if (!WaitForState(node, NodeState::kExited, kSignalEffectTimeout)) {
    return absl::DeadlineExceededError(absl::StrCat(
        node.info.name, " (pid ", node.info.pid, ") survived SIGKILL for ",
        absl::FormatDuration(kSignalEffectTimeout)));
  }
  return absl::OkStatus();
}

absl::Status Cluster::Pause(absl::string_view name) {
  absl::StatusOr<Node*> found = Lookup(name);
  if (!found.ok()) return found.status();
  Node& node = **found;
  NodeState state = Probe(node);
  if (state != NodeState::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat(
        node.info.name, " is ", NodeStateName(state), ", not running"));
  }
  if (absl::Status s = SendSignal(node, SIGSTOP); !s.ok()) return s;
  if (!WaitForState(node, NodeState::kPaused, kSignalEffectTimeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat(node.info.name, " did not stop after SIGSTOP"));
  }
  return absl::OkStatus();
}

absl::Status Cluster::Resume(absl::string_view name) {
  absl::StatusOr<Node*> found = Lookup(name);
  if (!found.ok()) return found.status();
  Node& node = **found;
  NodeState state = Probe(node);
  if (state != NodeState::kPaused) {
    return absl::FailedPreconditionError(absl::StrCat(
        node.info.name, " is ", NodeStateName(state), ", not paused"));
  }
  if (absl::Status s = SendSignal(node, SIGCONT); !s.ok()) return s;
  if (!WaitForState(node, NodeState::kRunning, kSignalEffectTimeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat(node.info.name, " did not continue after SIGCONT"));
  }
  return absl::OkStatus();
}

absl::Status Cluster::Terminate(absl::string_view name,
                                absl::Duration timeout) {
  absl::StatusOr<Node*> found = Lookup(name);
  if (!found.ok()) return found.status();
  Node& node = **found;
  NodeState state = Probe(node);
  if (state == NodeState::kExited) {
    return absl::FailedPreconditionError(
        absl::StrCat(node.info.name, " is not running"));
  }
  if (absl::Status s = SendSignal(node, SIGTERM); !s.ok()) return s;
  // A stopped process keeps SIGTERM pending until it continues.
  if (state == NodeState::kPaused) (void)SendSignal(node, SIGCONT);
  if (!WaitForState(node, NodeState::kExited, timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat(node.info.name, " still running ",
                     absl::FormatDuration(timeout), " after SIGTERM"));
  }
  return absl::OkStatus();
}

absl::Status Cluster::Stop(Node& node, absl::Duration timeout) {
  NodeState state = Probe(node);
  if (state == NodeState::kExited) return absl::OkStatus();
  (void)SendSignal(node, SIGTERM);
  if (state == NodeState::kPaused) (void)SendSignal(node, SIGCONT);
  if (WaitForState(node, NodeState::kExited, timeout)) return absl::OkStatus();
  (void)SendSignal(node, SIGKILL);
  if (WaitForState(node, NodeState::kExited, kSignalEffectTimeout)) {
    return absl::OkStatus();
  }
  return absl::DeadlineExceededError(absl::StrCat(
      node.info.name, " (pid ", node.info.pid, ") survived SIGKILL"));
}

absl::Status Cluster::Restart(absl::string_view name) {
  absl::StatusOr<Node*> found = Lookup(name);
  if (!found.ok()) return found.status();
  Node& node = **found;
  if (absl::Status s = Stop(node, kRestartStopTimeout); !s.ok()) return s;
  if (node.info.binary.empty() || access(node.info.binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot restart ", node.info.name, ": binary ",
                     node.info.binary, " is gone"));
  }
  if (absl::Status s = Spawn(node); !s.ok()) return s;
  return WaitServing(node, absl::Now() + start_timeout_);
}

std::vector<NodeStatus> Cluster::Status() {
  std::vector<NodeStatus> out;
  for (Node& n : nodes_) {
    NodeStatus s;
    s.name = n.info.name;
    s.state = Probe(n);
    s.health = s.state == NodeState::kRunning ? CheckHealth(n.info.address())
                                              : std::string("-");
    s.pid = n.info.pid;
    s.port = n.info.port;
    s.data_dir = n.info.data_dir;
    s.log_path = n.info.log_path;
    out.push_back(std::move(s));
  }
  return out;
}

absl::Status Cluster::Down(absl::Duration timeout) {
  std::vector<std::string> survivors;
  // Brokers first, so that they can still reach the controllers while they
  // shut down.
  for (NodeRole role : {NodeRole::kBroker, NodeRole::kController}) {
    std::vector<Node*> stopping;
    for (Node& n : nodes_) {
      if (n.info.role != role) continue;
      NodeState state = Probe(n);
      if (state == NodeState::kExited) continue;
      (void)SendSignal(n, SIGTERM);
      if (state == NodeState::kPaused) (void)SendSignal(n, SIGCONT);
      stopping.push_back(&n);
    }
    const absl::Time deadline = absl::Now() + timeout;
    for (Node* n : stopping) {
      absl::Duration left =
          std::max(deadline - absl::Now(), absl::ZeroDuration());
      if (WaitForState(*n, NodeState::kExited, left)) continue;
      (void)SendSignal(*n, SIGKILL);
      if (!WaitForState(*n, NodeState::kExited, kSignalEffectTimeout)) {
        survivors.push_back(
            absl::StrCat(n->info.name, " (pid ", n->info.pid, ")"));
      }
    }
  }
  if (!survivors.empty()) {
    return absl::DeadlineExceededError(absl::StrCat(
        "still running after SIGKILL: ", absl::StrJoin(survivors, ", ")));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// CLI and topics

absl::StatusOr<CommandResult> Cluster::RunCli(
    const std::vector<std::string>& args, const std::string& stdin_text,
    absl::Duration timeout) const {
  if (cli_binary_.empty()) {
    return absl::FailedPreconditionError("no fjord CLI binary configured");
  }
  std::vector<std::string> full = {"--bootstrap", bootstrap()};
  full.insert(full.end(), args.begin(), args.end());
  return RunCommand(cli_binary_, full, stdin_text, timeout,
                    {{"FJORD_BOOTSTRAP", bootstrap()}});
}

absl::Status Cluster::CreateTopics(absl::string_view spec,
                                   absl::Duration timeout) {
  absl::StatusOr<std::vector<broker::TopicSpec>> topics =
      broker::ParseCreateTopics(spec);
  if (!topics.ok()) return topics.status();
  const absl::Time deadline = absl::Now() + timeout;
  for (const broker::TopicSpec& t : *topics) {
    std::string last;
    while (true) {
      absl::Duration left = deadline - absl::Now();
      absl::StatusOr<CommandResult> r =
          RunCli({"topic", "create", t.name, "--partitions",
                  absl::StrCat(t.partitions), "--replication-factor",
                  absl::StrCat(t.replication_factor)},
                 "", std::clamp(left, absl::Seconds(1), absl::Seconds(30)));
      if (r.ok() && r->exit.ExitedWith(0)) break;
      if (r.ok() && absl::StrContains(r->err, "already exists")) break;
      last = r.ok() ? std::string(absl::StripTrailingAsciiWhitespace(r->err))
                    : std::string(r.status().message());
      // The brokers may not have registered yet: retry until the deadline.
      if (absl::Now() + absl::Milliseconds(500) >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            "creating topic ", t.name, " failed until the deadline: ", last));
      }
      absl::SleepFor(absl::Milliseconds(500));
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Files

std::string Cluster::state_path() const {
  return (fs::path(base_dir_) / kStateFile).string();
}

std::string Cluster::bootstrap_path() const {
  return (fs::path(base_dir_) / kBootstrapFile).string();
}

std::string Cluster::bootstrap() const {
  std::vector<std::string> addresses;
  for (const Node& n : nodes_) {
    if (n.info.role == NodeRole::kBroker) addresses.push_back(n.info.address());
  }
  return absl::StrJoin(addresses, ",");
}

namespace {

// Writes `content` to `path` through a temporary file and a rename, so a
// reader never sees half a file.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& content) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    out << content;
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("writing ", tmp));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoError(absl::StrCat("renaming ", tmp, " to ", path), errno);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Cluster::WriteState() const {
  std::string out = kStateHeader;
  auto put = [&out](absl::string_view key, absl::string_view value) {
    absl::Status s = CheckValue(key, value);
    absl::StrAppend(&out, key, "=", value, "\n");
    return s;
  };
  absl::Status status = absl::OkStatus();
  auto update = [&status](absl::Status s) { status.Update(s); };
  update(put("version", "1"));
  update(put("controllers", absl::StrCat(controllers_)));
  update(put("brokers", absl::StrCat(brokers_)));
  update(put("cli", cli_binary_));
  update(put("start_timeout_s",
             absl::StrCat(absl::ToInt64Seconds(start_timeout_))));
  update(put("bootstrap", bootstrap()));
  for (const Node& n : nodes_) {
    const NodeInfo& info = n.info;
    update(put("node", info.name));
    update(put("role", RoleName(info.role)));
    update(put("id", absl::StrCat(info.id)));
    update(put("port", absl::StrCat(info.port)));
    if (!info.netns.empty()) {  // absent for nodes on 127.0.0.1, as before
      update(put("netns", info.netns));
      update(put("host", info.host));
    }
    update(put("pid", absl::StrCat(info.pid)));
    update(put("start_ticks", absl::StrCat(info.start_ticks)));
    update(put("data_dir", info.data_dir));
    update(put("log", info.log_path));
    update(put("binary", info.binary));
    for (const std::string& arg : info.args) update(put("arg", arg));
    for (const auto& [k, v] : info.env)
      update(put("env", absl::StrCat(k, "=", v)));
  }
  if (!status.ok()) return status;
  return WriteFileAtomically(state_path(), out);
}

absl::Status Cluster::WriteBootstrap() const {
  return WriteFileAtomically(bootstrap_path(), bootstrap() + "\n");
}

absl::StatusOr<std::vector<NodeInfo>> Cluster::ReadState(
    const std::string& path, std::map<std::string, std::string>* globals) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<NodeInfo> nodes;
  std::string line;
  int line_no = 0;
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", line_no, ": ", why));
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) return bad("expected key=value");
    const std::string key = line.substr(0, eq);
    const std::string value = line.substr(eq + 1);
    if (key == "node") {
      nodes.emplace_back();
      nodes.back().name = value;
      continue;
    }
    if (nodes.empty()) {
      (*globals)[key] = value;
      continue;
    }
    NodeInfo& info = nodes.back();
    bool ok = true;
    if (key == "role") {
      if (value == "controller") {
        info.role = NodeRole::kController;
      } else if (value == "broker") {
        info.role = NodeRole::kBroker;
      } else {
        ok = false;
      }
    } else if (key == "id") {
      ok = absl::SimpleAtoi(value, &info.id);
    } else if (key == "port") {
      ok = absl::SimpleAtoi(value, &info.port);
    } else if (key == "pid") {
      ok = absl::SimpleAtoi(value, &info.pid);
    } else if (key == "start_ticks") {
      ok = absl::SimpleAtoi(value, &info.start_ticks);
    } else if (key == "netns") {
      info.netns = value;
    } else if (key == "host") {
      info.host = value;
      ok = !value.empty();
    } else if (key == "data_dir") {
      info.data_dir = value;
    } else if (key == "log") {
      info.log_path = value;
    } else if (key == "binary") {
      info.binary = value;
    } else if (key == "arg") {
      info.args.push_back(value);
    } else if (key == "env") {
      size_t e = value.find('=');
      ok = e != std::string::npos;
      if (ok) info.env.emplace_back(value.substr(0, e), value.substr(e + 1));
    }  // Unknown keys are ignored: a newer writer may add some.
    if (!ok) return bad(absl::StrCat("bad value for ", key));
  }
  for (const NodeInfo& info : nodes) {
    if (info.port <= 0 || info.binary.empty() ||
        info.name != NodeName(info.role, info.id)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": node ", info.name, " is incomplete"));
    }
  }
  return nodes;
}

std::string Cluster::DescribeForDebugging(int lines) const {
  std::string out;
  for (const Node& n : nodes_) {
    const NodeInfo& info = n.info;
    absl::StrAppend(
        &out, "=== ", info.name, " pid ", info.pid, " on ", info.address(),
        info.netns.empty() ? "" : absl::StrCat(" in netns ", info.netns),
        "\n    data dir: ", info.data_dir, "\n    log:      ", info.log_path,
        "\n--- last ", lines, " log lines ---\n",
        TailLines(ReadFileOrEmpty(info.log_path), lines), "\n");
  }
  return out;
}

}  // namespace fjord::testing
