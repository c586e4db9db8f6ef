// RocksDbRaftStorage: the durable Storage for a Raft node, one RocksDB
// database in a directory of its own.
//
// On-disk format (default column family; all integers are 64-bit big endian,
// so keys sort by index):
//
//   "v"              format version: the single byte 0x01.
//   "h"              hard state: term(8) vote(8) commit(8).
//   "o"              log offset: index(8) term(8) of the position just before
//                    the first stored entry (the last compacted or
//                    snapshotted position; 0/0 for a log that starts at 1).
//   "s"              latest snapshot: index(8) term(8) voter_count(8)
//                    voter_id(8) * voter_count, then the opaque state-machine
//                    data up to the end of the value. Absent = empty snapshot.
//   "e" index(8)     one log entry: term(8) type(1) data(rest). Stored entry
//                    keys are exactly offset+1 .. last, without holes.
//
// Every mutating call below builds ONE rocksdb::WriteBatch and writes it with
// WriteOptions::sync = true before returning, so a successful return means the
// change is durable (fsync'ed WAL) and all of it or none of it survives a
// crash. The in-memory view (offset, per-entry terms, hard state, snapshot) is
// updated only after the write succeeded; a failed write leaves it unchanged.
//
// Thread-safety: none, like MemoryStorage. The Raft core reads it from the
// driver thread and the driver writes it from that same thread.
#ifndef FJORD_CONTROLLER_RAFT_ROCKSDB_STORAGE_H_
#define FJORD_CONTROLLER_RAFT_ROCKSDB_STORAGE_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controller/raft/storage.h"
#include "controller/raft/types.h"

namespace rocksdb {
class DB;
}  // namespace rocksdb

namespace fjord::raft {

// Invariants (in memory, mirrored on disk):
//   terms_.size() == LastIndex() - offset_ + 1, terms_[k] is the term of the
//   entry at offset_ + k, and terms_[0] is the offset's term;
//   snapshot_.metadata.index >= offset_ unless the snapshot is empty, i.e. the
//   log never starts after the snapshot (entries between offset_ + 1 and the
//   snapshot index may still be stored).
class RocksDbRaftStorage : public Storage {
 public:
  // Opens (creating if missing) the database in `dir`, which must be used by
  // nothing else, and loads hard state, snapshot and the terms of the stored
  // entries. Errors: INTERNAL or UNAVAILABLE from RocksDB (e.g. the directory
  // is locked by another process); DATA_LOSS if the stored log is
  // inconsistent (a hole, an unreadable record); FAILED_PRECONDITION for an
  // unknown format version.
  static absl::StatusOr<std::unique_ptr<RocksDbRaftStorage>> Open(
      const std::string& dir);

  ~RocksDbRaftStorage() override;
  RocksDbRaftStorage(const RocksDbRaftStorage&) = delete;
  RocksDbRaftStorage& operator=(const RocksDbRaftStorage&) = delete;

  // Storage.
  absl::StatusOr<InitialState> GetInitialState() const override;
  absl::StatusOr<std::vector<Entry>> Entries(LogIndex lo, LogIndex hi,
                                             uint64_t max_bytes) const override;
  absl::StatusOr<Term> TermAt(LogIndex index) const override;
  LogIndex FirstIndex() const override;
  LogIndex LastIndex() const override;
  absl::StatusOr<Snapshot> GetSnapshot() const override;

  // Persists step 1 of a Ready in one synced write: `snapshot` (if set)
  // replaces the whole log, then `entries` are appended (with Append's
  // rules), then `hard_state` (if set) is stored. Errors: as ApplySnapshot
  // and Append (nothing is written then), or RocksDB's write error.
  absl::Status SaveReady(const std::optional<HardState>& hard_state,
                         const std::vector<Entry>& entries,
                         const std::optional<Snapshot>& snapshot);

  // The write side of MemoryStorage, each one synced write.
  absl::Status SetHardState(const HardState& hs);
  const HardState& hard_state() const { return hard_state_; }

  // Appends `entries`, which must be contiguous and start at or below
  // LastIndex() + 1; a stored suffix from entries[0].index on is replaced
  // (the conflicting-suffix truncation of AppendEntries). Entries at or below
  // the log offset are ignored. INTERNAL for a hole, INVALID_ARGUMENT for
  // non-contiguous input.
  absl::Status Append(const std::vector<Entry>& entries);

  // Replaces the whole log with `snapshot` (InstallSnapshot on a follower).
  // CompactedError (and no change) when `snapshot` is older than the stored
  // one.
  absl::Status ApplySnapshot(const Snapshot& snapshot);

  // Application side: records a snapshot of the state machine as of `index`
  // (in [offset, LastIndex()], newer than the stored snapshot) without
  // compacting. CompactedError when not newer; INVALID_ARGUMENT when outside
  // the stored log.
  absl::StatusOr<Snapshot> CreateSnapshot(LogIndex index,
                                          std::vector<NodeId> voters,
                                          std::string data);

  // Application side: discards entries up to and including `compact_index`,
  // which must be above the current offset (else CompactedError) and at most
  // min(LastIndex(), snapshot index) (else INVALID_ARGUMENT).
  absl::Status Compact(LogIndex compact_index);

  // Index of the stored snapshot (0 if none).
  LogIndex SnapshotIndex() const { return snapshot_.metadata.index; }

 private:
  explicit RocksDbRaftStorage(std::unique_ptr<rocksdb::DB> db);
  absl::Status Load();

  std::unique_ptr<rocksdb::DB> db_;
  HardState hard_state_;
  Snapshot snapshot_;
  LogIndex offset_;  // Last compacted position; the log starts at offset_+1.
  std::deque<Term> terms_;  // See the class invariants.
};

}  // namespace fjord::raft

#endif  // FJORD_CONTROLLER_RAFT_ROCKSDB_STORAGE_H_
