// "Paper tests": each checks one statement of the Raft paper (Ongaro &
// Ousterhout, "In Search of an Understandable Consensus Algorithm", extended
// version), named after the section and quoting the sentence it checks.
#include <algorithm>

#include "controller/raft/memory_storage.h"
#include "controller/raft/raft.h"
#include "controller/raft/test_cluster.h"
#include "controller/raft/types.h"
#include "gtest/gtest.h"

namespace fjord::raft {
namespace {

using testing::Cluster;
using testing::Drain;
using testing::Ids;
using testing::TestConfig;
using testing::TestNode;

TestNode NewNode(uint64_t id, std::vector<NodeId> voters,
                 void (*setup)(MemoryStorage&) = nullptr,
                 bool pre_vote = false) {
  TestNode n;
  n.storage = std::make_unique<MemoryStorage>();
  if (setup) setup(*n.storage);
  Config c = TestConfig(NodeId(id), std::move(voters), n.storage.get());
  c.pre_vote = pre_vote;
  n.raft = std::move(Raft::Create(c).value());
  return n;
}

Message Msg(MessageType t, uint64_t from, uint64_t to, uint64_t term) {
  Message m;
  m.type = t;
  m.from = NodeId(from);
  m.to = NodeId(to);
  m.term = Term(term);
  return m;
}

Entry E(uint64_t index, uint64_t term, std::string data = "x") {
  return Entry{Term(term), LogIndex(index), EntryType::kNormal,
               std::move(data)};
}

std::vector<Message> OfType(const std::vector<Message>& ms, MessageType t) {
  std::vector<Message> out;
  for (const Message& m : ms) {
    if (m.type == t) out.push_back(m);
  }
  return out;
}

void TickUntilCampaign(Raft& r) {
  for (int i = 0; i < 100 && r.role() == Role::kFollower; ++i) r.Tick();
}

// §5.1 "If one server's current term is smaller than the other's, then it
// updates its current term to the larger value. If a candidate or leader
// discovers that its term is out of date, it immediately reverts to follower
// state."
TEST(PaperTest, S5_1_ServerUpdatesTermFromLargerTermAndReverts) {
  for (Role start : {Role::kFollower, Role::kCandidate, Role::kLeader}) {
    Cluster c(3, [](Config& cfg) { cfg.pre_vote = false; });
    if (start == Role::kLeader) c.Elect(1);
    if (start == Role::kCandidate) {
      c.Isolate(1);
      c.Elect(1);
    }
    ASSERT_EQ(c.raft(1).role(), start);
    const Term higher = c.raft(1).term() + 5;
    Message m = Msg(MessageType::kAppend, 2, 1, higher.value());
    ASSERT_TRUE(c.raft(1).Step(m).ok());
    EXPECT_EQ(c.raft(1).term(), higher);
    EXPECT_EQ(c.raft(1).role(), Role::kFollower);
    EXPECT_EQ(c.raft(1).leader(), NodeId(2));
  }
}

// §5.1 "If a server receives a request with a stale term number, it rejects
// the request."
TEST(PaperTest, S5_1_RejectsRequestWithStaleTerm) {
  TestNode n = NewNode(1, Ids({1, 2, 3}));
  ASSERT_TRUE(n.raft->Step(Msg(MessageType::kAppend, 2, 1, 5)).ok());
  Drain(n);
  Message stale = Msg(MessageType::kAppend, 3, 1, 4);
  stale.entries = {E(1, 4)};
  ASSERT_TRUE(n.raft->Step(stale).ok());
  std::vector<Message> out = Drain(n);
  EXPECT_EQ(n.raft->log().LastIndex(), LogIndex(0));
  ASSERT_EQ(out.size(), 1u);  // Tells the stale leader the newer term.
  EXPECT_EQ(out[0].term, Term(5));
  EXPECT_TRUE(out[0].reject);
}

// §5.2 "When servers start up, they begin as followers."
TEST(PaperTest, S5_2_ServersStartAsFollowers) {
  TestNode n = NewNode(1, Ids({1, 2, 3}));
  EXPECT_EQ(n.raft->role(), Role::kFollower);
  EXPECT_EQ(n.raft->term(), Term(0));
}

// §5.2 "Leaders send periodic heartbeats (AppendEntries RPCs that carry no
// log entries) to all followers in order to maintain their authority."
TEST(PaperTest, S5_2_LeaderSendsPeriodicHeartbeats) {
  Cluster c(3);
  c.Elect(1);
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  Drain(c.node(1));
  c.raft(1).Tick();  // heartbeat_tick = 1.
  std::vector<Message> hb = OfType(Drain(c.node(1)), MessageType::kHeartbeat);
  ASSERT_EQ(hb.size(), 2u);
  for (const Message& m : hb) EXPECT_TRUE(m.entries.empty());
}

// §5.2 "If a follower receives no communication over a period of time called
// the election timeout, then it assumes there is no viable leader and begins
// an election to choose a new leader. To begin an election, a follower
// increments its current term and transitions to candidate state. It then
// votes for itself and issues RequestVote RPCs in parallel to each of the
// other servers."
TEST(PaperTest, S5_2_FollowerStartsElectionAfterTimeout) {
  TestNode n = NewNode(1, Ids({1, 2, 3}));
  const int timeout = n.raft->randomized_election_timeout();
  for (int i = 0; i < timeout - 1; ++i) n.raft->Tick();
  EXPECT_EQ(n.raft->role(), Role::kFollower);
  n.raft->Tick();
  EXPECT_EQ(n.raft->role(), Role::kCandidate);
  EXPECT_EQ(n.raft->term(), Term(1));
  EXPECT_EQ(n.raft->vote(), NodeId(1));
  std::vector<Message> votes = OfType(Drain(n), MessageType::kVote);
  ASSERT_EQ(votes.size(), 2u);
  EXPECT_EQ(n.storage->hard_state().vote, NodeId(1));  // Persisted first.
}

// §5.2 "Raft uses randomized election timeouts ... chosen randomly from a
// fixed interval (e.g., 150–300ms)."
TEST(PaperTest, S5_2_ElectionTimeoutIsRandomizedWithinInterval) {
  std::set<int> seen;
  for (uint64_t seed = 1; seed < 200; ++seed) {
    MemoryStorage s;
    Config c = TestConfig(NodeId(1), Ids({1, 2, 3}), &s);
    c.seed = seed;
    auto r = Raft::Create(c).value();
    const int t = r->randomized_election_timeout();
    EXPECT_GE(t, 10);
    EXPECT_LT(t, 20);
    seen.insert(t);
  }
  EXPECT_GT(seen.size(), 5u);
}

// §5.2 "A candidate wins an election if it receives votes from a majority of
// the servers in the full cluster for the same term."
TEST(PaperTest, S5_2_CandidateWinsWithMajority) {
  struct Case {
    int size;
    std::vector<uint64_t> granting;  // Voters other than the candidate.
    Role want;
  } cases[] = {
      {1, {}, Role::kLeader},     {3, {2}, Role::kLeader},
      {3, {}, Role::kCandidate},  {5, {2, 3}, Role::kLeader},
      {5, {2}, Role::kCandidate}, {5, {2, 3, 4, 5}, Role::kLeader},
  };
  for (const Case& tc : cases) {
    std::vector<NodeId> voters;
    for (int i = 1; i <= tc.size; ++i) voters.push_back(NodeId(i));
    TestNode n = NewNode(1, voters);
    n.raft->Campaign();
    for (uint64_t g : tc.granting) {
      ASSERT_TRUE(n.raft->Step(Msg(MessageType::kVoteResponse, g, 1, 1)).ok());
    }
    EXPECT_EQ(n.raft->role(), tc.want) << "size " << tc.size;
  }
}

// §5.2 "Each server will vote for at most one candidate in a given term, on a
// first-come-first-served basis."
TEST(PaperTest, S5_2_VotesForAtMostOneCandidatePerTerm) {
  TestNode n = NewNode(1, Ids({1, 2, 3}));
  Message from2 = Msg(MessageType::kVote, 2, 1, 1);
  Message from3 = Msg(MessageType::kVote, 3, 1, 1);
  ASSERT_TRUE(n.raft->Step(from2).ok());
  ASSERT_TRUE(n.raft->Step(from3).ok());
  ASSERT_TRUE(n.raft->Step(from2).ok());  // Repeating the same vote is fine.
  std::vector<Message> out = Drain(n);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_FALSE(out[0].reject);
  EXPECT_TRUE(out[1].reject);
  EXPECT_FALSE(out[2].reject);
  EXPECT_EQ(n.storage->hard_state().vote, NodeId(2));
}

// §5.2 "If the AppendEntries RPC is from a leader whose term is at least as
// large as the candidate's current term, then the candidate recognizes the
// leader as legitimate and returns to follower state."
TEST(PaperTest, S5_2_CandidateRecognizesLeaderOfSameTerm) {
  TestNode n = NewNode(1, Ids({1, 2, 3}));
  n.raft->Campaign();
  ASSERT_EQ(n.raft->role(), Role::kCandidate);
  ASSERT_TRUE(n.raft->Step(Msg(MessageType::kHeartbeat, 2, 1, 1)).ok());
  EXPECT_EQ(n.raft->role(), Role::kFollower);
  EXPECT_EQ(n.raft->leader(), NodeId(2));
  EXPECT_EQ(n.raft->term(), Term(1));
}

// §5.2 Election Safety (Figure 3): "at most one leader can be elected in a
// given term." Two simultaneous candidates in a 5-node cluster.
TEST(PaperTest, S5_2_ElectionSafetyWithSplitVote) {
  Cluster c(5, [](Config& cfg) { cfg.pre_vote = false; });
  c.Cut(1, 2);
  c.Cut(1, 3);
  c.Cut(4, 5);
  c.raft(1).Campaign();
  c.raft(5).Campaign();
  c.Stabilize();
  int leaders = 0;
  for (int i = 1; i <= 5; ++i) {
    if (c.raft(i).role() == Role::kLeader) {
      ++leaders;
      EXPECT_EQ(c.raft(i).term(), Term(1));
    }
  }
  EXPECT_LE(leaders, 1);
}

// §5.3 "The leader appends the command to its log as a new entry, then issues
// AppendEntries RPCs in parallel to each of the other servers to replicate
// the entry."
TEST(PaperTest, S5_3_LeaderAppendsAndReplicatesInParallel) {
  Cluster c(3);
  c.Elect(1);
  Drain(c.node(1));
  auto id = c.raft(1).Propose("cmd");
  ASSERT_TRUE(id.ok());
  std::vector<Message> app = OfType(Drain(c.node(1)), MessageType::kAppend);
  ASSERT_EQ(app.size(), 2u);
  for (const Message& m : app) {
    ASSERT_EQ(m.entries.size(), 1u);
    EXPECT_EQ(m.entries[0].data, "cmd");
    EXPECT_EQ(m.entries[0].index, id->index);
  }
  EXPECT_EQ(c.node(1).storage->LastIndex(), id->index);  // Persisted.
}

// §5.3 "A log entry is committed once the leader that created the entry has
// replicated it on a majority of the servers."
TEST(PaperTest, S5_3_LeaderCommitsEntryReplicatedOnMajority) {
  for (int size : {1, 3, 5}) {
    Cluster c(size);
    c.Elect(1);
    ASSERT_EQ(c.raft(1).role(), Role::kLeader);
    // Only a bare majority (leader included) can receive appends.
    for (int i = size / 2 + 2; i <= size; ++i) c.Isolate(i);
    auto id = c.raft(1).Propose("cmd");
    ASSERT_TRUE(id.ok());
    c.Stabilize();
    EXPECT_EQ(c.raft(1).commit(), id->index) << "size " << size;
    if (size > 1) {
      // One fewer replica is not enough.
      c.Isolate(2);
      auto id2 = c.raft(1).Propose("cmd2");
      c.Stabilize();
      EXPECT_EQ(c.raft(1).commit(), id->index);
    }
  }
}

// §5.3 "Once a follower learns that a log entry is committed, it applies the
// entry to its local state machine (in log order)."
TEST(PaperTest, S5_3_FollowerAppliesCommittedEntriesInOrder) {
  Cluster c(3);
  c.Elect(1);
  for (std::string v : {"a", "b", "c"}) ASSERT_TRUE(c.raft(1).Propose(v).ok());
  c.Stabilize();
  c.TickAll();  // Heartbeat carries the final commit index.
  for (int i = 1; i <= 3; ++i) {
    std::vector<std::string> got;
    for (const Entry& e : c.node(i).applied) got.push_back(e.data);
    EXPECT_EQ(got, (std::vector<std::string>{"a", "b", "c"})) << "node " << i;
  }
}

// §5.3 "If the follower does not find an entry in its log with the same
// index and term, then it refuses the new entries." The refusal carries a
// hint (the conflicting term and its first index) for fast backtracking.
TEST(PaperTest, S5_3_FollowerRefusesAppendWithoutMatchingPrevious) {
  TestNode n = NewNode(1, Ids({1, 2, 3}), [](MemoryStorage& s) {
    (void)s.Append({E(1, 1), E(2, 2), E(3, 2), E(4, 2)});
    s.SetHardState(HardState{Term(2), kNoNode, LogIndex(0)});
  });
  Message m = Msg(MessageType::kAppend, 2, 1, 3);
  m.log_index = LogIndex(4);
  m.log_term = Term(3);
  m.entries = {E(5, 3)};
  ASSERT_TRUE(n.raft->Step(m).ok());
  std::vector<Message> out = Drain(n);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].reject);
  EXPECT_EQ(out[0].log_index, LogIndex(4));
  EXPECT_EQ(out[0].conflict_term, Term(2));
  EXPECT_EQ(out[0].conflict_index, LogIndex(2));
  EXPECT_EQ(n.raft->log().LastIndex(), LogIndex(4));
  // Too short a log: the hint is its end.
  m.log_index = LogIndex(9);
  ASSERT_TRUE(n.raft->Step(m).ok());
  out = Drain(n);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].conflict_term, Term(0));
  EXPECT_EQ(out[0].conflict_index, LogIndex(5));
}

