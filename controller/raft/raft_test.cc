// Feature tests for the Raft core beyond the paper's basics: single voter,
// NOT-leader errors, pre-vote, check-quorum and the leader lease, leadership
// transfer, snapshots, ReadIndex, and the Ready/persistence contract.
#include "controller/raft/raft.h"

#include "controller/raft/memory_storage.h"
#include "controller/raft/test_cluster.h"
#include "gtest/gtest.h"

namespace fjord::raft {
namespace {

using testing::Cluster;
using testing::Drain;

uint64_t LeaderOf(Cluster& c, int n) {
  for (int i = 1; i <= n; ++i) {
    if (c.raft(i).role() == Role::kLeader) return i;
  }
  return 0;
}

TEST(RaftTest, SingleVoterElectsItselfAndCommitsImmediately) {
  Cluster c(1);
  for (int i = 0; i < 20 && c.raft(1).role() != Role::kLeader; ++i) {
    c.TickAll();
  }
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  auto id = c.raft(1).Propose("solo");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(c.raft(1).commit(), id->index);
  c.Stabilize();
  ASSERT_EQ(c.node(1).applied.size(), 1u);
  EXPECT_EQ(c.node(1).applied[0].data, "solo");
  ASSERT_TRUE(c.raft(1).ReadIndex("r").ok());
  c.Stabilize();
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  EXPECT_EQ(c.node(1).read_states[0].index, id->index);
}

TEST(RaftTest, ProposeOnFollowerFailsWithLeaderHint) {
  Cluster c(3);
  c.Elect(2);
  absl::StatusOr<ProposalId> r = c.raft(1).Propose("x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(IsNotLeader(r.status()));
  EXPECT_EQ(LeaderHint(r.status()), NodeId(2));
}

TEST(RaftTest, VoteIsPersistedInTheSameReadyAsTheVoteResponse) {
  Cluster c(3);
  c.raft(1).Campaign();
  std::vector<Message> prevotes = Drain(c.node(1));
  for (const Message& m : prevotes)
    ASSERT_TRUE(c.raft(m.to.value()).Step(m).ok());
  for (const Message& m : Drain(c.node(2))) ASSERT_TRUE(c.raft(1).Step(m).ok());
  std::vector<Message> votes = Drain(c.node(1));
  ASSERT_FALSE(votes.empty());
  ASSERT_TRUE(
      c.raft(2).Step(votes[0].to == NodeId(2) ? votes[0] : votes[1]).ok());
  Ready rd = c.raft(2).Ready();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote, NodeId(1));
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].type, MessageType::kVoteResponse);
}

TEST(RaftTest, PreVoteKeepsPartitionedNodeFromInflatingTerm) {
  Cluster c(3);
  c.Elect(1);
  const Term term = c.raft(1).term();
  c.Isolate(3);
  for (int i = 0; i < 100; ++i) c.TickAll();
  EXPECT_EQ(c.raft(3).term(), term);  // Pre-votes never won: no new term.
  c.Heal();
  for (int i = 0; i < 5; ++i) c.TickAll();
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);  // Not disrupted.
  EXPECT_EQ(c.raft(1).term(), term);
}

TEST(RaftTest, WithoutPreVotePartitionedNodeInflatesTerm) {
  Cluster c(3, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  });
  c.Elect(1);
  const Term term = c.raft(1).term();
  c.Isolate(3);
  for (int i = 0; i < 100; ++i) c.TickAll();
  EXPECT_GT(c.raft(3).term(), term);
}

TEST(RaftTest, CheckQuorumLeaderStepsDownWithoutQuorum) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(1);
  for (int i = 0; i < 25; ++i) {
    c.raft(1).Tick();
    c.Stabilize();
  }
  EXPECT_NE(c.raft(1).role(), Role::kLeader);
}

TEST(RaftTest, LeaderLeaseFollowersIgnoreVotesWhileLeaderIsAlive) {
  Cluster c(3);
  c.Elect(1);
  const Term term = c.raft(1).term();
  // Node 3 asks for votes at a higher term without pre-vote.
  Message v;
  v.type = MessageType::kVote;
  v.from = NodeId(3);
  v.to = NodeId(2);
  v.term = term + 1;
  v.log_index = c.raft(3).log().LastIndex();
  v.log_term = c.raft(3).log().LastTerm();
  ASSERT_TRUE(c.raft(2).Step(v).ok());
  EXPECT_EQ(c.raft(2).term(), term);  // Ignored: it heard from a leader.
  EXPECT_TRUE(Drain(c.node(2)).empty());
  // After an election timeout without the leader, the same request counts.
  c.Isolate(1);
  for (int i = 0; i < 10; ++i) c.raft(2).Tick();
  Drain(c.node(2));
  ASSERT_TRUE(c.raft(2).Step(v).ok());
  EXPECT_EQ(c.raft(2).term(), term + 1);
}

TEST(RaftTest, TransferLeadershipToUpToDateFollower) {
  Cluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.raft(1).TransferLeadership(NodeId(3)).ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(3).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(c.raft(1).leader(), NodeId(3));
}

TEST(RaftTest, TransferLeadershipCatchesUpLaggingFollowerFirst) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.raft(1).Propose("x").ok());
  c.Stabilize();
  c.Heal();
  ASSERT_TRUE(c.raft(1).TransferLeadership(NodeId(3)).ok());
  EXPECT_FALSE(c.raft(1).Propose("refused").ok());  // Transfer in progress.
  c.Stabilize();
  EXPECT_EQ(c.raft(3).role(), Role::kLeader);
  EXPECT_GE(c.raft(3).commit(), LogIndex(7));
}

