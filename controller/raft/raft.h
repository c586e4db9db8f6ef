// Raft consensus as a pure state machine, in the manner of etcd's raft
// library: no I/O, threads or clocks. The driver feeds it logical clock ticks
// (Tick), messages from peers (Step) and client requests (Propose,
// ReadIndex, TransferLeadership, Campaign), and collects the results with
// HasReady / Ready / Advance.
//
// Features: leader election with randomized timeouts from a seeded PRNG,
// PreVote, CheckQuorum with a leader lease for votes, log replication with
// fast backtracking, commit by current-term majority only (§5.4.2), a no-op
// entry at the start of each term, snapshots and InstallSnapshot, leadership
// transfer (TimeoutNow) and linearizable ReadIndex reads. The voter set is
// static (1, 3 or 5 voters are the intended sizes; any size works).
//
// Driver loop, which must keep this order:
//
//   raft.Tick() every tick interval; raft.Step(m) for each message received;
//   while (raft.HasReady()) {
//     Ready rd = raft.Ready();
//     1. persist rd.snapshot, rd.entries and rd.hard_state, durably and
//        atomically (one synced write batch);
//     2. send rd.messages (they may promise what step 1 persisted, e.g. a
//        vote, so never before it);
//     3. restore rd.snapshot into the state machine, then apply
//        rd.committed_entries in order; serve rd.read_states once applied;
//     4. raft.Advance();
//   }
//
// A crash at any point loses only what step 1 had not yet made durable; a
// restarted node is rebuilt from Storage alone.
//
// Thread-safety: none. One driver thread owns a Raft and its Storage view.
#ifndef FJORD_CONTROLLER_RAFT_RAFT_H_
#define FJORD_CONTROLLER_RAFT_RAFT_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controller/raft/prng.h"
#include "controller/raft/raft_log.h"
#include "controller/raft/storage.h"
#include "controller/raft/types.h"

namespace fjord::raft {

// Knobs that plant known bugs, so that tests can prove the simulator's
// checkers catch them. Never set outside tests.
struct TestingKnobs {
  // Grant a vote even after voting for someone else in the same term.
  bool vote_twice_in_a_term = false;
  // Commit an entry from an earlier term by counting replicas (the bug
  // §5.4.2 / Figure 8 warns about).
  bool commit_old_term_entries_by_count = false;
};

struct Config {
  NodeId id = kNoNode;
  // All voters, including `id`. Static.
  std::vector<NodeId> voters;
  // Ticks without hearing from a leader before a follower campaigns; the
  // actual timeout is drawn uniformly from [election_tick, 2 * election_tick).
  int election_tick = 10;
  // Ticks between leader heartbeats. Must be < election_tick.
  int heartbeat_tick = 1;
  bool pre_vote = true;
  // The leader steps down when it has not heard from a quorum within an
  // election timeout; followers then refuse votes while they hear from a
  // leader (the leader lease).
  bool check_quorum = true;
  // Upper bound on entry data bytes in one kAppend / committed_entries batch.
  uint64_t max_size_per_message = 1 << 20;
  // Last index the application has applied (on restart); entries up to it are
  // not handed out again. 0 means "from the snapshot".
  LogIndex applied;
  uint64_t seed = 1;
  const Storage* storage = nullptr;  // Not owned; must outlive the Raft.
  TestingKnobs testing;
};

// The state Raft keeps about each peer while leading (§5.3 nextIndex and
// matchIndex, plus etcd's flow-control state).
struct Progress {
  enum class State : uint8_t {
    // Don't know where the follower's log diverges: one kAppend at a time.
    kProbe,
    // Follower is known to match up to `match`: stream entries.
    kReplicate,
    // Follower needs a snapshot at `pending_snapshot`: send nothing else.
    kSnapshot,
  };
  LogIndex match;  // Highest index known to be replicated (never decreases).
  LogIndex next;   // Next index to send; match < next.
  State state = State::kProbe;
  bool probe_sent = false;  // kProbe: an append is in flight.
  LogIndex pending_snapshot;
  int snapshot_elapsed = 0;    // kSnapshot: ticks since it was sent.
  bool recent_active = false;  // Heard from it this election timeout.
};

// Status messages returned for rejected client requests. IsNotLeader() tells
// the NOT-leader rejection apart; LeaderHint() extracts the leader the node
// knows of (kNoNode if none).
bool IsNotLeader(const absl::Status& status);
NodeId LeaderHint(const absl::Status& status);

// Where a proposal was appended. It is committed iff the entry at `index`
// is later applied with term `term`.
struct ProposalId {
  LogIndex index;
  Term term;
};

class Raft {
 public:
  // Fails on an invalid config or inconsistent storage.
  static absl::StatusOr<std::unique_ptr<Raft>> Create(const Config& config);

  Raft(const Raft&) = delete;
  Raft& operator=(const Raft&) = delete;

  // Advances the logical clock by one tick: may start an election, send
  // heartbeats, or (leader, check_quorum) step down.
  void Tick();

  // Feeds a message from a peer. Messages with a stale term are ignored or
  // answered so the sender learns the newer term. Returns an error only for a
  // malformed message (e.g. not addressed to this node).
  absl::Status Step(const Message& m);

