// The Raft core's read-only view of durable state.
//
// Raft never writes to Storage. The driver writes what Ready hands out (hard
// state, entries, snapshots) and the application compacts the log; Raft reads
// the result back through this interface. MemoryStorage is the in-memory
// implementation; a RocksDB one (one synced WriteBatch per Ready) will follow.
#ifndef FJORD_CONTROLLER_RAFT_STORAGE_H_
#define FJORD_CONTROLLER_RAFT_STORAGE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controller/raft/types.h"

namespace fjord::raft {

// The returned status when a requested index was compacted into a snapshot.
absl::Status CompactedError();
bool IsCompacted(const absl::Status& status);
// The returned status when a requested index is past the last stored entry.
absl::Status UnavailableEntryError();
bool IsUnavailableEntry(const absl::Status& status);
// The returned status when no snapshot is available yet (the leader retries).
absl::Status SnapshotTemporarilyUnavailableError();

struct InitialState {
  HardState hard_state;
};

// Implementations need not be thread-safe: the Raft core calls them from the
// single driver thread, and the driver must not mutate the storage while a
// Raft call is in progress.
//
// The stored log is a contiguous range [FirstIndex(), LastIndex()] preceded by
// a snapshot (possibly empty, index 0 term 0) that covers FirstIndex() - 1.
class Storage {
 public:
  virtual ~Storage() = default;

  // The persisted hard state. A fresh storage returns all zeros.
  virtual absl::StatusOr<InitialState> GetInitialState() const = 0;

  // Entries in [lo, hi), truncated after the first entry that makes the total
  // data size exceed `max_bytes` (at least one entry is always returned).
  // CompactedError if lo < FirstIndex(); UnavailableEntryError if
  // hi > LastIndex() + 1.
  virtual absl::StatusOr<std::vector<Entry>> Entries(
      LogIndex lo, LogIndex hi, uint64_t max_bytes) const = 0;

  // Term of the entry at `index`, for index in [FirstIndex() - 1, LastIndex()]
  // (FirstIndex() - 1 answers from the snapshot metadata). CompactedError
  // below that range, UnavailableEntryError above it.
  virtual absl::StatusOr<Term> TermAt(LogIndex index) const = 0;

  virtual LogIndex FirstIndex() const = 0;
  virtual LogIndex LastIndex() const = 0;

  // The most recent snapshot. SnapshotTemporarilyUnavailableError if the
  // application is still producing it.
  virtual absl::StatusOr<Snapshot> GetSnapshot() const = 0;
};

}  // namespace fjord::raft

#endif  // FJORD_CONTROLLER_RAFT_STORAGE_H_
