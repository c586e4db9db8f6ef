// RaftNode: the real driver around the pure Raft core. It owns the core, its
// RocksDB storage, one driver thread, a gRPC sender per peer and the inbound
// RaftService, and plugs an application StateMachine into the committed log.
//
// Driver thread (the only thread that touches the core, the storage and the
// state machine). Each iteration:
//   1. waits until a message, proposal, read or transfer request is queued or
//      the next tick is due (ticks come from this timed wait, so there is no
//      separate ticker thread; a driver stalled in fsync simply ticks later,
//      which only delays elections);
//   2. feeds them to the core in that order: Tick, Step, Propose, ReadIndex;
//   3. runs the Ready loop in etcd's order: persist snapshot + entries + hard
//      state in ONE synced RocksDB WriteBatch, then hand messages to the peer
//      senders, then restore the snapshot / apply committed entries to the
//      state machine and answer waiting proposals and reads, then Advance;
//   4. takes a state-machine snapshot every `snapshot_interval` applied
//      entries and compacts the log behind it.
// A failed persist or state-machine restore is fatal (LOG(FATAL)): the
// process restarts from what is durable, as Raft assumes.
//
// Transport: a sender thread per peer with a bounded queue, shipping
// everything queued as one unary RaftService.Step call (deadline
// `rpc_timeout`). A full queue, a failed call or a peer in backoff after a
// failure drops messages: Raft retransmits. Calls on one link are never
// concurrent, so a link delivers in order.
//
// Timeouts (defaults, per DESIGN.md "Timeouts on small machines"): tick
// 100 ms, heartbeat every tick, election timeout uniform in [10, 20) ticks =
// 1-2 s. Tests shorten `tick_interval`.
#ifndef FJORD_CONTROLLER_RAFT_NODE_H_
#define FJORD_CONTROLLER_RAFT_NODE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/raft/types.h"
#include "controller/raft/voters.h"

namespace grpc {
class ServerBuilder;
class Service;
}  // namespace grpc

namespace fjord::raft {

class Raft;
class RocksDbRaftStorage;

// The replicated application. All three methods are called only from the
// RaftNode's driver thread (never concurrently with each other); reads by
// other threads need the application's own locking.
class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // Applies the committed entry at `index` (written in `term`). Called once
  // per normal entry, in log order, with no gaps except where Restore jumped
  // ahead. Must be deterministic.
  virtual void Apply(LogIndex index, Term term, absl::string_view data) = 0;
  // Serializes the whole state as of the last applied entry.
  virtual std::string Snapshot() = 0;
  // Replaces the whole state with a Snapshot() image (taken here or on the
  // leader). An error is fatal to the node.
  virtual absl::Status Restore(absl::string_view data) = 0;
};

struct RaftNodeOptions {
  NodeId id;
  // All voters, including `id`, with their RaftService addresses.
  std::vector<Voter> voters;
  // Directory of this node's RocksDB Raft log (created if missing; nothing
  // else may use it).
  std::string data_dir;

  absl::Duration tick_interval = absl::Milliseconds(100);
  // Election timeout is uniform in [election_ticks, 2 * election_ticks).
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  // Take a snapshot after this many entries applied since the last one.
  uint64_t snapshot_interval = 10000;
  // Entries kept in the log behind a snapshot, so that a briefly lagging
  // follower catches up from the log rather than by snapshot.
  uint64_t snapshot_keep_entries = 1000;
  // Deadline of one Step call to a peer (calls carrying a snapshot get 10x).
  absl::Duration rpc_timeout = absl::Seconds(1);
  // Messages queued per peer before new ones are dropped.
  size_t peer_queue_limit = 1024;
  // Messages queued for the driver before peers get RESOURCE_EXHAUSTED.
  size_t inbound_queue_limit = 8192;
  // Upper bound on entry bytes per append message.
  uint64_t max_size_per_message = 1 << 20;
  // How long a clean Stop() waits for leadership to move (0: two maximum
  // election timeouts).
  absl::Duration transfer_timeout = absl::ZeroDuration();
  // Seed of the election-timeout PRNG; 0 picks a random one.
  uint64_t seed = 0;
};

// What `fjord cluster describe` shows about the quorum, as this node sees it.
struct RaftNodeStatus {
  struct Peer {
    NodeId id;
    std::string address;
    // Leader only: highest log index known to be replicated there.
    LogIndex match;
    // Transport counters since Start.
    uint64_t sent = 0;       // Messages delivered to the peer's RaftService.
    uint64_t dropped = 0;    // Messages dropped (queue full, peer down).
    bool reachable = false;  // The last Step call succeeded.
  };
  NodeId id;
  std::vector<Voter> voters;
  NodeId leader;  // kNoNode when unknown.
  Term term;
  Role role = Role::kFollower;
  LogIndex commit;
  LogIndex applied;
  LogIndex first_index;  // First entry still in the log.
  LogIndex last_index;
  LogIndex snapshot_index;
  bool running = false;
  std::vector<Peer> peers;  // Every voter but this node.
};

// Thread-safety: every public method is thread-safe unless noted.
//
// Lifecycle: Create -> RegisterService (before the caller builds its
// grpc::Server) -> Start -> ... -> Stop -> destroy. The grpc::Server the
// service is registered on must be shut down before the RaftNode is
// destroyed (the service object lives here). A node is started at most once;
// to restart, destroy it and Create a new one on the same data_dir.
class RaftNode {
 public:
  // Opens the Raft log in options.data_dir and restores `state_machine`
  // (which must be empty, and must outlive the node) from the latest
  // snapshot; the committed entries after it are re-applied once started.
  // Errors: INVALID_ARGUMENT for a bad configuration (id not among the
  // voters, duplicate ids, bad timeouts); storage errors from
  // RocksDbRaftStorage::Open; a Restore error.
  static absl::StatusOr<std::unique_ptr<RaftNode>> Create(
      RaftNodeOptions options, StateMachine* state_machine);