// §5.3 "If an existing entry conflicts with a new one (same index but
// different terms), delete the existing entry and all that follow it; append
// any new entries not already in the log."
TEST(PaperTest, S5_3_FollowerDeletesConflictingSuffix) {
  TestNode n = NewNode(1, Ids({1, 2, 3}), [](MemoryStorage& s) {
    (void)s.Append({E(1, 1), E(2, 1), E(3, 2), E(4, 2)});
    s.SetHardState(HardState{Term(2), kNoNode, LogIndex(0)});
  });
  Message m = Msg(MessageType::kAppend, 2, 1, 3);
  m.log_index = LogIndex(2);
  m.log_term = Term(1);
  m.entries = {E(3, 3, "new")};
  ASSERT_TRUE(n.raft->Step(m).ok());
  Drain(n);
  EXPECT_EQ(n.storage->LastIndex(), LogIndex(3));
  EXPECT_EQ(n.storage->TermAt(LogIndex(3)).value(), Term(3));
  // A repeated (or reordered, older) append must not truncate anything.
  Message old = m;
  old.log_index = LogIndex(1);
  old.entries = {E(2, 1)};
  ASSERT_TRUE(n.raft->Step(old).ok());
  Drain(n);
  EXPECT_EQ(n.storage->LastIndex(), LogIndex(3));
}

