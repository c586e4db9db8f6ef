// LogStore on RocksDB: one column family per partition, group-committed
// appends.
//
// Write path (group commit, after LevelDB's writer queue). Every Append, and
// every operation that must not overlap a write (DropPartition, Close),
// enqueues a Writer on StoreCore::queue_. Only the writer at the front of the
// queue acts:
//   - an append at the front becomes the *leader*: it takes the consecutive
//   appends
//     behind it (up to kMaxGroupBytes), gives each its offsets from its
//     partition's pending_end_, in queue order, puts them all into one
//     rocksdb::WriteBatch and writes it (one WAL write, one fsync with kAlways)
//     without holding the queue lock. Then it publishes each partition's new
//     log end offset, wakes waiters, completes the followers and hands
//     leadership to the next front writer;
//   - an exclusive writer (drop, close) at the front runs alone: no write is in
//     flight while it runs, and everything behind it waits.
// Invariants:
//   - at most one group write is in flight, so for every partition
//     pending_end_ == log_end_ whenever no group is being written, and a failed
//     write can roll pending_end_ back to log_end_;
//   - log_end_ (what readers see) only advances after the write holding those
//     offsets has returned OK, so Read and WaitForData never expose an offset
//     whose write is not done, and a failed write never leaves a gap or
//     duplicate.
//
// Partition state beyond the log end: each partition has a leader epoch cache
// and a high watermark. Like the log end, the epoch cache has a pending copy
// (pending_epochs_, what the group being written will make it, owned by the
// queue front) and a published one (epochs_, under state_mu_), published
// together with the log end so that EndOffsetForEpoch always answers from one
// state of the log. The group leader puts a partition's "epochs/" key into the
// group's WriteBatch when its cache changed, and its "hw/" key when the high
// watermark moved since it was last written (persisted_hw_, owned by the queue
// front). TruncateTo, the periodic high watermark checkpoint and Close run as
// exclusive writers, so they never race a group over these keys.
//
// Lock order (outer first): ddl_mu_ -> [queue front] -> db_mu_ -> map_mu_ ->
// cf_mu_
// -> state_mu_, and separately queue_mu_ -> cf_mu_ -> state_mu_. queue_mu_ is
// never held while waiting for db_mu_ or map_mu_.
#include "storage/log_store.h"
#include "storage/sync_journal_fs.h"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "storage/record_batch.h"

namespace fjord::storage {

absl::StatusOr<FsyncPolicy> ParseFsyncPolicy(absl::string_view name) {
  if (name == "always") return FsyncPolicy::kAlways;
  if (name == "interval") return FsyncPolicy::kInterval;
  if (name == "never") return FsyncPolicy::kNever;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown fsync policy \"", name, "\" (want always, interval or never)"));
}

absl::string_view FsyncPolicyName(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::kAlways:
      return "always";
    case FsyncPolicy::kInterval:
      return "interval";
    case FsyncPolicy::kNever:
      return "never";
  }
  return "unknown";
}

std::string PartitionId::ColumnFamilyName() const {
  return absl::StrCat("p.", topic_id, ".", partition);
}

absl::StatusOr<std::vector<std::shared_ptr<PartitionLog>>>
LogStore::CreatePartitions(const std::vector<PartitionId>& ids) {
  std::vector<std::shared_ptr<PartitionLog>> logs;
  for (const PartitionId& id : ids) {
    ASSIGN_OR_RETURN(std::shared_ptr<PartitionLog> log, CreatePartition(id));
    logs.push_back(std::move(log));
  }
  return logs;
}

namespace {

// Appends merged into one WriteBatch stop growing the group past this many
// bytes (the first append is always taken, whatever its size).
constexpr size_t kMaxGroupBytes = size_t{4} << 20;

// Per-partition memtable size. Small, so that thousands of partitions fit in
// the shared WriteBufferManager budget, which flushes the largest memtables
// when full.
constexpr size_t kPartitionWriteBufferBytes = size_t{4} << 20;
// Memtable arena blocks: a partition with a few small batches costs one block.
constexpr size_t kArenaBlockBytes = size_t{64} << 10;

// Default-CF keys. "lso/<cf name>" holds a partition's log start offset (8-byte
// big endian); "meta/<key>" is the metadata key space of PutMeta and friends.
constexpr absl::string_view kLsoPrefix = "lso/";
// "epochs/<cf name>": the partition's LeaderEpochCache::Encode(); "hw/<cf
// name>": its high watermark checkpoint (8-byte big endian, absent means 0).
constexpr absl::string_view kEpochsPrefix = "epochs/";
constexpr absl::string_view kHwPrefix = "hw/";
constexpr absl::string_view kMetaPrefix = "meta/";
constexpr absl::string_view kPartitionCfPrefix = "p.";

std::string EncodeOffset(int64_t offset) {
  std::string key(8, '\0');
  const uint64_t v = static_cast<uint64_t>(offset);
  for (int i = 0; i < 8; ++i)
    key[i] = static_cast<char>((v >> (56 - 8 * i)) & 0xFF);
  return key;
}

bool DecodeOffset(const rocksdb::Slice& key, int64_t* offset) {
  if (key.size() != 8) return false;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(key[i]);
  *offset = static_cast<int64_t>(v);
  return *offset >= 0;
}

rocksdb::Slice ToSlice(absl::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

std::string LsoKey(absl::string_view cf_name) {
  return absl::StrCat(kLsoPrefix, cf_name);
}
std::string EpochsKey(absl::string_view cf_name) {
  return absl::StrCat(kEpochsPrefix, cf_name);
}
std::string HwKey(absl::string_view cf_name) {
  return absl::StrCat(kHwPrefix, cf_name);
}
// Sorts after the key of every valid (non-negative) offset: the exclusive end
// of a range deletion reaching past the last batch.
const std::string& PastLastOffsetKey() {
  static const std::string* const key = new std::string(8, '\xff');
  return *key;
}
std::string MetaKey(absl::string_view key) {
  return absl::StrCat(kMetaPrefix, key);
}

// Inverse of PartitionId::ColumnFamilyName; the topic id may itself contain
// dots.
std::optional<PartitionId> ParseColumnFamilyName(absl::string_view name) {
  if (!absl::StartsWith(name, kPartitionCfPrefix)) return std::nullopt;
  name.remove_prefix(kPartitionCfPrefix.size());
  const size_t dot = name.rfind('.');
  if (dot == absl::string_view::npos || dot == 0) return std::nullopt;
  PartitionId id;
  if (!absl::SimpleAtoi(name.substr(dot + 1), &id.partition))
    return std::nullopt;
  id.topic_id = std::string(name.substr(0, dot));
  if (id.ColumnFamilyName() != absl::StrCat(kPartitionCfPrefix, name))
    return std::nullopt;
  return id;
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat(context, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the broker's disk is full; nothing was written (", msg,
        "). Writes resume once space is freed"));
  }
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

class StoreCore;

// What a partition handle is after its column family went away.
enum class Liveness { kLive, kDropped, kClosed };

class PartitionLogImpl final : public PartitionLog {
 public:
  PartitionLogImpl(std::shared_ptr<StoreCore> core, PartitionId id,
                   rocksdb::ColumnFamilyHandle* cf, int64_t log_start,
                   int64_t log_end, LeaderEpochCache epochs = {},
                   int64_t high_watermark = 0, int64_t persisted_hw = 0)
      : core_(std::move(core)),
        id_(std::move(id)),
        cf_name_(id_.ColumnFamilyName()),
        pending_end_(log_end),
        pending_epochs_(epochs),
        persisted_hw_(persisted_hw),
        log_start_(log_start),
        log_end_(log_end),
        epochs_(std::move(epochs)),
        hw_(high_watermark),
        cf_(cf) {}

