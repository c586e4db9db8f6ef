// The network-namespace topology (netns.h) and the Cluster started inside it.
// Needs root, `ip` and `nft`; skips with the reason otherwise.
#include "integration_tests/netns.h"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "integration_tests/cluster.h"
#include "integration_tests/process.h"

namespace fjord::testing {
namespace {

#define SKIP_WITHOUT_NETNS()                                               \
  do {                                                                     \
    if (absl::Status hub = HarnessHubStatus(); !hub.ok()) {                \
      GTEST_SKIP() << "network namespaces unavailable: " << hub.message(); \
    }                                                                      \
  } while (false)

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || workspace == nullptr) return path;
  return absl::StrCat(srcdir, "/", workspace, "/", path);
}

std::vector<std::string> NamespaceNames() {
  absl::StatusOr<CommandResult> r =
      RunCommand(IpBinary(), {"netns", "list"}, "", absl::Seconds(10));
  std::vector<std::string> names;
  if (!r.ok()) return names;
  for (absl::string_view line :
       absl::StrSplit(r->out, '\n', absl::SkipEmpty())) {
    names.emplace_back(line.substr(0, line.find(' ')));
  }
  return names;
}

bool Reach(const NetnsTopology& t, const std::string& from,
           const std::string& to) {
  absl::StatusOr<bool> r = t.CanConnect(from, to);
  EXPECT_TRUE(r.ok()) << from << "->" << to << ": " << r.status();
  return r.ok() && *r;
}

