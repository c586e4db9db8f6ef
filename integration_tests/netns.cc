#include "integration_tests/netns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "integration_tests/process.h"

namespace fjord::testing {
namespace {

constexpr char kNetnsDir[] = "/var/run/netns";
constexpr char kPrefix[] = "fjord-t";
constexpr absl::Duration kCommandTimeout = absl::Seconds(10);

// An IPv4 prefix, host byte order.
struct Prefix {
  uint32_t address = 0;
  int length = 32;

  bool Overlaps(const Prefix& other) const {
    const int len = std::min(length, other.length);
    const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
    return (address & mask) == (other.address & mask);
  }
};

std::optional<Prefix> ParsePrefix(absl::string_view text) {
  Prefix p;
  std::vector<absl::string_view> parts = absl::StrSplit(text, '/');
  if (parts.empty() || parts.size() > 2) return std::nullopt;
  in_addr a{};
  if (inet_pton(AF_INET, std::string(parts[0]).c_str(), &a) != 1) {
    return std::nullopt;
  }
  p.address = ntohl(a.s_addr);
  if (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &p.length) ||
                            p.length < 0 || p.length > 32)) {
    return std::nullopt;
  }
  return p;
}

std::string FindBinary(const std::vector<std::string>& candidates) {
  for (const std::string& c : candidates) {
    if (access(c.c_str(), X_OK) == 0) return c;
  }
  return "";
}

struct HubState {
  absl::Mutex mu;
  bool entered = false;
  absl::Status status = absl::FailedPreconditionError(
      "EnterHarnessHub was not called (link //integration_tests:netns_main)");
  std::string hub;                  // namespace name
  std::vector<Prefix> host_routes;  // of the root namespace, before entering
  std::set<uint32_t> used_subnets;  // by this process's topologies
  int next_topology = 1;
};

HubState& Hub() {
  static auto* state = new HubState();
  return *state;
}

absl::StatusOr<std::string> RunChecked(const std::string& binary,
                                       const std::vector<std::string>& args,
                                       const std::string& stdin_text,
                                       absl::Duration timeout) {
  absl::StatusOr<CommandResult> r =
      RunCommand(binary, args, stdin_text, timeout);
  const std::string what = absl::StrCat(binary, " ", absl::StrJoin(args, " "));
  if (!r.ok()) {
    return absl::Status(r.status().code(),
                        absl::StrCat(what, ": ", r.status().message()));
  }
  if (!r->exit.ExitedWith(0)) {
    return absl::InternalError(
        absl::StrCat(what, ": ", r->exit.ToString(), ": ",
                     absl::StripTrailingAsciiWhitespace(TailLines(r->err, 3))));
  }
  return r->out;
}

// Names of every named network namespace.
absl::StatusOr<std::vector<std::string>> ListNamespaces() {
  absl::StatusOr<std::string> out =
      RunChecked(IpBinary(), {"netns", "list"}, "", kCommandTimeout);
  if (!out.ok()) return out.status();
  std::vector<std::string> names;
  for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipEmpty())) {
    // "name" or "name (id: 3)".
    names.emplace_back(line.substr(0, line.find(' ')));
  }
  return names;
}