// §5.3 "the leader must find the latest log entry where the two logs agree,
// delete any entries in the follower's log after that point, and send the
// follower all of the leader's entries after that point." With fast
// backtracking this takes a round trip per conflicting term, not per entry.
TEST(PaperTest, S5_3_LeaderBringsDivergentFollowerInLineQuickly) {
  Cluster c(3, nullptr, [](NodeId id, MemoryStorage& s) {
    std::vector<Entry> ents = {E(1, 1)};
    // Node 3 holds a long uncommitted tail from term 2 that nobody else
    // has.
    if (id == NodeId(3)) {
      for (int i = 2; i <= 50; ++i) ents.push_back(E(i, 2));
    }
    (void)s.Append(ents);
    s.SetHardState(HardState{Term(2), kNoNode, LogIndex(1)});
  });
  c.Isolate(3);
  c.Elect(1);
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.raft(1).Propose("p").ok());
  c.Stabilize();
  c.Heal();
  c.TickAll();
  c.TickAll();
  EXPECT_EQ(c.node(3).storage->LastIndex(), c.raft(1).log().LastIndex());
  for (LogIndex i(1); i <= c.raft(1).log().LastIndex(); ++i) {
    EXPECT_EQ(c.node(3).storage->TermAt(i).value(),
              c.node(1).storage->TermAt(i).value());
  }
}

