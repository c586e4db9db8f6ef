// fjord-cluster: a local Fjord cluster of real processes on 127.0.0.1, for
// development and manual fault injection (DESIGN.md, "Local cluster").
// deploy/local/cluster builds the binaries and runs this with their paths.
//
//   fjord-cluster up [--controllers 3] [--brokers 3] [--dir DIR]
//   fjord-cluster status [-o json] | down | kill|pause|resume|restart NODE
//
// `up` starts every node in a session of its own, so the nodes outlive this
// process; every later invocation finds them through DIR/state (see
// integration_tests/cluster.h). Output goes to stdout; on failure one line
// "fjord-cluster: <reason>" goes to stderr and the exit code is 1 (2 for a bad
// command line).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "grpc/support/log.h"
#include "integration_tests/cluster.h"

namespace fjord::local {
namespace {

namespace fs = std::filesystem;
using testing::Cluster;
using testing::ClusterOptions;
using testing::NodeInfo;
using testing::NodeState;
using testing::NodeStateName;
using testing::NodeStatus;

constexpr char kUsage[] =
    "usage: fjord-cluster VERB [flags]\n"
    "  up [--controllers 3] [--brokers 3]   start a cluster, wait until "
    "healthy,\n"
    "                                       create $FJORD_CREATE_TOPICS, write "
    "DIR/bootstrap\n"
    "  status [-o json]                     every node: running/paused/exited, "
    "health\n"
    "  down                                 SIGTERM every node (SIGKILL after "
    "--timeout)\n"
    "  kill|pause|resume|restart NODE       SIGKILL | SIGSTOP | SIGCONT | "
    "stop+start\n"
    "NODE is controller-<id> or broker-<id>. Every verb takes --dir DIR "
    "(default var/cluster).\n";

void Print(const std::string& s) { fwrite(s.data(), 1, s.size(), stdout); }

// One line on stderr, whatever the message holds.
int Fail(const absl::Status& status, int code = 1) {
  std::string message(status.message());
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  fprintf(stderr, "fjord-cluster: %s\n", message.c_str());
  return code;
}

void QuietGrpcLog(gpr_log_func_args*) {}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// `path` relative to the working directory when it lies below it, for hints
// a user can paste.
std::string Friendly(const std::string& path) {
  std::error_code ec;
  fs::path cwd = fs::current_path(ec);
  if (ec) return path;
  fs::path rel = fs::path(path).lexically_relative(cwd);
  if (rel.empty() || absl::StartsWith(rel.string(), "..")) return path;
  return rel.string();
}

// argv[0] as this process was started, for Sibling.
std::string g_argv0;

// A binary built beside this one in bazel-bin (bazel-bin/deploy/local/ ->
// bazel-bin/<package>/<name>), "" when absent. Tries the path this binary was
// started by first (it keeps the user's bazel-bin symlink), then the real one.
std::string Sibling(const std::string& package_path) {
  std::vector<fs::path> selves;
  std::error_code ec;
  if (absl::StrContains(g_argv0, '/'))
    selves.push_back(fs::absolute(g_argv0, ec));
  fs::path real = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) selves.push_back(real);
  for (const fs::path& self : selves) {
    fs::path candidate =
        (self.parent_path() / ".." / ".." / package_path).lexically_normal();
    if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

struct Flags {
  std::string dir = "var/cluster";
  int64_t controllers = 3;
  int64_t brokers = 3;
  std::string broker_bin;
  std::string controller_bin;
  std::string cli_bin;
  std::string controller_args;
  std::string broker_args;
  std::string fsync = "always";
  std::string output = "table";
  int64_t timeout_s = 60;
};

int Up(const Flags& f) {
  ClusterOptions options;
  options.base_dir = f.dir;
  options.controllers = static_cast<int>(f.controllers);
  options.brokers = static_cast<int>(f.brokers);
  options.broker_binary =
      f.broker_bin.empty() ? Sibling("broker/fjord-broker") : f.broker_bin;
  options.controller_binary = f.controller_bin.empty()
                                  ? Sibling("controller/fjord-controller")
                                  : f.controller_bin;
  options.cli_binary = f.cli_bin.empty() ? Sibling("client/fjord") : f.cli_bin;
  options.controller_args =
      absl::StrSplit(f.controller_args, ' ', absl::SkipWhitespace());
  options.broker_args =
      absl::StrSplit(f.broker_args, ' ', absl::SkipWhitespace());
  options.fsync = f.fsync;
  options.detach = true;
  options.start_timeout = absl::Seconds(f.timeout_s);
  if (options.controllers > 0 && options.controller_binary.empty()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--controllers ", options.controllers,
        " needs fjord-controller (--controller-bin), which is not built; "
        "use --controllers 0 --brokers 1 for a single-node broker")));
  }
  absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Up(options);
  if (!cluster.ok()) {
    return Fail(
        cluster.status(),
        cluster.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1);
  }
  const Cluster& c = **cluster;
  const std::string dir = Friendly(c.base_dir());
  const char* topics_env = getenv("FJORD_CREATE_TOPICS");
  const std::string topics = topics_env != nullptr ? topics_env : "";
  std::string out =
      absl::StrCat("Fjord cluster up in ", dir, ": ", c.controllers(),
                   " controller", c.controllers() == 1 ? "" : "s", ", ",
                   c.brokers(), " broker", c.brokers() == 1 ? "" : "s",
                   c.controllers() == 0 ? " (single-node mode)" : "", "\n");
  for (const NodeInfo& n : c.nodes()) {
    absl::StrAppend(
        &out, absl::StrFormat("  %-14s pid %-8d %-16s log %s\n", n.name, n.pid,
                              n.address(), Friendly(n.log_path)));
  }
  const std::string cli =
      options.cli_binary.empty() ? "fjord" : Friendly(options.cli_binary);
  const std::string bootstrap = Friendly(c.bootstrap_path());
  absl::StrAppend(&out, "Bootstrap list (", bootstrap, "): ", c.bootstrap(),
                  "\nTopics created: ", topics.empty() ? "none" : topics,
                  "\nTry:\n  ", cli, " --bootstrap $(cat ", bootstrap,
                  ") topic list\n");
  if (!topics.empty()) {
    const std::string first = std::string(absl::StripAsciiWhitespace(
        absl::string_view(topics).substr(0, topics.find_first_of(":,"))));
    absl::StrAppend(&out, "  seq 1 10 | ", cli, " --bootstrap $(cat ",
                    bootstrap, ") produce ", first, "\n  ", cli,
                    " --bootstrap $(cat ", bootstrap, ") consume ", first,
                    " --from-beginning --timeout-ms 1000\n");
  }
  // deploy/local/cluster names itself here; run directly, this binary.
  const char* self = getenv("FJORD_CLUSTER_COMMAND");
  const std::string cmd = self != nullptr && *self != '\0' ? self : g_argv0;
  absl::StrAppend(&out, "  ", cmd, " status --dir ", dir, "\n  ", cmd,
                  " kill|pause|resume|restart ", c.nodes().back().name,
                  " --dir ", dir, "\n  ", cmd, " down --dir ", dir, "\n");
  Print(out);
  return 0;
}

