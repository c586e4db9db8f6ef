// LogStore: the partition logs of one broker data directory, in one RocksDB
// instance.
//
// Layout on disk:
//   - one column family per partition replica, named
//     "p.<topic_id>.<partition>";
//     key   = 8-byte big-endian base offset of a batch (keys sort by offset),
//     value = the encoded batch (record_batch.h), CRC-checked on every read;
//   - in the "default" column family, for each partition:
//     "lso/<cf name>"    its log start offset, 8-byte big-endian (written when
//                        retention moves it; absent means 0);
//     "epochs/<cf name>" its leader epoch cache (encoded as described in
//                        leader_epoch_cache.h), written in the same WriteBatch
//                        as the append or truncation that changes it, so it
//                        always matches the batches on disk. A log written
//                        before the cache existed has no such key: its cache
//                        is rebuilt from the batch headers on open and stored;
//     "hw/<cf name>"     its high watermark checkpoint, 8-byte big-endian,
//                        written lazily (see PartitionLog::SetHighWatermark),
//                        so a lower bound of the last high watermark set;
//   - the "default" column family also holds a small metadata key space
//     (PutMeta and friends) that the broker uses for its local cluster
//     metadata.
//
// The log end offset is not stored: on open it is recomputed from the last
// batch of each column family (its base offset + record count), so it can never
// disagree with the data.
//
// Durability: Append returns only once the batch is as durable as the
// FsyncPolicy promises (docs/GUARANTEES.md). Appends from many threads, to one
// partition or many, are group-committed: concurrent appends are merged into
// one RocksDB WriteBatch, one WAL write and (with kAlways) one fsync.
//
// Thread safety: LogStore and PartitionLog are thread-safe.
#ifndef FJORD_STORAGE_LOG_STORE_H_
#define FJORD_STORAGE_LOG_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "storage/leader_epoch_cache.h"

namespace fjord::storage {

enum class FsyncPolicy {
  kAlways,    // fsync the WAL before an append returns (default)
  kInterval,  // fsync the WAL every StoreOptions::fsync_interval
  kNever,     // leave flushing to the OS: survives process, not OS, crashes
};

// Parses "always", "interval" or "never"; INVALID_ARGUMENT otherwise.
absl::StatusOr<FsyncPolicy> ParseFsyncPolicy(absl::string_view name);
absl::string_view FsyncPolicyName(FsyncPolicy policy);

struct StoreOptions {
  // Directory of the RocksDB instance; created if missing.
  std::string data_dir;
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  // With kInterval: how often the WAL is synced.
  absl::Duration fsync_interval = absl::Milliseconds(100);
  // Memory all partitions' memtables may use together (RocksDB
  // WriteBufferManager). This, not the partition count, bounds write memory.
  size_t write_buffer_budget_bytes = size_t{256} << 20;
  // Shared block cache for reads.
  size_t block_cache_bytes = size_t{64} << 20;
  // How often a background thread writes the high watermarks that changed
  // since they were last written, like Kafka's
  // replica.high.watermark.checkpoint.interval.ms. High watermarks are also
  // written with each partition's next append and on Close.
  absl::Duration high_watermark_checkpoint_interval = absl::Seconds(5);
  // Read every block of every table file when opening and compare its
  // checksum (RocksDB's DB::VerifyChecksum), so that data damaged at rest (a
  // flipped bit, a truncated file) is found before anything is served from
  // it. Costs one sequential read of the whole store per start. Damage in the
  // write-ahead log and the MANIFEST, and table files of the wrong size, are
  // found by opening either way; damage that appears while running, by the
  // checksums of every read (DATA_LOSS).
  bool verify_checksums_on_open = true;