  const PartitionId& id() const override { return id_; }
  absl::StatusOr<AppendResult> Append(std::string batch) override;
  absl::StatusOr<AppendResult> AppendReplicated(std::string batch,
                                                int64_t base_offset) override;
  absl::StatusOr<int64_t> AppendReplicatedBatches(
      std::vector<std::pair<int64_t, std::string>> batches) override;
  absl::StatusOr<int64_t> TruncateTo(int64_t offset) override;
  absl::StatusOr<std::vector<StoredBatch>> Read(int64_t offset,
                                                size_t max_bytes) override;
  int64_t log_start_offset() const override {
    absl::MutexLock l(&state_mu_);
    return log_start_;
  }
  int64_t log_end_offset() const override {
    absl::MutexLock l(&state_mu_);
    return log_end_;
  }
  bool WaitForData(int64_t offset, absl::Duration timeout) override;
  absl::StatusOr<std::pair<int64_t, int64_t>> OffsetForTimestamp(
      int64_t timestamp_ms) override;

  int32_t LatestEpoch() const override {
    absl::MutexLock l(&state_mu_);
    return epochs_.LatestEpoch();
  }
  EpochEndOffset EndOffsetForEpoch(int32_t epoch) const override {
    absl::MutexLock l(&state_mu_);
    return epochs_.EndOffsetFor(epoch, log_end_);
  }
  std::vector<EpochEntry> LeaderEpochs() const override {
    absl::MutexLock l(&state_mu_);
    return epochs_.entries();
  }
  int64_t high_watermark() const override {
    absl::MutexLock l(&state_mu_);
    return hw_;
  }
  absl::Status SetHighWatermark(int64_t hw) override;
  bool WaitForHighWatermark(int64_t offset, absl::Duration timeout) override;

 private:
  friend class StoreCore;

  // NOT_FOUND once dropped, UNAVAILABLE once the store closed.
  absl::Status GoneError(Liveness liveness) const {
    if (liveness == Liveness::kDropped) {
      return absl::NotFoundError(
          absl::StrCat("partition ", cf_name_, " was dropped"));
    }
    return absl::UnavailableError("log store is closed");
  }
  Liveness liveness() const {
    absl::MutexLock l(&state_mu_);
    return liveness_;
  }
  void MarkGone(Liveness liveness) {
    absl::MutexLock l(&state_mu_);
    if (liveness_ == Liveness::kLive) liveness_ = liveness;
    data_cv_.SignalAll();
  }
  // Makes offsets below `new_end` visible, with the epoch cache `epochs` (null:
  // unchanged) describing them: their write has completed.
  void Publish(int64_t new_end, const LeaderEpochCache* epochs) {
    absl::MutexLock l(&state_mu_);
    if (new_end > log_end_) log_end_ = new_end;
    if (epochs != nullptr) epochs_ = *epochs;
    data_cv_.SignalAll();
  }
  LeaderEpochCache published_epochs() const {
    absl::MutexLock l(&state_mu_);
    return epochs_;
  }

  // Reads the range [log start, log end) snapshot and the liveness in one go.
  struct Snapshot {
    int64_t start;
    int64_t end;
    Liveness liveness;
  };
  Snapshot TakeSnapshot() const {
    absl::MutexLock l(&state_mu_);
    return {log_start_, log_end_, liveness_};
  }

  // Runs `fn(iterator, end)` with a live iterator over this partition's batches
  // below the published log end `end`.
  absl::Status WithIterator(
      int64_t end, const std::function<absl::Status(rocksdb::Iterator*)>& fn);

  const std::shared_ptr<StoreCore> core_;
  const PartitionId id_;
  const std::string cf_name_;

  // Offset the next queued append will get: log_end_ plus the records of the
  // group write in flight, if any. Only the writer at the front of the store's
  // queue reads or writes it (a group leader with StoreCore::queue_mu_ held).
  int64_t pending_end_;
  // The epoch cache including the group write in flight; same ownership.
  LeaderEpochCache pending_epochs_;
  // The high watermark last written to the "hw/" key (0 when absent); same
  // ownership. The HW is due for a write when hw_ differs from it.
  int64_t persisted_hw_;

  mutable absl::Mutex state_mu_;
  // First offset still stored.
  int64_t log_start_ ABSL_GUARDED_BY(state_mu_);
  // Published log end: every offset below it is durably written (per the
  // policy).
  int64_t log_end_ ABSL_GUARDED_BY(state_mu_);
  Liveness liveness_ ABSL_GUARDED_BY(state_mu_) = Liveness::kLive;
  // Published leader epoch cache: describes exactly the batches below log_end_.
  LeaderEpochCache epochs_ ABSL_GUARDED_BY(state_mu_);
  // High watermark; log_start_ <= hw_ <= log_end_.
  int64_t hw_ ABSL_GUARDED_BY(state_mu_);
  // Signalled when log_end_ or hw_ grows or liveness_ changes.
  absl::CondVar data_cv_;

  // The column family handle; null once dropped or closed. Users hold cf_mu_
  // shared while they use it; drop and close hold it exclusively to destroy it.
  mutable absl::Mutex cf_mu_;
  rocksdb::ColumnFamilyHandle* cf_ ABSL_GUARDED_BY(cf_mu_);
};

// One entry of the write queue (see the file comment).
struct Writer {
  // An append (batch set) or an exclusive operation (exclusive set).
  PartitionLogImpl* partition = nullptr;
  absl::string_view batch;
  int32_t record_count = 0;
  int32_t leader_epoch = 0;
  // Set for AppendReplicated: the base offset the batch must get.
  std::optional<int64_t> expected_base;
  std::function<absl::Status()> exclusive;

  absl::StatusOr<AppendResult> result = absl::UnknownError("not written");
  bool done = false;  // set by a leader that completed this append for us
  absl::CondVar cv;   // signalled when done or at the front of the queue
};

// The shared state behind a LogStore and all its PartitionLogs. Partition
// handles keep it alive, so a handle used after the store closed answers
// UNAVAILABLE instead of touching freed memory.
class StoreCore : public std::enable_shared_from_this<StoreCore> {
 public:
  explicit StoreCore(StoreOptions options) : options_(std::move(options)) {}
  // After a failed write: asks RocksDB to leave its background-error state
  // (DB::Resume), at most once a second. Called by a group's leader before it
  // writes, without the queue lock.
  void MaybeResume() {
    if (!needs_resume_.load()) return;
    const absl::Time now = MonotonicNow();
    {
      absl::MutexLock l(&resume_mu_);
      if (now - last_resume_ < absl::Seconds(1)) return;
      last_resume_ = now;
    }
    absl::ReaderMutexLock dl(&db_mu_);
    if (db_ == nullptr) return;
    rocksdb::Status s = db_->Resume();
    if (s.ok()) {
      needs_resume_.store(false);
      LOG(WARNING) << "the store resumed writing after an I/O error";
    } else {
      LOG(WARNING) << "the store cannot resume writing yet: " << s.ToString();
    }
  }
  std::atomic<bool> needs_resume_{false};
  absl::Mutex resume_mu_;
  absl::Time last_resume_ ABSL_GUARDED_BY(resume_mu_) = absl::InfinitePast();
  // Testing only: the Env over the sync-journal FileSystem; outlives db_.
  std::unique_ptr<rocksdb::Env> env_;
  ~StoreCore() {
    // Close() normally ran already (LogStoreImpl's destructor calls it).
    CHECK(db_ == nullptr) << "StoreCore destroyed while open";
  }

  absl::Status OpenDb();
  absl::StatusOr<std::vector<std::shared_ptr<PartitionLog>>> CreatePartitions(
      const std::vector<PartitionId>& ids);
  std::shared_ptr<PartitionLog> GetPartition(const PartitionId& id);
  absl::Status DropPartition(const PartitionId& id);
  std::vector<PartitionId> ListPartitions();
  absl::Status PutMeta(absl::string_view key, absl::string_view value);
  absl::Status DeleteMeta(absl::string_view key);
  absl::StatusOr<std::optional<std::string>> GetMeta(absl::string_view key);
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ScanMeta(
      absl::string_view prefix);
  LogStoreStats stats() const {
    absl::MutexLock l(&queue_mu_);
    return stats_;
  }
  absl::Status Close();

