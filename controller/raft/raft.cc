#include "controller/raft/raft.h"

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fjord::raft {
namespace {

constexpr char kLeaderHintPayload[] = "fjord.raft.leader_hint";
constexpr char kNotLeaderPrefix[] = "raft: not the leader";
constexpr char kTransferContext[] = "transfer";

absl::Status NotLeaderError(NodeId leader) {
  absl::Status s = absl::UnavailableError(
      absl::StrCat(kNotLeaderPrefix, "; leader hint: ", leader.value()));
  s.SetPayload(kLeaderHintPayload, absl::Cord(absl::StrCat(leader.value())));
  return s;
}

}  // namespace

bool IsNotLeader(const absl::Status& status) {
  return status.GetPayload(kLeaderHintPayload).has_value();
}

NodeId LeaderHint(const absl::Status& status) {
  auto p = status.GetPayload(kLeaderHintPayload);
  uint64_t id = 0;
  if (!p.has_value() || !absl::SimpleAtoi(std::string(*p), &id)) return kNoNode;
  return NodeId(id);
}

absl::StatusOr<std::unique_ptr<Raft>> Raft::Create(const Config& config) {
  if (config.id == kNoNode) return absl::InvalidArgumentError("raft: id is 0");
  if (config.storage == nullptr) {
    return absl::InvalidArgumentError("raft: no storage");
  }
  if (config.heartbeat_tick <= 0 ||
      config.election_tick <= config.heartbeat_tick) {
    return absl::InvalidArgumentError(
        "raft: need 0 < heartbeat_tick < election_tick");
  }
  if (config.voters.empty())
    return absl::InvalidArgumentError("raft: no voters");
  std::vector<NodeId> sorted = config.voters;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end() ||
      sorted.front() == kNoNode) {
    return absl::InvalidArgumentError("raft: duplicate or zero voter id");
  }
  absl::StatusOr<InitialState> init = config.storage->GetInitialState();
  if (!init.ok()) return init.status();
  const HardState& hs = init->hard_state;
  if (hs.commit > config.storage->LastIndex() ||
      hs.commit + 1 < config.storage->FirstIndex()) {
    return absl::DataLossError(
        absl::StrCat("raft: persisted commit ", hs.commit.value(),
                     " outside the log [", config.storage->FirstIndex().value(),
                     ", ", config.storage->LastIndex().value(), "]"));
  }
  std::unique_ptr<Raft> r(new Raft(config));
  r->term_ = hs.term;
  r->vote_ = hs.vote;
  LogIndex applied = config.applied;
  if (applied > hs.commit) applied = hs.commit;
  r->log_.Init(hs.commit, applied);
  r->BecomeFollower(r->term_, kNoNode);
  r->prev_hard_state_ = r->hard_state();
  r->prev_soft_state_ = SoftState{kNoNode, Role::kFollower};
  return r;
}

Raft::Raft(const Config& config)
    : id_(config.id),
      voters_([&] {
        std::vector<NodeId> v = config.voters;
        std::sort(v.begin(), v.end());
        return v;
      }()),
      election_timeout_(config.election_tick),
      heartbeat_timeout_(config.heartbeat_tick),
      pre_vote_(config.pre_vote),
      check_quorum_(config.check_quorum),
      max_size_(config.max_size_per_message),
      testing_(config.testing),
      storage_(config.storage),
      prng_(config.seed ^ (0x5851f42d4c957f2dULL * config.id.value())),
      log_(config.storage) {}

bool Raft::IsVoter(NodeId id) const {
  return std::binary_search(voters_.begin(), voters_.end(), id);
}

// ---------------------------------------------------------------------------
// Role transitions.

void Raft::Reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  lead_transferee_ = kNoNode;
  votes_.clear();
  prs_.clear();
  pending_reads_.clear();
  reads_waiting_for_commit_.clear();
}

void Raft::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      election_timeout_ + static_cast<int>(prng_.Uniform(election_timeout_));
}

void Raft::BecomeFollower(Term term, NodeId lead) {
  Reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
}

