// Vocabulary types of the Raft core: strong identifiers, log entries, the
// durable hard state, snapshots, wire messages and the Ready batch.
//
// Everything here is a plain value type. Messages are flat structs whose
// fields map one-to-one onto a protobuf message (see Message below), so the
// gRPC transport that follows is a mechanical translation.
#ifndef FJORD_CONTROLLER_RAFT_TYPES_H_
#define FJORD_CONTROLLER_RAFT_TYPES_H_

#include <compare>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace fjord::raft {

// A value of type T that is distinct from every other NamedType, even with the
// same T: a Term cannot be passed where a LogIndex is expected, and neither
// converts implicitly to or from an integer. Ordinal types (Term, LogIndex)
// also support adding and subtracting a plain count.
template <typename T, typename Tag, bool kOrdinal>
class NamedType {
 public:
  using ValueType = T;

  constexpr NamedType() : value_() {}
  constexpr explicit NamedType(T value) : value_(value) {}

  constexpr T value() const { return value_; }

  constexpr auto operator<=>(const NamedType&) const = default;

  constexpr NamedType operator+(T delta) const requires kOrdinal {
    return NamedType(value_ + delta);
  }
  constexpr NamedType operator-(T delta) const requires kOrdinal {
    return NamedType(value_ - delta);
  }
  constexpr NamedType& operator++() requires kOrdinal {
    ++value_;
    return *this;
  }

  friend std::ostream& operator<<(std::ostream& os, const NamedType& v) {
    return os << v.value_;
  }
  template <typename H>
  friend H AbslHashValue(H h, const NamedType& v) {
    return H::combine(std::move(h), v.value_);
  }

 private:
  T value_;
};

// A Raft term: a logical epoch with at most one leader (§5.1). 0 means "no
// term yet"; the first election produces term 1.
using Term = NamedType<uint64_t, struct TermTag, true>;
// A position in the Raft log, 1-based. 0 is the empty-log position whose term
// is 0; a snapshot at index i replaces positions 1..i.
using LogIndex = NamedType<uint64_t, struct LogIndexTag, true>;
// A voter's identity, fixed by static configuration. 0 is "no node".
using NodeId = NamedType<uint64_t, struct NodeIdTag, false>;

inline constexpr NodeId kNoNode{0};

enum class EntryType : uint8_t {
  // Application data, handed to the state machine when committed.
  kNormal = 0,
  // The empty entry a new leader appends at the start of its term (§8) so that
  // it can commit (and learn the commit index of) everything before it.
  kNoOp = 1,
};

struct Entry {
  Term term;
  LogIndex index;
  EntryType type = EntryType::kNormal;
  std::string data;

  bool operator==(const Entry&) const = default;
};

// The state a node must persist before it sends any message that depends on
// it (Figure 2, "Persistent state on all servers"), plus the commit index so
// that a restarted node does not re-derive commits it already exposed.
struct HardState {
  Term term;
  NodeId vote = kNoNode;  // Candidate voted for in `term`, or kNoNode.
  LogIndex commit;

  bool operator==(const HardState&) const = default;
};

struct SnapshotMetadata {
  LogIndex index;  // Last log position the snapshot covers.
  Term term;       // Term of the entry at `index`.
  std::vector<NodeId> voters;

  bool operator==(const SnapshotMetadata&) const = default;
};

// A state-machine image that replaces log positions 1..metadata.index.
struct Snapshot {
  SnapshotMetadata metadata;
  std::string data;  // Opaque to Raft.

  bool empty() const { return metadata.index == LogIndex(0); }
  bool operator==(const Snapshot&) const = default;
};

enum class MessageType : uint8_t {
  kPreVote = 0,          // Would you vote for me at `term`? (no state change)
  kPreVoteResponse = 1,  //
  kVote = 2,             // RequestVote (§5.2).
  kVoteResponse = 3,     //
  kAppend = 4,           // AppendEntries (§5.3).
  kAppendResponse = 5,   // Also acknowledges kSnapshot.
  kHeartbeat = 6,        // Empty AppendEntries that carries only commit.
  kHeartbeatResponse = 7,
  kSnapshot = 8,    // InstallSnapshot (§7).
  kTimeoutNow = 9,  // Leadership transfer: campaign now (thesis §3.10).
  kReadIndex = 10,  // Follower forwards a ReadIndex request to the leader.
  kReadIndexResponse = 11,
};

const char* MessageTypeName(MessageType type);

// One message between two Raft nodes. Which fields are meaningful depends on
// `type`; unused fields keep their zero values. Every message carries the
// sender's current term (for kPreVote: the term it would campaign at; for a
// granted kPreVoteResponse: the term from the request).
struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term;

  // kAppend: index and term of the entry preceding `entries` (prevLogIndex,
  //   prevLogTerm).
  // kVote, kPreVote: index and term of the candidate's last entry.
  // kAppendResponse: when accepted, the last index now known to match the
  //   leader; when rejected, the `log_index` of the rejected kAppend.
  // kReadIndexResponse: the read index.
  LogIndex log_index;
  Term log_term;

  // kAppend: entries to store, starting at log_index + 1.
  std::vector<Entry> entries;

  // kAppend, kHeartbeat: the leader's commit index (for a heartbeat, capped at
  // the recipient's known match index).
  LogIndex commit;

  // kAppendResponse, kVoteResponse, kPreVoteResponse: the request was refused.
  bool reject = false;

  // kAppendResponse with reject: fast-backtracking hint. `conflict_term` is
  // the follower's term at the rejected index (0 if its log is too short) and
  // `conflict_index` the first index the follower holds in that term (or its
  // last index + 1 when the log is too short).
  LogIndex conflict_index;
  Term conflict_term;

  // kSnapshot: the snapshot to install.
  std::optional<Snapshot> snapshot;

  // kHeartbeat(Response), kReadIndex(Response): the ReadIndex request this
  // round confirms. kVote, kPreVote: "transfer" when the campaign was caused by
  // kTimeoutNow, which lets the vote bypass the leader lease.
  std::string context;
};

// Messages are compared in tests.
bool operator==(const Message& a, const Message& b);

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };

const char* RoleName(Role role);

// Volatile state the driver may want to observe (not persisted).
struct SoftState {
  NodeId leader = kNoNode;
  Role role = Role::kFollower;
  bool operator==(const SoftState&) const = default;
};

// The answer to a ReadIndex request: once the local state machine has applied
// `index`, reading it is linearizable with respect to every write that was
// acknowledged before the request was made.
struct ReadState {
  LogIndex index;
  std::string context;
  bool operator==(const ReadState&) const = default;
};

// Work the driver must do, in this order (see Raft::Ready):
//   1. persist `snapshot` (if any), then `entries`, then `hard_state`, durably
//      and atomically;
//   2. send `messages`;
//   3. restore the state machine from `snapshot` (if any) and apply
//      `committed_entries` in order;
//   4. call Raft::Advance().
struct Ready {
  std::optional<SoftState> soft_state;  // Set when it changed.
  std::optional<HardState> hard_state;  // Set when it changed.
  std::optional<Snapshot> snapshot;  // Set when a snapshot must be installed.
  std::vector<Entry> entries;        // Append (overwriting any suffix from
                                     // entries[0].index on).
  std::vector<Message> messages;
  std::vector<Entry> committed_entries;
  std::vector<ReadState> read_states;
};

}  // namespace fjord::raft

#endif  // FJORD_CONTROLLER_RAFT_TYPES_H_