  // Appends `data` to the log if this node is the leader. Errors: not the
  // leader (UNAVAILABLE; LeaderHint() names the known leader), or a
  // leadership transfer is in progress (UNAVAILABLE).
  absl::StatusOr<ProposalId> Propose(std::string data);

  // Starts an election now (as if the election timeout elapsed).
  void Campaign();

  // Leader: hand leadership to `transferee` (thesis §3.10): bring its log up
  // to date, then send it kTimeoutNow. Proposals are refused meanwhile; the
  // attempt is abandoned after an election timeout. Errors: not the leader,
  // or `transferee` is not another voter.
  absl::Status TransferLeadership(NodeId transferee);

  // Requests a linearizable read point. The answer arrives as a ReadState with
  // the same `context` in a later Ready (or never, if leadership is lost:
  // callers retry on a timeout). `context` must be unique among outstanding
  // requests cluster-wide. The leader answers only after it has committed an
  // entry in its term and a quorum has acknowledged a heartbeat sent after
  // the request. Followers forward to the leader. Error: no known leader.
  absl::Status ReadIndex(std::string context);

  // True when Ready() would return something to do.
  bool HasReady() const;
  // Hands out the next batch of work (see the driver loop above). Must be
  // followed by Advance() before the next call to Ready(); Tick and Step may
  // be called in between.
  raft::Ready Ready();
  // Acknowledges that the last Ready was persisted, sent and applied.
  void Advance();

  // Observers.
  NodeId id() const { return id_; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const { return lead_; }
  Role role() const { return role_; }
  LogIndex commit() const { return log_.committed(); }
  LogIndex applied() const { return log_.applied(); }
  const RaftLog& log() const { return log_; }
  HardState hard_state() const {
    return HardState{term_, vote_, log_.committed()};
  }
  const std::map<NodeId, Progress>& progress() const { return prs_; }
  NodeId lead_transferee() const { return lead_transferee_; }
  int randomized_election_timeout() const {
    return randomized_election_timeout_;
  }

 private:
  explicit Raft(const Config& config);

  enum class CampaignType { kPreElection, kElection, kTransfer };

  struct PendingRead {
    LogIndex index;
    NodeId from;  // Requester (self or a follower).
    std::string context;
    std::vector<NodeId> acks;
  };

  int Quorum() const { return static_cast<int>(voters_.size()) / 2 + 1; }
  bool IsVoter(NodeId id) const;
  bool Promotable() const { return IsVoter(id_); }

  void Reset(Term term);
  void ResetRandomizedElectionTimeout();
  void BecomeFollower(Term term, NodeId lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();

  void TickElection();
  void TickHeartbeat();
  void CampaignImpl(CampaignType type);
  // Records a vote; returns (granted, rejected) counts so far.
  std::pair<int, int> Poll(NodeId id, bool granted);
  bool InLease() const;

  void Send(Message m);
  void SendAppend(NodeId to);
  void SendOneAppend(NodeId to);
  void SendHeartbeat(NodeId to, const std::string& context);
  void BroadcastAppend();
  void BroadcastHeartbeat(const std::string& context);
  void AppendEntry(Entry e);
  bool MaybeCommit();
  bool CommittedEntryInCurrentTerm() const;
  bool QuorumActive();

  void StepLeader(const Message& m);
  void StepCandidate(const Message& m);
  void StepFollower(const Message& m);
  void HandleVoteRequest(const Message& m);
  void HandleAppend(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  void HandleAppendResponse(const Message& m, Progress& pr);
  void HandleHeartbeatResponse(const Message& m, Progress& pr);

  // ReadIndex machinery (leader side).
  void LeaderReadIndex(NodeId from, std::string context);
  void AddReadAck(NodeId from, const std::string& context);
  void ReleaseRead(const PendingRead& read);
  void ReleaseReadsWaitingForCommit();

  const NodeId id_;
  const std::vector<NodeId> voters_;
  const int election_timeout_;
  const int heartbeat_timeout_;
  const bool pre_vote_;
  const bool check_quorum_;
  const uint64_t max_size_;
  const TestingKnobs testing_;
  const Storage* const storage_;
  Prng prng_;

  Term term_;
  NodeId vote_ = kNoNode;
  NodeId lead_ = kNoNode;
  Role role_ = Role::kFollower;
  RaftLog log_;

  std::map<NodeId, Progress> prs_;  // Leader only; includes self.
  std::map<NodeId, bool> votes_;    // Candidates only.
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  NodeId lead_transferee_ = kNoNode;

  std::deque<PendingRead> pending_reads_;  // Awaiting a heartbeat quorum.
  std::vector<PendingRead> reads_waiting_for_commit_;
  std::vector<ReadState> read_states_;
  std::vector<Message> msgs_;

  // What the last Ready handed out (for Advance) and what it reported.
  HardState prev_hard_state_;
  SoftState prev_soft_state_;
  std::optional<std::pair<LogIndex, Term>> handed_out_last_entry_;
  std::optional<LogIndex> handed_out_snapshot_;
  std::optional<LogIndex> handed_out_applied_;
};

}  // namespace fjord::raft

#endif  // FJORD_CONTROLLER_RAFT_RAFT_H_