void Raft::BecomePreCandidate() {
  // A pre-candidate changes neither term nor vote (thesis §9.6): a node that
  // cannot win must not disturb the cluster.
  role_ = Role::kPreCandidate;
  votes_.clear();
  lead_ = kNoNode;
}

void Raft::BecomeCandidate() {
  Reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
}

void Raft::BecomeLeader() {
  Reset(term_);
  lead_ = id_;
  role_ = Role::kLeader;
  const LogIndex last = log_.LastIndex();
  for (NodeId v : voters_) {
    Progress& pr = prs_[v];
    pr.next = last + 1;
    pr.match = LogIndex(0);
    pr.state = Progress::State::kProbe;
    pr.recent_active = true;
  }
  prs_[id_].match = last;
  prs_[id_].state = Progress::State::kReplicate;
  // §8: a no-op entry lets the new leader commit entries of earlier terms
  // (indirectly, §5.4.2) and learn the commit index.
  AppendEntry(Entry{term_, LogIndex(0), EntryType::kNoOp, ""});
  BroadcastAppend();
}

// ---------------------------------------------------------------------------
// Ticks and campaigns.

void Raft::Tick() {
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    Campaign();
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  for (auto& [id, pr] : prs_) {
    if (pr.state == Progress::State::kSnapshot) ++pr.snapshot_elapsed;
  }
  if (election_elapsed_ >= election_timeout_) {
    election_elapsed_ = 0;
    if (check_quorum_ && !QuorumActive()) {
      BecomeFollower(term_, kNoNode);
      return;
    }
    // A transfer that did not complete within an election timeout is
    // abandoned so that the leader accepts proposals again.
    lead_transferee_ = kNoNode;
  }
  if (heartbeat_elapsed_ >= heartbeat_timeout_) {
    heartbeat_elapsed_ = 0;
    BroadcastHeartbeat(pending_reads_.empty() ? std::string()
                                              : pending_reads_.back().context);
  }
}

bool Raft::QuorumActive() {
  int active = 0;
  for (auto& [id, pr] : prs_) {
    if (id == id_ || pr.recent_active) ++active;
    if (id != id_) pr.recent_active = false;
  }
  return active >= Quorum();
}

void Raft::Campaign() {
  if (!Promotable() || role_ == Role::kLeader) return;
  CampaignImpl(pre_vote_ ? CampaignType::kPreElection
                         : CampaignType::kElection);
}

