// PartitionLog's replica operations: AppendReplicated, the leader epoch cache,
// TruncateTo and the high watermark.
#include <atomic>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/log_store.h"
#include "storage/record_batch.h"

namespace fjord::storage {
namespace {

// A batch of `count` records of leader epoch `epoch`, values "<tag>#<i>".
std::string MakeBatch(int32_t epoch, const std::string& tag, int count) {
  google::protobuf::RepeatedPtrField<fjord::v1::Record> records;
  for (int i = 0; i < count; ++i) {
    fjord::v1::Record* r = records.Add();
    r->set_value(absl::StrCat(tag, "#", i));
    r->set_timestamp_ms(1000 + i);
  }
  absl::StatusOr<std::string> batch = EncodeBatch(records, epoch, 1);
  EXPECT_TRUE(batch.ok());
  return *batch;
}

int32_t EpochOf(const std::string& batch) {
  return ParseBatchHeader(batch)->leader_epoch;
}

// Every batch of the log, from its start.
std::vector<StoredBatch> ReadAll(PartitionLog& log) {
  absl::StatusOr<std::vector<StoredBatch>> read =
      log.Read(log.log_start_offset(), size_t{1} << 30);
  EXPECT_TRUE(read.ok()) << read.status();
  return read.ok() ? *read : std::vector<StoredBatch>{};
}

// The value of `key` in the default column family of the store in `dir`, read
// through a separate read-only RocksDB instance (so it shows what is in the
// WAL or tables, not what the store holds in memory). nullopt when absent.
std::optional<std::string> RawDefaultKey(const std::string& dir,
                                         const std::string& key) {
  rocksdb::DB* db = nullptr;
  rocksdb::Status s =
      rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir, &db);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return std::nullopt;
  std::string value;
  s = db->Get(rocksdb::ReadOptions(), key, &value);
  delete db;
  if (s.IsNotFound()) return std::nullopt;
  EXPECT_TRUE(s.ok()) << s.ToString();
  return value;
}

// Runs `fn` on the store's directory opened with a bare RocksDB (every column
// family opened, as RocksDB requires), for tests that tamper with it.
void WithRawDb(const std::string& dir,
               const std::function<void(rocksdb::DB*)>& fn) {
  std::vector<std::string> names;
  ASSERT_TRUE(
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (auto& n : names)
    descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(rocksdb::DBOptions(), dir, descriptors, &handles, &db);
  ASSERT_TRUE(s.ok()) << s.ToString();
  fn(db);
  for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
  delete db;
}

std::string BigEndian(int64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i)
    s[i] = static_cast<char>((static_cast<uint64_t>(v) >> (56 - 8 * i)) & 0xFF);
  return s;
}

class ReplicaLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    options_.data_dir = dir_.string();
    Reopen();
  }

  void Reopen() {
    log_.reset();
    store_.reset();
    absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(options_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    log_ = store_->GetPartition({"t", 0});
    if (log_ == nullptr) {
      absl::StatusOr<std::shared_ptr<PartitionLog>> log =
          store_->CreatePartition({"t", 0});
      ASSERT_TRUE(log.ok()) << log.status();
      log_ = *log;
    }
  }

  // Appends batches of epochs 0,0,1,1,3 with 2,3,2,3,2 records: offsets 0-1,
  // 2-4, 5-6, 7-9 and 10-11; the cache is (0,0), (1,5), (3,10).
  void AppendFiveBatches() {
    const std::pair<int32_t, int> batches[] = {
        {0, 2}, {0, 3}, {1, 2}, {1, 3}, {3, 2}};
    int i = 0;
    for (auto [epoch, count] : batches) {
      std::string batch = MakeBatch(epoch, absl::StrCat("b", i), count);
      // Leader appends and follower appends feed the cache alike.
      absl::StatusOr<AppendResult> r =
          i % 2 == 0 ? log_->Append(batch)
                     : log_->AppendReplicated(batch, log_->log_end_offset());
      ASSERT_TRUE(r.ok()) << r.status();
      ++i;
    }
    ASSERT_EQ(log_->log_end_offset(), 12);
  }

  std::filesystem::path dir_;
  StoreOptions options_;
  std::unique_ptr<LogStore> store_;
  std::shared_ptr<PartitionLog> log_;
};

