// A deterministic simulator for the Raft core: N nodes, a faulty network and
// crashing disks-that-survive, all driven by one seeded PRNG, with Raft's
// safety properties checked after every step.
//
// One step is one event: deliver a message, tick one node, run one node's
// Ready cycle (persist, maybe crash, send, apply, Advance), propose, read,
// compact, transfer leadership, crash or restart a node, or change the
// partition. Runs alternate between a chaos phase (all faults) and a calm
// phase (no faults; a leader must be elected and a proposal committed within
// a bounded number of steps: the liveness sanity check).
//
// Invariants checked (a violation stops the run with seed and step):
//   - election safety: at most one leader per term;
//   - log matching: entries persisted anywhere with the same index and term
//     have the same content and the same predecessor term (which by
//     induction makes the logs identical up to there);
//   - leader completeness: a node becoming leader holds the highest committed
//     entry (so, by log matching, all of them);
//   - state machine safety: no two nodes apply different entries at an index,
//     and snapshots carry the state every node had at their index;
//   - durability: the highest committed entry is persisted on a quorum, and a
//     node's persisted commit index, term and vote never move back;
//   - commit index of a live node never decreases;
//   - linearizable reads: a ReadIndex answer is at least the index of every
//     write acknowledged before the read was issued.
//
// Not thread-safe. Same options, same run, bit for bit.
#ifndef FJORD_CONTROLLER_RAFT_SIMULATOR_H_
#define FJORD_CONTROLLER_RAFT_SIMULATOR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "controller/raft/raft.h"

namespace fjord::raft {

struct SimOptions {
  int nodes = 3;
  uint64_t seed = 1;
  int64_t steps = 100000;
  int election_tick = 10;
  int heartbeat_tick = 2;
  bool pre_vote = true;
  bool check_quorum = true;
  // Also flag a persisted vote that changes within a term (a direct check of
  // "one vote per term"). Off to prove the election-safety check alone
  // catches a double vote.
  bool check_persisted_votes = true;
  // Tick a node whenever a step would otherwise be idle: many more elections
  // relative to replication (leader churn), which is what it takes for bugs
  // like committing old-term entries by counting to show.
  bool busy_clock = false;
  TestingKnobs knobs;
  // Print every event to stderr (for reproducing a failure).
  bool verbose = false;
};

struct SimStats {
  int64_t steps = 0;
  int64_t events =
      0;  // Steps that did something (the rest only let time pass).
  int64_t messages_delivered = 0;
  int64_t leaders_elected = 0;
  int64_t max_term = 0;
  int64_t max_commit = 0;
  int64_t proposals_acked = 0;
  int64_t reads_answered = 0;
  int64_t crashes = 0;
  int64_t snapshots_installed = 0;
  int64_t compactions = 0;
  int64_t transfers = 0;
  int64_t calm_phases = 0;
  // Digest of the whole run, to check determinism.
  uint64_t fingerprint = 0;

  std::string ToString() const;
};

class Simulator {
 public:
  explicit Simulator(const SimOptions& options);
  ~Simulator();

  // Runs options.steps steps. OK, or INTERNAL naming the seed, the step and
  // the violated property.
  absl::Status Run();
  const SimStats& stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fjord::raft

#endif  // FJORD_CONTROLLER_RAFT_SIMULATOR_H_