  // Testing only (the chaos suite's lose-unsynced-data fault and its planted
  // bug). sync_journal_path: write through a FileSystem that journals every
  // sync there (storage/sync_journal_fs.h). planted_skip_fsync: never sync
  // appends, whatever `fsync` says: a bug planted on purpose so a test can show
  // that the fault is caught.
  std::string sync_journal_path;
  bool planted_skip_fsync = false;
};

// Names a partition replica: the topic's id (not its name, so that a topic
// deleted and recreated under the same name never sees old data) and the
// partition index.
struct PartitionId {
  std::string topic_id;
  int32_t partition = 0;

  std::string ColumnFamilyName() const;
  bool operator==(const PartitionId&) const = default;
};

// Where an append landed.
struct AppendResult {
  int64_t base_offset = 0;
  int64_t last_offset = 0;  // base_offset + record_count - 1
};

// One stored batch as read back: its base offset and its encoded bytes, already
// validated against their CRC.
struct StoredBatch {
  int64_t base_offset = 0;
  int32_t record_count = 0;
  std::string data;
};

// Counters describing the store's write path since Open. `rocksdb_writes` below
// `appends` is group commit at work: several appends shared one WAL write (and,
// with kAlways, one fsync).
struct LogStoreStats {
  uint64_t appends = 0;         // successful Append and AppendReplicated calls
  uint64_t append_bytes = 0;    // their batch bytes
  uint64_t rocksdb_writes = 0;  // RocksDB WriteBatches written for appends
  uint64_t largest_group = 0;   // most appends merged into one write
};

class LogStore;

// The log of one partition replica. Handles stay valid after the partition is
// dropped, but every call then fails with NOT_FOUND.
class PartitionLog {
 public:
  virtual ~PartitionLog() = default;

  virtual const PartitionId& id() const = 0;

  // Appends one encoded batch (record_batch.h) at the log end: its records get
  // offsets [log_end_offset, log_end_offset + record_count). Returns once the
  // batch is durable per the store's FsyncPolicy. DATA_LOSS if `batch` fails
  // validation; NOT_FOUND if the partition was dropped; UNAVAILABLE if the
  // store is closing; INTERNAL on an I/O error (after which the log end offset
  // is unchanged).
  //
  // The batch's header leader_epoch feeds the leader epoch cache: a batch of an
  // epoch above LatestEpoch() starts a new entry at its base offset, atomically
  // with the batch. FAILED_PRECONDITION (nothing written) if the epoch is below
  // LatestEpoch(): a newer leader has written to this log, so the writer was
  // fenced. INVALID_ARGUMENT for a negative epoch.
  virtual absl::StatusOr<AppendResult> Append(std::string batch) = 0;

  // A follower's append: stores `batch` exactly as the leader stored it (same
  // bytes, so the same leader_epoch and CRC) at `base_offset`, which must be
  // the current log end offset: FAILED_PRECONDITION naming both offsets
  // otherwise, with nothing written. The check is made when the append reaches
  // the front of the write queue, so concurrent appends to the same partition
  // cannot slip in between. Everything else (validation, the epoch rule,
  // durability, errors) is as for Append.
  virtual absl::StatusOr<AppendResult> AppendReplicated(
      std::string batch, int64_t base_offset) = 0;

  // Several follower appends, in order, queued together so that the store's
  // group commit writes them with one WAL write and one fsync (a follower
  // catching up would otherwise pay one fsync per batch). `batches` holds
  // (base_offset, batch) pairs at consecutive offsets. Each behaves as
  // AppendReplicated; the result is the first failure (the batches before it
  // are appended, none after it), or the new log end offset.
  virtual absl::StatusOr<int64_t> AppendReplicatedBatches(
      std::vector<std::pair<int64_t, std::string>> batches) = 0;