  // Queues an append and returns when it is done (see the file comment).
  absl::StatusOr<AppendResult> SubmitAppend(
      PartitionLogImpl* partition, absl::string_view batch,
      const BatchHeader& header, std::optional<int64_t> expected_base);

  // Queues `writers` together, consecutively, and returns when all are done.
  // Results are in each writer.
  absl::Status SubmitAppends(PartitionLogImpl* partition, std::vector<Writer>& writers);

 private:
  friend class PartitionLogImpl;

  // Runs `fn` at the front of the write queue, with no group write in flight.
  absl::Status RunExclusive(std::function<absl::Status()> fn);
  // Writes the group led by queue_.front(). Called and returns with queue_mu_
  // held.
  void LeadGroup() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_);
  absl::Status CloseDb();
  // Loads the epoch cache of partition column family `cf` (whose log ends at
  // `log_end`), or rebuilds it from the batches if it was never stored, adding
  // what should be stored to `rewrite`.
  absl::StatusOr<LeaderEpochCache> LoadEpochCache(
      rocksdb::ColumnFamilyHandle* cf, int64_t log_end, bool has_batches,
      rocksdb::WriteBatch* rewrite) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  void SyncLoop();
  void CheckpointLoop();
  // Writes the high watermark of each of `partitions` whose HW changed since it
  // was last written, without syncing. Only at the front of the queue.
  absl::Status WriteDirtyHighWatermarks(
      const std::vector<std::shared_ptr<PartitionLogImpl>>& partitions)
      ABSL_SHARED_LOCKS_REQUIRED(db_mu_);
  std::vector<std::shared_ptr<PartitionLogImpl>> LivePartitions() {
    absl::MutexLock ml(&map_mu_);
    std::vector<std::shared_ptr<PartitionLogImpl>> out;
    out.reserve(partitions_.size());
    for (const auto& [name, log] : partitions_) out.push_back(log);
    return out;
  }
  rocksdb::ColumnFamilyOptions PartitionCfOptions() const;

  const StoreOptions options_;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffer_manager_;

  // The write queue.
  mutable absl::Mutex queue_mu_;
  std::deque<Writer*> queue_ ABSL_GUARDED_BY(queue_mu_);
  // Set when Close starts: new appends and drops fail UNAVAILABLE from then on.
  bool closing_ ABSL_GUARDED_BY(queue_mu_) = false;
  // Set when Close finished, with its result.
  bool closed_ ABSL_GUARDED_BY(queue_mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(queue_mu_);
  absl::CondVar closed_cv_;
  LogStoreStats stats_ ABSL_GUARDED_BY(queue_mu_);

  // Serializes partition creation and drops against each other (not against
  // appends or reads), so a name is never being created and dropped at once.
  absl::Mutex ddl_mu_;

  // The database; null after Close. Users hold db_mu_ shared; Close holds it
  // exclusively to close the database.
  mutable absl::Mutex db_mu_;
  rocksdb::DB* db_ ABSL_GUARDED_BY(db_mu_) = nullptr;
  // Handles of column families that are not partitions (default and unknown
  // ones).
  std::vector<rocksdb::ColumnFamilyHandle*> other_cfs_ ABSL_GUARDED_BY(db_mu_);
  rocksdb::ColumnFamilyHandle* default_cf_ ABSL_GUARDED_BY(db_mu_) = nullptr;

  mutable absl::Mutex map_mu_;
  // Live partitions by column family name.
  std::map<std::string, std::shared_ptr<PartitionLogImpl>> partitions_
      ABSL_GUARDED_BY(map_mu_);

  // With FsyncPolicy::kInterval, a thread that syncs the WAL periodically; and
  // a thread that writes changed high watermarks periodically. Both stop when
  // stop_sync_ is set.
  absl::Mutex sync_mu_;
  bool stop_sync_ ABSL_GUARDED_BY(sync_mu_) = false;
  absl::CondVar sync_cv_;
  std::thread sync_thread_;
  std::thread checkpoint_thread_;
};

// ---------------------------------------------------------------------------
// Opening.

rocksdb::ColumnFamilyOptions StoreCore::PartitionCfOptions() const {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = kPartitionWriteBufferBytes;
  cf.arena_block_size = kArenaBlockBytes;
  cf.max_write_buffer_number = 3;
  cf.level_compaction_dynamic_level_bytes = true;
  cf.target_file_size_base = size_t{32} << 20;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = block_cache_;
  table.block_size = 32 << 10;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

absl::Status StoreCore::OpenDb() {
  if (options_.data_dir.empty())
    return absl::InvalidArgumentError("empty data_dir");
  std::error_code ec;
  std::filesystem::create_directories(options_.data_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", options_.data_dir, ": ", ec.message()));
  }
  block_cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes);
  write_buffer_manager_ = std::make_shared<rocksdb::WriteBufferManager>(
      options_.write_buffer_budget_bytes);

  rocksdb::DBOptions db_options;
  if (!options_.sync_journal_path.empty()) {
    ASSIGN_OR_RETURN(std::shared_ptr<rocksdb::FileSystem> fs,
                     NewSyncJournalFileSystem(options_.sync_journal_path));
    env_ = rocksdb::NewCompositeEnv(fs);
    db_options.env = env_.get();
    LOG(WARNING) << "TESTING: journaling syncs of " << options_.data_dir << " to "
                 << options_.sync_journal_path;
  }
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.write_buffer_manager = write_buffer_manager_;
  // A WAL file can only be deleted once every column family with data in it has
  // flushed; with thousands of partitions, a rarely written one would pin WAL
  // files forever. Past this total size RocksDB flushes the column families
  // holding the oldest WAL.
  db_options.max_total_wal_size = std::max<uint64_t>(
      uint64_t{64} << 20, options_.write_buffer_budget_bytes / 2);
  // Recovered WAL data stays in memtables instead of one tiny flush per
  // partition on every open.
  db_options.avoid_flush_during_recovery = true;
  // A crash may leave a torn record at the end of the WAL: that write was
  // never synced, so never acknowledged, and is dropped. Any other damage
  // (a checksum mismatch before the tail) fails the open with Corruption:
  // the default, kPointInTimeRecovery, would instead drop everything after
  // the damaged record silently, acknowledged writes included.
  db_options.wal_recovery_mode =
      rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db_options.max_background_jobs = 2;
  db_options.max_open_files = 4096;
  db_options.keep_log_file_num = 4;
  db_options.max_log_file_size = size_t{16} << 20;

  std::vector<std::string> cf_names;
  if (std::filesystem::exists(std::filesystem::path(options_.data_dir) /
                              "CURRENT")) {
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(
        db_options, options_.data_dir, &cf_names);
    RETURN_IF_ERROR(FromRocks(s, "listing column families"));
  } else {
    cf_names.push_back(rocksdb::kDefaultColumnFamilyName);
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : cf_names) {
    descriptors.emplace_back(name, PartitionCfOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options_.data_dir,
                                        descriptors, &handles, &db);
  RETURN_IF_ERROR(FromRocks(s, absl::StrCat("opening ", options_.data_dir)));
  if (options_.verify_checksums_on_open) {
    const absl::Time start = MonotonicNow();
    s = db->VerifyChecksum();
    if (!s.ok()) {
      for (rocksdb::ColumnFamilyHandle* h : handles) (void)db->DestroyColumnFamilyHandle(h);
      delete db;
      return FromRocks(s, absl::StrCat("verifying the checksums of ", options_.data_dir));
    }
    LOG(INFO) << "verified the checksums of every table file in " << options_.data_dir << " in "
              << absl::FormatDuration(MonotonicNow() - start);
  }

  absl::WriterMutexLock dl(&db_mu_);
  absl::MutexLock ml(&map_mu_);
  db_ = db;
  // Recover each partition's offsets. From here on errors go through CloseDb
  // (by the caller's Close) so that the handles are released.
  absl::Status status;
  // Epoch caches rebuilt from the batches, to store.
  rocksdb::WriteBatch rewrite;
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    if (handle->GetName() == rocksdb::kDefaultColumnFamilyName)
      default_cf_ = handle;
    std::optional<PartitionId> id = ParseColumnFamilyName(handle->GetName());
    if (!id.has_value() || !status.ok()) {
      other_cfs_.push_back(handle);
      continue;
    }
    int64_t lso = 0, first = -1, end = 0;
    std::string lso_value;
    s = db_->Get(rocksdb::ReadOptions(), LsoKey(handle->GetName()), &lso_value);
    if (s.ok()) {
      if (!DecodeOffset(lso_value, &lso)) {
        status = absl::DataLossError(
            absl::StrCat("bad log start of ", handle->GetName()));
      }
    } else if (!s.IsNotFound()) {
      status = FromRocks(s, "reading log start");
    }
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), handle));
    it->SeekToFirst();
    if (it->Valid() && !DecodeOffset(it->key(), &first)) {
      status =
          absl::DataLossError(absl::StrCat("bad key in ", handle->GetName()));
    }
    it->SeekToLast();
    if (it->Valid()) {
      int64_t base;
      absl::StatusOr<BatchHeader> header = ParseBatchHeader(
          absl::string_view(it->value().data(), it->value().size()));
      if (!DecodeOffset(it->key(), &base) || !header.ok()) {
        // Without its last batch's header, a partition's log end is unknown.
        // TODO: truncate the log at the first corrupt batch, as Kafka's
        // recovery does.
        status = absl::DataLossError(
            absl::StrCat("cannot recover the log end of ", handle->GetName(),
                         ": last batch corrupt"));
      } else {
        end = base + header->record_count;
      }
    }
    if (status.ok()) status = FromRocks(it->status(), "scanning partition");
    if (!status.ok()) {
      other_cfs_.push_back(handle);
      continue;
    }
    const int64_t start = std::max(lso, first);
    end = std::max(end, start);
    absl::StatusOr<LeaderEpochCache> epochs =
        LoadEpochCache(handle, end, first >= 0, &rewrite);
    if (!epochs.ok()) {
      status = epochs.status();
      other_cfs_.push_back(handle);
      continue;
    }
    int64_t stored_hw = 0;
    std::string hw_value;
    s = db_->Get(rocksdb::ReadOptions(), HwKey(handle->GetName()), &hw_value);
    if (s.ok() && !DecodeOffset(hw_value, &stored_hw)) {
      LOG(WARNING) << "ignoring a malformed high watermark of "
                   << handle->GetName();
      stored_hw = 0;
    } else if (!s.ok() && !s.IsNotFound()) {
      status = FromRocks(s, "reading the high watermark");
      other_cfs_.push_back(handle);
      continue;
    }
    const int64_t hw = std::clamp(stored_hw, start, end);
    partitions_[handle->GetName()] = std::make_shared<PartitionLogImpl>(
        shared_from_this(), std::move(*id), handle, start, end,
        *std::move(epochs), hw, stored_hw);
  }
  if (status.ok() && rewrite.Count() > 0) {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    status = FromRocks(db_->Write(sync, &rewrite), "storing epoch caches");
  }
  RETURN_IF_ERROR(status);
  LOG(INFO) << "opened log store " << options_.data_dir << " with "
            << partitions_.size()
            << " partitions, fsync=" << FsyncPolicyName(options_.fsync);
  if (options_.fsync == FsyncPolicy::kInterval) {
    sync_thread_ = std::thread([this] { SyncLoop(); });
  }
  checkpoint_thread_ = std::thread([this] { CheckpointLoop(); });
  return absl::OkStatus();
}

