// RaftLog: the Raft core's view of the log, made of the durable part (read
// through Storage) followed by an unstable tail the driver has not yet
// persisted (handed out in Ready::entries / Ready::snapshot).
//
// Internal to the Raft core; not thread-safe.
#ifndef FJORD_CONTROLLER_RAFT_RAFT_LOG_H_
#define FJORD_CONTROLLER_RAFT_RAFT_LOG_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "controller/raft/storage.h"
#include "controller/raft/types.h"

namespace fjord::raft {

// Invariants:
//   applied <= committed <= LastIndex().
//   committed never decreases: a committed entry is, by Leader Completeness,
//     in every future leader's log, so no leader ever asks to overwrite it
//     (MaybeAppend treats such a request as a fatal bug).
//   Unstable entries, when present, are contiguous from unstable_offset_ and
//     override storage from that index on.
class RaftLog {
 public:
  explicit RaftLog(const Storage* storage);

  LogIndex FirstIndex() const;
  LogIndex LastIndex() const;
  Term LastTerm() const;
  // Term at `index`; CompactedError below FirstIndex() - 1, 0 past the end
  // (as if the log were padded with term-0 positions).
  absl::StatusOr<Term> TermAt(LogIndex index) const;
  // TermAt, with compacted positions reported as term 0 (never matching).
  Term TermOrZero(LogIndex index) const;
  bool MatchTerm(LogIndex index, Term term) const;

  // Entries in [lo, hi); CompactedError if lo is compacted.
  absl::StatusOr<std::vector<Entry>> Slice(LogIndex lo, LogIndex hi,
                                           uint64_t max_bytes) const;

  // §5.4.1: is (last_index, last_term) at least as up to date as our log?
  bool IsUpToDate(LogIndex last_index, Term last_term) const;

  // AppendEntries receiver rules 2-5: if our log has an entry at prev_index
  // with prev_term, store `entries` (truncating at the first conflict) and
  // advance commit to min(leader_commit, last new index); returns the last
  // new index. nullopt when the consistency check fails.
  std::optional<LogIndex> MaybeAppend(LogIndex prev_index, Term prev_term,
                                      LogIndex leader_commit,
                                      const std::vector<Entry>& entries);
  // Appends entries unconditionally (they must follow or overwrite the
  // uncommitted tail); returns the new last index.
  LogIndex Append(const std::vector<Entry>& entries);

  // Leader: commit up to `index` if the entry there is from `term`.
  bool MaybeCommit(LogIndex index, Term term);
  // Test-only planted bug: commit regardless of the entry's term.
  bool ForceCommit(LogIndex index);
  void CommitTo(LogIndex index);
  void AppliedTo(LogIndex index);

  // Replaces the log with `snapshot` (follower side of InstallSnapshot).
  void Restore(const Snapshot& snapshot);

  // First index of the term-`term` run that contains `index`, scanning back
  // no further than committed + 1 or the first stored index.
  LogIndex FirstIndexOfTermRun(LogIndex index, Term term) const;

  // Ready plumbing.
  const std::vector<Entry>& unstable_entries() const { return unstable_; }
  const std::optional<Snapshot>& unstable_snapshot() const {
    return unstable_snapshot_;
  }
  bool HasNextCommittedEntries() const;
  std::vector<Entry> NextCommittedEntries(uint64_t max_bytes) const;
  // The driver persisted entries up to `index` (whose term was `term`).
  void StableTo(LogIndex index, Term term);
  void StableSnapshotTo(LogIndex index);
  absl::StatusOr<Snapshot> GetSnapshot() const;

  LogIndex committed() const { return committed_; }
  LogIndex applied() const { return applied_; }
  // On restart: committed and applied as recovered from storage.
  void Init(LogIndex committed, LogIndex applied);

 private:
  const Storage* storage_;
  std::optional<Snapshot> unstable_snapshot_;
  std::vector<Entry> unstable_;
  LogIndex unstable_offset_;  // Index of unstable_[0] (or where it would be).
  LogIndex committed_;
  LogIndex applied_;
};

}  // namespace fjord::raft

#endif  // FJORD_CONTROLLER_RAFT_RAFT_LOG_H_