// The PIDs in namespace `name` ("" when none).
std::string PidsIn(const std::string& name) {
  absl::StatusOr<std::string> out =
      RunChecked(IpBinary(), {"netns", "pids", name}, "", kCommandTimeout);
  if (!out.ok()) return "";
  std::vector<std::string> pids =
      absl::StrSplit(*out, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  return absl::StrJoin(pids, " ");
}

// Removes fjord-t<pid>-... namespaces of test processes that no longer exist
// and that hold no process. Best effort; prints what it did.
void SweepStaleNamespaces() {
  absl::StatusOr<std::vector<std::string>> names = ListNamespaces();
  if (!names.ok()) return;
  for (const std::string& name : *names) {
    if (!absl::StartsWith(name, kPrefix)) continue;
    absl::string_view rest = absl::string_view(name).substr(strlen(kPrefix));
    int64_t pid = 0;
    if (!absl::SimpleAtoi(rest.substr(0, rest.find('-')), &pid) || pid <= 0) {
      continue;
    }
    if (pid == getpid() ||
        access(absl::StrCat("/proc/", pid).c_str(), F_OK) == 0) {
      continue;  // its test process still runs (or the PID was reused)
    }
    const std::string pids = PidsIn(name);
    if (!pids.empty()) {
      std::cerr << "netns: leaving stale namespace " << name
                << ": it still holds processes " << pids << "\n";
      continue;
    }
    absl::StatusOr<std::string> r =
        RunChecked(IpBinary(), {"netns", "delete", name}, "", kCommandTimeout);
    std::cerr << "netns: removed stale namespace " << name << " of dead pid "
              << pid << (r.ok() ? "" : absl::StrCat(": ", r.status().message()))
              << "\n";
  }
}

// Every IPv4 route destination of the current namespace, any table.
absl::StatusOr<std::vector<Prefix>> CurrentRoutes() {
  absl::StatusOr<std::string> out = RunChecked(
      IpBinary(), {"-4", "route", "show", "table", "all"}, "", kCommandTimeout);
  if (!out.ok()) return out.status();
  static const std::set<std::string> kTypes = {
      "unicast",     "local",    "broadcast", "multicast", "throw",
      "unreachable", "prohibit", "blackhole", "nat",       "anycast"};
  std::vector<Prefix> routes;
  for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> tokens =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    size_t i = 0;
    if (i < tokens.size() && kTypes.count(tokens[i]) > 0) ++i;
    if (i >= tokens.size() || tokens[i] == "default") continue;
    std::optional<Prefix> p = ParsePrefix(tokens[i]);
    if (p.has_value() && p->length > 0) routes.push_back(*p);
  }
  return routes;
}

int TaskCount() {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

// Connects from namespace `from_path` to a listener opened on `address` in
// `to_path`. Runs on a thread of its own (setns changes the calling thread).
absl::StatusOr<bool> ProbeConnect(const std::string& from_path,
                                  const std::string& to_path,
                                  const std::string& address,
                                  absl::Duration timeout) {
  int to_fd = open(to_path.c_str(), O_RDONLY | O_CLOEXEC);
  int from_fd = open(from_path.c_str(), O_RDONLY | O_CLOEXEC);
  int listener = -1, client = -1;
  auto cleanup = [&] {
    for (int fd : {to_fd, from_fd, listener, client}) {
      if (fd >= 0) close(fd);
    }
  };
  auto fail = [&](absl::string_view what) {
    const int err = errno;
    cleanup();
    return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
  };
  if (to_fd < 0 || from_fd < 0) return fail("opening a namespace");
  if (setns(to_fd, CLONE_NEWNET) != 0) return fail("setns (listener)");
  listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    cleanup();
    return absl::InvalidArgumentError(absl::StrCat("bad address ", address));
  }
  socklen_t len = sizeof(addr);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener, 4) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return fail(absl::StrCat("listening on ", address));
  }
  if (setns(from_fd, CLONE_NEWNET) != 0) return fail("setns (client)");
  client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (client < 0) return fail("socket");
  bool connected = false;
  if (connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    connected = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{client, POLLOUT, 0};
    int ready =
        poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    int err = 0;
    socklen_t err_len = sizeof(err);
    if (ready == 1 &&
        getsockopt(client, SOL_SOCKET, SO_ERROR, &err, &err_len) == 0 &&
        err == 0) {
      connected = true;
    }
  }
  cleanup();
  return connected;
}

}  // namespace

std::string IpBinary() {
  return FindBinary({"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"});
}

std::string NftBinary() {
  return FindBinary({"/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"});
}

// ---------------------------------------------------------------------------
// The hub

