// LeaderEpochCache: which leader epoch wrote which part of a partition's log
// (Kafka's leader-epoch-checkpoint, KIP-101).
//
// Every batch carries the epoch of the leader that appended it
// (record_batch.h). The cache keeps, for each epoch that wrote at least one
// batch still in the log, the offset of its first batch: a list of (epoch,
// start_offset) entries. A follower that may have diverged from a new leader
// asks the leader "where does my last epoch end in your log?"
// (OffsetsForLeaderEpoch, KIP-279) and truncates there, so replicas never keep
// records the new leader never had.
//
// Invariants (checked by Append):
//   - epochs strictly increase from one entry to the next;
//   - start offsets strictly increase from one entry to the next;
//   - so the cache is sorted both ways and entry i covers the offsets
//     [start_offset(i), start_offset(i + 1)), the last one up to the log end.
//
// This is a value type with no I/O and no locking; PartitionLog (log_store.h)
// owns one per partition, persists it in the same RocksDB WriteBatch as the
// append or truncation that changes it, and guards it with its own lock.
//
// Encoded form (the value of the "epochs/<cf name>" key, see log_store.h):
//
//   offset      size  field
//   0           1     format          = 1
//   1 + 12*i    4     epoch           big-endian int32, entry i
//   5 + 12*i    8     start_offset    big-endian int64, entry i
//
// An encoding with no entry (just the format byte) is an empty cache.
#ifndef FJORD_STORAGE_LEADER_EPOCH_CACHE_H_
#define FJORD_STORAGE_LEADER_EPOCH_CACHE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fjord::storage {

// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
inline constexpr int32_t kUndefinedEpoch = -1;
inline constexpr int64_t kUndefinedEpochOffset = -1;

// One cache entry: the first batch of `epoch` still in the log is at
// `start_offset`.
struct EpochEntry {
  int32_t epoch = 0;
  int64_t start_offset = 0;

  bool operator==(const EpochEntry&) const = default;
};

// The answer to OffsetsForLeaderEpoch: see LeaderEpochCache::EndOffsetFor.
struct EpochEndOffset {
  int32_t epoch = kUndefinedEpoch;
  int64_t end_offset = kUndefinedEpochOffset;

  bool undefined() const { return epoch == kUndefinedEpoch; }
  bool operator==(const EpochEndOffset&) const = default;
};

class LeaderEpochCache {
 public:
  LeaderEpochCache() = default;
  // INVALID_ARGUMENT unless `entries` satisfies the invariants above.
  static absl::StatusOr<LeaderEpochCache> FromEntries(
      std::vector<EpochEntry> entries);

  const std::vector<EpochEntry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

  // The epoch of the last entry; kUndefinedEpoch when empty.
  int32_t LatestEpoch() const {
    return entries_.empty() ? kUndefinedEpoch : entries_.back().epoch;
  }

  // Records that a batch of `epoch` was appended at `base_offset`, the log end
  // offset. Returns true when that added an entry (epoch > LatestEpoch()),
  // false when the batch continues the latest epoch. FAILED_PRECONDITION, with
  // the cache unchanged, when `epoch` < LatestEpoch() (a leader of an older
  // epoch must not write after a newer one: it has been fenced), or when a new
  // epoch would start at or below the latest entry's start offset.
  // INVALID_ARGUMENT for a negative epoch.
  absl::StatusOr<bool> Append(int32_t epoch, int64_t base_offset);
  // What Append would return, without changing the cache.
  absl::StatusOr<bool> CheckAppend(int32_t epoch, int64_t base_offset) const;

  // Drops every entry whose start offset is >= `end_offset` (the log was
  // truncated to end there). Returns true when something was dropped.
  bool TruncateFromEnd(int64_t end_offset);

  // OffsetsForLeaderEpoch for a log whose end offset is `log_end_offset`:
  //   - epoch:      the largest cached epoch <= `requested`;
  //   - end_offset: the start offset of the first cached epoch > `requested`,
  //                 or `log_end_offset` when `requested` >= LatestEpoch()
  //                 (the requested epoch, or a later one this replica never
  //                 wrote, is still open-ended here);
  //   - {kUndefinedEpoch, kUndefinedEpochOffset} when the cache is empty or
  //     `requested` is below the first cached epoch.
  // A follower whose latest epoch is E asks the leader for E, gets (E', off),
  // looks E' up in its own cache, getting (F, own_off), and truncates to
  // min(off, own_off); if F != E' it has no batch of E' and asks again for F
  // from that point (KIP-279). UNDEFINED: truncate to the high watermark.
  //
  // Differences from Kafka's LeaderEpochFileCache.endOffsetFor: Kafka assigns
  // the new leader's epoch at election (before any batch), so a requested
  // epoch above the latest is UNDEFINED there; here the cache only learns an
  // epoch from a batch, so such a request is answered with the latest epoch
  // and the log end, which is what Kafka would answer had it assigned the
  // epoch. Kafka answers a requested epoch below the first cached one with
  // (requested, first start offset) for logs whose head was deleted by
  // retention; this cache, with no retention yet, answers UNDEFINED and lets
  // the follower fall back to its high watermark.
  EpochEndOffset EndOffsetFor(int32_t requested, int64_t log_end_offset) const;

  // See the encoded form in the file comment.
  std::string Encode() const;
  // DATA_LOSS if `encoded` is malformed or breaks the invariants.
  static absl::StatusOr<LeaderEpochCache> Decode(absl::string_view encoded);

  bool operator==(const LeaderEpochCache&) const = default;

 private:
  std::vector<EpochEntry> entries_;
};

}  // namespace fjord::storage

#endif  // FJORD_STORAGE_LEADER_EPOCH_CACHE_H_