void Raft::CampaignImpl(CampaignType type) {
  Term vote_term;
  MessageType vote_type;
  if (type == CampaignType::kPreElection) {
    BecomePreCandidate();
    vote_type = MessageType::kPreVote;
    vote_term = term_ + 1;  // The term we would campaign at; not adopted yet.
  } else {
    BecomeCandidate();
    vote_type = MessageType::kVote;
    vote_term = term_;
  }
  auto [granted, rejected] = Poll(id_, true);
  if (granted >= Quorum()) {
    // Single-voter cluster: we are the quorum.
    if (type == CampaignType::kPreElection) {
      CampaignImpl(CampaignType::kElection);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (NodeId v : voters_) {
    if (v == id_) continue;
    Message m;
    m.type = vote_type;
    m.to = v;
    m.term = vote_term;
    m.log_index = log_.LastIndex();
    m.log_term = log_.LastTerm();
    if (type == CampaignType::kTransfer) m.context = kTransferContext;
    Send(std::move(m));
  }
}

std::pair<int, int> Raft::Poll(NodeId id, bool granted) {
  votes_.emplace(id, granted);  // First answer from a voter counts.
  int yes = 0, no = 0;
  for (const auto& [v, g] : votes_) (g ? yes : no)++;
  return {yes, no};
}

bool Raft::InLease() const {
  return check_quorum_ && lead_ != kNoNode &&
         election_elapsed_ < election_timeout_;
}

// ---------------------------------------------------------------------------
// Step.

absl::Status Raft::Step(const Message& m) {
  if (m.to != id_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raft: message for ", m.to.value(), " delivered to ", id_.value()));
  }
  if (m.from == kNoNode || m.from == id_) {
    return absl::InvalidArgumentError("raft: message from an invalid sender");
  }
  const bool is_vote_request =
      m.type == MessageType::kVote || m.type == MessageType::kPreVote;

  if (m.term > term_) {
    if (is_vote_request) {
      const bool force = m.context == kTransferContext;
      // Leader lease: while we hear from a live leader, a candidate with a
      // higher term is a disruptive node (e.g. just rejoined a partition);
      // ignore it without adopting its term.
      if (!force && InLease()) return absl::OkStatus();
    }
    if (m.type == MessageType::kPreVote) {
      // Never change term on a pre-vote.
    } else if (m.type == MessageType::kPreVoteResponse && !m.reject) {
      // A granted pre-vote carries the term we would campaign at.
    } else if (m.type == MessageType::kAppend ||
               m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      BecomeFollower(m.term, m.from);
    } else {
      BecomeFollower(m.term, kNoNode);
    }
  } else if (m.term < term_) {
    if ((check_quorum_ || pre_vote_) &&
        (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat)) {
      // A leader from an older term (e.g. healed from a partition): tell it
      // our term so it steps down instead of retrying forever.
      Message resp;
      resp.type = MessageType::kAppendResponse;
      resp.to = m.from;
      resp.reject = true;  // Carries no match information.
      resp.log_index = m.log_index;
      Send(std::move(resp));
    } else if (m.type == MessageType::kPreVote) {
      Message resp;
      resp.type = MessageType::kPreVoteResponse;
      resp.to = m.from;
      resp.reject = true;
      Send(std::move(resp));
    }
    // Everything else from an older term is stale: drop it.
    return absl::OkStatus();
  }

  if (is_vote_request) {
    HandleVoteRequest(m);
    return absl::OkStatus();
  }
  switch (role_) {
    case Role::kLeader:
      StepLeader(m);
      break;
    case Role::kCandidate:
    case Role::kPreCandidate:
      StepCandidate(m);
      break;
    case Role::kFollower:
      StepFollower(m);
      break;
  }
  return absl::OkStatus();
}

void Raft::HandleVoteRequest(const Message& m) {
  const bool pre = m.type == MessageType::kPreVote;
  // §5.2: at most one vote per term, first-come-first-served. We may repeat a
  // vote we already cast. A pre-vote for a future term promises nothing.
  bool can_vote = vote_ == m.from || (vote_ == kNoNode && lead_ == kNoNode) ||
                  (pre && m.term > term_);
  if (testing_.vote_twice_in_a_term) can_vote = true;  // Planted bug.
  Message resp;
  resp.type = pre ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  resp.to = m.from;
  // §5.4.1: only for a candidate whose log is at least as up to date.
  if (can_vote && log_.IsUpToDate(m.log_index, m.log_term)) {
    resp.term = m.term;  // For a pre-vote: the term it would campaign at.
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    resp.term = term_;
    resp.reject = true;
  }
  // The response term is set explicitly; Send() leaves it alone.
  msgs_.push_back(std::move(resp));
  msgs_.back().from = id_;
}

void Raft::StepLeader(const Message& m) {
  auto it = prs_.find(m.from);
  if (it == prs_.end()) return;  // Not a voter.
  Progress& pr = it->second;
  switch (m.type) {
    case MessageType::kAppendResponse:
      pr.recent_active = true;
      HandleAppendResponse(m, pr);
      break;
    case MessageType::kHeartbeatResponse:
      pr.recent_active = true;
      HandleHeartbeatResponse(m, pr);
      break;
    case MessageType::kReadIndex:
      LeaderReadIndex(m.from, m.context);
      break;
    default:
      break;  // Vote responses after winning, etc.
  }
}

void Raft::HandleAppendResponse(const Message& m, Progress& pr) {
  if (m.reject) {
    // Stale rejections (for an append older than what we know) are ignored.
    if (pr.state == Progress::State::kReplicate && m.log_index <= pr.match) {
      return;
    }
    if (pr.state != Progress::State::kReplicate && m.log_index + 1 != pr.next) {
      return;
    }
    if (m.log_index == LogIndex(0) && m.conflict_index == LogIndex(0)) {
      return;  // A stale-term rejection carries no hint.
    }
    // Fast backtracking: jump over the follower's whole conflicting term, or
    // to the end of its log, instead of one index per round trip.
    LogIndex next = m.conflict_index;
    if (m.conflict_term != Term(0)) {
      LogIndex i = std::min(m.log_index, log_.LastIndex());
      while (i > LogIndex(0)) {
        absl::StatusOr<Term> t = log_.TermAt(i);
        if (!t.ok() || *t <= m.conflict_term) {
          if (t.ok() && *t == m.conflict_term) next = i + 1;
          break;
        }
        i = i - 1;
      }
    }
    next = std::min(next, m.log_index);
    next = std::max(next, pr.match + 1);
    pr.next = next;
    pr.state = Progress::State::kProbe;
    pr.probe_sent = false;
    SendAppend(m.from);
    return;
  }
  bool updated = false;
  if (m.log_index > pr.match) {
    pr.match = m.log_index;
    updated = true;
  }
  if (pr.next < m.log_index + 1) pr.next = m.log_index + 1;
  pr.probe_sent = false;
  if (updated) {
    if (pr.state == Progress::State::kProbe) {
      pr.state = Progress::State::kReplicate;
    } else if (pr.state == Progress::State::kSnapshot &&
               pr.match >= pr.pending_snapshot) {
      pr.state = Progress::State::kReplicate;
      pr.next = pr.match + 1;
    }
  }
  if (updated && MaybeCommit()) {
    BroadcastAppend();
  } else if (pr.match < log_.LastIndex() &&
             pr.state != Progress::State::kSnapshot &&
             pr.next <= log_.LastIndex()) {
    SendAppend(m.from);
  }
  if (m.from == lead_transferee_ && pr.match == log_.LastIndex()) {
    Message tn;
    tn.type = MessageType::kTimeoutNow;
    tn.to = m.from;
    Send(std::move(tn));
  }
}

void Raft::HandleHeartbeatResponse(const Message& m, Progress& pr) {
  pr.probe_sent = false;
  if (pr.state == Progress::State::kSnapshot &&
      pr.snapshot_elapsed >= election_timeout_) {
    // The snapshot (or its acknowledgement) was probably lost: probe again,
    // which resends it if the follower still needs it.
    pr.state = Progress::State::kProbe;
    pr.next = pr.match + 1;
  }
  if (pr.match < log_.LastIndex() && pr.state != Progress::State::kSnapshot) {
    SendAppend(m.from);
  }
  if (!m.context.empty()) AddReadAck(m.from, m.context);
}

void Raft::StepCandidate(const Message& m) {
  const MessageType my_response = role_ == Role::kPreCandidate
                                      ? MessageType::kPreVoteResponse
                                      : MessageType::kVoteResponse;
  switch (m.type) {
    case MessageType::kAppend:
      BecomeFollower(m.term, m.from);  // §5.2: a leader of our term exists.
      HandleAppend(m);
      return;
    case MessageType::kHeartbeat:
      BecomeFollower(m.term, m.from);
      HandleHeartbeat(m);
      return;
    case MessageType::kSnapshot:
      BecomeFollower(m.term, m.from);
      HandleSnapshot(m);
      return;
    default:
      break;
  }
  if (m.type != my_response) return;
  auto [granted, rejected] = Poll(m.from, !m.reject);
  if (granted >= Quorum()) {
    if (role_ == Role::kPreCandidate) {
      CampaignImpl(CampaignType::kElection);
    } else {
      BecomeLeader();
    }
  } else if (rejected >= Quorum()) {
    BecomeFollower(term_, kNoNode);
  }
}

void Raft::StepFollower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleAppend(m);
      break;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleHeartbeat(m);
      break;
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleSnapshot(m);
      break;
    case MessageType::kTimeoutNow:
      // Leadership transfer: campaign immediately, skipping pre-vote and the
      // lease (the leader asked for it).
      if (Promotable()) CampaignImpl(CampaignType::kTransfer);
      break;
    case MessageType::kReadIndexResponse:
      read_states_.push_back(ReadState{m.log_index, m.context});
      break;
    default:
      break;
  }
}

