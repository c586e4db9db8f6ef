// Network partitions for integration tests: one Linux network namespace per
// node, each joined by a veth pair to a bridge in a hub namespace, and nftables
// rules on that bridge that cut chosen pairs of nodes apart (see
// ../shared/notes/fault-injection-here.md for what works on these machines;
// `tc netem` does not).
//
// Where the harness lives. The test process itself runs in the hub: the first
// thing its main() does (while it is still single-threaded) is
// EnterHarnessHub(), which creates a namespace `fjord-t<pid>-hub` and moves
// the process into it with setns(2). Every later thread (gRPC's included),
// every command it runs (`ip`, `nft`, the fjord CLI) and every socket it opens
// live there. The hub has no route but the test subnets on its own bridges, so
// the test can reach the nodes it created and nothing else: a client left
// connecting after a topology is gone gets "network unreachable" from the
// kernel instead of sending packets to some other host, and the host's own
// routing table is never touched. (The alternative, a veth from the root
// namespace to the bridge, would add a route to the host and let a stray
// client reach the default gateway once that route is removed.) Link
// netns_main (`:netns_main`) instead of gtest_main to get this.
//
// A topology (NetnsTopology::Create) for nodes "controller-1", "broker-1", ...:
//
//   hub namespace fjord-t<pid>-hub (the test process)
//     bridge fjbr<k>, address 10.A.B.254/24       <- the harness ("harness")
//     ports fj<k>p<i>, the hub ends of the veths
//   namespace fjord-t<pid>-<k>-<node> per node
//     eth0 (the veth's other end), address 10.A.B.<i>/24, and lo
//
// where <k> counts topologies within the process and 10.A.B.0/24 is a subnet
// that no route of the host (the root namespace, read before entering the
// hub) overlaps. Everything is removed by the destructor (or Destroy), and by
// Create itself when it fails half-way; every command has a timeout. Node
// processes must be gone before the topology is destroyed (declare the
// Cluster after the topology, so it dies first).
//
// Partitions are an nftables table `table bridge fjord_<k>` in the hub with one
// set of (source, destination) address pairs to drop, hooked on the bridge's
// forward chain (node to node) and on its input and output chains (node to
// harness), written as a multi-line file and loaded with `nft -f` (atomically
// replacing the previous partition). Heal deletes the table. Each cut drops
// both directions (one direction alone breaks TCP both ways anyway, see the
// notes). Without a cut naming "harness", clients keep reaching every node.
//
// Not root, no `ip` or `nft`, or `ip netns` failing: EnterHarnessHub returns
// UNAVAILABLE with the reason and the tests GTEST_SKIP with it. The non-root
// alternative (a fault layer in the gRPC transport) is not built yet.
#ifndef FJORD_INTEGRATION_TESTS_NETNS_H_
#define FJORD_INTEGRATION_TESTS_NETNS_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "integration_tests/network_control.h"

namespace fjord::testing {

// The pseudo-node naming the test process (the harness, on the hub's bridge
// address) in cuts: Cut({{"broker-1"}, {kHarness}}) cuts clients from broker-1.
inline constexpr char kHarness[] = "harness";

// Creates the hub namespace and moves this process into it (see the file
// comment). Must be called while the process has a single thread, before
// anything starts one; idempotent once it succeeded. Also removes hub and node
// namespaces left by earlier test processes that died without cleaning up
// (named fjord-t<pid>-... for a PID that no longer exists and holding no
// process). UNAVAILABLE with a one-line reason when network namespaces cannot
// be used here.
absl::Status EnterHarnessHub();

// OK once EnterHarnessHub succeeded in this process; otherwise its error (or
// "EnterHarnessHub was not called"). Tests GTEST_SKIP with the message.
absl::Status HarnessHubStatus();

// Deletes the hub's name (the namespace itself ends with this process).
// Registered with atexit by EnterHarnessHub; safe to call twice.
void LeaveHarnessHub();

// The `ip` and `nft` binaries found in the usual system directories, or "".
std::string IpBinary();
std::string NftBinary();

class NetnsTopology : public NetworkControl {
 public:
  // Creates a namespace per node (names like "controller-1"; at most 200),
  // the bridge and the veths. Needs EnterHarnessHub first (FAILED_PRECONDITION
  // otherwise). On failure everything made so far is removed again.
  static absl::StatusOr<std::unique_ptr<NetnsTopology>> Create(
      const std::vector<std::string>& nodes,
      absl::Duration command_timeout = absl::Seconds(10));

  // Destroy(), errors printed to stderr.
  ~NetnsTopology();
  NetnsTopology(const NetnsTopology&) = delete;
  NetnsTopology& operator=(const NetnsTopology&) = delete;

  // Removes the partition table, every node namespace (with its veth) and the
  // bridge, then checks that none is left. Idempotent. Namespaces still
  // holding processes are reported (and removed; their processes are not
  // touched: they are the caller's).
  absl::Status Destroy();

  // The namespace of `node` ("" for an unknown node) and its IPv4 address
  // ("10.A.B.i"; the harness's is the bridge's .254).
  std::string NamespaceOf(absl::string_view node) const;
  std::string AddressOf(absl::string_view node) const;
  const std::vector<std::string>& nodes() const { return nodes_; }
  // "10.A.B.0/24".
  std::string subnet() const;

  // Splits the nodes into groups that cannot reach each other (each pair of
  // groups cut). Nodes in no group, and the harness unless named, keep
  // reaching everyone. Replaces any earlier partition.
  absl::Status Partition(const std::vector<std::vector<std::string>>& groups);
  // Applies exactly these cuts (a bridge partition is two cuts sharing
  // nobody with the bridge node; a leader cut from its followers is one).
  // Replaces any earlier partition; an empty list heals. INVALID_ARGUMENT for
  // an unknown node or a node cut from itself.
  absl::Status Cut(const std::vector<NodeCut>& cuts) override;
  // Removes every cut. OK when there was none.
  absl::Status Heal() override;
  // Whether any cut is in force.
  bool partitioned() const override { return !pairs_.empty(); }
  // "broker-1|broker-2,broker-3" style description of the cuts in force.
  std::string Describe() const { return description_; }
  // The nft file of the last partition applied ("" when healed).
  const std::string& rules() const { return rules_; }

  // Whether a TCP connection from `from` to `to` (node names or kHarness)
  // completes within `timeout`: a listener is opened in `to`'s namespace and
  // a connection attempted from `from`'s, by a short-lived thread that enters
  // both namespaces in turn (setns affects only the calling thread).
  absl::StatusOr<bool> CanConnect(
      absl::string_view from, absl::string_view to,
      absl::Duration timeout = absl::Milliseconds(500)) const;

 private:
  NetnsTopology() = default;
  absl::Status Run(const std::string& binary,
                   const std::vector<std::string>& args,
                   const std::string& stdin_text = "") const;
  absl::Status Build();
  // The namespace path for setns ("" for an unknown name).
  std::string NamespacePath(absl::string_view node) const;

  int index_ = 0;
  std::string prefix_;  // "10.A.B."
  std::string bridge_;
  std::string table_;
  absl::Duration timeout_;
  std::vector<std::string> nodes_;
  std::vector<std::string> namespaces_;  // parallel to nodes_
  // What exists now, for Destroy.
  std::vector<std::string> created_namespaces_;
  bool bridge_created_ = false;
  std::vector<std::pair<std::string, std::string>> pairs_;  // addresses cut
  std::string description_;
  std::string rules_;
  bool destroyed_ = false;
};

}  // namespace fjord::testing

#endif  // FJORD_INTEGRATION_TESTS_NETNS_H_