absl::StatusOr<LeaderEpochCache> StoreCore::LoadEpochCache(
    rocksdb::ColumnFamilyHandle* cf, int64_t log_end, bool has_batches,
    rocksdb::WriteBatch* rewrite) {
  const std::string& name = cf->GetName();
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), EpochsKey(name), &value);
  if (s.ok()) {
    absl::StatusOr<LeaderEpochCache> cache = LeaderEpochCache::Decode(value);
    if (!cache.ok()) {
      return absl::DataLossError(
          absl::StrCat("partition ", name, ": ", cache.status().message()));
    }
    // Written atomically with the batches, so this never happens; if it did,
    // entries past the log end would describe batches that do not exist.
    if (cache->TruncateFromEnd(log_end)) {
      LOG(WARNING) << "partition " << name
                   << ": dropped leader epoch cache entries past the log end "
                   << log_end;
      (void)rewrite->Put(EpochsKey(name), cache->Encode());
    }
    return cache;
  }
  if (!s.IsNotFound()) return FromRocks(s, "reading the leader epoch cache");
  LeaderEpochCache cache;
  if (!has_batches) return cache;
  // Written before the cache existed: rebuild it from the batch headers.
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cf));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    int64_t base;
    absl::StatusOr<BatchHeader> header = ParseBatchHeader(
        absl::string_view(it->value().data(), it->value().size()));
    if (!DecodeOffset(it->key(), &base) || !header.ok()) {
      LOG(WARNING) << "partition " << name
                   << ": skipping a corrupt batch while rebuilding the leader "
                      "epoch cache";
      continue;
    }
    if (absl::StatusOr<bool> added = cache.Append(header->leader_epoch, base);
        !added.ok()) {
      LOG(WARNING) << "partition " << name << ": batch at " << base
                   << " left out of the leader epoch cache: " << added.status();
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "rebuilding the epoch cache"));
  LOG(INFO) << "partition " << name << ": rebuilt a leader epoch cache of "
            << cache.entries().size() << " entries";
  (void)rewrite->Put(EpochsKey(name), cache.Encode());
  return cache;
}

void StoreCore::SyncLoop() {
  absl::MutexLock l(&sync_mu_);
  while (!stop_sync_) {
    sync_cv_.WaitWithTimeout(&sync_mu_, options_.fsync_interval);
    if (stop_sync_) break;
    absl::ReaderMutexLock dl(&db_mu_);
    if (db_ == nullptr) break;
    rocksdb::Status s = db_->SyncWAL();
    if (!s.ok()) LOG(ERROR) << "periodic WAL sync failed: " << s.ToString();
  }
}

void StoreCore::CheckpointLoop() {
  absl::MutexLock l(&sync_mu_);
  while (!stop_sync_) {
    sync_cv_.WaitWithTimeout(&sync_mu_,
                             options_.high_watermark_checkpoint_interval);
    if (stop_sync_) break;
    sync_mu_.Unlock();
    // Exclusive: a group leader or TruncateTo may be writing "hw/" keys.
    absl::Status status = RunExclusive([this]() -> absl::Status {
      absl::ReaderMutexLock dl(&db_mu_);
      if (db_ == nullptr) return absl::OkStatus();
      return WriteDirtyHighWatermarks(LivePartitions());
    });
    sync_mu_.Lock();
    if (!status.ok()) LOG(ERROR) << "high watermark checkpoint: " << status;
  }
}

