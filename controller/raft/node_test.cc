// RaftNode end to end: real nodes over real gRPC on 127.0.0.1, each with its
// own RocksDB directory. Every wait is a bounded poll on a condition.
#include "controller/raft/node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "controller/raft/raft.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace fjord::raft {
namespace {

// The replicated state: every applied (index, data), in order.
class ListStateMachine : public StateMachine {
 public:
  void Apply(LogIndex index, Term term, absl::string_view data) override {
    absl::MutexLock lock(&mu_);
    entries_.emplace_back(index.value(), std::string(data));
  }
  std::string Snapshot() override {
    absl::MutexLock lock(&mu_);
    std::string out;
    for (const auto& [index, data] : entries_) {
      absl::StrAppend(&out, index, " ", data, "\n");
    }
    return out;
  }
  absl::Status Restore(absl::string_view image) override {
    std::vector<std::pair<uint64_t, std::string>> entries;
    for (absl::string_view line : absl::StrSplit(image, '\n')) {
      if (line.empty()) continue;
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(line, absl::MaxSplits(' ', 1));
      uint64_t index = 0;
      if (!absl::SimpleAtoi(kv.first, &index)) {
        return absl::DataLossError("bad snapshot line");
      }
      entries.emplace_back(index, std::string(kv.second));
    }
    absl::MutexLock lock(&mu_);
    entries_ = std::move(entries);
    ++restores_;
    return absl::OkStatus();
  }

  std::vector<std::pair<uint64_t, std::string>> entries() const {
    absl::MutexLock lock(&mu_);
    return entries_;
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return entries_.size();
  }
  int restores() const {
    absl::MutexLock lock(&mu_);
    return restores_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::pair<uint64_t, std::string>> entries_ ABSL_GUARDED_BY(mu_);
  int restores_ ABSL_GUARDED_BY(mu_) = 0;
};

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    return 0;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// Polls `cond` until it holds or `timeout` passes; returns whether it held.
bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!cond()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// Tests shorten the 100 ms default tick; FJORD_RAFT_TEST_TICK_MS=100 runs
// them at the production timing (to measure election and failover times).
const absl::Duration kTick = [] {
  const char* env = std::getenv("FJORD_RAFT_TEST_TICK_MS");
  int ms = 0;
  return absl::Milliseconds(
      env != nullptr && absl::SimpleAtoi(env, &ms) && ms > 0 ? ms : 50);
}();
constexpr absl::Duration kWait = absl::Seconds(20);

class RaftNodeTest : public ::testing::Test {
 protected:
  struct Member {
    RaftNodeOptions options;
    std::unique_ptr<ListStateMachine> sm;
    std::unique_ptr<RaftNode> node;
    std::unique_ptr<grpc::Server> server;
  };

  void TearDown() override {
    for (size_t i = 0; i < members_.size(); ++i) Kill(i + 1);
    std::filesystem::remove_all(root_);
  }