  // Stop(/*transfer_leadership=*/false) if still running.
  ~RaftNode();

  RaftNode(const RaftNode&) = delete;
  RaftNode& operator=(const RaftNode&) = delete;

  // Registers the inbound RaftService on `builder`, and raises the builder's
  // maximum receive message size to 64 MiB (snapshots travel in one
  // message). Call before builder->BuildAndStart(). Until Start (and after
  // Stop) the service answers UNAVAILABLE.
  void RegisterService(grpc::ServerBuilder* builder);

  // Starts the driver and peer senders. A single-voter node campaigns at
  // once. FAILED_PRECONDITION if already started.
  absl::Status Start();

  // Stops the node. With `transfer_leadership` (clean shutdown) a leader
  // first hands leadership to its most up-to-date peer and waits up to
  // transfer_timeout for it to move; without it (or on timeout) it just
  // stops, and the others elect a new leader after an election timeout. New
  // requests fail with UNAVAILABLE from the moment Stop is called; waiting
  // ones fail with UNAVAILABLE (for a proposal: outcome unknown). Idempotent.
  void Stop(bool transfer_leadership = true);

  // Replicates `data` as one log entry and returns its index once it is
  // committed AND applied to the local state machine. Errors:
  //   UNAVAILABLE: this node is not the leader (raft::LeaderHint(status)
  //     names the leader it knows, kNoNode if none), a leadership transfer
  //     is in progress, the entry was overwritten by another leader's log
  //     (it will never commit), or the node is stopping/not started;
  //   DEADLINE_EXCEEDED: `deadline` passed first, or the outcome cannot be
  //     known (e.g. leadership was lost and a snapshot replaced the log
  //     there): the entry may or may not commit.
  // `deadline` is a wall-clock instant, like a gRPC deadline; it is turned
  // into a monotonic one on entry (common/clock.h), and the node's own timers
  // (ticks, back-offs) run on the monotonic clock.
  absl::StatusOr<LogIndex> Propose(std::string data, absl::Time deadline);

  // Linearizable read barrier: returns OK once the local state machine has
  // applied at least a read index the leader confirmed after this call began
  // (so reads of the local state then reflect every write acknowledged before
  // the call). Works on followers (one round trip to the leader). Errors:
  // UNAVAILABLE when no leader is known, leadership changed before the leader
  // answered (retry), or the node is not running; DEADLINE_EXCEEDED.
  absl::Status ReadIndex(absl::Time deadline);

  // Cached views, refreshed by the driver after every iteration. IsLeader()
  // may be briefly stale (a deposed leader learns it late); Propose and
  // ReadIndex never rely on it.
  bool IsLeader() const;
  NodeId LeaderId() const;  // kNoNode when unknown.
  Term term() const;
  RaftNodeStatus GetStatus() const;

  NodeId id() const { return options_.id; }
  const RaftNodeOptions& options() const { return options_; }

 private:
  class PeerSender;
  class Service;
  struct ProposalWaiter;
  struct ReadWaiter;
  struct PendingProposal;

  RaftNode(RaftNodeOptions options, StateMachine* state_machine);

  // Called by the inbound service: queues decoded messages for the driver.
  absl::Status Deliver(std::vector<Message> messages);

  void DriverLoop();
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Driver thread only (below).
  void HandleReady();
  void ApplySnapshot(const Snapshot& snapshot);
  void ApplyEntry(const Entry& entry);
  void ReleaseReads();
  void MaybeSnapshot();
  void StartTransfer();
  void ExpireWaiters(absl::Time now);
  void FailReadsAwaitingLeader(const absl::Status& status);
  void PublishStatus();
  absl::Status NotLeader(absl::string_view why) const;

  const RaftNodeOptions options_;
  StateMachine* const sm_;
  std::unique_ptr<RocksDbRaftStorage> storage_;
  std::unique_ptr<Raft> raft_;  // Driver thread only once started.
  std::map<NodeId, std::unique_ptr<PeerSender>> peers_;
  std::unique_ptr<Service> service_;
  const uint64_t read_nonce_;

  // Driver-thread state.
  LogIndex applied_;
  std::map<LogIndex, PendingProposal> pending_proposals_;
  std::map<std::string, std::shared_ptr<ReadWaiter>> reads_awaiting_leader_;
  std::multimap<LogIndex, std::shared_ptr<ReadWaiter>> reads_awaiting_apply_;
  uint64_t read_seq_ = 0;
  absl::Time next_tick_;  // monotonic (common/clock.h), as waiters' deadlines
  NodeId last_leader_;

  std::thread driver_;

  mutable absl::Mutex mu_;
  // Lifecycle.
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool accepting_ ABSL_GUARDED_BY(mu_) = false;  // Client requests taken.
  bool stop_driver_ ABSL_GUARDED_BY(mu_) = false;
  // Inbox for the driver.
  std::vector<Message> inbound_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<ProposalWaiter>> proposals_in_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<ReadWaiter>> reads_in_ ABSL_GUARDED_BY(mu_);
  bool transfer_requested_ ABSL_GUARDED_BY(mu_) = false;
  // Published by the driver.
  RaftNodeStatus status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fjord::raft

#endif  // FJORD_CONTROLLER_RAFT_NODE_H_