  // Removes every record at or above `offset`, for a follower whose log
  // diverged from the new leader's (see LeaderEpochCache::EndOffsetFor).
  // Batches are removed whole: if `offset` falls inside a batch, that batch
  // goes too and the log end becomes its base offset (the follower refetches
  // the rest). Returns the new log end offset (== `offset` when it is a batch
  // boundary or the log end, when nothing is removed). Cache entries starting
  // at or above the new end are dropped, and the high watermark is lowered to
  // the new end if it was above it; the removal, the cache and the high
  // watermark are written in one synced WriteBatch whatever the FsyncPolicy, so
  // the truncation is durable when this returns and a crash never leaves half
  // of it. Truncating below the high watermark is allowed (it discards records
  // once thought committed: the caller decides when that is right).
  //
  // OUT_OF_RANGE if `offset` < log_start_offset() or > log_end_offset();
  // NOT_FOUND if dropped; UNAVAILABLE if the store is closing; INTERNAL on an
  // I/O error (the log is then unchanged). Runs alone in the write queue:
  // appends queued before it complete first, appends queued after it land after
  // the new end.
  //
  // Readers: a Read, OffsetForTimestamp or EndOffsetForEpoch that starts after
  // this returns never sees a removed batch. One that runs concurrently answers
  // from the log as it was before the truncation or as it is after it; a Read
  // that started before may also come back with fewer batches than the log end
  // it saw promised, possibly none, or OUT_OF_RANGE if its offset is no longer
  // in the log. No reader ever gets part of a batch, a CRC error or a crash
  // from a concurrent truncation.
  virtual absl::StatusOr<int64_t> TruncateTo(int64_t offset) = 0;

  // Returns whole batches covering offsets from `offset` on, in order, until
  // their total size exceeds `max_bytes`; the first batch (the one containing
  // `offset`) is always returned whatever its size. An empty vector when offset
  // == log end. OUT_OF_RANGE when offset < log start or offset > log end.
  // DATA_LOSS if a stored batch fails its CRC. (A Read concurrent with
  // TruncateTo may also return an empty vector: see there.)
  virtual absl::StatusOr<std::vector<StoredBatch>> Read(int64_t offset,
                                                        size_t max_bytes) = 0;

  // First offset still stored.
  virtual int64_t log_start_offset() const = 0;
  // Offset the next appended record will get.
  virtual int64_t log_end_offset() const = 0;

  // Blocks until log_end_offset() > offset, for at most `timeout` (measured
  // on the monotonic clock, common/clock.h), or until the partition is dropped
  // or the store closes. Returns true when data past `offset` exists.
  virtual bool WaitForData(int64_t offset, absl::Duration timeout) = 0;

  // --- Leader epochs (leader_epoch_cache.h) ---

  // The epoch of the last entry of the leader epoch cache: the highest leader
  // epoch of any batch in the log. kUndefinedEpoch (-1) when the cache is
  // empty.
  virtual int32_t LatestEpoch() const = 0;
  // Kafka's OffsetsForLeaderEpoch answered from this log: see
  // LeaderEpochCache::EndOffsetFor. The cache and the log end offset are read
  // together, so the answer is consistent with one state of the log.
  virtual EpochEndOffset EndOffsetForEpoch(int32_t epoch) const = 0;
  // A copy of the cache's (epoch, start offset) entries, oldest first.
  virtual std::vector<EpochEntry> LeaderEpochs() const = 0;

  // --- High watermark ---
  //
  // The high watermark (HW) is the offset below which every record is
  // committed: the leader sets it to the smallest log end offset among the
  // in-sync replicas, a follower to the leader's HW (capped by its own log
  // end). Consumers read only below it. It only moves forward, except through
  // TruncateTo (a follower that truncates below it): a record once exposed as
  // committed is never withdrawn by the leader. Invariant: log_start_offset()
  // <= high_watermark() <= log_end_offset().
  //
  // Persistence is lazy, as in Kafka (which checkpoints it every few seconds):
  // the HW is written with the partition's next append, by a background
  // checkpoint every StoreOptions::high_watermark_checkpoint_interval, by
  // TruncateTo and on Close. After a crash the loaded HW may therefore be lower
  // than the last one set, never higher: it is a lower bound, which is safe (a
  // replica re-learns the HW from the leader; a leader recomputes it from its
  // followers' fetches).