absl::Status EnterHarnessHub() {
  HubState& hub = Hub();
  absl::MutexLock lock(&hub.mu);
  if (hub.entered) return absl::OkStatus();
  auto unavailable = [&](absl::string_view why) {
    hub.status = absl::UnavailableError(absl::StrCat(
        "network-partition tests need root with `ip netns` and `nft` "
        "(install-deps: iproute2, nftables); the non-root fault layer in the "
        "gRPC transport is not built yet: ",
        why));
    return hub.status;
  };
  if (geteuid() != 0) return unavailable("not running as root");
  if (IpBinary().empty()) return unavailable("no `ip` binary (iproute2)");
  if (NftBinary().empty()) return unavailable("no `nft` binary (nftables)");
  const int tasks = TaskCount();
  if (tasks != 1) {
    return unavailable(absl::StrCat(
        "EnterHarnessHub must run while the process has one thread (it has ",
        tasks, ")"));
  }
  SweepStaleNamespaces();
  absl::StatusOr<std::vector<Prefix>> routes = CurrentRoutes();
  if (!routes.ok()) return unavailable(routes.status().message());
  const std::string name = absl::StrCat(kPrefix, getpid(), "-hub");
  if (absl::StatusOr<std::string> r =
          RunChecked(IpBinary(), {"netns", "add", name}, "", kCommandTimeout);
      !r.ok()) {
    return unavailable(r.status().message());
  }
  auto undo = [&](absl::string_view why) {
    (void)RunChecked(IpBinary(), {"netns", "delete", name}, "",
                     kCommandTimeout);
    return unavailable(why);
  };
  // nft must work in the hub (the nf_tables module, the bridge family).
  if (absl::StatusOr<std::string> r = RunChecked(
          IpBinary(), {"netns", "exec", name, NftBinary(), "list", "tables"},
          "", kCommandTimeout);
      !r.ok()) {
    return undo(r.status().message());
  }
  if (absl::StatusOr<std::string> r =
          RunChecked(IpBinary(), {"-n", name, "link", "set", "lo", "up"}, "",
                     kCommandTimeout);
      !r.ok()) {
    return undo(r.status().message());
  }
  const std::string path = absl::StrCat(kNetnsDir, "/", name);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return undo(absl::StrCat("open ", path, ": ", strerror(errno)));
  const int rc = setns(fd, CLONE_NEWNET);
  const int err = errno;
  close(fd);
  if (rc != 0) return undo(absl::StrCat("setns: ", strerror(err)));
  hub.entered = true;
  hub.hub = name;
  hub.host_routes = *std::move(routes);
  hub.status = absl::OkStatus();
  std::atexit(LeaveHarnessHub);
  return absl::OkStatus();
}

absl::Status HarnessHubStatus() {
  HubState& hub = Hub();
  absl::MutexLock lock(&hub.mu);
  return hub.status;
}

void LeaveHarnessHub() {
  HubState& hub = Hub();
  absl::MutexLock lock(&hub.mu);
  if (!hub.entered || hub.hub.empty()) return;
  absl::StatusOr<std::string> r =
      RunChecked(IpBinary(), {"netns", "delete", hub.hub}, "", kCommandTimeout);
  if (!r.ok()) {
    std::cerr << "netns: removing the hub " << hub.hub << ": "
              << r.status().message() << "\n";
  }
  hub.hub.clear();
}

// ---------------------------------------------------------------------------
// Topologies

absl::StatusOr<std::unique_ptr<NetnsTopology>> NetnsTopology::Create(
    const std::vector<std::string>& nodes, absl::Duration command_timeout) {
  if (nodes.empty() || nodes.size() > 200) {
    return absl::InvalidArgumentError("a topology needs 1 to 200 nodes");
  }
  std::set<std::string> unique(nodes.begin(), nodes.end());
  if (unique.size() != nodes.size() || unique.count(kHarness) > 0) {
    return absl::InvalidArgumentError(
        "node names must be distinct and not \"harness\"");
  }
  for (const std::string& n : nodes) {
    if (n.empty() || n.size() > 40 ||
        n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") !=
            std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node name \"", n, "\": use lower-case letters, digits and '-'"));
    }
  }
  auto topology = std::unique_ptr<NetnsTopology>(new NetnsTopology());
  HubState& hub = Hub();
  {
    absl::MutexLock lock(&hub.mu);
    if (!hub.entered) return hub.status;
    topology->index_ = hub.next_topology++;
    // A /24 in 10.200.0.0-10.249.255.0 that no host route overlaps and no
    // other topology of this process uses, starting at a PID-dependent place
    // so that concurrent test processes tend to differ (they could share one
    // anyway: each hub is its own namespace).
    const uint32_t span = 50 * 256;
    const uint32_t start =
        (static_cast<uint32_t>(getpid()) * 7 + topology->index_ * 13) % span;
    std::optional<Prefix> chosen;
    for (uint32_t i = 0; i < span && !chosen.has_value(); ++i) {
      const uint32_t v = (start + i) % span;
      Prefix candidate{
          (10u << 24) | ((200u + v / 256) << 16) | ((v % 256) << 8), 24};
      bool free = hub.used_subnets.count(candidate.address) == 0;
      for (const Prefix& r : hub.host_routes) free &= !r.Overlaps(candidate);
      if (free) chosen = candidate;
    }
    if (!chosen.has_value()) {
      return absl::ResourceExhaustedError(
          "no free 10.x.y.0/24 subnet: host routes cover them all");
    }
    hub.used_subnets.insert(chosen->address);
    const uint32_t a = chosen->address;
    topology->prefix_ =
        absl::StrCat(a >> 24, ".", (a >> 16) & 255, ".", (a >> 8) & 255, ".");
  }
  topology->timeout_ = command_timeout;
  topology->nodes_ = nodes;
  topology->bridge_ = absl::StrCat("fjbr", topology->index_);
  topology->table_ = absl::StrCat("fjord_", topology->index_);
  for (const std::string& n : nodes) {
    topology->namespaces_.push_back(
        absl::StrCat(kPrefix, getpid(), "-", topology->index_, "-", n));
  }
  if (absl::Status s = topology->Build(); !s.ok()) {
    absl::Status d = topology->Destroy();
    if (!d.ok()) {
      return absl::Status(
          s.code(), absl::StrCat(s.message(), "; cleaning up: ", d.message()));
    }
    return s;
  }
  return topology;
}