void Raft::HandleAppend(const Message& m) {
  Message resp;
  resp.type = MessageType::kAppendResponse;
  resp.to = m.from;
  if (m.log_index < log_.committed()) {
    // Everything up to our commit index already matches the leader.
    resp.log_index = log_.committed();
    Send(std::move(resp));
    return;
  }
  std::optional<LogIndex> last =
      log_.MaybeAppend(m.log_index, m.log_term, m.commit, m.entries);
  if (last.has_value()) {
    resp.log_index = *last;
    Send(std::move(resp));
    return;
  }
  resp.reject = true;
  resp.log_index = m.log_index;
  if (m.log_index > log_.LastIndex()) {
    resp.conflict_index = log_.LastIndex() + 1;
    resp.conflict_term = Term(0);
  } else {
    const Term t = log_.TermOrZero(m.log_index);
    resp.conflict_term = t;
    resp.conflict_index = log_.FirstIndexOfTermRun(m.log_index, t);
  }
  Send(std::move(resp));
}

void Raft::HandleHeartbeat(const Message& m) {
  // The leader caps m.commit at our match index, so it is in our log.
  if (m.commit <= log_.LastIndex()) log_.CommitTo(m.commit);
  Message resp;
  resp.type = MessageType::kHeartbeatResponse;
  resp.to = m.from;
  resp.context = m.context;
  Send(std::move(resp));
}