TEST_F(ReplicaLogTest, AppendReplicatedStoresTheLeadersBytesAtTheLogEnd) {
  const std::string first = MakeBatch(4, "a", 3);
  absl::StatusOr<AppendResult> r = log_->AppendReplicated(first, 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->base_offset, 0);
  EXPECT_EQ(r->last_offset, 2);
  const std::string second = MakeBatch(4, "b", 1);
  ASSERT_TRUE(log_->AppendReplicated(second, 3).ok());
  std::vector<StoredBatch> stored = ReadAll(*log_);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].data, first) << "bytes must be kept exactly";
  EXPECT_EQ(stored[1].data, second);
  EXPECT_EQ(stored[1].base_offset, 3);
  EXPECT_EQ(log_->LatestEpoch(), 4);
}

TEST_F(ReplicaLogTest, AppendReplicatedBatchesShareOneWriteAndStopAtAMismatch) {
  const uint64_t writes_before = store_->stats().rocksdb_writes;
  absl::StatusOr<int64_t> end = log_->AppendReplicatedBatches(
      {{0, MakeBatch(1, "a", 2)}, {2, MakeBatch(1, "b", 3)}, {5, MakeBatch(2, "c", 1)}});
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, 6);
  EXPECT_EQ(log_->log_end_offset(), 6);
  EXPECT_EQ(store_->stats().rocksdb_writes, writes_before + 1);  // one group commit
  EXPECT_EQ(log_->LatestEpoch(), 2);
  // A gap in the middle: the batches before it land, none after it.
  end = log_->AppendReplicatedBatches(
      {{6, MakeBatch(2, "d", 1)}, {9, MakeBatch(2, "gap", 1)}, {10, MakeBatch(2, "e", 1)}});
  EXPECT_EQ(end.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log_->log_end_offset(), 7);
}

TEST_F(ReplicaLogTest, AppendReplicatedAtAnotherOffsetIsRefused) {
  ASSERT_TRUE(log_->AppendReplicated(MakeBatch(0, "a", 3), 0).ok());
  for (int64_t wrong : {0L, 2L, 4L, 100L, -1L}) {
    absl::StatusOr<AppendResult> r =
        log_->AppendReplicated(MakeBatch(0, "x", 1), wrong);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition)
        << wrong;
    EXPECT_TRUE(absl::StrContains(r.status().message(), absl::StrCat(wrong)))
        << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), "3")) << r.status();
  }
  EXPECT_EQ(log_->log_end_offset(), 3) << "nothing written";
  EXPECT_EQ(ReadAll(*log_).size(), 1u);
  // A corrupt replicated batch is DATA_LOSS, also at the right offset.
  std::string corrupt = MakeBatch(0, "c", 1);
  corrupt[corrupt.size() - 1] ^= 1;
  EXPECT_EQ(log_->AppendReplicated(corrupt, 3).status().code(),
            absl::StatusCode::kDataLoss);
  Reopen();
  EXPECT_EQ(log_->log_end_offset(), 3);
}