// §5.3 Log Matching (Figure 3): "if two logs contain an entry with the same
// index and term, then the logs are identical in all entries up through the
// given index." Checked after a series of leader changes.
TEST(PaperTest, S5_3_LogMatchingAfterLeaderChanges) {
  Cluster c(5);
  c.Elect(1);
  uint64_t leader = 1;
  for (int round = 0; round < 6; ++round) {
    // The old leader keeps a few entries nobody else gets, then is cut off
    // with one other node; the remaining three elect a new leader.
    c.Isolate(leader);
    for (int i = 0; i < 2; ++i) (void)c.raft(leader).Propose("lost");
    c.Stabilize();
    c.Isolate(1 + (leader + round) % 5);
    uint64_t next = 0;
    for (int t = 0; t < 100 && next == 0; ++t) {
      c.TickAll();
      for (uint64_t i = 1; i <= 5; ++i) {
        if (i != leader && c.raft(i).role() == Role::kLeader) next = i;
      }
    }
    ASSERT_NE(next, 0u) << round;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.raft(next).Propose("x").ok());
    c.Stabilize();
    c.Heal();
    c.TickAll();
    leader = next;
  }
  for (int a = 1; a <= 5; ++a) {
    for (int b = a + 1; b <= 5; ++b) {
      const MemoryStorage& sa = *c.node(a).storage;
      const MemoryStorage& sb = *c.node(b).storage;
      const LogIndex last = std::min(sa.LastIndex(), sb.LastIndex());
      for (LogIndex i = last; i >= LogIndex(1); i = i - 1) {
        if (sa.TermAt(i).value() != sb.TermAt(i).value()) continue;
        for (LogIndex j(1); j <= i; ++j) {
          EXPECT_EQ(sa.Entries(j, j + 1, 100).value(),
                    sb.Entries(j, j + 1, 100).value());
        }
        break;
      }
    }
  }
}

