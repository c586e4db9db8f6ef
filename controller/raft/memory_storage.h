// MemoryStorage: the in-memory Storage used by tests and the simulator, where
// it plays the role of the disk (what is in it survives a simulated crash).
#ifndef FJORD_CONTROLLER_RAFT_MEMORY_STORAGE_H_
#define FJORD_CONTROLLER_RAFT_MEMORY_STORAGE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controller/raft/storage.h"
#include "controller/raft/types.h"

namespace fjord::raft {

// Invariant: ents_ is never empty; ents_[0] is a dummy entry carrying the
// snapshot's index and term, and ents_[k].index == ents_[0].index + k.
// Not thread-safe.
class MemoryStorage : public Storage {
 public:
  MemoryStorage();

  // Storage.
  absl::StatusOr<InitialState> GetInitialState() const override;
  absl::StatusOr<std::vector<Entry>> Entries(LogIndex lo, LogIndex hi,
                                             uint64_t max_bytes) const override;
  absl::StatusOr<Term> TermAt(LogIndex index) const override;
  LogIndex FirstIndex() const override;
  LogIndex LastIndex() const override;
  absl::StatusOr<Snapshot> GetSnapshot() const override;

  // Driver-side writes (what Ready hands out).
  void SetHardState(const HardState& hs) { hard_state_ = hs; }
  const HardState& hard_state() const { return hard_state_; }

  // Appends `entries`, which must be contiguous and start at or below
  // LastIndex() + 1; a stored suffix from entries[0].index on is replaced.
  // Entries at or below the snapshot index are ignored.
  absl::Status Append(const std::vector<Entry>& entries);

  // Replaces the whole log with `snapshot`. Fails with CompactedError (and
  // changes nothing) when `snapshot` is older than the stored one.
  absl::Status ApplySnapshot(const Snapshot& snapshot);

  // Application-side: records a snapshot of the state machine as of `index`
  // (which must be in [snapshot index, LastIndex()]) without compacting.
  absl::StatusOr<Snapshot> CreateSnapshot(LogIndex index,
                                          std::vector<NodeId> voters,
                                          std::string data);

  // Application-side: discards entries up to and including `compact_index`,
  // which must not exceed the snapshot index (so that a follower that needs
  // the discarded entries can be sent the snapshot instead). Compacting below
  // the current first index fails with CompactedError.
  absl::Status Compact(LogIndex compact_index);

 private:
  HardState hard_state_;
  Snapshot snapshot_;
  std::vector<Entry> ents_;
};

}  // namespace fjord::raft

#endif  // FJORD_CONTROLLER_RAFT_MEMORY_STORAGE_H_