void Raft::HandleSnapshot(const Message& m) {
  Message resp;
  resp.type = MessageType::kAppendResponse;
  resp.to = m.from;
  if (!m.snapshot.has_value()) return;
  const SnapshotMetadata& md = m.snapshot->metadata;
  if (md.index <= log_.committed()) {
    resp.log_index = log_.committed();
  } else if (log_.MatchTerm(md.index, md.term)) {
    // We already have the entry the snapshot ends with, hence everything
    // before it: just fast-forward the commit index.
    log_.CommitTo(md.index);
    resp.log_index = log_.committed();
  } else {
    log_.Restore(*m.snapshot);
    resp.log_index = log_.LastIndex();
  }
  Send(std::move(resp));
}

// ---------------------------------------------------------------------------
// Leader replication.

void Raft::Send(Message m) {
  m.from = id_;
  // Every message carries our term, except pre-vote requests (see
  // CampaignImpl), which set it themselves, and vote responses (see
  // HandleVoteRequest).
  if (m.type != MessageType::kPreVote && m.type != MessageType::kVote) {
    m.term = term_;
  }
  msgs_.push_back(std::move(m));
}

void Raft::SendAppend(NodeId to) {
  // In kReplicate, pipeline: keep sending batches (up to a window) until the
  // follower has been sent everything; otherwise one message.
  constexpr int kMaxBatchesPerCall = 8;
  int batches = 0;
  do {
    SendOneAppend(to);
  } while (++batches < kMaxBatchesPerCall &&
           prs_[to].state == Progress::State::kReplicate &&
           prs_[to].next <= log_.LastIndex());
}

void Raft::SendOneAppend(NodeId to) {
  Progress& pr = prs_[to];
  if (pr.state == Progress::State::kSnapshot) return;
  if (pr.state == Progress::State::kProbe && pr.probe_sent) return;
  absl::StatusOr<Term> prev_term = log_.TermAt(pr.next - 1);
  absl::StatusOr<std::vector<Entry>> ents;
  if (prev_term.ok())
    ents = log_.Slice(pr.next, log_.LastIndex() + 1, max_size_);
  if (!prev_term.ok() || !ents.ok()) {
    // The follower needs entries we compacted: send the snapshot instead.
    absl::StatusOr<Snapshot> snap = log_.GetSnapshot();
    if (!snap.ok() || snap->empty()) return;  // Retried on a later heartbeat.
    pr.state = Progress::State::kSnapshot;
    pr.pending_snapshot = snap->metadata.index;
    pr.snapshot_elapsed = 0;
    Message m;
    m.type = MessageType::kSnapshot;
    m.to = to;
    m.snapshot = std::move(*snap);
    Send(std::move(m));
    return;
  }
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.log_index = pr.next - 1;
  m.log_term = *prev_term;
  m.entries = std::move(*ents);
  m.commit = log_.committed();
  if (pr.state == Progress::State::kReplicate) {
    // Optimistic: assume delivery; a rejection moves us back to probing.
    if (!m.entries.empty()) pr.next = m.entries.back().index + 1;
  } else {
    pr.probe_sent = true;
  }
  Send(std::move(m));
}