  // Sets up `n` voters (not started); `tweak` adjusts each one's options.
  void Configure(int n, std::function<void(RaftNodeOptions&)> tweak = nullptr) {
    root_ =
        std::filesystem::path(::testing::TempDir()) /
        absl::StrCat(
            "raft_node_",
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::vector<Voter> voters;
    for (int i = 1; i <= n; ++i) {
      const int port = FreePort();
      ASSERT_NE(port, 0);
      voters.push_back(Voter{NodeId(i), absl::StrCat("127.0.0.1:", port)});
    }
    members_.resize(n);
    for (int i = 1; i <= n; ++i) {
      RaftNodeOptions& o = members_[i - 1].options;
      o.id = NodeId(i);
      o.voters = voters;
      o.data_dir = (root_ / absl::StrCat("node", i)).string();
      o.tick_interval = kTick;
      o.seed = 1000 + i;
      if (tweak) tweak(o);
    }
  }

  Member& M(int id) { return members_[id - 1]; }
  RaftNode& N(int id) { return *M(id).node; }

  // Creates, serves and starts node `id` on its fixed port (a fresh state
  // machine each time, as a restarted process would have).
  void Launch(int id) {
    Member& m = M(id);
    m.sm = std::make_unique<ListStateMachine>();
    auto node = RaftNode::Create(m.options, m.sm.get());
    ASSERT_TRUE(node.ok()) << node.status();
    m.node = std::move(*node);
    grpc::ServerBuilder builder;
    builder.AddListeningPort(m.options.voters[id - 1].address,
                             grpc::InsecureServerCredentials());
    m.node->RegisterService(&builder);
    m.server = builder.BuildAndStart();
    ASSERT_NE(m.server, nullptr) << "cannot listen for node " << id;
    ASSERT_TRUE(m.node->Start().ok());
  }

  void LaunchAll() {
    for (size_t i = 1; i <= members_.size(); ++i) {
      Launch(i);
      if (HasFatalFailure()) return;
    }
  }

  // Stops node `id` (with or without leadership transfer) and forgets it.
  void Kill(int id, bool transfer = false) {
    Member& m = M(id);
    if (m.node == nullptr) return;
    m.node->Stop(transfer);
    m.server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    m.server.reset();
    m.node.reset();
  }

  bool Up(int id) { return M(id).node != nullptr; }

  // The leader every running node agrees on, or 0.
  int AgreedLeader() {
    NodeId leader = kNoNode;
    for (size_t i = 1; i <= members_.size(); ++i) {
      if (!Up(i)) continue;
      const NodeId l = N(i).LeaderId();
      if (l == kNoNode || (leader != kNoNode && l != leader)) return 0;
      leader = l;
    }
    if (leader == kNoNode || !Up(leader.value()) ||
        !N(leader.value()).IsLeader()) {
      return 0;
    }
    return static_cast<int>(leader.value());
  }

  int WaitForLeader() {
    int leader = 0;
    EXPECT_TRUE(WaitFor([&] { return (leader = AgreedLeader()) != 0; }, kWait))
        << "no leader elected within " << kWait;
    return leader;
  }

  // Proposes on `id` and expects success.
  LogIndex MustPropose(int id, const std::string& data) {
    absl::StatusOr<LogIndex> r =
        N(id).Propose(data, absl::Now() + absl::Seconds(10));
    EXPECT_TRUE(r.ok()) << "proposing " << data << " on " << id << ": "
                        << r.status();
    return r.ok() ? *r : LogIndex(0);
  }

  // Waits until every running node applied the same `count` entries.
  void ExpectAllApply(size_t count) {
    std::vector<int> up;
    for (size_t i = 1; i <= members_.size(); ++i) {
      if (Up(i)) up.push_back(i);
    }
    const bool same = WaitFor(
        [&] {
          for (int id : up) {
            if (M(id).sm->size() != count) return false;
          }
          return true;
        },
        kWait);
    ASSERT_TRUE(same) << "not every node applied " << count << " entries";
    const auto reference = M(up[0]).sm->entries();
    for (int id : up) {
      EXPECT_EQ(M(id).sm->entries(), reference) << "node " << id;
    }
  }

  std::filesystem::path root_;
  std::vector<Member> members_;
};

TEST_F(RaftNodeTest, SingleVoterElectsItselfAndCommits) {
  Configure(1);
  const absl::Time start = absl::Now();
  Launch(1);
  ASSERT_EQ(WaitForLeader(), 1);
  std::cerr << "single voter: leader after " << absl::Now() - start << "\n";
  for (int i = 0; i < 5; ++i) MustPropose(1, absl::StrCat("e", i));
  EXPECT_EQ(M(1).sm->size(), 5u);  // Applied before Propose returned.
  EXPECT_TRUE(N(1).ReadIndex(absl::Now() + absl::Seconds(5)).ok());
  // A restart re-applies the committed log.
  Kill(1);
  Launch(1);
  ASSERT_EQ(WaitForLeader(), 1);
  EXPECT_TRUE(WaitFor([&] { return M(1).sm->size() == 5; }, kWait));
  EXPECT_EQ(M(1).sm->entries().back().second, "e4");
}

TEST_F(RaftNodeTest, ThreeNodesElectCommitAndApplyInTheSameOrder) {
  Configure(3);
  const absl::Time start = absl::Now();
  LaunchAll();
  const int leader = WaitForLeader();
  ASSERT_NE(leader, 0);
  std::cerr << "3 voters: leader " << leader << " after " << absl::Now() - start
            << " (tick " << kTick << ")\n";

  // Sequential proposals: commit latency on loopback.
  std::vector<absl::Duration> latencies;
  LogIndex last;
  for (int i = 0; i < 100; ++i) {
    const absl::Time t0 = absl::Now();
    last = MustPropose(leader, absl::StrCat("seq", i));
    latencies.push_back(absl::Now() - t0);
  }
  std::sort(latencies.begin(), latencies.end());
  std::cerr << "commit+apply latency: p50=" << latencies[50]
            << " p99=" << latencies[98] << " max=" << latencies.back() << "\n";

  // Concurrent proposals: each gets its own index.
  std::vector<std::thread> threads;
  absl::Mutex mu;
  std::vector<uint64_t> indexes;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const LogIndex idx = MustPropose(leader, absl::StrCat("t", t, "-", i));
        absl::MutexLock lock(&mu);
        indexes.push_back(idx.value());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::sort(indexes.begin(), indexes.end());
  EXPECT_EQ(std::unique(indexes.begin(), indexes.end()), indexes.end());
  ExpectAllApply(200);

  // A follower refuses proposals and names the leader.
  const int follower = leader % 3 + 1;
  absl::StatusOr<LogIndex> r =
      N(follower).Propose("x", absl::Now() + absl::Seconds(5));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(LeaderHint(r.status()), NodeId(leader));

  // A follower's read barrier covers every acknowledged write.
  const LogIndex acked = MustPropose(leader, "last");
  ASSERT_TRUE(N(follower).ReadIndex(absl::Now() + absl::Seconds(5)).ok());
  EXPECT_GE(M(follower).sm->entries().back().first, acked.value());
  RaftNodeStatus s = N(leader).GetStatus();
  EXPECT_EQ(s.role, Role::kLeader);
  EXPECT_GE(s.applied, acked);
  EXPECT_GE(s.commit, acked);
  ASSERT_EQ(s.peers.size(), 2u);
  for (const RaftNodeStatus::Peer& p : s.peers) {
    EXPECT_TRUE(p.reachable);
    EXPECT_GT(p.sent, 0u);
  }
  (void)last;
}

TEST_F(RaftNodeTest,
       NewLeaderAfterLeaderDiesAndRestartedNodeCatchesUpBySnapshot) {
  Configure(3, [](RaftNodeOptions& o) {
    o.snapshot_interval = 20;
    o.snapshot_keep_entries = 2;
  });
  LaunchAll();
  const int old_leader = WaitForLeader();
  ASSERT_NE(old_leader, 0);
  for (int i = 0; i < 10; ++i) MustPropose(old_leader, absl::StrCat("a", i));
  ExpectAllApply(10);

  const Term old_term = N(old_leader).term();
  const absl::Time killed = absl::Now();
  Kill(old_leader);  // No transfer: like a crash.
  const int leader = WaitForLeader();
  ASSERT_NE(leader, 0);
  ASSERT_NE(leader, old_leader);
  EXPECT_GT(N(leader).term(), old_term);
  std::cerr << "failover: new leader " << leader << " after "
            << absl::Now() - killed << "\n";

  // The two survivors keep committing, well past the dead node's log.
  for (int i = 0; i < 60; ++i) MustPropose(leader, absl::StrCat("b", i));
  ExpectAllApply(70);
  EXPECT_GT(N(leader).GetStatus().first_index, LogIndex(12));

  Launch(old_leader);
  ASSERT_FALSE(HasFatalFailure());
  ExpectAllApply(70);
  EXPECT_GE(M(old_leader).sm->restores(), 1) << "caught up without snapshot";
  for (int i = 0; i < 5; ++i) MustPropose(leader, absl::StrCat("c", i));
  ExpectAllApply(75);
}

TEST_F(RaftNodeTest, CleanStopOfTheLeaderTransfersLeadership) {
  // Node 1 campaigns first; 2 and 3 would wait 10-20 s before campaigning,
  // so a leader among them within 5 s can only come from a transfer.
  Configure(3, [](RaftNodeOptions& o) {
    if (o.id != NodeId(1)) o.election_ticks = 200;
  });
  LaunchAll();
  ASSERT_EQ(WaitForLeader(), 1);
  MustPropose(1, "before");
  const absl::Time t0 = absl::Now();
  Kill(1, /*transfer=*/true);
  const absl::Duration stop_took = absl::Now() - t0;
  int leader = 0;
  ASSERT_TRUE(WaitFor([&] { return (leader = AgreedLeader()) != 0; },
                      absl::Seconds(5)));
  std::cerr << "clean stop with transfer took " << stop_took << "; leader "
            << leader << " after " << absl::Now() - t0 << "\n";
  MustPropose(leader, "after");
  ExpectAllApply(2);
}

TEST_F(RaftNodeTest, WritesFailWithoutQuorumAndRecover) {
  Configure(3);
  LaunchAll();
  const int leader = WaitForLeader();
  ASSERT_NE(leader, 0);
  MustPropose(leader, "one");
  const int f1 = leader % 3 + 1, f2 = f1 % 3 + 1;
  Kill(f1);
  Kill(f2);
  // Without a quorum a proposal cannot commit: it times out (outcome
  // unknown) or is refused once the leader steps down (check quorum).
  absl::StatusOr<LogIndex> r =
      N(leader).Propose("lost?", absl::Now() + absl::Milliseconds(300));
  EXPECT_TRUE(r.status().code() == absl::StatusCode::kDeadlineExceeded ||
              r.status().code() == absl::StatusCode::kUnavailable)
      << r.status();
  ASSERT_TRUE(WaitFor([&] { return !N(leader).IsLeader(); }, kWait));
  r = N(leader).Propose("refused", absl::Now() + absl::Seconds(5));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(N(leader).ReadIndex(absl::Now() + absl::Seconds(1)).code(),
            absl::StatusCode::kUnavailable);
  // One voter back: a quorum again.
  Launch(f1);
  const int new_leader = WaitForLeader();
  ASSERT_NE(new_leader, 0);
  MustPropose(new_leader, "two");
  EXPECT_TRUE(WaitFor(
      [&] { return M(f1).sm->size() >= 2 && M(leader).sm->size() >= 2; },
      kWait));
}

TEST_F(RaftNodeTest, RejectsBadOptionsAndCallsWhenNotRunning) {
  Configure(3);
  ListStateMachine sm;
  RaftNodeOptions o = M(1).options;
  o.id = NodeId(9);
  EXPECT_EQ(RaftNode::Create(o, &sm).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = M(1).options;
  o.heartbeat_ticks = o.election_ticks;
  EXPECT_EQ(RaftNode::Create(o, &sm).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto node = RaftNode::Create(M(1).options, &sm);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(
      (*node)->Propose("x", absl::Now() + absl::Seconds(1)).status().code(),
      absl::StatusCode::kUnavailable);
  ASSERT_TRUE((*node)->Start().ok());
  EXPECT_EQ((*node)->Start().code(), absl::StatusCode::kFailedPrecondition);
  (*node)->Stop();
  (*node)->Stop();  // Idempotent.
  EXPECT_EQ((*node)->ReadIndex(absl::Now() + absl::Seconds(1)).code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace fjord::raft
