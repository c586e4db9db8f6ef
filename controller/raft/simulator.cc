#include "controller/raft/simulator.h"

#include <algorithm>
#include <iostream>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "controller/raft/memory_storage.h"
#include "controller/raft/prng.h"

namespace fjord::raft {
namespace {

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

uint64_t HashBytes(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a.
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

uint64_t EntryHash(const Entry& e) {
  return Mix(HashBytes(e.data), static_cast<uint64_t>(e.type) + 1);
}

// Phase lengths and fault rates (per million per step unless noted).
constexpr int kMaxDelaySteps = 24;
constexpr uint32_t kDropPpm = 50000;       // 5% of messages lost...
constexpr uint32_t kDuplicatePpm = 20000;  // ...2% duplicated.
constexpr uint32_t kReorderPpm = 100000;   // 10% may overtake others.
constexpr uint32_t kCrashDuringReadyPpm = 5000;
constexpr int64_t kCalmBudgetSteps = 6000;

}  // namespace

std::string SimStats::ToString() const {
  return absl::StrCat("steps=", steps, " events=", events,
                      " delivered=", messages_delivered,
                      " leaders=", leaders_elected, " max_term=", max_term,
                      " max_commit=", max_commit, " acked=", proposals_acked,
                      " reads=", reads_answered, " crashes=", crashes,
                      " snapshots_installed=", snapshots_installed,
                      " compactions=", compactions, " transfers=", transfers,
                      " calm_phases=", calm_phases);
}

class Simulator::Impl {
 public:
  explicit Impl(const SimOptions& o) : opts_(o), rng_(o.seed) {
    for (int i = 1; i <= o.nodes; ++i) voters_.push_back(NodeId(i));
    nodes_.resize(o.nodes);
    for (int i = 0; i < o.nodes; ++i) {
      nodes_[i].id = NodeId(i + 1);
      nodes_[i].disk = std::make_unique<MemoryStorage>();
    }
    // Index 0 of the committed history is the empty log.
    chain_.push_back(0);
    applied_terms_.push_back(Term(0));
    committed_terms_.push_back(Term(0));
  }