TEST_F(ReplicaLogTest, ConcurrentFollowerAppendsAtTheSameOffsetOnlyOneWins) {
  // Several fetchers racing for the same offset: exactly one lands.
  for (int round = 0; round < 20; ++round) {
    const int64_t end = log_->log_end_offset();
    std::atomic<int> ok{0}, refused{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        absl::StatusOr<AppendResult> r =
            log_->AppendReplicated(MakeBatch(round, absl::StrCat(t), 2), end);
        if (r.ok()) {
          ok++;
        } else if (r.status().code() == absl::StatusCode::kFailedPrecondition) {
          refused++;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok, 1);
    EXPECT_EQ(refused, 3);
    EXPECT_EQ(log_->log_end_offset(), end + 2);
  }
}

TEST_F(ReplicaLogTest, EpochCacheFollowsBatchHeadersAndSurvivesReopen) {
  EXPECT_EQ(log_->LatestEpoch(), kUndefinedEpoch);
  EXPECT_TRUE(log_->EndOffsetForEpoch(0).undefined());
  AppendFiveBatches();
  const std::vector<EpochEntry> want = {{0, 0}, {1, 5}, {3, 10}};
  struct Case {
    int32_t epoch;
    EpochEndOffset want;
  };
  const Case cases[] = {{-1, {-1, -1}}, {0, {0, 5}},  {1, {1, 10}},
                        {2, {1, 10}},   {3, {3, 12}}, {4, {3, 12}}};
  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass == 0 ? "before reopen" : "after reopen");
    EXPECT_EQ(log_->LeaderEpochs(), want);
    EXPECT_EQ(log_->LatestEpoch(), 3);
    for (const Case& c : cases) {
      EXPECT_EQ(log_->EndOffsetForEpoch(c.epoch), c.want) << c.epoch;
    }
    Reopen();
  }
  // The latest epoch's end follows the log end.
  ASSERT_TRUE(log_->Append(MakeBatch(3, "more", 4)).ok());
  EXPECT_EQ(log_->EndOffsetForEpoch(3), (EpochEndOffset{3, 16}));
  EXPECT_EQ(log_->LeaderEpochs(), want);
}

TEST_F(ReplicaLogTest, AppendOfAnOlderEpochIsFencedAndWritesNothing) {
  AppendFiveBatches();
  for (bool replicated : {false, true}) {
    std::string stale = MakeBatch(2, "stale", 1);
    absl::StatusOr<AppendResult> r =
        replicated ? log_->AppendReplicated(stale, 12) : log_->Append(stale);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition)
        << r.status();
  }
  EXPECT_EQ(log_->Append(MakeBatch(-1, "neg", 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->log_end_offset(), 12);
  EXPECT_EQ(log_->LatestEpoch(), 3);
  // In one group: a newer epoch then an older one queued right behind it.
  std::atomic<int> fenced{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      absl::StatusOr<AppendResult> r =
          log_->Append(MakeBatch(t % 2 == 0 ? 9 : 3, "g", 1));
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
        fenced++;
      }
    });
  }
  for (auto& t : threads) t.join();
  // Epoch-3 appends that ran before the first epoch-9 one succeed; after it
  // they are fenced. Whatever the interleaving, the stored headers never
  // decrease and the cache matches them.
  int32_t last_epoch = -1;
  std::vector<EpochEntry> derived;
  for (const StoredBatch& b : ReadAll(*log_)) {
    const int32_t e = EpochOf(b.data);
    EXPECT_GE(e, last_epoch) << "epoch decreased at " << b.base_offset;
    if (e > last_epoch) derived.push_back({e, b.base_offset});
    last_epoch = e;
  }
  EXPECT_EQ(log_->LeaderEpochs(), derived);
  EXPECT_EQ(log_->LatestEpoch(), 9);
  EXPECT_EQ(log_->log_end_offset(), 12 + 8 - fenced);
}