void Raft::SendHeartbeat(NodeId to, const std::string& context) {
  Message m;
  m.type = MessageType::kHeartbeat;
  m.to = to;
  // Never tell a follower to commit past what it is known to hold.
  m.commit = std::min(prs_[to].match, log_.committed());
  m.context = context;
  Send(std::move(m));
}

void Raft::BroadcastAppend() {
  for (NodeId v : voters_) {
    if (v != id_) SendAppend(v);
  }
}

void Raft::BroadcastHeartbeat(const std::string& context) {
  for (NodeId v : voters_) {
    if (v != id_) SendHeartbeat(v, context);
  }
}

void Raft::AppendEntry(Entry e) {
  e.term = term_;
  e.index = log_.LastIndex() + 1;
  const LogIndex last = log_.Append({std::move(e)});
  // The leader's own entry counts towards the quorum at once: the driver
  // persists it before it sends or applies anything that depends on it.
  prs_[id_].match = last;
  prs_[id_].next = last + 1;
  MaybeCommit();
}

bool Raft::MaybeCommit() {
  std::vector<LogIndex> matches;
  for (NodeId v : voters_) matches.push_back(prs_[v].match);
  std::sort(matches.begin(), matches.end(), std::greater<LogIndex>());
  const LogIndex quorum_index = matches[Quorum() - 1];
  bool committed;
  if (testing_.commit_old_term_entries_by_count) {
    committed = log_.ForceCommit(quorum_index);  // Planted bug.
  } else {
    // §5.4.2: only entries from the leader's current term are committed by
    // counting replicas; earlier ones are committed indirectly.
    committed = log_.MaybeCommit(quorum_index, term_);
  }
  if (committed) ReleaseReadsWaitingForCommit();
  return committed;
}

bool Raft::CommittedEntryInCurrentTerm() const {
  return log_.TermOrZero(log_.committed()) == term_;
}

// ---------------------------------------------------------------------------
// Client requests.

absl::StatusOr<ProposalId> Raft::Propose(std::string data) {
  if (role_ != Role::kLeader) return NotLeaderError(lead_);
  if (lead_transferee_ != kNoNode) {
    return absl::UnavailableError(absl::StrCat("raft: leadership transfer to ",
                                               lead_transferee_.value(),
                                               " in progress"));
  }
  AppendEntry(Entry{term_, LogIndex(0), EntryType::kNormal, std::move(data)});
  BroadcastAppend();
  return ProposalId{log_.LastIndex(), term_};
}

absl::Status Raft::TransferLeadership(NodeId transferee) {
  if (role_ != Role::kLeader) return NotLeaderError(lead_);
  if (transferee == id_ || !IsVoter(transferee)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raft: cannot transfer leadership to ", transferee.value()));
  }
  lead_transferee_ = transferee;
  election_elapsed_ = 0;  // The attempt times out after an election timeout.
  Progress& pr = prs_[transferee];
  if (pr.match == log_.LastIndex()) {
    Message tn;
    tn.type = MessageType::kTimeoutNow;
    tn.to = transferee;
    Send(std::move(tn));
  } else {
    SendAppend(transferee);
  }
  return absl::OkStatus();
}

absl::Status Raft::ReadIndex(std::string context) {
  if (role_ == Role::kLeader) {
    LeaderReadIndex(id_, std::move(context));
    return absl::OkStatus();
  }
  if (lead_ == kNoNode) return NotLeaderError(kNoNode);
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = lead_;
  m.context = std::move(context);
  Send(std::move(m));
  return absl::OkStatus();
}