TEST(RaftTest, TransferToUnreachableNodeIsAbandonedAfterElectionTimeout) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(3);
  ASSERT_TRUE(c.raft(1).TransferLeadership(NodeId(3)).ok());
  c.Stabilize();
  EXPECT_FALSE(c.raft(1).Propose("x").ok());
  for (int i = 0; i < 10; ++i) {
    c.raft(1).Tick();
    c.Stabilize();
  }
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_TRUE(c.raft(1).Propose("x").ok());
}

TEST(RaftTest, LaggingFollowerReceivesSnapshotAndCatchesUp) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.raft(1).Propose("x").ok());
  c.Stabilize();
  const LogIndex applied = c.raft(1).applied();
  MemoryStorage& s1 = *c.node(1).storage;
  ASSERT_TRUE(
      s1.CreateSnapshot(applied, {NodeId(1), NodeId(2), NodeId(3)}, "image")
          .ok());
  ASSERT_TRUE(s1.Compact(applied).ok());
  ASSERT_TRUE(c.raft(1).Propose("after").ok());
  c.Stabilize();
  c.Heal();
  for (int i = 0; i < 3; ++i) c.TickAll();
  MemoryStorage& s3 = *c.node(3).storage;
  EXPECT_EQ(s3.GetSnapshot().value().metadata.index, applied);
  EXPECT_EQ(s3.GetSnapshot().value().data, "image");
  EXPECT_EQ(s3.LastIndex(), s1.LastIndex());
  EXPECT_EQ(c.raft(3).commit(), c.raft(1).commit());
  ASSERT_FALSE(c.node(3).applied.empty());
  EXPECT_EQ(c.node(3).applied.back().data, "after");
  // Restart from the installed snapshot.
  c.Restart(3);
  EXPECT_EQ(c.raft(3).log().FirstIndex(), applied + 1);
}

TEST(RaftTest, ReadIndexOnLeaderNeedsHeartbeatQuorum) {
  Cluster c(3);
  c.Elect(1);
  auto id = c.raft(1).Propose("w");
  ASSERT_TRUE(id.ok());
  c.Stabilize();
  c.Isolate(1);
  ASSERT_TRUE(c.raft(1).ReadIndex("r1").ok());
  c.Stabilize();
  EXPECT_TRUE(c.node(1).read_states.empty());  // No quorum: no answer.
  c.Heal();
  c.TickAll();  // The next heartbeat round confirms leadership.
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  EXPECT_EQ(c.node(1).read_states[0].context, "r1");
  EXPECT_EQ(c.node(1).read_states[0].index, id->index);
}

TEST(RaftTest, ReadIndexWaitsForLeaderToCommitInItsTerm) {
  Cluster c(3);
  c.Isolate(2);
  c.Isolate(3);
  c.raft(1).Campaign();
  c.Stabilize();
  c.Heal();
  // Node 1 becomes leader but its no-op has not been acknowledged yet.
  c.DropType(MessageType::kAppendResponse);
  c.Elect(1);
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  ASSERT_LT(c.raft(1).commit(), c.raft(1).log().LastIndex());
  ASSERT_TRUE(c.raft(1).ReadIndex("early").ok());
  c.TickAll();
  EXPECT_TRUE(c.node(1).read_states.empty());
  c.Heal();
  c.TickAll();
  c.TickAll();
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  EXPECT_EQ(c.node(1).read_states[0].index, c.raft(1).commit());
}

TEST(RaftTest, ReadIndexOnFollowerIsForwardedToLeader) {
  Cluster c(3);
  c.Elect(1);
  auto id = c.raft(1).Propose("w");
  ASSERT_TRUE(id.ok());
  c.Stabilize();
  ASSERT_TRUE(c.raft(2).ReadIndex("f").ok());
  c.Stabilize();
  c.TickAll();
  ASSERT_EQ(c.node(2).read_states.size(), 1u);
  EXPECT_EQ(c.node(2).read_states[0].index, id->index);
}

TEST(RaftTest, CommitNeverMovesBackAcrossRestart) {
  Cluster c(3);
  c.Elect(1);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.raft(1).Propose("x").ok());
  c.Stabilize();
  c.TickAll();
  const LogIndex commit = c.raft(2).commit();
  c.Restart(2);
  EXPECT_EQ(c.raft(2).commit(), commit);
  // Entries are applied again from the (empty) snapshot, in order.
  c.Stabilize();
  EXPECT_EQ(c.node(2).applied.size(), 3u);
}

TEST(RaftTest, ElectsNewLeaderAfterLeaderCrash) {
  for (int size : {3, 5}) {
    Cluster c(size);
    c.Elect(1);
    c.Isolate(1);
    for (int i = 0; i < 50 && LeaderOf(c, size) <= 1; ++i) c.TickAll();
    const uint64_t l = LeaderOf(c, size);
    ASSERT_GT(l, 1u) << size;
    EXPECT_TRUE(c.raft(l).Propose("after").ok());
  }
}

TEST(RaftTest, RejectsBadConfig) {
  MemoryStorage s;
  Config c;
  c.storage = &s;
  EXPECT_FALSE(Raft::Create(c).ok());
  c.id = NodeId(1);
  c.voters = {NodeId(1), NodeId(1)};
  EXPECT_FALSE(Raft::Create(c).ok());
  c.voters = {NodeId(1)};
  c.heartbeat_tick = 10;
  EXPECT_FALSE(Raft::Create(c).ok());
}

}  // namespace
}  // namespace fjord::raft
