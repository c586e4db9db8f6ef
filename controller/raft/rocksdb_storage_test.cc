#include "controller/raft/rocksdb_storage.h"

#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controller/raft/memory_storage.h"
#include "controller/raft/prng.h"
#include "controller/raft/raft.h"
#include "gtest/gtest.h"

namespace fjord::raft {
namespace {

Entry E(uint64_t index, uint64_t term, std::string data = "d") {
  return Entry{Term(term), LogIndex(index), EntryType::kNormal,
               std::move(data)};
}

class RocksDbRaftStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat(
               "raft_storage_",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Reopen();
  }
  void TearDown() override {
    s_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    s_.reset();
    auto opened = RocksDbRaftStorage::Open(dir_.string());
    ASSERT_TRUE(opened.ok()) << opened.status();
    s_ = std::move(*opened);
  }

  std::filesystem::path dir_;
  std::unique_ptr<RocksDbRaftStorage> s_;
};

TEST_F(RocksDbRaftStorageTest, FreshStorageIsEmpty) {
  EXPECT_EQ(s_->GetInitialState()->hard_state, HardState{});
  EXPECT_EQ(s_->FirstIndex(), LogIndex(1));
  EXPECT_EQ(s_->LastIndex(), LogIndex(0));
  EXPECT_EQ(s_->TermAt(LogIndex(0)).value(), Term(0));
  EXPECT_TRUE(s_->GetSnapshot()->empty());
  EXPECT_TRUE(s_->Entries(LogIndex(1), LogIndex(1), 100)->empty());
  EXPECT_TRUE(IsUnavailableEntry(s_->TermAt(LogIndex(1)).status()));
}

TEST_F(RocksDbRaftStorageTest, RoundTripSurvivesReopen) {
  Entry noop{Term(2), LogIndex(3), EntryType::kNoOp, ""};
  std::string binary("a\0b\xff", 4);
  ASSERT_TRUE(s_->SaveReady(HardState{Term(2), NodeId(3), LogIndex(2)},
                            {E(1, 1, "x"), E(2, 1, binary), noop}, std::nullopt)
                  .ok());
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(s_->GetInitialState()->hard_state,
              (HardState{Term(2), NodeId(3), LogIndex(2)}));
    EXPECT_EQ(s_->LastIndex(), LogIndex(3));
    auto all = s_->Entries(LogIndex(1), LogIndex(4), 1 << 20);
    ASSERT_TRUE(all.ok()) << all.status();
    EXPECT_EQ(*all, (std::vector<Entry>{E(1, 1, "x"), E(2, 1, binary), noop}));
    EXPECT_EQ(s_->TermAt(LogIndex(3)).value(), Term(2));
    Reopen();
  }
}

TEST_F(RocksDbRaftStorageTest, EntriesHonoursMaxBytesAndBounds) {
  ASSERT_TRUE(
      s_->Append({E(1, 1, "aaaa"), E(2, 1, "bbbb"), E(3, 1, "cc")}).ok());
  EXPECT_EQ(s_->Entries(LogIndex(1), LogIndex(4), 0)->size(), 1u);
  EXPECT_EQ(s_->Entries(LogIndex(1), LogIndex(4), 8)->size(), 2u);
  EXPECT_EQ(s_->Entries(LogIndex(2), LogIndex(4), 100)->size(), 2u);
  EXPECT_TRUE(
      IsUnavailableEntry(s_->Entries(LogIndex(1), LogIndex(5), 100).status()));
}