void Raft::LeaderReadIndex(NodeId from, std::string context) {
  PendingRead read{log_.committed(), from, std::move(context), {id_}};
  if (!CommittedEntryInCurrentTerm()) {
    // Until the leader commits in its term it does not know the commit index
    // (§8); the read index is fixed once it does.
    reads_waiting_for_commit_.push_back(std::move(read));
    return;
  }
  if (Quorum() == 1) {
    ReleaseRead(read);
    return;
  }
  pending_reads_.push_back(std::move(read));
  BroadcastHeartbeat(pending_reads_.back().context);
}

void Raft::ReleaseReadsWaitingForCommit() {
  if (reads_waiting_for_commit_.empty() || !CommittedEntryInCurrentTerm()) {
    return;
  }
  std::vector<PendingRead> waiting = std::move(reads_waiting_for_commit_);
  reads_waiting_for_commit_.clear();
  for (PendingRead& r : waiting) LeaderReadIndex(r.from, std::move(r.context));
}

void Raft::AddReadAck(NodeId from, const std::string& context) {
  auto it =
      std::find_if(pending_reads_.begin(), pending_reads_.end(),
                   [&](const PendingRead& r) { return r.context == context; });
  if (it == pending_reads_.end()) return;
  if (std::find(it->acks.begin(), it->acks.end(), from) == it->acks.end()) {
    it->acks.push_back(from);
  }
  if (static_cast<int>(it->acks.size()) < Quorum()) return;
  // A quorum acknowledged us as leader after this request (and so after all
  // earlier ones) arrived: release them all, in order.
  const size_t n = (it - pending_reads_.begin()) + 1;
  for (size_t i = 0; i < n; ++i) {
    ReleaseRead(pending_reads_.front());
    pending_reads_.pop_front();
  }
}

void Raft::ReleaseRead(const PendingRead& read) {
  if (read.from == id_) {
    read_states_.push_back(ReadState{read.index, read.context});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResponse;
  m.to = read.from;
  m.log_index = read.index;
  m.context = read.context;
  Send(std::move(m));
}

// ---------------------------------------------------------------------------
// Ready / Advance.

bool Raft::HasReady() const {
  return SoftState{lead_, role_} != prev_soft_state_ ||
         hard_state() != prev_hard_state_ || !log_.unstable_entries().empty() ||
         log_.unstable_snapshot().has_value() || !msgs_.empty() ||
         log_.HasNextCommittedEntries() || !read_states_.empty();
}

raft::Ready Raft::Ready() {
  raft::Ready rd;
  const SoftState ss{lead_, role_};
  if (ss != prev_soft_state_) {
    rd.soft_state = ss;
    prev_soft_state_ = ss;
  }
  const HardState hs = hard_state();
  if (hs != prev_hard_state_) {
    rd.hard_state = hs;
    prev_hard_state_ = hs;
  }
  if (log_.unstable_snapshot().has_value()) {
    rd.snapshot = *log_.unstable_snapshot();
    handed_out_snapshot_ = rd.snapshot->metadata.index;
  }
  rd.entries = log_.unstable_entries();
  if (!rd.entries.empty()) {
    handed_out_last_entry_ = {rd.entries.back().index, rd.entries.back().term};
  }
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.committed_entries = log_.NextCommittedEntries(max_size_);
  if (!rd.committed_entries.empty()) {
    handed_out_applied_ = rd.committed_entries.back().index;
  } else if (rd.snapshot.has_value()) {
    handed_out_applied_ = rd.snapshot->metadata.index;
  }
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  return rd;
}

void Raft::Advance() {
  if (handed_out_snapshot_.has_value()) {
    log_.StableSnapshotTo(*handed_out_snapshot_);
  }
  if (handed_out_last_entry_.has_value()) {
    log_.StableTo(handed_out_last_entry_->first,
                  handed_out_last_entry_->second);
  }
  if (handed_out_applied_.has_value()) {
    if (*handed_out_applied_ > log_.applied()) {
      log_.AppliedTo(*handed_out_applied_);
    }
  }
  handed_out_snapshot_.reset();
  handed_out_last_entry_.reset();
  handed_out_applied_.reset();
}

}  // namespace fjord::raft