TEST_F(ReplicaLogTest, TruncateInsideABatchRemovesTheWholeBatch) {
  AppendFiveBatches();
  ASSERT_TRUE(log_->SetHighWatermark(11).ok());
  // Offset 8 is inside the batch 7-9 (epoch 1): the log ends at 7.
  absl::StatusOr<int64_t> end = log_->TruncateTo(8);
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, 7);
  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass == 0 ? "before reopen" : "after reopen");
    EXPECT_EQ(log_->log_end_offset(), 7);
    EXPECT_EQ(log_->high_watermark(), 7) << "lowered to the new end";
    EXPECT_EQ(log_->LeaderEpochs(), (std::vector<EpochEntry>{{0, 0}, {1, 5}}));
    EXPECT_EQ(log_->EndOffsetForEpoch(1), (EpochEndOffset{1, 7}));
    EXPECT_EQ(log_->EndOffsetForEpoch(3), (EpochEndOffset{1, 7}));
    std::vector<StoredBatch> stored = ReadAll(*log_);
    ASSERT_EQ(stored.size(), 3u);
    EXPECT_EQ(stored.back().base_offset, 5);
    EXPECT_EQ(log_->Read(8, 100).status().code(),
              absl::StatusCode::kOutOfRange);
    Reopen();
  }
  // The follower refetches from 7: first more of epoch 1, which does not
  // change the cache (so the truncation itself must have stored it), then
  // epoch 2, lower than the removed epoch 3.
  ASSERT_TRUE(log_->AppendReplicated(MakeBatch(1, "refetched", 4), 7).ok());
  Reopen();
  EXPECT_EQ(log_->LeaderEpochs(), (std::vector<EpochEntry>{{0, 0}, {1, 5}}));
  EXPECT_EQ(log_->EndOffsetForEpoch(1), (EpochEndOffset{1, 11}));
  absl::StatusOr<AppendResult> r =
      log_->AppendReplicated(MakeBatch(2, "refetched", 2), 11);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(log_->LeaderEpochs(),
            (std::vector<EpochEntry>{{0, 0}, {1, 5}, {2, 11}}));
  std::vector<StoredBatch> stored = ReadAll(*log_);
  ASSERT_EQ(stored.size(), 5u);
  EXPECT_EQ(stored.back().data, MakeBatch(2, "refetched", 2));
}

TEST_F(ReplicaLogTest, TruncationStoresTheEpochCacheItself) {
  AppendFiveBatches();
  ASSERT_EQ(*log_->TruncateTo(8), 7);  // removes epoch 3's entry (3, 10)
  // More of epoch 1 does not change the cache, so no append stores it: the
  // truncation must have. (On open, entries past the log end are dropped; here
  // the log grows back past 10, where the removed entry started.)
  ASSERT_TRUE(log_->AppendReplicated(MakeBatch(1, "more", 5), 7).ok());
  Reopen();
  EXPECT_EQ(log_->LeaderEpochs(), (std::vector<EpochEntry>{{0, 0}, {1, 5}}));
  EXPECT_EQ(log_->EndOffsetForEpoch(3), (EpochEndOffset{1, 12}));
}