TEST_F(RocksDbRaftStorageTest, AppendTruncatesConflictingSuffix) {
  ASSERT_TRUE(s_->Append({E(1, 1), E(2, 1), E(3, 1), E(4, 1)}).ok());
  ASSERT_TRUE(s_->Append({E(2, 2, "new")}).ok());
  EXPECT_EQ(s_->LastIndex(), LogIndex(2));
  Reopen();
  EXPECT_EQ(s_->LastIndex(), LogIndex(2));
  EXPECT_EQ(s_->TermAt(LogIndex(2)).value(), Term(2));
  EXPECT_EQ(s_->Entries(LogIndex(2), LogIndex(3), 100)->front().data, "new");
  EXPECT_EQ(s_->Append({E(5, 2)}).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s_->Append({E(3, 2), E(5, 2)}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s_->LastIndex(), LogIndex(2));  // Failed appends change nothing.
}

TEST_F(RocksDbRaftStorageTest, SnapshotAndCompactSurviveReopen) {
  ASSERT_TRUE(s_->Append({E(1, 1), E(2, 1), E(3, 2), E(4, 2)}).ok());
  EXPECT_FALSE(s_->Compact(LogIndex(2)).ok());  // No snapshot covers it.
  ASSERT_TRUE(
      s_->CreateSnapshot(LogIndex(3), {NodeId(1), NodeId(2)}, "state").ok());
  EXPECT_TRUE(IsCompacted(
      s_->CreateSnapshot(LogIndex(2), {NodeId(1)}, "older").status()));
  ASSERT_TRUE(s_->Compact(LogIndex(2)).ok());
  Reopen();
  EXPECT_EQ(s_->FirstIndex(), LogIndex(3));
  EXPECT_EQ(s_->TermAt(LogIndex(2)).value(), Term(1));
  EXPECT_TRUE(IsCompacted(s_->TermAt(LogIndex(1)).status()));
  EXPECT_TRUE(IsCompacted(s_->Entries(LogIndex(2), LogIndex(4), 9).status()));
  Snapshot snap = *s_->GetSnapshot();
  EXPECT_EQ(snap.metadata.index, LogIndex(3));
  EXPECT_EQ(snap.metadata.term, Term(2));
  EXPECT_EQ(snap.metadata.voters, (std::vector<NodeId>{NodeId(1), NodeId(2)}));
  EXPECT_EQ(snap.data, "state");
  ASSERT_TRUE(s_->Compact(LogIndex(3)).ok());
  EXPECT_TRUE(IsCompacted(s_->Compact(LogIndex(3))));
  EXPECT_EQ(s_->Compact(LogIndex(4)).code(),
            absl::StatusCode::kInvalidArgument);  // Past the snapshot.
  Reopen();
  EXPECT_EQ(s_->FirstIndex(), LogIndex(4));
  EXPECT_EQ(s_->LastIndex(), LogIndex(4));
  EXPECT_EQ(s_->TermAt(LogIndex(3)).value(), Term(2));
}

TEST_F(RocksDbRaftStorageTest, InstallSnapshotReplacesLogAtomically) {
  ASSERT_TRUE(s_->Append({E(1, 1), E(2, 1), E(3, 1)}).ok());
  Snapshot snap;
  snap.metadata = SnapshotMetadata{LogIndex(10), Term(3), {NodeId(1)}};
  snap.data = "image";
  // One Ready: snapshot, entries after it, and the hard state.
  ASSERT_TRUE(
      s_->SaveReady(HardState{Term(4), kNoNode, LogIndex(10)}, {E(11, 4)}, snap)
          .ok());
  Reopen();
  EXPECT_EQ(s_->FirstIndex(), LogIndex(11));
  EXPECT_EQ(s_->LastIndex(), LogIndex(11));
  EXPECT_EQ(s_->TermAt(LogIndex(10)).value(), Term(3));
  EXPECT_EQ(*s_->GetSnapshot(), snap);
  EXPECT_EQ(s_->hard_state().commit, LogIndex(10));
  snap.metadata.index = LogIndex(5);
  EXPECT_TRUE(IsCompacted(s_->ApplySnapshot(snap)));
  EXPECT_EQ(s_->LastIndex(), LogIndex(11));
}

// Differential test: random writes on RocksDbRaftStorage and MemoryStorage
// (the reference) must be observably identical, across reopens.
TEST_F(RocksDbRaftStorageTest, MatchesMemoryStorageUnderRandomOperations) {
  MemoryStorage ref;
  Prng rng(7);
  uint64_t term = 1;
  for (int step = 0; step < 600; ++step) {
    const uint64_t r = rng.Uniform(100);
    if (r < 50) {
      // Append or overwrite a suffix, sometimes from below the first index.
      const uint64_t last = ref.LastIndex().value();
      const uint64_t back = rng.Uniform(4);
      uint64_t from = last + 1 > back ? last + 1 - back : 1;
      if (rng.OneIn(8)) ++term;
      std::vector<Entry> ents;
      const uint64_t n = 1 + rng.Uniform(5);
      for (uint64_t i = 0; i < n; ++i) {
        ents.push_back(E(from + i, term, absl::StrCat("s", step, "i", i)));
      }
      ASSERT_EQ(ref.Append(ents).ok(), s_->Append(ents).ok());
    } else if (r < 65) {
      const uint64_t last = ref.LastIndex().value();
      const uint64_t snap = ref.GetSnapshot()->metadata.index.value();
      if (last > snap) {
        LogIndex at(snap + 1 + rng.Uniform(last - snap));
        auto a = ref.CreateSnapshot(at, {NodeId(1)}, absl::StrCat("d", step));
        auto b = s_->CreateSnapshot(at, {NodeId(1)}, absl::StrCat("d", step));
        ASSERT_EQ(a.ok(), b.ok()) << a.status() << b.status();
        if (a.ok()) {
          ASSERT_EQ(*a, *b);
        }
      }
    } else if (r < 80) {
      const uint64_t snap = ref.GetSnapshot()->metadata.index.value();
      LogIndex at(rng.Uniform(snap + 2));
      ASSERT_EQ(ref.Compact(at).code(), s_->Compact(at).code());
    } else if (r < 85) {
      Snapshot snap;
      snap.metadata = SnapshotMetadata{
          ref.LastIndex() + rng.Uniform(5), Term(++term), {NodeId(1)}};
      snap.data = absl::StrCat("installed", step);
      ASSERT_EQ(ref.ApplySnapshot(snap).ok(), s_->ApplySnapshot(snap).ok());
    } else if (r < 95) {
      HardState hs{Term(term), NodeId(rng.Uniform(3)),
                   LogIndex(rng.Uniform(ref.LastIndex().value() + 1))};
      ref.SetHardState(hs);
      ASSERT_TRUE(s_->SetHardState(hs).ok());
    } else {
      Reopen();
    }
    ASSERT_EQ(ref.FirstIndex(), s_->FirstIndex()) << "step " << step;
    ASSERT_EQ(ref.LastIndex(), s_->LastIndex()) << "step " << step;
    ASSERT_EQ(ref.hard_state(), s_->hard_state());
    ASSERT_EQ(*ref.GetSnapshot(), *s_->GetSnapshot());
    for (LogIndex i = ref.FirstIndex() - 1; i <= ref.LastIndex(); ++i) {
      ASSERT_EQ(ref.TermAt(i).value(), s_->TermAt(i).value());
    }
    auto a = ref.Entries(ref.FirstIndex(), ref.LastIndex() + 1, 1 << 20);
    auto b = s_->Entries(s_->FirstIndex(), s_->LastIndex() + 1, 1 << 20);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(*a, *b) << "step " << step;
  }
}

// A small cluster of Raft cores over RocksDbRaftStorage, driven in etcd's
// order, with random crashes (the Raft object and the RocksDB handle are
// dropped; the node restarts from its directory alone), compaction and
// snapshot catch-up. Checks that every node applies the same entries at the
// same indexes and that an acknowledged entry is never lost.
TEST_F(RocksDbRaftStorageTest, SimulatedClusterSurvivesCrashRestarts) {
  constexpr int kNodes = 3;
  std::vector<NodeId> voters = {NodeId(1), NodeId(2), NodeId(3)};
  struct Node {
    std::filesystem::path dir;
    std::unique_ptr<RocksDbRaftStorage> disk;
    std::unique_ptr<Raft> raft;
    std::vector<std::string> applied;  // applied[i-1] = data at index i.
  };
  std::vector<Node> nodes(kNodes);
  Prng rng(11);
  // The state machine is the list of applied data; a snapshot encodes it.
  auto encode = [](const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& s : v) absl::StrAppend(&out, s, "\n");
    return out;
  };
  auto decode = [](const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n') {
        out.push_back(s.substr(start, i - start));
        start = i + 1;
      }
    }
    return out;
  };
  auto restart = [&](int k) {
    Node& n = nodes[k];
    n.raft.reset();
    n.disk.reset();
    auto opened = RocksDbRaftStorage::Open(n.dir.string());
    ASSERT_TRUE(opened.ok()) << opened.status();
    n.disk = std::move(*opened);
    n.applied = decode(n.disk->GetSnapshot()->data);
    Config c;
    c.id = NodeId(k + 1);
    c.voters = voters;
    c.election_tick = 10;
    c.heartbeat_tick = 2;
    c.storage = n.disk.get();
    c.seed = rng.Next();
    c.applied = n.disk->GetSnapshot()->metadata.index;
    auto r = Raft::Create(c);
    ASSERT_TRUE(r.ok()) << r.status();
    n.raft = std::move(*r);
  };
  for (int k = 0; k < kNodes; ++k) {
    nodes[k].dir = dir_ / absl::StrCat("node", k + 1);
    std::filesystem::create_directories(nodes[k].dir);
    restart(k);
    if (HasFatalFailure()) return;
  }

  std::deque<Message> network;
  std::map<uint64_t, std::string> acked;  // index -> data, from the leader.
  std::map<std::pair<int, uint64_t>, std::string> proposed;
  int crashes = 0, snapshots_sent = 0;
  int isolated = -1;  // Index of the node cut off from the others, or -1.
  for (int step = 0; step < 4000; ++step) {
    const uint64_t r = rng.Uniform(100);
    if (r < 10) {
      for (Node& n : nodes) n.raft->Tick();
    } else if (r < 20) {
      for (int k = 0; k < kNodes; ++k) {
        if (nodes[k].raft->role() != Role::kLeader) continue;
        const std::string data = absl::StrCat("n", k + 1, "v", step);
        auto id = nodes[k].raft->Propose(data);
        if (id.ok()) proposed[{k, id->index.value()}] = data;
      }
    } else if (r < 22) {
      const int k = static_cast<int>(rng.Uniform(kNodes));
      Node& n = nodes[k];
      const LogIndex applied(n.applied.size());
      if (applied > n.disk->SnapshotIndex() + 5) {
        ASSERT_TRUE(
            n.disk->CreateSnapshot(applied, voters, encode(n.applied)).ok());
        ASSERT_TRUE(n.disk->Compact(applied).ok());
      }
    } else if (r < 24) {
      // Cut a random node off (or heal) so that it falls behind a compacted
      // log and must catch up by snapshot.
      isolated = rng.OneIn(2) ? -1 : static_cast<int>(rng.Uniform(kNodes));
    } else if (r < 25) {
      ++crashes;
      restart(static_cast<int>(rng.Uniform(kNodes)));
      if (HasFatalFailure()) return;
    } else {
      // Deliver up to a few messages (lost when the receiver just crashed
      // is modelled by the network not caring: Raft retransmits).
      for (int i = 0; i < 4 && !network.empty(); ++i) {
        Message m = std::move(network.front());
        network.pop_front();
        if (isolated + 1 == static_cast<int>(m.to.value()) ||
            isolated + 1 == static_cast<int>(m.from.value())) {
          continue;
        }
        if (m.type == MessageType::kSnapshot) ++snapshots_sent;
        (void)nodes[m.to.value() - 1].raft->Step(m);
      }
    }
    // Every node runs its Ready loop: persist, send, apply, Advance.
    for (int k = 0; k < kNodes; ++k) {
      Node& n = nodes[k];
      while (n.raft->HasReady()) {
        raft::Ready rd = n.raft->Ready();
        ASSERT_TRUE(
            n.disk->SaveReady(rd.hard_state, rd.entries, rd.snapshot).ok());
        for (Message& m : rd.messages) network.push_back(std::move(m));
        if (rd.snapshot.has_value()) n.applied = decode(rd.snapshot->data);
        for (const Entry& e : rd.committed_entries) {
          ASSERT_EQ(e.index.value(), n.applied.size() + 1);
          n.applied.push_back(e.type == EntryType::kNormal ? e.data : "");
          auto p = proposed.find({k, e.index.value()});
          if (p != proposed.end() && p->second == e.data) {
            acked[e.index.value()] = e.data;
          }
        }
        n.raft->Advance();
      }
    }
    // State machine safety across nodes, and no acknowledged entry lost.
    for (int a = 0; a < kNodes; ++a) {
      for (const auto& [index, data] : acked) {
        if (index <= nodes[a].applied.size()) {
          ASSERT_EQ(nodes[a].applied[index - 1], data)
              << "node " << a + 1 << " index " << index << " step " << step;
        }
      }
      for (int b = a + 1; b < kNodes; ++b) {
        const size_t n =
            std::min(nodes[a].applied.size(), nodes[b].applied.size());
        for (size_t i = 0; i < n; ++i) {
          ASSERT_EQ(nodes[a].applied[i], nodes[b].applied[i])
              << "index " << i + 1 << " step " << step;
        }
      }
    }
  }
  EXPECT_GT(acked.size(), 50u);
  EXPECT_GT(crashes, 10);
  EXPECT_GT(snapshots_sent, 0);
  std::cerr << "acked=" << acked.size() << " crashes=" << crashes
            << " snapshots_sent=" << snapshots_sent << "\n";
}

}  // namespace
}  // namespace fjord::raft