// §5.4.1 "The voter denies its vote if its own log is more up-to-date than
// that of the candidate ... If the logs have last entries with different
// terms, then the log with the later term is more up-to-date. If the logs end
// with the same term, then whichever log is longer is more up-to-date."
TEST(PaperTest, S5_4_1_VoterRejectsLessUpToDateCandidate) {
  struct Case {
    uint64_t last_index, last_term;
    bool grant;
  } cases[] = {
      {2, 1, false},  // Older last term.
      {3, 1, false},  // Older last term, longer.
      {1, 2, false},  // Same term, shorter.
      {2, 2, true},   // Same.
      {3, 2, true},   // Same term, longer.
      {1, 3, true},   // Later term, shorter.
  };
  for (const Case& tc : cases) {
    TestNode n = NewNode(1, Ids({1, 2, 3}), [](MemoryStorage& s) {
      (void)s.Append({E(1, 1), E(2, 2)});
      s.SetHardState(HardState{Term(2), kNoNode, LogIndex(0)});
    });
    Message m = Msg(MessageType::kVote, 2, 1, 3);
    m.log_index = LogIndex(tc.last_index);
    m.log_term = Term(tc.last_term);
    ASSERT_TRUE(n.raft->Step(m).ok());
    std::vector<Message> out = Drain(n);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(!out[0].reject, tc.grant) << tc.last_index << "/" << tc.last_term;
  }
}