TEST_F(ReplicaLogTest, TruncateAtABatchBoundaryAndAtTheEnds) {
  AppendFiveBatches();
  ASSERT_TRUE(log_->SetHighWatermark(4).ok());
  EXPECT_EQ(*log_->TruncateTo(12), 12) << "at the log end: nothing to do";
  EXPECT_EQ(log_->LeaderEpochs().size(), 3u);
  // 10 is where the epoch-3 batch starts.
  EXPECT_EQ(*log_->TruncateTo(10), 10);
  EXPECT_EQ(log_->LatestEpoch(), 1);
  EXPECT_EQ(log_->high_watermark(), 4) << "below the new end: unchanged";
  // 5 is where epoch 1 starts.
  EXPECT_EQ(*log_->TruncateTo(5), 5);
  EXPECT_EQ(log_->LeaderEpochs(), (std::vector<EpochEntry>{{0, 0}}));
  EXPECT_EQ(log_->EndOffsetForEpoch(0), (EpochEndOffset{0, 5}));
  EXPECT_EQ(log_->TruncateTo(6).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(log_->TruncateTo(-1).status().code(),
            absl::StatusCode::kOutOfRange);
  Reopen();
  EXPECT_EQ(log_->log_end_offset(), 5);
  EXPECT_EQ(log_->high_watermark(), 4);
  // Below the high watermark, down to nothing.
  EXPECT_EQ(*log_->TruncateTo(0), 0);
  EXPECT_EQ(log_->high_watermark(), 0);
  EXPECT_EQ(log_->LatestEpoch(), kUndefinedEpoch);
  EXPECT_TRUE(ReadAll(*log_).empty());
  Reopen();
  EXPECT_EQ(log_->log_end_offset(), 0);
  EXPECT_EQ(log_->LatestEpoch(), kUndefinedEpoch);
  ASSERT_TRUE(log_->Append(MakeBatch(0, "again", 1)).ok());
  EXPECT_EQ(log_->LeaderEpochs(), (std::vector<EpochEntry>{{0, 0}}));
}

TEST_F(ReplicaLogTest, TruncateInsideTheBatchHoldingTheLogStartEmptiesTheLog) {
  AppendFiveBatches();
  log_.reset();
  store_.reset();
  // Retention moved the log start to 3, inside the batch 2-4.
  WithRawDb(dir_.string(), [](rocksdb::DB* db) {
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), "lso/p.t.0", BigEndian(3)).ok());
  });
  Reopen();
  ASSERT_EQ(log_->log_start_offset(), 3);
  EXPECT_EQ(log_->TruncateTo(2).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(*log_->TruncateTo(4), 4);
  EXPECT_EQ(log_->log_start_offset(), 4);
  EXPECT_EQ(log_->log_end_offset(), 4);
  EXPECT_TRUE(log_->LeaderEpochs().empty());
  Reopen();
  EXPECT_EQ(log_->log_start_offset(), 4);
  EXPECT_EQ(log_->log_end_offset(), 4);
  absl::StatusOr<AppendResult> r =
      log_->AppendReplicated(MakeBatch(5, "x", 1), 4);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(log_->LeaderEpochs(), (std::vector<EpochEntry>{{5, 4}}));
}

TEST_F(ReplicaLogTest, TruncateWhileReadingAndAppending) {
  // A reader, a follower appending and a truncating thread, for a while. The
  // reader must only ever get whole, valid, contiguous batches; after each
  // TruncateTo returns, nothing at or above its result is readable until
  // appended again.
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    while (!stop) {
      const int64_t end = log_->log_end_offset();
      const int64_t from = end > 0 ? static_cast<int64_t>(reads % end) : 0;
      absl::StatusOr<std::vector<StoredBatch>> got = log_->Read(from, 1 << 16);
      if (!got.ok()) {
        EXPECT_EQ(got.status().code(), absl::StatusCode::kOutOfRange)
            << got.status();
        continue;
      }
      int64_t next = -1;
      for (const StoredBatch& b : *got) {
        EXPECT_TRUE(ValidateBatch(b.data).ok());
        if (next >= 0) EXPECT_EQ(b.base_offset, next);
        next = b.base_offset + b.record_count;
      }
      reads++;
    }
  });
  std::mt19937 rng(7);
  absl::Mutex mu;  // the appender and the truncator take turns on the epoch
  int32_t epoch = 0;
  std::thread appender([&] {
    for (int i = 0; !stop; ++i) {
      int32_t e;
      {
        absl::MutexLock l(&mu);
        e = epoch;
      }
      // Racing with the truncator: either lands at the end or is refused.
      absl::StatusOr<AppendResult> r = log_->AppendReplicated(
          MakeBatch(e, absl::StrCat(i), 1 + i % 3), log_->log_end_offset());
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition)
            << r.status();
      }
    }
  });
  for (int i = 0; i < 200; ++i) {
    absl::SleepFor(absl::Microseconds(500));
    const int64_t end = log_->log_end_offset();
    if (end == 0) continue;
    const int64_t target = end - static_cast<int64_t>(rng() % (end + 1) / 2);
    absl::StatusOr<int64_t> new_end = log_->TruncateTo(target);
    if (!new_end.ok()) {
      // The appender moved the end meanwhile: only OUT_OF_RANGE is possible,
      // and only if the log got shorter, which only we do.
      ADD_FAILURE() << new_end.status();
      continue;
    }
    EXPECT_LE(*new_end, target);
    {
      absl::MutexLock l(&mu);
      ++epoch;
    }
    // Whatever the appender did since, the batches from the new end on are
    // ones appended after the truncation: of the new epoch only... or the
    // one in flight that had read the old epoch. Check the cache instead.
    std::vector<EpochEntry> derived;
    int32_t last = -1;
    for (const StoredBatch& b : ReadAll(*log_)) {
      const int32_t e = EpochOf(b.data);
      if (e > last) derived.push_back({e, b.base_offset});
      last = e;
    }
    // The appender may land a batch between ReadAll and LeaderEpochs.
    std::vector<EpochEntry> cached = log_->LeaderEpochs();
    ASSERT_GE(cached.size(), derived.size());
    cached.resize(derived.size());
    EXPECT_EQ(cached, derived);
  }
  stop = true;
  appender.join();
  reader.join();
  EXPECT_GT(reads, 0);
  // Quiet now: the cache matches the headers exactly, also after a reopen.
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<EpochEntry> derived;
    int32_t last = -1;
    int64_t next = 0;
    for (const StoredBatch& b : ReadAll(*log_)) {
      EXPECT_EQ(b.base_offset, next);
      next = b.base_offset + b.record_count;
      const int32_t e = EpochOf(b.data);
      if (e > last) derived.push_back({e, b.base_offset});
      last = e;
    }
    EXPECT_EQ(next, log_->log_end_offset());
    EXPECT_EQ(log_->LeaderEpochs(), derived);
    Reopen();
  }
}