TEST(NetnsTopologyTest, PartitionsAreExactAndEverythingIsRemoved) {
  SKIP_WITHOUT_NETNS();
  std::vector<std::string> created;
  {
    absl::StatusOr<std::unique_ptr<NetnsTopology>> t =
        NetnsTopology::Create({"a", "b", "c", "d"});
    ASSERT_TRUE(t.ok()) << t.status();
    NetnsTopology& topo = **t;
    for (const std::string& n : topo.nodes()) {
      created.push_back(topo.NamespaceOf(n));
      EXPECT_TRUE(absl::StartsWith(topo.AddressOf(n), "10."));
    }
    EXPECT_TRUE(absl::EndsWith(topo.subnet(), ".0/24")) << topo.subnet();
    const std::vector<std::string> all = {"a", "b", "c", "d", kHarness};
    for (const std::string& x : all) {
      for (const std::string& y : all) {
        if (x != y) {
          EXPECT_TRUE(Reach(topo, x, y)) << x << "->" << y;
        }
      }
    }

    // One node against the rest; the harness still reaches everyone.
    ASSERT_TRUE(topo.Partition({{"a"}, {"b", "c", "d"}}).ok());
    EXPECT_FALSE(Reach(topo, "a", "b"));
    EXPECT_FALSE(Reach(topo, "d", "a"));
    EXPECT_TRUE(Reach(topo, "b", "c"));
    EXPECT_TRUE(Reach(topo, kHarness, "a"));
    EXPECT_TRUE(Reach(topo, "a", kHarness));
    EXPECT_EQ(topo.Describe(), "a|b,c,d");

    // A bridge: b sees both sides, a and c do not see each other; the new
    // partition replaces the old one (a reaches d again).
    ASSERT_TRUE(topo.Cut({{{"a"}, {"c"}}}).ok());
    EXPECT_FALSE(Reach(topo, "a", "c"));
    EXPECT_TRUE(Reach(topo, "a", "b"));
    EXPECT_TRUE(Reach(topo, "b", "c"));
    EXPECT_TRUE(Reach(topo, "a", "d"));

    // Clients can be cut too.
    ASSERT_TRUE(topo.Cut({{{"d"}, {kHarness}}}).ok());
    EXPECT_FALSE(Reach(topo, kHarness, "d"));
    EXPECT_TRUE(Reach(topo, kHarness, "c"));
    EXPECT_TRUE(Reach(topo, "a", "d"));

    ASSERT_TRUE(topo.Heal().ok());
    EXPECT_FALSE(topo.partitioned());
    EXPECT_TRUE(Reach(topo, kHarness, "d"));
    EXPECT_TRUE(Reach(topo, "a", "c"));
    EXPECT_TRUE(topo.Heal().ok());  // nothing to heal

    EXPECT_EQ(topo.Cut({{{"a"}, {"zz"}}}).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(topo.Cut({{{"a"}, {"a"}}}).code(),
              absl::StatusCode::kInvalidArgument);
    // A partition left in force is removed with the topology.
    ASSERT_TRUE(topo.Partition({{"a", "b"}, {"c", "d"}}).ok());
    for (const std::string& ns : created) {
      bool found = false;
      for (const std::string& n : NamespaceNames()) found |= n == ns;
      EXPECT_TRUE(found) << ns;
    }
  }
  for (const std::string& n : NamespaceNames()) {
    for (const std::string& ns : created) EXPECT_NE(n, ns) << "left behind";
  }
}

TEST(NetnsTopologyTest, BadNamesCreateNothing) {
  SKIP_WITHOUT_NETNS();
  const std::vector<std::string> before = NamespaceNames();
  EXPECT_EQ(NetnsTopology::Create({"a", "a"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NetnsTopology::Create({"Bad Name"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NetnsTopology::Create({kHarness}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NetnsTopology::Create({}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NamespaceNames(), before);
}

// A 1-controller, 2-broker cluster with every node in its own namespace: the
// recorded PID is the server itself (no `ip` wrapper), inside its namespace,
// on its namespace's address; kill and restart work; a broker cut from the
// controller only is still reachable by clients and by the other broker, and
// serves again after the heal.
TEST(NetnsClusterTest, NodesRunInTheirNamespacesWithTheirOwnPids) {
  SKIP_WITHOUT_NETNS();
  const std::vector<std::string> names = {"controller-1", "broker-1",
                                          "broker-2"};
  absl::StatusOr<std::unique_ptr<NetnsTopology>> topo =
      NetnsTopology::Create(names);
  ASSERT_TRUE(topo.ok()) << topo.status();
  ClusterOptions o;
  o.base_dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/netns-cluster");
  std::filesystem::remove_all(o.base_dir);
  o.controllers = 1;
  o.brokers = 2;
  o.broker_binary = Runfile("broker/fjord-broker");
  o.controller_binary = Runfile("controller/fjord-controller");
  o.cli_binary = Runfile("client/fjord");
  o.controller_args = {"--session-timeout-ms=3000"};
  o.create_topics = "t:2:2";
  o.start_timeout = absl::Seconds(30);
  for (const std::string& n : names) {
    o.node_networks[n] =
        NodeNetwork{(*topo)->NamespaceOf(n), (*topo)->AddressOf(n),
                    absl::StartsWith(n, "broker") ? 9092 : 9093};
  }
  absl::StatusOr<std::unique_ptr<Cluster>> up = Cluster::Up(o);
  ASSERT_TRUE(up.ok()) << up.status();
  Cluster& cluster = **up;
  for (const NodeInfo& info : cluster.nodes()) {
    EXPECT_EQ(info.address(),
              absl::StrCat((*topo)->AddressOf(info.name), ":", info.port));
    const std::string cmdline =
        ReadFileOrEmpty(absl::StrCat("/proc/", info.pid, "/cmdline"));
    EXPECT_EQ(cmdline.substr(0, cmdline.find('\0')), info.binary)
        << info.name << " pid " << info.pid << " is not the server";
    EXPECT_EQ(
        std::filesystem::read_symlink(absl::StrCat("/proc/", info.pid, "/exe"))
            .filename(),
        std::filesystem::path(info.binary).filename());
    const std::string ns_of_pid = std::filesystem::read_symlink(
        absl::StrCat("/proc/", info.pid, "/ns/net"));
    const std::string ns_of_self =
        std::filesystem::read_symlink("/proc/self/ns/net");
    EXPECT_NE(ns_of_pid, ns_of_self) << info.name;
  }
  const std::string state = ReadFileOrEmpty(cluster.state_path());
  EXPECT_TRUE(absl::StrContains(state, "netns=")) << state;
  EXPECT_TRUE(
      absl::StrContains(ReadFileOrEmpty(cluster.bootstrap_path()),
                        absl::StrCat((*topo)->AddressOf("broker-1"), ":9092")));

  EXPECT_TRUE(cluster.Kill("broker-2").ok());
  EXPECT_TRUE(cluster.Restart("broker-2").ok());
  EXPECT_EQ(cluster.State("broker-2"), NodeState::kRunning);

  // broker-1 cut from the controller only: the harness still reaches it, it
  // stays up, and it is SERVING again after the heal.
  ASSERT_TRUE((*topo)->Cut({{{"broker-1"}, {"controller-1"}}}).ok());
  EXPECT_FALSE(*(*topo)->CanConnect("broker-1", "controller-1"));
  EXPECT_TRUE(*(*topo)->CanConnect(kHarness, "broker-1"));
  EXPECT_TRUE(*(*topo)->CanConnect("broker-1", "broker-2"));
  ASSERT_TRUE((*topo)->Heal().ok());
  EXPECT_TRUE(cluster.WaitServing("broker-1", absl::Seconds(30)).ok());

  if (HasFailure()) std::cerr << cluster.DescribeForDebugging() << "\n";
  EXPECT_TRUE(cluster.Down().ok());
  up->reset();  // the nodes are gone before their namespaces
  EXPECT_TRUE((*topo)->Destroy().ok());
}

}  // namespace
}  // namespace fjord::testing