  absl::Status Run() {
    for (SimNode& n : nodes_) {
      absl::Status s = Restart(n);
      if (!s.ok()) return Fail(s.ToString());
    }
    StartChaos();
    for (stats_.steps = 0; stats_.steps < opts_.steps; ++stats_.steps) {
      ++now_;
      absl::Status s = OneStep();
      if (s.ok()) s = CheckInvariants();
      if (s.ok()) s = PhaseBookkeeping();
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  const SimStats& stats() const { return stats_; }

 private:
  struct SimNode {
    NodeId id;
    std::unique_ptr<MemoryStorage> disk;  // Survives crashes.
    std::unique_ptr<Raft> raft;           // Null while crashed.
    // State machine: the applied index and a hash chain over applied entries.
    LogIndex sm_applied;
    uint64_t sm_hash = 0;
    // Observations for monotonicity checks.
    LogIndex last_commit;
    HardState persisted;
    Role last_role = Role::kFollower;
    Term last_term;
  };
  struct InFlight {
    Message m;
    int64_t deliver_at;
    uint64_t seq;      // Send order.
    bool may_reorder;  // Reordering fault: may overtake earlier messages.
  };
  struct PendingRead {
    NodeId node;
    LogIndex must_see;  // Highest acknowledged write when the read started.
  };

  absl::Status Fail(const std::string& what) const {
    return absl::InternalError(absl::StrCat(
        "raft simulator: seed=", opts_.seed, " nodes=", opts_.nodes, " step=",
        stats_.steps, ": ", what, " (reproduce with --seed=", opts_.seed, ")"));
  }

  void Log(const std::string& s) {
    if (opts_.verbose) std::cerr << "[" << stats_.steps << "] " << s << "\n";
  }

  SimNode& Node(NodeId id) { return nodes_[id.value() - 1]; }
  int Quorum() const { return opts_.nodes / 2 + 1; }

  // ---- Phases ------------------------------------------------------------

  void StartChaos() {
    chaos_ = true;
    phase_end_ = now_ + 2000 + static_cast<int64_t>(rng_.Uniform(8000));
  }

  void StartCalm() {
    chaos_ = false;
    ++stats_.calm_phases;
    partition_.assign(opts_.nodes, 0);
    for (SimNode& n : nodes_) {
      if (!n.raft) restart_error_ = Restart(n);
    }
    calm_acked_before_ = stats_.proposals_acked;
    phase_end_ = now_ + kCalmBudgetSteps;
  }

  absl::Status PhaseBookkeeping() {
    if (!restart_error_.ok()) return Fail(restart_error_.ToString());
    if (now_ < phase_end_) {
      // Calm phase ends early once the cluster proved it is live.
      if (!chaos_ && stats_.proposals_acked > calm_acked_before_ + 3) {
        StartChaos();
      }
      return absl::OkStatus();
    }
    if (chaos_) {
      StartCalm();
      return absl::OkStatus();
    }
    if (stats_.proposals_acked <= calm_acked_before_) {
      return Fail(absl::StrCat("liveness: no proposal committed within ",
                               kCalmBudgetSteps, " fault-free steps"));
    }
    StartChaos();
    return absl::OkStatus();
  }

  // ---- Events ------------------------------------------------------------

  // Picks one event. When the chosen kind has nothing to do (no message due,
  // no Ready pending) the step is idle: simulated time just passes.
  absl::Status OneStep() {
    const uint64_t r = rng_.Uniform(1000);
    if (r < 500) {
      if (DeliverOne()) {
        ++stats_.events;
      } else if (opts_.busy_clock) {
        TickOne();
      }
    } else if (r < 750) {
      if (SimNode* n = RandomNodeWithReady()) {
        ++stats_.events;
        return ProcessReady(*n);
      }
      if (opts_.busy_clock) TickOne();
    } else if (r < 870) {
      ++stats_.events;
      TickOne();
    } else if (r < 930) {
      ++stats_.events;
      Propose();
    } else if (r < 950) {
      ++stats_.events;
      Read();
    } else if (r < 955) {
      ++stats_.events;
      return Compact();
    } else if (r < 957) {
      ++stats_.events;
      Transfer();
    } else if (r < 965 && chaos_) {
      ++stats_.events;
      return Fault();
    } else if (opts_.busy_clock) {
      ++stats_.events;
      TickOne();
    }
    return absl::OkStatus();
  }

  SimNode* RandomUpNode() {
    const int start = static_cast<int>(rng_.Uniform(opts_.nodes));
    for (int k = 0; k < opts_.nodes; ++k) {
      SimNode& n = nodes_[(start + k) % opts_.nodes];
      if (n.raft) return &n;
    }
    return nullptr;
  }

  SimNode* RandomNodeWithReady() {
    const int start = static_cast<int>(rng_.Uniform(opts_.nodes));
    for (int k = 0; k < opts_.nodes; ++k) {
      SimNode& n = nodes_[(start + k) % opts_.nodes];
      if (n.raft && n.raft->HasReady()) return &n;
    }
    return nullptr;
  }

  SimNode* Leader() {
    SimNode* best = nullptr;
    for (SimNode& n : nodes_) {
      if (n.raft && n.raft->role() == Role::kLeader &&
          (best == nullptr || n.raft->term() > best->raft->term())) {
        best = &n;
      }
    }
    return best;
  }

  void TickOne() {
    if (SimNode* n = RandomUpNode()) n->raft->Tick();
  }

  bool Connected(NodeId a, NodeId b) const {
    return partition_[a.value() - 1] == partition_[b.value() - 1];
  }

  bool DeliverOne() {
    // Any message whose delay elapsed, chosen at random: reordering.
    size_t candidates = 0;
    for (const InFlight& f : network_) {
      if (f.deliver_at <= now_) ++candidates;
    }
    if (candidates == 0) return false;
    size_t pick = rng_.Uniform(candidates);
    size_t i = 0;
    for (;; ++i) {
      if (network_[i].deliver_at <= now_ && pick-- == 0) break;
    }
    // Links are FIFO (like a gRPC stream) unless a message was marked for
    // reordering: deliver the oldest message on the picked link instead.
    if (!network_[i].may_reorder) {
      for (size_t j = 0; j < network_.size(); ++j) {
        if (network_[j].seq < network_[i].seq && !network_[j].may_reorder &&
            network_[j].m.from == network_[i].m.from &&
            network_[j].m.to == network_[i].m.to) {
          i = j;
        }
      }
    }
    Message m = std::move(network_[i].m);
    network_[i] = std::move(network_.back());
    network_.pop_back();
    SimNode& to = Node(m.to);
    if (!to.raft || !Connected(m.from, m.to)) return true;  // Lost.
    ++stats_.messages_delivered;
    stats_.fingerprint = Mix(stats_.fingerprint,
                             static_cast<uint64_t>(m.type) * 31 + m.to.value());
    Log(absl::StrCat("deliver ", MessageTypeName(m.type), " ", m.from.value(),
                     "->", m.to.value(), " t", m.term.value(), " i",
                     m.log_index.value(), " lt", m.log_term.value(), " n",
                     m.entries.size(), " c", m.commit.value(),
                     m.reject ? " REJECT" : "", " ci", m.conflict_index.value(),
                     " ct", m.conflict_term.value()));
    (void)to.raft->Step(m);
    return true;
  }

  void SendToNetwork(Message m) {
    if (chaos_ && rng_.Chance(kDropPpm)) return;
    const int copies = chaos_ && rng_.Chance(kDuplicatePpm) ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      const bool reorder = chaos_ && rng_.Chance(kReorderPpm);
      int64_t at = now_ + static_cast<int64_t>(rng_.Uniform(kMaxDelaySteps));
      int64_t& link_last = link_last_[{m.from.value(), m.to.value()}];
      if (!reorder) {
        at = std::max(at, link_last);
        link_last = at;
      }
      network_.push_back(InFlight{m, at, ++send_seq_, reorder});
    }
  }

  absl::Status ProcessReady(SimNode& n) {
    raft::Ready rd = n.raft->Ready();
    // 1. Persist snapshot, entries and hard state: one atomic write.
    if (rd.snapshot.has_value()) {
      absl::Status s = n.disk->ApplySnapshot(*rd.snapshot);
      if (!s.ok())
        return Fail(absl::StrCat("node ", n.id.value(),
                                 " cannot persist snapshot: ", s.ToString()));
    }
    if (!rd.entries.empty()) {
      absl::Status s = n.disk->Append(rd.entries);
      if (!s.ok()) return Fail(absl::StrCat("append: ", s.ToString()));
      for (const Entry& e : rd.entries) {
        absl::Status c = CheckLogMatching(n, e);
        if (!c.ok()) return c;
      }
    }
    if (rd.hard_state.has_value()) {
      absl::Status s = PersistHardState(n, *rd.hard_state);
      if (!s.ok()) return s;
    }
    // A crash here loses the messages and the application of this Ready.
    if (chaos_ && rng_.Chance(kCrashDuringReadyPpm)) {
      Crash(n, "after persisting");
      return absl::OkStatus();
    }
    // 2. Send.
    for (Message& m : rd.messages) SendToNetwork(std::move(m));
    // 3. Apply.
    if (rd.snapshot.has_value()) {
      absl::Status s = RestoreStateMachine(n, *rd.snapshot);
      if (!s.ok()) return s;
      ++stats_.snapshots_installed;
    }
    for (const Entry& e : rd.committed_entries) {
      absl::Status s = Apply(n, e);
      if (!s.ok()) return s;
    }
    for (const ReadState& rs : rd.read_states) {
      absl::Status s = CheckRead(n, rs);
      if (!s.ok()) return s;
    }
    // 4. Advance.
    n.raft->Advance();
    return absl::OkStatus();
  }

  void Propose() {
    SimNode* n = chaos_ ? RandomUpNode() : Leader();
    if (n == nullptr) n = RandomUpNode();
    if (n == nullptr) return;
    std::string data = absl::StrCat("v", ++value_counter_);
    absl::StatusOr<ProposalId> id = n->raft->Propose(data);
    if (!id.ok()) return;
    Log(absl::StrCat("propose ", data, " at ", n->id.value(), " idx ",
                     id->index.value()));
    proposals_[data] = *id;
  }

  void Read() {
    SimNode* n = RandomUpNode();
    if (n == nullptr) return;
    std::string ctx = absl::StrCat("r", ++read_counter_);
    if (!n->raft->ReadIndex(ctx).ok()) return;
    reads_[ctx] = PendingRead{n->id, max_acked_index_};
  }

  absl::Status Compact() {
    SimNode* n = RandomUpNode();
    if (n == nullptr) return absl::OkStatus();
    absl::StatusOr<Snapshot> cur = n->disk->GetSnapshot();
    if (n->sm_applied <= cur->metadata.index + 2) return absl::OkStatus();
    absl::StatusOr<Snapshot> snap = n->disk->CreateSnapshot(
        n->sm_applied, voters_, EncodeState(n->sm_applied, n->sm_hash));
    if (!snap.ok()) {
      return Fail(absl::StrCat("create snapshot: ", snap.status().ToString()));
    }
    // Keep a few entries after compaction, sometimes none.
    const uint64_t keep = rng_.Uniform(4);
    LogIndex upto = n->sm_applied;
    if (upto.value() > keep) upto = upto - keep;
    if (upto >= n->disk->FirstIndex()) {
      absl::Status s = n->disk->Compact(upto);
      if (!s.ok()) return Fail(absl::StrCat("compact: ", s.ToString()));
    }
    ++stats_.compactions;
    return absl::OkStatus();
  }

  void Transfer() {
    SimNode* l = Leader();
    if (l == nullptr || opts_.nodes == 1) return;
    NodeId to(1 + rng_.Uniform(opts_.nodes));
    if (to == l->id) return;
    if (l->raft->TransferLeadership(to).ok()) ++stats_.transfers;
  }

  absl::Status Fault() {
    const uint64_t r = rng_.Uniform(100);
    if (r < 30) {
      if (SimNode* n = RandomUpNode()) Crash(*n, "random");
    } else if (r < 60) {
      for (SimNode& n : nodes_) {
        if (!n.raft) {
          absl::Status s = Restart(n);
          if (!s.ok()) return Fail(s.ToString());
          break;
        }
      }
    } else if (r < 80) {
      // Random partition into two groups.
      for (int i = 0; i < opts_.nodes; ++i) {
        partition_[i] = static_cast<int>(rng_.Uniform(2));
      }
      Log("partition");
    } else {
      partition_.assign(opts_.nodes, 0);
      Log("heal");
    }
    return absl::OkStatus();
  }

  void Crash(SimNode& n, const char* why) {
    Log(absl::StrCat("crash ", n.id.value(), " (", why, ")"));
    ++stats_.crashes;
    n.raft.reset();
    for (auto it = reads_.begin(); it != reads_.end();) {
      if (it->second.node == n.id) {
        reads_.erase(it++);
      } else {
        ++it;
      }
    }
  }

  absl::Status Restart(SimNode& n) {
    Log(absl::StrCat("restart ", n.id.value()));
    Config c;
    c.id = n.id;
    c.voters = voters_;
    c.election_tick = opts_.election_tick;
    c.heartbeat_tick = opts_.heartbeat_tick;
    c.pre_vote = opts_.pre_vote;
    c.check_quorum = opts_.check_quorum;
    c.storage = n.disk.get();
    c.seed = rng_.Next();
    c.testing = opts_.knobs;
    // Small (often single-entry) batches exercise pipelining and backtracking.
    c.max_size_per_message = rng_.Uniform(48);
    // The state machine restarts from the persisted snapshot.
    absl::StatusOr<Snapshot> snap = n.disk->GetSnapshot();
    n.sm_applied = LogIndex(0);
    n.sm_hash = 0;
    if (!snap->empty()) {
      absl::Status s = DecodeState(snap->data, &n.sm_applied, &n.sm_hash);
      if (!s.ok()) return s;
    }
    c.applied = n.sm_applied;
    absl::StatusOr<std::unique_ptr<Raft>> r = Raft::Create(c);
    if (!r.ok()) return r.status();
    n.raft = std::move(*r);
    n.last_commit = n.raft->commit();
    n.last_role = Role::kFollower;
    n.last_term = n.raft->term();
    return absl::OkStatus();
  }

  // ---- State machine -----------------------------------------------------

  static std::string EncodeState(LogIndex applied, uint64_t hash) {
    return absl::StrCat(applied.value(), ":", hash);
  }

  absl::Status DecodeState(const std::string& data, LogIndex* applied,
                           uint64_t* hash) const {
    std::vector<std::string> parts = absl::StrSplit(data, ':');
    uint64_t a = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &a) ||
        !absl::SimpleAtoi(parts[1], hash)) {
      return Fail(absl::StrCat("corrupt snapshot data '", data, "'"));
    }
    *applied = LogIndex(a);
    return absl::OkStatus();
  }