TEST_F(ReplicaLogTest, HighWatermarkOnlyMovesForwardWithinTheLog) {
  EXPECT_EQ(log_->high_watermark(), 0);
  EXPECT_EQ(log_->SetHighWatermark(1).code(),
            absl::StatusCode::kInvalidArgument);
  AppendFiveBatches();
  EXPECT_EQ(log_->SetHighWatermark(13).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(log_->SetHighWatermark(5).ok());
  EXPECT_TRUE(log_->SetHighWatermark(5).ok()) << "same value: no-op";
  absl::Status back = log_->SetHighWatermark(4);
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(back.message(), "5")) << back;
  EXPECT_EQ(log_->high_watermark(), 5);
  ASSERT_TRUE(log_->SetHighWatermark(12).ok());
  ASSERT_TRUE(store_->Close().ok());  // Close writes it
  Reopen();
  EXPECT_EQ(log_->high_watermark(), 12);
}

TEST_F(ReplicaLogTest, HighWatermarkIsWrittenWithTheNextAppend) {
  options_.high_watermark_checkpoint_interval = absl::Hours(1);
  Reopen();
  AppendFiveBatches();
  ASSERT_TRUE(log_->SetHighWatermark(7).ok());
  EXPECT_EQ(RawDefaultKey(options_.data_dir, "hw/p.t.0"), std::nullopt)
      << "lazy: not written by SetHighWatermark itself";
  ASSERT_TRUE(log_->Append(MakeBatch(3, "carrier", 1)).ok());
  EXPECT_EQ(RawDefaultKey(options_.data_dir, "hw/p.t.0"), BigEndian(7));
  // A follower append carries it too.
  ASSERT_TRUE(log_->SetHighWatermark(12).ok());
  ASSERT_TRUE(log_->AppendReplicated(MakeBatch(3, "carrier", 1), 13).ok());
  EXPECT_EQ(RawDefaultKey(options_.data_dir, "hw/p.t.0"), BigEndian(12));
}