  // The current HW: initially the checkpoint loaded at open (0 when none),
  // clamped to [log start, log end].
  virtual int64_t high_watermark() const = 0;
  // Moves the HW to `hw`. INVALID_ARGUMENT (HW unchanged) if `hw` >
  // log_end_offset() or `hw` < high_watermark(); setting the current value is a
  // no-op. A follower propagating a leader's HW, which may be briefly behind
  // its own after a leader change, passes max(high_watermark(), min(leader_hw,
  // log_end_offset())). NOT_FOUND if dropped, UNAVAILABLE once the store is
  // closed. Wakes WaitForHighWatermark.
  virtual absl::Status SetHighWatermark(int64_t hw) = 0;
  // Blocks until high_watermark() > offset, for at most `timeout` (monotonic),
  // or until the partition is dropped or the store closes. Returns true when
  // committed data past `offset` exists.
  virtual bool WaitForHighWatermark(int64_t offset, absl::Duration timeout) = 0;

  // The first offset whose record timestamp is >= timestamp_ms, with that
  // record's timestamp; {log_end_offset, -1} if there is none.
  virtual absl::StatusOr<std::pair<int64_t, int64_t>> OffsetForTimestamp(
      int64_t timestamp_ms) = 0;
};

class LogStore {
 public:
  // Opens (creating if needed) the store in options.data_dir, with every
  // partition column family found there.
  static absl::StatusOr<std::unique_ptr<LogStore>> Open(
      const StoreOptions& options);

  virtual ~LogStore() = default;

  // Creates an empty partition log. ALREADY_EXISTS if it exists.
  virtual absl::StatusOr<std::shared_ptr<PartitionLog>> CreatePartition(
      const PartitionId& id) = 0;

  // Creates several empty partition logs at once, in order. With RocksDB, every
  // column family creation rewrites an OPTIONS file listing all column families
  // (and blocks writes meanwhile), so creating N partitions one by one costs
  // O(N^2); this does it in one step. ALREADY_EXISTS if any of them exists or
  // `ids` repeats one (the RocksDB store then creates none). The default
  // implementation calls CreatePartition in a loop.
  virtual absl::StatusOr<std::vector<std::shared_ptr<PartitionLog>>>
  CreatePartitions(const std::vector<PartitionId>& ids);

  // The partition's log, or nullptr when there is none.
  virtual std::shared_ptr<PartitionLog> GetPartition(const PartitionId& id) = 0;

  // Deletes the partition, its data, its leader epoch cache and its high
  // watermark. Waiters in WaitForData and WaitForHighWatermark are woken; later
  // calls on outstanding handles fail with NOT_FOUND. NOT_FOUND if absent.
  virtual absl::Status DropPartition(const PartitionId& id) = 0;

  // Every partition in the store.
  virtual std::vector<PartitionId> ListPartitions() = 0;

  // Small metadata key space. PutMeta and DeleteMeta are synced whatever the
  // policy.
  virtual absl::Status PutMeta(absl::string_view key,
                               absl::string_view value) = 0;
  virtual absl::Status DeleteMeta(absl::string_view key) = 0;
  virtual absl::StatusOr<std::optional<std::string>> GetMeta(
      absl::string_view key) = 0;
  // Every (key, value) whose key starts with `prefix`, sorted by key.
  virtual absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
  ScanMeta(absl::string_view prefix) = 0;

  // Write-path counters (see LogStoreStats). Implementations without them
  // return zeros.
  virtual LogStoreStats stats() const { return {}; }

  // Stops accepting appends (they fail with UNAVAILABLE), wakes every waiter,
  // writes every high watermark not yet written, syncs the WAL and closes
  // RocksDB. Idempotent; the destructor calls it.
  virtual absl::Status Close() = 0;
};

}  // namespace fjord::storage

#endif  // FJORD_STORAGE_LOG_STORE_H_