  absl::Status RestoreStateMachine(SimNode& n, const Snapshot& snap) {
    LogIndex applied;
    uint64_t hash = 0;
    absl::Status s = DecodeState(snap.data, &applied, &hash);
    if (!s.ok()) return s;
    if (applied != snap.metadata.index) {
      return Fail("snapshot metadata index differs from its state");
    }
    if (applied.value() >= chain_.size() || chain_[applied.value()] != hash) {
      return Fail(absl::StrCat("state machine safety: snapshot at ",
                               applied.value(),
                               " differs from the applied history"));
    }
    n.sm_applied = applied;
    n.sm_hash = hash;
    return absl::OkStatus();
  }

  absl::Status Apply(SimNode& n, const Entry& e) {
    if (e.index != n.sm_applied + 1) {
      return Fail(absl::StrCat("node ", n.id.value(), " applies index ",
                               e.index.value(), " after ",
                               n.sm_applied.value()));
    }
    n.sm_applied = e.index;
    n.sm_hash = Mix(n.sm_hash, EntryHash(e));
    const uint64_t i = e.index.value();
    if (i < chain_.size()) {
      if (chain_[i] != n.sm_hash || applied_terms_[i] != e.term) {
        return Fail(absl::StrCat("state machine safety: node ", n.id.value(),
                                 " applied a different entry at ", i));
      }
    } else {
      chain_.push_back(n.sm_hash);
      applied_terms_.push_back(e.term);
      stats_.fingerprint = Mix(stats_.fingerprint, n.sm_hash);
    }
    if (e.type == EntryType::kNormal) {
      auto it = proposals_.find(e.data);
      if (it != proposals_.end()) {
        if (it->second.index == e.index && it->second.term == e.term) {
          ++stats_.proposals_acked;
          max_acked_index_ = std::max(max_acked_index_, e.index);
        }
        proposals_.erase(it);
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckRead(SimNode& n, const ReadState& rs) {
    auto it = reads_.find(rs.context);
    if (it == reads_.end()) return absl::OkStatus();  // From before a crash.
    if (rs.index < it->second.must_see) {
      return Fail(absl::StrCat("linearizability: read ", rs.context,
                               " on node ", n.id.value(), " got read index ",
                               rs.index.value(), " below acknowledged write ",
                               it->second.must_see.value()));
    }
    ++stats_.reads_answered;
    reads_.erase(it);
    return absl::OkStatus();
  }

  // ---- Persistence checks ------------------------------------------------

  absl::Status CheckLogMatching(SimNode& n, const Entry& e) {
    absl::StatusOr<Term> prev = n.disk->TermAt(e.index - 1);
    if (!prev.ok()) return Fail("persisted log has a hole");
    const std::pair<uint64_t, uint64_t> key{e.index.value(), e.term.value()};
    const std::pair<uint64_t, uint64_t> val{EntryHash(e), prev->value()};
    auto [it, inserted] = seen_entries_.emplace(key, val);
    if (!inserted && it->second != val) {
      return Fail(absl::StrCat("log matching: node ", n.id.value(),
                               " persisted a different entry or history at "
                               "index ",
                               e.index.value(), " term ", e.term.value()));
    }
    return absl::OkStatus();
  }

  absl::Status PersistHardState(SimNode& n, const HardState& hs) {
    const HardState& old = n.persisted;
    if (hs.term < old.term) return Fail("persisted term moved back");
    if (hs.commit < old.commit) {
      return Fail(absl::StrCat("persisted commit of node ", n.id.value(),
                               " moved back from ", old.commit.value(), " to ",
                               hs.commit.value()));
    }
    if (opts_.check_persisted_votes && hs.term == old.term &&
        old.vote != kNoNode && hs.vote != old.vote) {
      return Fail(absl::StrCat("node ", n.id.value(), " voted for ",
                               old.vote.value(), " and then ", hs.vote.value(),
                               " in term ", hs.term.value()));
    }
    n.disk->SetHardState(hs);
    n.persisted = hs;
    // Everything up to hs.commit is committed: extend the known history, or
    // check this node's log against it.
    const uint64_t c = hs.commit.value();
    const uint64_t frontier = committed_terms_.size() - 1;
    // Re-check the last few known commits (cheap) and extend past the
    // frontier.
    const uint64_t base = std::min(c, frontier);
    for (uint64_t i = base > 8 ? base - 8 : 1; i <= c; ++i) {
      absl::StatusOr<Term> t = n.disk->TermAt(LogIndex(i));
      if (!t.ok()) {
        if (i <= frontier) continue;  // Compacted into a checked snapshot.
        return Fail(absl::StrCat("node ", n.id.value(), " committed ", c,
                                 " but lacks entry ", i));
      }
      if (i <= frontier) {
        if (committed_terms_[i] != *t) {
          return Fail(absl::StrCat("committed entry ", i, " lost: node ",
                                   n.id.value(), " has term ", t->value(),
                                   " where term ", committed_terms_[i].value(),
                                   " was committed"));
        }
      } else {
        committed_terms_.push_back(*t);
      }
    }
    stats_.max_commit = std::max<int64_t>(stats_.max_commit, c);
    return absl::OkStatus();
  }

  // ---- Per-step invariants -----------------------------------------------

  absl::Status CheckInvariants() {
    for (SimNode& n : nodes_) {
      if (!n.raft) continue;
      const Raft& r = *n.raft;
      if (r.commit() < n.last_commit) {
        return Fail(
            absl::StrCat("commit index of node ", n.id.value(), " moved back"));
      }
      n.last_commit = r.commit();
      stats_.max_term = std::max<int64_t>(stats_.max_term, r.term().value());
      if (r.role() == Role::kLeader &&
          (n.last_role != Role::kLeader || n.last_term != r.term())) {
        auto [it, inserted] = leaders_.emplace(r.term().value(), n.id.value());
        if (!inserted && it->second != n.id.value()) {
          return Fail(absl::StrCat("election safety: nodes ", it->second,
                                   " and ", n.id.value(),
                                   " both leaders in term ", r.term().value()));
        }
        ++stats_.leaders_elected;
        Log(absl::StrCat("leader ", n.id.value(), " term ", r.term().value()));
        // Leader completeness: the newest committed entry is in its log.
        const LogIndex m(committed_terms_.size() - 1);
        if (r.log().FirstIndex() <= m) {
          absl::StatusOr<Term> t = r.log().TermAt(m);
          if (!t.ok() || *t != committed_terms_[m.value()]) {
            return Fail(absl::StrCat(
                "leader completeness: leader ", n.id.value(), " of term ",
                r.term().value(), " lacks committed entry ", m.value()));
          }
        }
      }
      n.last_role = r.role();
      n.last_term = r.term();
    }
    // Durability: the newest committed entry is persisted on a quorum.
    const LogIndex m(committed_terms_.size() - 1);
    if (m > LogIndex(0)) {
      int holders = 0;
      for (SimNode& n : nodes_) {
        absl::StatusOr<Term> t = n.disk->TermAt(m);
        if ((t.ok() && *t == committed_terms_[m.value()]) ||
            n.disk->FirstIndex() > m) {
          ++holders;
        }
      }
      if (holders < Quorum()) {
        return Fail(absl::StrCat("durability: committed entry ", m.value(),
                                 " persisted on only ", holders, " nodes"));
      }
    }
    return absl::OkStatus();
  }

  const SimOptions opts_;
  Prng rng_;
  std::vector<NodeId> voters_;
  std::vector<SimNode> nodes_;
  std::vector<InFlight> network_;
  std::vector<int> partition_ = std::vector<int>(opts_.nodes, 0);
  int64_t now_ = 0;
  uint64_t send_seq_ = 0;
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, int64_t> link_last_;
  bool chaos_ = true;
  int64_t phase_end_ = 0;
  int64_t calm_acked_before_ = 0;
  absl::Status restart_error_;

  // Global history, indexed by log index.
  std::vector<uint64_t> chain_;        // State hash after applying index i.
  std::vector<Term> applied_terms_;    // Term of the entry applied at i.
  std::vector<Term> committed_terms_;  // Term of the entry committed at i.
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>,
                      std::pair<uint64_t, uint64_t>>
      seen_entries_;  // (index, term) -> (hash, prev term).
  absl::flat_hash_map<uint64_t, uint64_t> leaders_;  // term -> leader.

  uint64_t value_counter_ = 0;
  uint64_t read_counter_ = 0;
  absl::flat_hash_map<std::string, ProposalId> proposals_;
  absl::flat_hash_map<std::string, PendingRead> reads_;
  LogIndex max_acked_index_;
  SimStats stats_;
};

Simulator::Simulator(const SimOptions& options)
    : impl_(std::make_unique<Impl>(options)) {}
Simulator::~Simulator() = default;
absl::Status Simulator::Run() { return impl_->Run(); }
const SimStats& Simulator::stats() const { return impl_->stats(); }

}  // namespace fjord::raft