TEST_F(ReplicaLogTest, HighWatermarkIsCheckpointedInTheBackground) {
  options_.high_watermark_checkpoint_interval = absl::Milliseconds(20);
  Reopen();
  AppendFiveBatches();
  ASSERT_TRUE(log_->SetHighWatermark(9).ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  std::optional<std::string> stored;
  while (absl::Now() < deadline) {
    stored = RawDefaultKey(options_.data_dir, "hw/p.t.0");
    if (stored == BigEndian(9)) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(stored, BigEndian(9)) << "no append, yet the checkpoint wrote it";
}

TEST_F(ReplicaLogTest, LoadedHighWatermarkIsClampedToTheLog) {
  AppendFiveBatches();
  ASSERT_TRUE(store_->Close().ok());
  log_.reset();
  store_.reset();
  WithRawDb(dir_.string(), [](rocksdb::DB* db) {
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), "hw/p.t.0", BigEndian(99)).ok());
  });
  Reopen();
  EXPECT_EQ(log_->high_watermark(), 12);
}

TEST_F(ReplicaLogTest, WaitForHighWatermark) {
  AppendFiveBatches();
  EXPECT_FALSE(
      log_->WaitForHighWatermark(0, absl::Milliseconds(30)))
      << "data exists but nothing is committed";
  EXPECT_TRUE(log_->WaitForData(0, absl::ZeroDuration()));
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    woke = log_->WaitForHighWatermark(4, absl::Seconds(30));
  });
  absl::SleepFor(absl::Milliseconds(30));
  ASSERT_TRUE(log_->SetHighWatermark(4).ok());  // not past 4 yet
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_FALSE(woke);
  ASSERT_TRUE(log_->SetHighWatermark(5).ok());
  waiter.join();
  EXPECT_TRUE(woke);
  // Dropping wakes waiters with false.
  std::thread dropped([&] {
    EXPECT_FALSE(
        log_->WaitForHighWatermark(8, absl::Seconds(60)));
  });
  absl::SleepFor(absl::Milliseconds(30));
  ASSERT_TRUE(store_->DropPartition({"t", 0}).ok());
  dropped.join();
  EXPECT_EQ(log_->SetHighWatermark(6).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(log_->TruncateTo(0).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ReplicaLogTest, DropForgetsTheEpochCacheAndHighWatermark) {
  AppendFiveBatches();
  ASSERT_TRUE(log_->SetHighWatermark(10).ok());
  ASSERT_TRUE(store_->DropPartition({"t", 0}).ok());
  Reopen();  // recreates "t"
  EXPECT_EQ(log_->LatestEpoch(), kUndefinedEpoch);
  EXPECT_EQ(log_->high_watermark(), 0);
  EXPECT_EQ(log_->log_end_offset(), 0);
  ASSERT_TRUE(log_->Append(MakeBatch(0, "a", 1)).ok()) << "epoch 0 again";
}

TEST_F(ReplicaLogTest, CacheIsRebuiltForALogWrittenBeforeItExisted) {
  AppendFiveBatches();
  log_.reset();
  store_.reset();
  WithRawDb(dir_.string(), [](rocksdb::DB* db) {
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), "epochs/p.t.0").ok());
  });
  EXPECT_EQ(RawDefaultKey(dir_.string(), "epochs/p.t.0"), std::nullopt);
  Reopen();
  EXPECT_EQ(log_->LeaderEpochs(),
            (std::vector<EpochEntry>{{0, 0}, {1, 5}, {3, 10}}));
  log_.reset();
  store_.reset();
  EXPECT_NE(RawDefaultKey(dir_.string(), "epochs/p.t.0"), std::nullopt)
      << "stored once rebuilt";
}

TEST_F(ReplicaLogTest, OperationsAfterCloseAreUnavailable) {
  AppendFiveBatches();
  ASSERT_TRUE(store_->Close().ok());
  EXPECT_EQ(log_->TruncateTo(5).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(log_->AppendReplicated(MakeBatch(3, "x", 1), 12).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(log_->SetHighWatermark(5).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(log_->WaitForHighWatermark(0, absl::Seconds(5)));
}

}  // namespace
}  // namespace fjord::storage