// §5.4.2 "Raft never commits log entries from previous terms by counting
// replicas. Only log entries from the leader's current term are committed by
// counting replicas." (Figure 8.) The planted-bug knob shows what the rule
// prevents.
TEST(PaperTest, S5_4_2_DoesNotCommitOldTermEntriesByCountingReplicas) {
  for (bool planted_bug : {false, true}) {
    Cluster c(
        3,
        [&](Config& cfg) {
          cfg.max_size_per_message = 0;  // One entry per append.
          cfg.testing.commit_old_term_entries_by_count = planted_bug;
        },
        [](NodeId id, MemoryStorage& s) {
          std::vector<Entry> ents = {E(1, 1)};
          if (id == NodeId(1)) ents.push_back(E(2, 2));  // Old, uncommitted.
          (void)s.Append(ents);
          s.SetHardState(HardState{Term(2), kNoNode, LogIndex(1)});
        });
    c.Isolate(3);
    // Deliver everything except append acknowledgements for the no-op, by
    // stepping messages by hand.
    c.raft(1).Campaign();
    std::vector<Message> q = Drain(c.node(1));
    // Pre-vote, vote.
    for (int round = 0; round < 2; ++round) {
      std::vector<Message> next;
      for (const Message& m : q) {
        if (m.to != NodeId(2)) continue;
        ASSERT_TRUE(c.raft(2).Step(m).ok());
        for (const Message& r : Drain(c.node(2))) {
          ASSERT_TRUE(c.raft(1).Step(r).ok());
        }
        for (Message& r : Drain(c.node(1))) next.push_back(r);
      }
      q = next;
    }
    ASSERT_EQ(c.raft(1).role(), Role::kLeader);
    ASSERT_EQ(c.raft(1).term(), Term(3));
    // Leader log: 1@t1, 2@t2, 3@t3 (no-op). Let node 2 catch up one entry at
    // a time and watch the commit index after it acknowledges index 2.
    for (int i = 0;
         i < 10 && c.raft(1).progress().at(NodeId(2)).match < LogIndex(2);
         ++i) {
      std::vector<Message> next;
      for (const Message& m : q) {
        if (m.to != NodeId(2) || m.type != MessageType::kAppend) continue;
        ASSERT_TRUE(c.raft(2).Step(m).ok());
        for (const Message& r : Drain(c.node(2))) {
          ASSERT_TRUE(c.raft(1).Step(r).ok());
          if (c.raft(1).progress().at(NodeId(2)).match >= LogIndex(2)) break;
        }
        for (Message& r : Drain(c.node(1))) next.push_back(r);
        if (c.raft(1).progress().at(NodeId(2)).match >= LogIndex(2)) break;
      }
      q = next;
    }
    ASSERT_EQ(c.raft(1).progress().at(NodeId(2)).match, LogIndex(2));
    if (planted_bug) {
      EXPECT_EQ(c.raft(1).commit(), LogIndex(2));  // The unsafe commit.
    } else {
      EXPECT_EQ(c.raft(1).commit(), LogIndex(1));
      // Once the current-term no-op is replicated, both commit together.
      c.Heal();
      c.TickAll();
      c.TickAll();
      EXPECT_EQ(c.raft(1).commit(), LogIndex(3));
    }
  }
}

// §5.4 Leader Completeness (Figure 3): "If a log entry is committed in a
// given term, then that entry will be present in the logs of the leaders for
// all higher-numbered terms."
TEST(PaperTest, S5_4_LeaderCompleteness) {
  Cluster c(5);
  c.Elect(1);
  c.Isolate(4);
  c.Isolate(5);
  auto id = c.raft(1).Propose("committed");
  ASSERT_TRUE(id.ok());
  c.Stabilize();
  ASSERT_EQ(c.raft(1).commit(), id->index);
  // Nodes 4 and 5 lack the entry; with node 1 gone, 4 and 5 can never lead.
  c.Heal();
  c.Isolate(1);
  c.Elect(4);
  EXPECT_NE(c.raft(4).role(), Role::kLeader);
  for (int i = 0; i < 100; ++i) c.TickAll();
  for (int i = 2; i <= 5; ++i) {
    if (c.raft(i).role() != Role::kLeader) continue;
    EXPECT_TRUE(i == 2 || i == 3) << i;
    EXPECT_EQ(c.raft(i).log().TermOrZero(id->index), id->term);
  }
}

// §5.5 / Figure 2 "Persistent state on all servers (Updated on stable storage
// before responding to RPCs)": a restarted node remembers term, vote and log.
TEST(PaperTest, S5_5_RestartKeepsTermVoteAndLog) {
  Cluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.raft(1).Propose("x").ok());
  c.Stabilize();
  const Term term = c.raft(2).term();
  const NodeId vote = c.raft(2).vote();
  const LogIndex last = c.raft(2).log().LastIndex();
  c.Restart(2);
  EXPECT_EQ(c.raft(2).term(), term);
  EXPECT_EQ(c.raft(2).vote(), vote);
  EXPECT_EQ(c.raft(2).log().LastIndex(), last);
}

// §8 "a leader must have the latest information on which entries are
// committed ... Raft handles this by having each leader commit a blank no-op
// entry into the log at the start of its term."
TEST(PaperTest, S8_LeaderAppendsNoOpAtStartOfTerm) {
  Cluster c(3);
  c.Elect(2);
  const Raft& r = c.raft(2);
  ASSERT_EQ(r.role(), Role::kLeader);
  auto ents = r.log().Slice(r.log().LastIndex(), r.log().LastIndex() + 1, 100);
  ASSERT_TRUE(ents.ok());
  EXPECT_EQ(ents->at(0).type, EntryType::kNoOp);
  EXPECT_EQ(ents->at(0).term, r.term());
  EXPECT_EQ(r.commit(), r.log().LastIndex());
}

}  // namespace
}  // namespace fjord::raft