int StatusVerb(Cluster& c, const Flags& f) {
  std::vector<NodeStatus> statuses = c.Status();
  if (f.output == "json") {
    std::string out = absl::StrCat("{\"dir\":", JsonString(c.base_dir()),
                                   ",\"bootstrap\":", JsonString(c.bootstrap()),
                                   ",\"nodes\":[");
    for (size_t i = 0; i < statuses.size(); ++i) {
      const NodeStatus& s = statuses[i];
      absl::StrAppend(&out, i == 0 ? "" : ",", "{\"name\":", JsonString(s.name),
                      ",\"state\":", JsonString(NodeStateName(s.state)),
                      ",\"health\":", JsonString(s.health), ",\"pid\":", s.pid,
                      ",\"port\":", s.port, ",\"address\":",
                      JsonString(absl::StrCat("127.0.0.1:", s.port)),
                      ",\"data_dir\":", JsonString(s.data_dir),
                      ",\"log\":", JsonString(s.log_path), "}");
    }
    Print(out + "]}\n");
    return 0;
  }
  std::string out = absl::StrFormat("%-14s %-8s %-12s %-8s %-16s %s\n", "NODE",
                                    "STATE", "HEALTH", "PID", "ADDRESS", "LOG");
  for (const NodeStatus& s : statuses) {
    absl::StrAppend(&out,
                    absl::StrFormat("%-14s %-8s %-12s %-8d %-16s %s\n", s.name,
                                    NodeStateName(s.state), s.health, s.pid,
                                    absl::StrCat("127.0.0.1:", s.port),
                                    Friendly(s.log_path)));
  }
  Print(out);
  return 0;
}