absl::Status NetnsTopology::Run(const std::string& binary,
                                const std::vector<std::string>& args,
                                const std::string& stdin_text) const {
  return RunChecked(binary, args, stdin_text, timeout_).status();
}

absl::Status NetnsTopology::Build() {
  const std::string ip = IpBinary();
  auto run = [&](std::vector<std::string> args) { return Run(ip, args); };
  if (absl::Status s = run({"link", "add", bridge_, "type", "bridge"});
      !s.ok()) {
    return s;
  }
  bridge_created_ = true;
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"addr", "add", absl::StrCat(prefix_, "254/24"), "dev", bridge_},
           {"link", "set", bridge_, "up"}}) {
    if (absl::Status s = run(args); !s.ok()) return s;
  }
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const std::string& ns = namespaces_[i];
    const std::string port = absl::StrCat("fj", index_, "p", i + 1);
    if (absl::Status s = run({"netns", "add", ns}); !s.ok()) return s;
    created_namespaces_.push_back(ns);
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"link", "add", "eth0", "netns", ns, "type", "veth", "peer",
              "name", port},
             {"link", "set", port, "master", bridge_},
             {"link", "set", port, "up"},
             {"-n", ns, "addr", "add", absl::StrCat(prefix_, i + 1, "/24"),
              "dev", "eth0"},
             {"-n", ns, "link", "set", "eth0", "up"},
             {"-n", ns, "link", "set", "lo", "up"}}) {
      if (absl::Status s = run(args); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

NetnsTopology::~NetnsTopology() {
  absl::Status s = Destroy();
  if (!s.ok()) std::cerr << "netns: " << s.message() << "\n";
}

absl::Status NetnsTopology::Destroy() {
  if (destroyed_) return absl::OkStatus();
  destroyed_ = true;
  const std::string ip = IpBinary();
  std::vector<std::string> problems;
  if (!rules_.empty()) {
    if (absl::Status s = Heal(); !s.ok()) {
      problems.emplace_back(s.message());
    }
  }
  for (auto it = created_namespaces_.rbegin(); it != created_namespaces_.rend();
       ++it) {
    const std::string pids = PidsIn(*it);
    if (!pids.empty()) {
      problems.push_back(absl::StrCat(*it, " still holds processes ", pids,
                                      " (not ours to signal; stop the "
                                      "cluster before the topology)"));
    }
    if (absl::Status s = Run(ip, {"netns", "delete", *it}); !s.ok()) {
      problems.emplace_back(s.message());
    }
  }
  if (bridge_created_) {
    if (absl::Status s = Run(ip, {"link", "delete", bridge_}); !s.ok()) {
      problems.emplace_back(s.message());
    }
  }
  // Check that nothing is left.
  absl::StatusOr<std::vector<std::string>> left = ListNamespaces();
  if (left.ok()) {
    for (const std::string& name : *left) {
      for (const std::string& mine : created_namespaces_) {
        if (name == mine) problems.push_back(absl::StrCat(name, " is left"));
      }
    }
  }
  if (bridge_created_ && Run(ip, {"link", "show", bridge_}).ok()) {
    problems.push_back(absl::StrCat("bridge ", bridge_, " is left"));
  }
  created_namespaces_.clear();
  bridge_created_ = false;
  if (!problems.empty()) {
    return absl::InternalError(absl::StrCat("removing topology ", index_, ": ",
                                            absl::StrJoin(problems, "; ")));
  }
  return absl::OkStatus();
}

std::string NetnsTopology::NamespaceOf(absl::string_view node) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i] == node) return namespaces_[i];
  }
  return "";
}