absl::Status StoreCore::WriteDirtyHighWatermarks(
    const std::vector<std::shared_ptr<PartitionLogImpl>>& partitions) {
  rocksdb::WriteBatch batch;
  std::vector<std::pair<PartitionLogImpl*, int64_t>> written;
  for (const auto& p : partitions) {
    const int64_t hw = p->high_watermark();
    if (hw == p->persisted_hw_ || p->liveness() != Liveness::kLive) continue;
    (void)batch.Put(HwKey(p->cf_name_), EncodeOffset(hw));
    written.emplace_back(p.get(), hw);
  }
  if (written.empty()) return absl::OkStatus();
  // Not synced: the next synced write (or SyncWAL) makes it durable, and until
  // then the older checkpoint is a valid lower bound.
  RETURN_IF_ERROR(FromRocks(db_->Write(rocksdb::WriteOptions(), &batch),
                            "writing high watermarks"));
  for (auto& [p, hw] : written) p->persisted_hw_ = hw;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// The write queue.

absl::StatusOr<AppendResult> StoreCore::SubmitAppend(
    PartitionLogImpl* partition, absl::string_view batch,
    const BatchHeader& header, std::optional<int64_t> expected_base) {
  Writer w;
  w.partition = partition;
  w.batch = batch;
  w.record_count = header.record_count;
  w.leader_epoch = header.leader_epoch;
  w.expected_base = expected_base;
  absl::MutexLock l(&queue_mu_);
  if (closing_) return absl::UnavailableError("log store is closing");
  if (Liveness live = partition->liveness(); live != Liveness::kLive) {
    return partition->GoneError(live);
  }
  queue_.push_back(&w);
  while (!w.done && queue_.front() != &w) w.cv.Wait(&queue_mu_);
  if (!w.done) LeadGroup();
  return w.result;
}

absl::Status StoreCore::SubmitAppends(PartitionLogImpl* partition,
                                      std::vector<Writer>& writers) {
  absl::MutexLock l(&queue_mu_);
  if (closing_) return absl::UnavailableError("log store is closing");
  if (Liveness live = partition->liveness(); live != Liveness::kLive) {
    return partition->GoneError(live);
  }
  for (Writer& w : writers) queue_.push_back(&w);
  for (Writer& w : writers) {
    while (!w.done && queue_.front() != &w) w.cv.Wait(&queue_mu_);
    if (!w.done) LeadGroup();
  }
  return absl::OkStatus();
}

void StoreCore::LeadGroup() {
  // Take the appends at the front, up to an exclusive writer or the byte cap.
  std::vector<Writer*> group;
  size_t group_bytes = 0;
  for (Writer* w : queue_) {
    if (w->exclusive) break;
    if (!group.empty() && group_bytes + w->batch.size() > kMaxGroupBytes) break;
    group.push_back(w);
    group_bytes += w->batch.size();
  }

  // Assign offsets in queue order and build the write.
  rocksdb::WriteBatch write_batch(group_bytes + group.size() * 32);
  std::vector<Writer*> written;
  // The partitions written, each once, and whether their epoch cache changed.
  std::vector<std::pair<PartitionLogImpl*, bool>> touched;
  auto touch = [&touched](PartitionLogImpl* p, bool epochs_changed) {
    for (auto& [q, changed] : touched) {
      if (q == p) {
        changed = changed || epochs_changed;
        return;
      }
    }
    touched.emplace_back(p, epochs_changed);
  };
  for (Writer* w : group) {
    PartitionLogImpl* p = w->partition;
    absl::ReaderMutexLock cl(&p->cf_mu_);
    if (Liveness live = p->liveness();
        live != Liveness::kLive || p->cf_ == nullptr) {
      w->result =
          p->GoneError(live == Liveness::kLive ? Liveness::kDropped : live);
      continue;
    }
    const int64_t base = p->pending_end_;
    if (w->expected_base.has_value() && *w->expected_base != base) {
      w->result = absl::FailedPreconditionError(
          absl::StrCat("replicated batch for base offset ", *w->expected_base,
                       " does not fit partition ", p->cf_name_,
                       ", whose log end offset is ", base));
      continue;
    }
    absl::StatusOr<bool> new_epoch =
        p->pending_epochs_.CheckAppend(w->leader_epoch, base);
    if (!new_epoch.ok()) {
      w->result = absl::Status(new_epoch.status().code(),
                               absl::StrCat("partition ", p->cf_name_, ": ",
                                            new_epoch.status().message()));
      continue;
    }
    rocksdb::Status s =
        write_batch.Put(p->cf_, EncodeOffset(base), ToSlice(w->batch));
    if (!s.ok()) {  // only for oversized entries
      w->result = FromRocks(s, "building write batch");
      continue;
    }
    w->result = AppendResult{base, base + w->record_count - 1};
    p->pending_end_ += w->record_count;
    if (*new_epoch)
      CHECK(p->pending_epochs_.Append(w->leader_epoch, base).ok());
    touch(p, *new_epoch);
    written.push_back(w);
  }
  // The keys that go with the batches, in the default column family: changed
  // epoch caches, and high watermarks that moved since they were last written.
  std::vector<std::pair<PartitionLogImpl*, int64_t>> hw_written;
  for (auto& [p, epochs_changed] : touched) {
    if (epochs_changed) {
      (void)write_batch.Put(EpochsKey(p->cf_name_),
                            p->pending_epochs_.Encode());
    }
    const int64_t hw = p->high_watermark();
    if (hw != p->persisted_hw_) {
      (void)write_batch.Put(HwKey(p->cf_name_), EncodeOffset(hw));
      hw_written.emplace_back(p, hw);
    }
  }

  // Write without holding the queue lock, so that more appends can queue up
  // behind this group (they form the next one).
  rocksdb::Status s;
  if (!written.empty()) {
    queue_mu_.Unlock();
    MaybeResume();
    {
      rocksdb::WriteOptions write_options;
      write_options.sync =
          options_.fsync == FsyncPolicy::kAlways && !options_.planted_skip_fsync;
      absl::ReaderMutexLock dl(&db_mu_);
      s = db_ == nullptr ? rocksdb::Status::Aborted("closed")
                         : db_->Write(write_options, &write_batch);
    }
    queue_mu_.Lock();
  }

  if (s.ok()) {
    // This group was the only write in flight: pending state is now on disk.
    for (auto& [p, epochs_changed] : touched)
      p->Publish(p->pending_end_,
                 epochs_changed ? &p->pending_epochs_ : nullptr);
    for (auto& [p, hw] : hw_written) p->persisted_hw_ = hw;
    if (!written.empty()) {
      stats_.rocksdb_writes++;
      stats_.appends += written.size();
      for (Writer* w : written) stats_.append_bytes += w->batch.size();
      stats_.largest_group =
          std::max<uint64_t>(stats_.largest_group, written.size());
    }
  } else {
    const absl::Status error = FromRocks(s, "appending");
    LOG(ERROR) << "group write of " << written.size()
               << " appends failed: " << error;
    // RocksDB stops writing after an I/O error (its background error); the
    // next group asks it to resume (MaybeResume), so a disk that had filled
    // up takes writes again once space is freed.
    needs_resume_.store(true);
    for (Writer* w : written) {
      w->result = absl::Status(
          error.code() == absl::StatusCode::kResourceExhausted ? error.code()
                                                               : absl::StatusCode::kInternal,
          error.message());
    }
    // This group was the only write in flight: nothing past log_end_ exists.
    for (auto& [p, epochs_changed] : touched) {
      p->pending_end_ = p->log_end_offset();
      if (epochs_changed) p->pending_epochs_ = p->published_epochs();
    }
  }

  Writer* const leader = queue_.front();
  for (Writer* w : group) {
    CHECK(queue_.front() == w);
    queue_.pop_front();
    if (w != leader) {
      w->done = true;
      w->cv.Signal();
    }
  }
  if (!queue_.empty()) queue_.front()->cv.Signal();
}

absl::Status StoreCore::RunExclusive(std::function<absl::Status()> fn) {
  Writer w;
  w.exclusive = std::move(fn);
  absl::MutexLock l(&queue_mu_);
  queue_.push_back(&w);
  while (queue_.front() != &w) w.cv.Wait(&queue_mu_);
  queue_mu_.Unlock();
  absl::Status status = w.exclusive();
  queue_mu_.Lock();
  queue_.pop_front();
  if (!queue_.empty()) queue_.front()->cv.Signal();
  return status;
}

// ---------------------------------------------------------------------------
// Partitions.

absl::StatusOr<std::vector<std::shared_ptr<PartitionLog>>>
StoreCore::CreatePartitions(const std::vector<PartitionId>& ids) {
  absl::MutexLock ddl(&ddl_mu_);
  std::vector<std::string> names;
  {
    absl::MutexLock ml(&map_mu_);
    std::set<std::string> seen;
    for (const PartitionId& id : ids) {
      std::string name = id.ColumnFamilyName();
      if (id.topic_id.empty() || id.partition < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad partition id ", name));
      }
      if (partitions_.count(name) > 0 || !seen.insert(name).second) {
        return absl::AlreadyExistsError(
            absl::StrCat("partition ", name, " exists"));
      }
      names.push_back(std::move(name));
    }
  }
  if (ids.empty()) return std::vector<std::shared_ptr<PartitionLog>>();

  absl::ReaderMutexLock dl(&db_mu_);
  if (db_ == nullptr) return absl::UnavailableError("log store is closed");
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s =
      db_->CreateColumnFamilies(PartitionCfOptions(), names, &handles);
  if (!s.ok()) {
    for (auto* h : handles) {
      (void)db_->DropColumnFamily(h);
      (void)db_->DestroyColumnFamilyHandle(h);
    }
    return FromRocks(s, "creating column families");
  }
  // A dropped partition's log start, epoch cache and high watermark keys are
  // deleted with it, but clear any leftover so that the new partition starts
  // empty at 0.
  rocksdb::WriteBatch clear;
  for (const std::string& name : names) {
    (void)clear.Delete(default_cf_, LsoKey(name));
    (void)clear.Delete(default_cf_, EpochsKey(name));
    (void)clear.Delete(default_cf_, HwKey(name));
  }
  rocksdb::WriteOptions sync;
  sync.sync = true;
  s = db_->Write(sync, &clear);
  if (!s.ok()) LOG(ERROR) << "clearing log start keys failed: " << s.ToString();

  std::vector<std::shared_ptr<PartitionLog>> logs;
  absl::MutexLock ml(&map_mu_);
  for (size_t i = 0; i < ids.size(); ++i) {
    auto log = std::make_shared<PartitionLogImpl>(shared_from_this(), ids[i],
                                                  handles[i], 0, 0);
    partitions_[names[i]] = log;
    logs.push_back(std::move(log));
  }
  return logs;
}

std::shared_ptr<PartitionLog> StoreCore::GetPartition(const PartitionId& id) {
  absl::MutexLock ml(&map_mu_);
  auto it = partitions_.find(id.ColumnFamilyName());
  if (it == partitions_.end()) return nullptr;
  return it->second;
}

std::vector<PartitionId> StoreCore::ListPartitions() {
  absl::MutexLock ml(&map_mu_);
  std::vector<PartitionId> ids;
  ids.reserve(partitions_.size());
  for (const auto& [name, log] : partitions_) ids.push_back(log->id());
  return ids;
}

absl::Status StoreCore::DropPartition(const PartitionId& id) {
  absl::MutexLock ddl(&ddl_mu_);
  {
    absl::MutexLock l(&queue_mu_);
    if (closing_) return absl::UnavailableError("log store is closing");
  }
  const std::string name = id.ColumnFamilyName();
  // Exclusive, so that no group write holding this column family is in flight.
  // Appends queued behind us find the partition dropped and fail NOT_FOUND.
  return RunExclusive([&]() -> absl::Status {
    absl::ReaderMutexLock dl(&db_mu_);
    if (db_ == nullptr) return absl::UnavailableError("log store is closed");
    std::shared_ptr<PartitionLogImpl> log;
    {
      absl::MutexLock ml(&map_mu_);
      auto it = partitions_.find(name);
      if (it == partitions_.end()) {
        return absl::NotFoundError(absl::StrCat("no partition ", name));
      }
      log = it->second;
    }
    {
      absl::WriterMutexLock cl(&log->cf_mu_);
      RETURN_IF_ERROR(
          FromRocks(db_->DropColumnFamily(log->cf_), "dropping " + name));
      (void)db_->DestroyColumnFamilyHandle(log->cf_);
      log->cf_ = nullptr;
      log->MarkGone(Liveness::kDropped);
    }
    {
      absl::MutexLock ml(&map_mu_);
      partitions_.erase(name);
    }
    rocksdb::WriteOptions sync;
    sync.sync = true;
    rocksdb::WriteBatch keys;
    (void)keys.Delete(default_cf_, LsoKey(name));
    (void)keys.Delete(default_cf_, EpochsKey(name));
    (void)keys.Delete(default_cf_, HwKey(name));
    rocksdb::Status s = db_->Write(sync, &keys);
    if (!s.ok()) {
      LOG(ERROR) << "deleting the log start, epoch cache and high watermark of "
                 << name << ": " << s.ToString();
    }
    LOG(INFO) << "dropped partition " << name;
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------
// Metadata key space.

absl::Status StoreCore::PutMeta(absl::string_view key,
                                absl::string_view value) {
  absl::ReaderMutexLock dl(&db_mu_);
  if (db_ == nullptr) return absl::UnavailableError("log store is closed");
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(db_->Put(sync, default_cf_, MetaKey(key), ToSlice(value)),
                   "PutMeta");
}

absl::Status StoreCore::DeleteMeta(absl::string_view key) {
  absl::ReaderMutexLock dl(&db_mu_);
  if (db_ == nullptr) return absl::UnavailableError("log store is closed");
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(db_->Delete(sync, default_cf_, MetaKey(key)), "DeleteMeta");
}

absl::StatusOr<std::optional<std::string>> StoreCore::GetMeta(
    absl::string_view key) {
  absl::ReaderMutexLock dl(&db_mu_);
  if (db_ == nullptr) return absl::UnavailableError("log store is closed");
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), default_cf_, MetaKey(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(FromRocks(s, "GetMeta"));
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
StoreCore::ScanMeta(absl::string_view prefix) {
  absl::ReaderMutexLock dl(&db_mu_);
  if (db_ == nullptr) return absl::UnavailableError("log store is closed");
  const std::string start = MetaKey(prefix);
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), default_cf_));
  for (it->Seek(start); it->Valid() && it->key().starts_with(start);
       it->Next()) {
    out.emplace_back(it->key().ToString().substr(kMetaPrefix.size()),
                     it->value().ToString());
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "ScanMeta"));
  return out;
}

// ---------------------------------------------------------------------------
// Closing.

absl::Status StoreCore::Close() {
  {
    absl::MutexLock l(&queue_mu_);
    if (closing_) {
      while (!closed_) closed_cv_.Wait(&queue_mu_);
      return close_status_;
    }
    closing_ = true;
  }
  {
    absl::MutexLock l(&sync_mu_);
    stop_sync_ = true;
    sync_cv_.SignalAll();
  }
  if (sync_thread_.joinable()) sync_thread_.join();
  if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
  // Appends queued before closing_ was set complete first; later ones were
  // refused.
  absl::Status status = RunExclusive([this] { return CloseDb(); });
  absl::MutexLock l(&queue_mu_);
  closed_ = true;
  close_status_ = status;
  closed_cv_.SignalAll();
  return status;
}

absl::Status StoreCore::CloseDb() {
  absl::WriterMutexLock dl(&db_mu_);
  if (db_ == nullptr) return absl::OkStatus();
  absl::Status status = WriteDirtyHighWatermarks(LivePartitions());
  if (absl::Status s = FromRocks(db_->SyncWAL(), "syncing the WAL");
      status.ok()) {
    status = s;
  }
  std::map<std::string, std::shared_ptr<PartitionLogImpl>> partitions;
  {
    absl::MutexLock ml(&map_mu_);
    partitions.swap(partitions_);
  }
  for (auto& [name, log] : partitions) {
    log->MarkGone(Liveness::kClosed);
    absl::WriterMutexLock cl(&log->cf_mu_);
    (void)db_->DestroyColumnFamilyHandle(log->cf_);
    log->cf_ = nullptr;
  }
  for (rocksdb::ColumnFamilyHandle* h : other_cfs_)
    (void)db_->DestroyColumnFamilyHandle(h);
  other_cfs_.clear();
  default_cf_ = nullptr;
  rocksdb::Status s = db_->Close();
  if (status.ok()) status = FromRocks(s, "closing RocksDB");
  delete db_;
  db_ = nullptr;
  if (status.ok()) {
    LOG(INFO) << "closed log store " << options_.data_dir;
  } else {
    LOG(ERROR) << "closing log store " << options_.data_dir << ": " << status;
  }
  return status;
}

// ---------------------------------------------------------------------------
// PartitionLogImpl.

absl::StatusOr<AppendResult> PartitionLogImpl::Append(std::string batch) {
  RETURN_IF_ERROR(ValidateBatch(batch));
  ASSIGN_OR_RETURN(BatchHeader header, ParseBatchHeader(batch));
  return core_->SubmitAppend(this, batch, header, std::nullopt);
}

absl::StatusOr<AppendResult> PartitionLogImpl::AppendReplicated(
    std::string batch, int64_t base_offset) {
  RETURN_IF_ERROR(ValidateBatch(batch));
  ASSIGN_OR_RETURN(BatchHeader header, ParseBatchHeader(batch));
  return core_->SubmitAppend(this, batch, header, base_offset);
}

absl::StatusOr<int64_t> PartitionLogImpl::AppendReplicatedBatches(
    std::vector<std::pair<int64_t, std::string>> batches) {
  std::vector<Writer> writers(batches.size());
  for (size_t i = 0; i < batches.size(); ++i) {
    RETURN_IF_ERROR(ValidateBatch(batches[i].second));
    ASSIGN_OR_RETURN(BatchHeader header, ParseBatchHeader(batches[i].second));
    writers[i].partition = this;
    writers[i].batch = batches[i].second;
    writers[i].record_count = header.record_count;
    writers[i].leader_epoch = header.leader_epoch;
    writers[i].expected_base = batches[i].first;
  }
  if (writers.empty()) return log_end_offset();
  RETURN_IF_ERROR(core_->SubmitAppends(this, writers));
  int64_t end = log_end_offset();
  for (Writer& w : writers) {
    if (!w.result.ok()) return w.result.status();
    end = w.result->last_offset + 1;
  }
  return end;
}

absl::StatusOr<int64_t> PartitionLogImpl::TruncateTo(int64_t offset) {
  {
    absl::MutexLock l(&core_->queue_mu_);
    if (core_->closing_) return absl::UnavailableError("log store is closing");
  }
  int64_t new_end = -1;
  // Exclusive: no group write is in flight, so pending state == published
  // state, and no append lands until the truncation is on disk.
  RETURN_IF_ERROR(core_->RunExclusive([&]() -> absl::Status {
    absl::ReaderMutexLock dl(&core_->db_mu_);
    if (core_->db_ == nullptr) {
      return absl::UnavailableError("log store is closed");
    }
    absl::ReaderMutexLock cl(&cf_mu_);
    if (cf_ == nullptr) return GoneError(liveness());
    const Snapshot snap = TakeSnapshot();
    if (snap.liveness != Liveness::kLive) return GoneError(snap.liveness);
    if (offset < snap.start || offset > snap.end) {
      return absl::OutOfRangeError(absl::StrCat(
          "cannot truncate partition ", cf_name_, " to offset ", offset,
          ": valid offsets are [", snap.start, ", ", snap.end, "]"));
    }
    if (offset == snap.end) {
      new_end = offset;
      return absl::OkStatus();
    }
    // Batches go whole: start the removal at the batch holding `offset`.
    int64_t remove_from = offset;
    {
      std::unique_ptr<rocksdb::Iterator> it(
          core_->db_->NewIterator(rocksdb::ReadOptions(), cf_));
      it->SeekForPrev(EncodeOffset(offset));
      if (it->Valid()) {
        int64_t base;
        const absl::string_view value(it->value().data(), it->value().size());
        absl::StatusOr<BatchHeader> header = ParseBatchHeader(value);
        if (!DecodeOffset(it->key(), &base) || !header.ok()) {
          return absl::DataLossError(
              absl::StrCat("partition ", cf_name_,
                           ": corrupt batch before offset ", offset));
        }
        if (base + header->record_count > offset) remove_from = base;
      }
      RETURN_IF_ERROR(
          FromRocks(it->status(), absl::StrCat("reading ", cf_name_)));
    }
    // The batch holding `offset` also holds the log start (only possible once
    // retention moves the start inside a batch): the log becomes empty,
    // starting at `offset`, as with Kafka's truncateFullyAndStartAt; whatever
    // retention left below the start goes too.
    const bool empties_log = remove_from < snap.start;
    if (empties_log) remove_from = 0;
    const int64_t start = empties_log ? offset : snap.start;
    const int64_t end = empties_log ? offset : remove_from;
    LeaderEpochCache epochs = pending_epochs_;
    epochs.TruncateFromEnd(remove_from);
    int64_t old_hw;
    LeaderEpochCache old_epochs;
    int64_t hw;
    {
      // Hide the removed batches before they are deleted, so that no reader
      // starting from now on sees them (or part of them).
      absl::MutexLock l(&state_mu_);
      old_hw = hw_;
      old_epochs = epochs_;
      hw_ = std::clamp(hw_, start, end);
      hw = hw_;
      log_start_ = start;
      log_end_ = end;
      epochs_ = epochs;
    }
    rocksdb::WriteBatch batch;
    (void)batch.DeleteRange(cf_, EncodeOffset(remove_from),
                            PastLastOffsetKey());
    (void)batch.Put(EpochsKey(cf_name_), epochs.Encode());
    (void)batch.Put(HwKey(cf_name_), EncodeOffset(hw));
    if (empties_log) (void)batch.Put(LsoKey(cf_name_), EncodeOffset(start));
    rocksdb::WriteOptions sync;
    sync.sync = true;
    if (absl::Status s = FromRocks(core_->db_->Write(sync, &batch),
                                   absl::StrCat("truncating ", cf_name_));
        !s.ok()) {
      absl::MutexLock l(&state_mu_);
      log_start_ = snap.start;
      log_end_ = snap.end;
      epochs_ = std::move(old_epochs);
      hw_ = std::max(hw_, old_hw);
      return s;
    }
    pending_end_ = end;
    pending_epochs_ = std::move(epochs);
    persisted_hw_ = hw;
    new_end = end;
    LOG(INFO) << "partition " << cf_name_ << ": truncated to " << end
              << " (asked " << offset << ", log end was " << snap.end << ")";
    return absl::OkStatus();
  }));
  return new_end;
}

absl::Status PartitionLogImpl::SetHighWatermark(int64_t hw) {
  absl::MutexLock l(&state_mu_);
  if (liveness_ != Liveness::kLive) return GoneError(liveness_);
  if (hw > log_end_) {
    return absl::InvalidArgumentError(
        absl::StrCat("high watermark ", hw, " of partition ", cf_name_,
                     " would be above its log end offset ", log_end_));
  }
  if (hw < hw_) {
    return absl::InvalidArgumentError(
        absl::StrCat("high watermark of partition ", cf_name_,
                     " cannot move back from ", hw_, " to ", hw));
  }
  if (hw > hw_) {
    hw_ = hw;
    data_cv_.SignalAll();
  }
  return absl::OkStatus();
}

bool PartitionLogImpl::WaitForHighWatermark(int64_t offset,
                                            absl::Duration timeout) {
  const absl::Time deadline = MonotonicNow() + timeout;
  absl::MutexLock l(&state_mu_);
  while (hw_ <= offset && liveness_ == Liveness::kLive) {
    const absl::Duration left = deadline - MonotonicNow();
    if (left <= absl::ZeroDuration()) break;
    data_cv_.WaitWithTimeout(&state_mu_, left);
  }
  return hw_ > offset && liveness_ == Liveness::kLive;
}

absl::Status PartitionLogImpl::WithIterator(
    int64_t end, const std::function<absl::Status(rocksdb::Iterator*)>& fn) {
  absl::ReaderMutexLock dl(&core_->db_mu_);
  if (core_->db_ == nullptr)
    return absl::UnavailableError("log store is closed");
  absl::ReaderMutexLock cl(&cf_mu_);
  if (cf_ == nullptr) return GoneError(liveness());
  // Batches at or past the published end may belong to a write in flight.
  const std::string upper = EncodeOffset(end);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(
      core_->db_->NewIterator(read_options, cf_));
  RETURN_IF_ERROR(fn(it.get()));
  return FromRocks(it->status(), absl::StrCat("reading ", cf_name_));
}

// Positions `it` at the batch containing `offset` (or the first one after it).
void SeekToBatchContaining(rocksdb::Iterator* it, int64_t offset) {
  const std::string key = EncodeOffset(offset);
  it->SeekForPrev(key);
  if (!it->Valid() && it->status().ok()) it->Seek(key);
}

absl::StatusOr<std::vector<StoredBatch>> PartitionLogImpl::Read(
    int64_t offset, size_t max_bytes) {
  const Snapshot snap = TakeSnapshot();
  if (snap.liveness != Liveness::kLive) return GoneError(snap.liveness);
  if (offset < snap.start || offset > snap.end) {
    return absl::OutOfRangeError(absl::StrCat(
        "offset ", offset, " is outside the log of partition ", cf_name_,
        ": valid offsets are [", snap.start, ", ", snap.end, "]"));
  }
  std::vector<StoredBatch> batches;
  if (offset == snap.end) return batches;
  size_t total = 0;
  RETURN_IF_ERROR(
      WithIterator(snap.end, [&](rocksdb::Iterator* it) -> absl::Status {
        for (SeekToBatchContaining(it, offset); it->Valid(); it->Next()) {
          StoredBatch batch;
          const absl::string_view value(it->value().data(), it->value().size());
          if (!DecodeOffset(it->key(), &batch.base_offset)) {
            return absl::DataLossError(absl::StrCat("bad key in ", cf_name_));
          }
          if (absl::Status s = ValidateBatch(value); !s.ok()) {
            return absl::DataLossError(
                absl::StrCat("batch at offset ", batch.base_offset, " of ",
                             cf_name_, ": ", s.message()));
          }
          batch.record_count = ParseBatchHeader(value)->record_count;
          if (batch.base_offset + batch.record_count <= offset) continue;
          if (!batches.empty() && total + value.size() > max_bytes) break;
          total += value.size();
          batch.data = std::string(value);
          batches.push_back(std::move(batch));
          if (total >= max_bytes) break;
        }
        return absl::OkStatus();
      }));
  if (batches.empty()) {
    // A TruncateTo ran meanwhile and removed what the snapshot promised.
    const Snapshot now = TakeSnapshot();
    if (now.liveness != Liveness::kLive) return GoneError(now.liveness);
    if (offset > now.end) {
      return absl::OutOfRangeError(
          absl::StrCat("offset ", offset, " is outside the log of partition ",
                       cf_name_, ": valid offsets are [", now.start, ", ",
                       now.end, "] (it was truncated)"));
    }
  }
  return batches;
}

bool PartitionLogImpl::WaitForData(int64_t offset, absl::Duration timeout) {
  const absl::Time deadline = MonotonicNow() + timeout;
  absl::MutexLock l(&state_mu_);
  while (log_end_ <= offset && liveness_ == Liveness::kLive) {
    const absl::Duration left = deadline - MonotonicNow();
    if (left <= absl::ZeroDuration()) break;
    data_cv_.WaitWithTimeout(&state_mu_, left);
  }
  return log_end_ > offset && liveness_ == Liveness::kLive;
}

absl::StatusOr<std::pair<int64_t, int64_t>>
PartitionLogImpl::OffsetForTimestamp(int64_t timestamp_ms) {
  const Snapshot snap = TakeSnapshot();
  if (snap.liveness != Liveness::kLive) return GoneError(snap.liveness);
  std::pair<int64_t, int64_t> found{snap.end, -1};
  if (snap.start == snap.end) return found;
  // TODO: this scans every batch from the log start: O(n) in the log's size. A
  // time index column family (max_timestamp -> base offset, written in the same
  // WriteBatch as the data) would make it one O(log n) seek.
  RETURN_IF_ERROR(
      WithIterator(snap.end, [&](rocksdb::Iterator* it) -> absl::Status {
        for (SeekToBatchContaining(it, snap.start); it->Valid(); it->Next()) {
          int64_t base;
          const absl::string_view value(it->value().data(), it->value().size());
          if (!DecodeOffset(it->key(), &base)) {
            return absl::DataLossError(absl::StrCat("bad key in ", cf_name_));
          }
          ASSIGN_OR_RETURN(BatchHeader header, ParseBatchHeader(value));
          if (header.max_timestamp < timestamp_ms)
            continue;  // nothing late enough here
          google::protobuf::RepeatedPtrField<fjord::v1::ConsumedRecord> records;
          RETURN_IF_ERROR(DecodeBatch(value, base, snap.start, &records));
          for (const auto& r : records) {
            if (r.timestamp_ms() >= timestamp_ms) {
              found = {r.offset(), r.timestamp_ms()};
              return absl::OkStatus();
            }
          }
        }
        return absl::OkStatus();
      }));
  return found;
}

// ---------------------------------------------------------------------------
// The LogStore handed to callers: forwards to the core and closes it when
// destroyed. Outstanding PartitionLog handles keep the (closed) core alive.

class LogStoreImpl final : public LogStore {
 public:
  explicit LogStoreImpl(std::shared_ptr<StoreCore> core)
      : core_(std::move(core)) {}
  ~LogStoreImpl() override { (void)core_->Close(); }

  absl::StatusOr<std::shared_ptr<PartitionLog>> CreatePartition(
      const PartitionId& id) override {
    ASSIGN_OR_RETURN(auto logs, core_->CreatePartitions({id}));
    return logs[0];
  }
  absl::StatusOr<std::vector<std::shared_ptr<PartitionLog>>> CreatePartitions(
      const std::vector<PartitionId>& ids) override {
    return core_->CreatePartitions(ids);
  }
  std::shared_ptr<PartitionLog> GetPartition(const PartitionId& id) override {
    return core_->GetPartition(id);
  }
  absl::Status DropPartition(const PartitionId& id) override {
    return core_->DropPartition(id);
  }
  std::vector<PartitionId> ListPartitions() override {
    return core_->ListPartitions();
  }
  absl::Status PutMeta(absl::string_view key,
                       absl::string_view value) override {
    return core_->PutMeta(key, value);
  }
  absl::Status DeleteMeta(absl::string_view key) override {
    return core_->DeleteMeta(key);
  }
  absl::StatusOr<std::optional<std::string>> GetMeta(
      absl::string_view key) override {
    return core_->GetMeta(key);
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ScanMeta(
      absl::string_view prefix) override {
    return core_->ScanMeta(prefix);
  }
  LogStoreStats stats() const override { return core_->stats(); }
  absl::Status Close() override { return core_->Close(); }

 private:
  const std::shared_ptr<StoreCore> core_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LogStore>> LogStore::Open(
    const StoreOptions& options) {
  auto core = std::make_shared<StoreCore>(options);
  if (absl::Status s = core->OpenDb(); !s.ok()) {
    (void)core->Close();
    return s;
  }
  return std::unique_ptr<LogStore>(new LogStoreImpl(std::move(core)));
}

}  // namespace fjord::storage