int Run(int argc, char** argv) {
  g_argv0 = argc > 0 ? argv[0] : "";
  if (getenv("FJORD_CLUSTER_DEBUG") == nullptr) {
    gpr_set_log_function(QuietGrpcLog);
  }
  Flags f;
  FlagSet flags("fjord-cluster", kUsage);
  flags.String("dir", &f.dir, "the cluster's directory (state, logs, data)");
  flags.Int("controllers", &f.controllers,
            "up: controllers, 0 (single-node broker), 1, 3 or 5");
  flags.Int("brokers", &f.brokers, "up: brokers (1 when --controllers 0)");
  flags.String("broker-bin", &f.broker_bin,
               "up: fjord-broker (default: beside this binary in bazel-bin)");
  flags.String("controller-bin", &f.controller_bin,
               "up: fjord-controller (default: beside this binary)");
  flags.String("cli-bin", &f.cli_bin,
               "up: the fjord CLI (default: beside this binary)");
  flags.String("controller-args", &f.controller_args,
               "up: extra controller flags, space-separated");
  flags.String("broker-args", &f.broker_args,
               "up: extra broker flags, space-separated");
  flags.String("fsync", &f.fsync, "up: the brokers' --fsync");
  flags.String("output", &f.output, "status: table or json (also -o)");
  flags.Int("timeout", &f.timeout_s,
            "up: seconds until every node is healthy (restart reuses up's "
            "value); down: seconds per role before SIGKILL");

  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    args.push_back(arg == "-o" ? "--output" : arg);
  }
  std::vector<std::string> positional;
  absl::Status parsed = flags.Parse(args, &positional);
  if (parsed.code() == absl::StatusCode::kCancelled) {
    Print(std::string(parsed.message()));
    return 0;
  }
  if (!parsed.ok()) return Fail(parsed, 2);
  if (positional.empty()) {
    return Fail(absl::InvalidArgumentError(
                    "no verb; expected up, down, status, kill, pause, resume "
                    "or restart (see --help)"),
                2);
  }
  if (f.output != "table" && f.output != "json") {
    return Fail(absl::InvalidArgumentError("-o must be table or json"), 2);
  }
  if (f.timeout_s <= 0) {
    return Fail(absl::InvalidArgumentError("--timeout must be positive"), 2);
  }
  const std::string verb = positional[0];
  const bool node_verb = verb == "kill" || verb == "pause" ||
                         verb == "resume" || verb == "restart";
  const size_t want_args = node_verb ? 2 : 1;
  if (verb != "up" && verb != "down" && verb != "status" && !node_verb) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
                    "unknown verb \"", verb,
                    "\"; expected up, down, status, kill, pause, resume or "
                    "restart")),
                2);
  }
  if (positional.size() != want_args) {
    return Fail(absl::InvalidArgumentError(
                    node_verb ? absl::StrCat(verb,
                                             " needs exactly one NODE "
                                             "(controller-<id> or broker-<id>)")
                              : absl::StrCat(verb, " takes no arguments")),
                2);
  }
  if (verb == "up") return Up(f);

  absl::StatusOr<std::unique_ptr<Cluster>> attached = Cluster::Attach(f.dir);
  if (!attached.ok()) return Fail(attached.status());
  Cluster& c = **attached;
  if (verb == "status") return StatusVerb(c, f);
  if (verb == "down") {
    if (absl::Status s = c.Down(absl::Seconds(f.timeout_s)); !s.ok()) {
      return Fail(s);
    }
    Print(absl::StrCat("Fjord cluster in ", Friendly(c.base_dir()),
                       " is down (data and logs kept; `up` reuses them)\n"));
    return 0;
  }
  const std::string& node = positional[1];
  absl::Status s;
  if (verb == "kill") {
    s = c.Kill(node);
  } else if (verb == "pause") {
    s = c.Pause(node);
  } else if (verb == "resume") {
    s = c.Resume(node);
  } else {
    s = c.Restart(node);
  }
  if (!s.ok()) return Fail(s);
  const NodeInfo* info = c.Find(node);
  Print(absl::StrCat(node, ": ", NodeStateName(c.State(node)), " (pid ",
                     info->pid, ", ", info->address(), ")\n"));
  return 0;
}

}  // namespace
}  // namespace fjord::local

int main(int argc, char** argv) { return fjord::local::Run(argc, argv); }