std::string NetnsTopology::AddressOf(absl::string_view node) const {
  if (node == kHarness) return absl::StrCat(prefix_, "254");
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i] == node) return absl::StrCat(prefix_, i + 1);
  }
  return "";
}

std::string NetnsTopology::subnet() const {
  return absl::StrCat(prefix_, "0/24");
}

std::string NetnsTopology::NamespacePath(absl::string_view node) const {
  if (node == kHarness) {
    HubState& hub = Hub();
    absl::MutexLock lock(&hub.mu);
    return hub.hub.empty() ? "" : absl::StrCat(kNetnsDir, "/", hub.hub);
  }
  const std::string ns = NamespaceOf(node);
  return ns.empty() ? "" : absl::StrCat(kNetnsDir, "/", ns);
}

absl::Status NetnsTopology::Partition(
    const std::vector<std::vector<std::string>>& groups) {
  std::vector<NodeCut> cuts;
  for (size_t i = 0; i < groups.size(); ++i) {
    for (size_t j = i + 1; j < groups.size(); ++j) {
      cuts.emplace_back(groups[i], groups[j]);
    }
  }
  return Cut(cuts);
}

absl::Status NetnsTopology::Cut(const std::vector<NodeCut>& cuts) {
  if (destroyed_) return absl::FailedPreconditionError("topology destroyed");
  std::set<std::pair<std::string, std::string>> pairs;
  std::vector<std::string> described;
  for (const auto& [first, second] : cuts) {
    for (const std::string& a : first) {
      for (const std::string& b : second) {
        const std::string from = AddressOf(a), to = AddressOf(b);
        if (from.empty() || to.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat("unknown node ", from.empty() ? a : b, " in a cut"));
        }
        if (from == to) {
          return absl::InvalidArgumentError(
              absl::StrCat(a, " cannot be cut from itself"));
        }
        pairs.emplace(from, to);
        pairs.emplace(to, from);
      }
    }
    if (!first.empty() && !second.empty()) {
      described.push_back(absl::StrCat(absl::StrJoin(first, ","), "|",
                                       absl::StrJoin(second, ",")));
    }
  }
  if (pairs.empty()) return Heal();
  std::vector<std::string> elements;
  for (const auto& [a, b] : pairs)
    elements.push_back(absl::StrCat(a, " . ", b));
  // Multi-line (one-line table definitions fail with nft 1.0.6); the empty
  // definition and the delete make the whole file replace any earlier
  // partition in one transaction. "fwd" is reserved, hence the chain names.
  std::string chains;
  for (const char* hook : {"forward", "input", "output"}) {
    absl::StrAppend(&chains, "  chain ", hook, "_filter {\n",
                    "    type filter hook ", hook,
                    " priority 0; policy accept;\n",
                    "    ip saddr . ip daddr @cut drop\n", "  }\n");
  }
  const std::string rules = absl::StrCat(
      "table bridge ", table_, " {\n}\n", "delete table bridge ", table_, "\n",
      "table bridge ", table_, " {\n", "  set cut {\n",
      "    type ipv4_addr . ipv4_addr\n", "    elements = { ",
      absl::StrJoin(elements, ", "), " }\n", "  }\n", chains, "}\n");
  if (absl::Status s = Run(NftBinary(), {"-f", "/dev/stdin"}, rules); !s.ok()) {
    return s;
  }
  rules_ = rules;
  pairs_.assign(pairs.begin(), pairs.end());
  description_ = absl::StrJoin(described, " ");
  return absl::OkStatus();
}

absl::Status NetnsTopology::Heal() {
  if (rules_.empty()) return absl::OkStatus();
  if (absl::Status s = Run(NftBinary(), {"delete", "table", "bridge", table_});
      !s.ok()) {
    return s;
  }
  rules_.clear();
  pairs_.clear();
  description_.clear();
  return absl::OkStatus();
}

absl::StatusOr<bool> NetnsTopology::CanConnect(absl::string_view from,
                                               absl::string_view to,
                                               absl::Duration timeout) const {
  const std::string from_path = NamespacePath(from);
  const std::string to_path = NamespacePath(to);
  const std::string address = AddressOf(to);
  if (from_path.empty() || to_path.empty() || address.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown node ", from_path.empty() ? from : to));
  }
  absl::StatusOr<bool> result = absl::InternalError("probe did not run");
  std::thread probe(
      [&] { result = ProbeConnect(from_path, to_path, address, timeout); });
  probe.join();
  return result;
}

}  // namespace fjord::testing
