#include "storage/log_store.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/record_batch.h"

namespace fjord::storage {
namespace {

// A batch of `count` records whose values start with `tag`, each `value_bytes`
// long.
std::string MakeBatch(const std::string& tag, int count,
                      int64_t timestamp_ms = 1000, size_t value_bytes = 0) {
  google::protobuf::RepeatedPtrField<fjord::v1::Record> records;
  for (int i = 0; i < count; ++i) {
    fjord::v1::Record* r = records.Add();
    std::string value = absl::StrCat(tag, "#", i);
    if (value.size() < value_bytes) value.resize(value_bytes, '.');
    r->set_value(value);
    r->set_key(absl::StrCat("k", i));
    r->set_timestamp_ms(timestamp_ms + i);
  }
  absl::StatusOr<std::string> batch = EncodeBatch(records, 0, 1);
  EXPECT_TRUE(batch.ok());
  return *batch;
}

// The record values of the stored batches, in offset order, from `from` on.
std::vector<std::string> Values(const std::vector<StoredBatch>& batches,
                                int64_t from = 0) {
  std::vector<std::string> values;
  for (const StoredBatch& b : batches) {
    google::protobuf::RepeatedPtrField<fjord::v1::ConsumedRecord> records;
    EXPECT_TRUE(DecodeBatch(b.data, b.base_offset, from, &records).ok());
    for (const auto& r : records) values.push_back(r.value());
  }
  return values;
}

class LogStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    options_.data_dir = dir_.string();
    Reopen();
  }

  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(options_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  std::shared_ptr<PartitionLog> Create(const std::string& topic,
                                       int partition = 0) {
    absl::StatusOr<std::shared_ptr<PartitionLog>> log =
        store_->CreatePartition({topic, partition});
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *log : nullptr;
  }

  std::filesystem::path dir_;
  StoreOptions options_;
  std::unique_ptr<LogStore> store_;
};

TEST(FsyncPolicyTest, ParsesAndNames) {
  for (FsyncPolicy p :
       {FsyncPolicy::kAlways, FsyncPolicy::kInterval, FsyncPolicy::kNever}) {
    absl::StatusOr<FsyncPolicy> parsed = ParseFsyncPolicy(FsyncPolicyName(p));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_EQ(ParseFsyncPolicy("sometimes").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((PartitionId{"abc", 7}.ColumnFamilyName()), "p.abc.7");
}

TEST_F(LogStoreTest, AppendAndReadSurviveReopen) {
  auto log = Create("t");
  absl::StatusOr<AppendResult> a = log->Append(MakeBatch("a", 1));
  absl::StatusOr<AppendResult> b = log->Append(MakeBatch("b", 3));
  absl::StatusOr<AppendResult> c = log->Append(MakeBatch("c", 2));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->base_offset, 0);
  EXPECT_EQ(a->last_offset, 0);
  EXPECT_EQ(b->base_offset, 1);
  EXPECT_EQ(b->last_offset, 3);
  EXPECT_EQ(c->base_offset, 4);
  EXPECT_EQ(c->last_offset, 5);
  EXPECT_EQ(log->log_end_offset(), 6);

  Reopen();
  EXPECT_EQ(log->Read(0, 1 << 20).status().code(),
            absl::StatusCode::kUnavailable)
      << "handles of a closed store answer UNAVAILABLE";
  std::vector<PartitionId> ids = store_->ListPartitions();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], (PartitionId{"t", 0}));
  log = store_->GetPartition({"t", 0});
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_start_offset(), 0);
  EXPECT_EQ(log->log_end_offset(), 6);
  absl::StatusOr<std::vector<StoredBatch>> read = log->Read(0, 1 << 20);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 3u);
  EXPECT_EQ((*read)[1].base_offset, 1);
  EXPECT_EQ((*read)[1].record_count, 3);
  EXPECT_EQ(Values(*read), (std::vector<std::string>{"a#0", "b#0", "b#1", "b#2",
                                                     "c#0", "c#1"}));
  absl::StatusOr<AppendResult> d = log->Append(MakeBatch("d", 1));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->base_offset, 6);
}

TEST_F(LogStoreTest, OutOfRangeNamesTheValidRange) {
  auto log = Create("t");
  ASSERT_TRUE(log->Append(MakeBatch("a", 4)).ok());
  for (int64_t bad : {int64_t{-1}, int64_t{5}, int64_t{1} << 62}) {
    absl::StatusOr<std::vector<StoredBatch>> read = log->Read(bad, 100);
    EXPECT_EQ(read.status().code(), absl::StatusCode::kOutOfRange) << bad;
    EXPECT_NE(read.status().message().find("[0, 4]"), std::string::npos)
        << read.status();
  }
  absl::StatusOr<std::vector<StoredBatch>> at_end = log->Read(4, 100);
  ASSERT_TRUE(at_end.ok());
  EXPECT_TRUE(at_end->empty());
  // An offset inside a batch returns that whole batch.
  absl::StatusOr<std::vector<StoredBatch>> mid = log->Read(2, 100);
  ASSERT_TRUE(mid.ok());
  ASSERT_EQ(mid->size(), 1u);
  EXPECT_EQ((*mid)[0].base_offset, 0);
}

TEST_F(LogStoreTest, ReadHonoursByteLimitButReturnsAtLeastOneBatch) {
  auto log = Create("t");
  std::vector<size_t> sizes;
  for (int i = 0; i < 5; ++i) {
    std::string batch = MakeBatch(absl::StrCat("b", i), 2, 1000, 500);
    sizes.push_back(batch.size());
    ASSERT_TRUE(log->Append(batch).ok());
  }
  auto count = [&](int64_t offset, size_t max_bytes) -> size_t {
    absl::StatusOr<std::vector<StoredBatch>> read =
        log->Read(offset, max_bytes);
    EXPECT_TRUE(read.ok()) << read.status();
    return read.ok() ? read->size() : 0;
  };
  EXPECT_EQ(count(0, 0), 1u);
  EXPECT_EQ(count(0, 1), 1u);
  EXPECT_EQ(count(0, sizes[0]), 1u);
  EXPECT_EQ(count(0, sizes[0] + sizes[1] - 1), 1u);
  EXPECT_EQ(count(0, sizes[0] + sizes[1]), 2u);
  EXPECT_EQ(count(0, 1 << 20), 5u);
  EXPECT_EQ(count(3, 1 << 20), 4u);  // from the batch holding 2..3
  absl::StatusOr<std::vector<StoredBatch>> tail = log->Read(9, 1);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 1u);
  EXPECT_EQ((*tail)[0].base_offset, 8);
  EXPECT_EQ(Values(*tail, 9),
            (std::vector<std::string>{std::string("b4#1").append(496, '.')}));
}

TEST_F(LogStoreTest, AppendRejectsCorruptBatches) {
  auto log = Create("t");
  std::string batch = MakeBatch("x", 2);
  batch[batch.size() - 1] ^= 1;
  EXPECT_EQ(log->Append(batch).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(log->Append("").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(log->log_end_offset(), 0);
}

// Appends from `threads` threads to `partitions` partitions, then checks that
// each partition's offsets are consecutive from 0 with no gap or duplicate and
// that every batch is stored at the offsets its Append returned.
void AppendConcurrently(LogStore* store,
                        std::vector<std::shared_ptr<PartitionLog>> logs,
                        int threads, int appends_per_thread) {
  struct Acked {
    AppendResult result;
    std::string batch;
  };
  absl::Mutex mu;
  std::vector<std::vector<Acked>> acked(logs.size());
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < appends_per_thread; ++i) {
        const size_t p = rng() % logs.size();
        std::string batch =
            MakeBatch(absl::StrCat("t", t, "-", i), 1 + rng() % 3);
        absl::StatusOr<AppendResult> r = logs[p]->Append(batch);
        ASSERT_TRUE(r.ok()) << r.status();
        absl::MutexLock l(&mu);
        acked[p].push_back({*r, std::move(batch)});
      }
    });
  }
  for (auto& w : workers) w.join();

  size_t total = 0;
  for (size_t p = 0; p < logs.size(); ++p) {
    std::vector<Acked>& a = acked[p];
    total += a.size();
    std::sort(a.begin(), a.end(), [](const Acked& x, const Acked& y) {
      return x.result.base_offset < y.result.base_offset;
    });
    int64_t next = 0;
    for (const Acked& x : a) {
      ASSERT_EQ(x.result.base_offset, next)
          << "gap or duplicate in partition " << p;
      next = x.result.last_offset + 1;
    }
    EXPECT_EQ(logs[p]->log_end_offset(), next);
    absl::StatusOr<std::vector<StoredBatch>> read =
        logs[p]->Read(0, size_t{1} << 30);
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_EQ(read->size(), a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ((*read)[i].base_offset, a[i].result.base_offset);
      EXPECT_EQ((*read)[i].data, a[i].batch);
    }
  }
  EXPECT_EQ(total, static_cast<size_t>(threads * appends_per_thread));
}

TEST_F(LogStoreTest,
       ConcurrentAppendsToOnePartitionAreConsecutiveAndGroupCommitted) {
  options_.fsync = FsyncPolicy::kAlways;
  Reopen();
  auto log = Create("t");
  AppendConcurrently(store_.get(), {log}, 8, 150);
  LogStoreStats stats = store_->stats();
  EXPECT_EQ(stats.appends, 8u * 150);
  EXPECT_LT(stats.rocksdb_writes, stats.appends)
      << "8 threads appending with fsync=always should share writes";
  EXPECT_GT(stats.largest_group, 1u);
  LOG(INFO) << "appends=" << stats.appends << " writes=" << stats.rocksdb_writes
            << " largest group=" << stats.largest_group;
}

TEST_F(LogStoreTest, ConcurrentAppendsToSeveralPartitions) {
  std::vector<std::shared_ptr<PartitionLog>> logs;
  for (int p = 0; p < 5; ++p) logs.push_back(Create("multi", p));
  AppendConcurrently(store_.get(), logs, 8, 100);
  LogStoreStats stats = store_->stats();
  EXPECT_LT(stats.rocksdb_writes, stats.appends);
  // And they survive a reopen.
  std::vector<int64_t> ends;
  for (auto& log : logs) ends.push_back(log->log_end_offset());
  Reopen();
  for (int p = 0; p < 5; ++p) {
    EXPECT_EQ(store_->GetPartition({"multi", p})->log_end_offset(), ends[p]);
  }
}

TEST_F(LogStoreTest, WaitForDataWakesOnAppendAndTimesOut) {
  auto log = Create("t");
  const absl::Time start = absl::Now();
  EXPECT_FALSE(log->WaitForData(0, absl::Milliseconds(100)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));

  std::atomic<bool> woke{false};
  std::thread waiter(
      [&] { woke = log->WaitForData(0, absl::Seconds(30)); });
  absl::SleepFor(absl::Milliseconds(50));
  const absl::Time appended = absl::Now();
  ASSERT_TRUE(log->Append(MakeBatch("a", 1)).ok());
  waiter.join();
  EXPECT_TRUE(woke);
  EXPECT_LT(absl::Now() - appended, absl::Seconds(10));
  // The log end is 1: data past offset 0 exists, past offset 1 not yet.
  EXPECT_TRUE(log->WaitForData(0, absl::ZeroDuration()));
  EXPECT_FALSE(log->WaitForData(1, absl::Milliseconds(20)));
}

TEST_F(LogStoreTest, DropWakesWaitersAndCloseWakesWaiters) {
  auto dropped = Create("t", 0);
  auto closed = Create("t", 1);
  std::atomic<int> returned{0};
  std::thread w1([&] {
    EXPECT_FALSE(dropped->WaitForData(0, absl::Seconds(60)));
    returned++;
  });
  std::thread w2([&] {
    EXPECT_FALSE(closed->WaitForData(0, absl::Seconds(60)));
    returned++;
  });
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_TRUE(store_->DropPartition({"t", 0}).ok());
  w1.join();
  ASSERT_TRUE(store_->Close().ok());
  w2.join();
  EXPECT_EQ(returned, 2);
}

TEST_F(LogStoreTest, DropThenRecreate) {
  auto log = Create("t");
  ASSERT_TRUE(log->Append(MakeBatch("old", 3)).ok());
  EXPECT_EQ(store_->CreatePartition({"t", 0}).status().code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->DropPartition({"t", 0}).ok());
  EXPECT_EQ(store_->DropPartition({"t", 0}).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetPartition({"t", 0}), nullptr);
  EXPECT_TRUE(store_->ListPartitions().empty());
  EXPECT_EQ(log->Append(MakeBatch("x", 1)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(log->Read(0, 100).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(log->OffsetForTimestamp(0).status().code(),
            absl::StatusCode::kNotFound);

  auto fresh = Create("t");
  EXPECT_EQ(fresh->log_end_offset(), 0);
  absl::StatusOr<AppendResult> r = fresh->Append(MakeBatch("new", 1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->base_offset, 0);
  Reopen();
  fresh = store_->GetPartition({"t", 0});
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(fresh->log_end_offset(), 1);
  absl::StatusOr<std::vector<StoredBatch>> read = fresh->Read(0, 1 << 20);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(Values(*read), (std::vector<std::string>{"new#0"}));
}

// Appends racing a drop either land before it (with consecutive offsets) or
// fail NOT_FOUND; nothing crashes or hangs.
TEST_F(LogStoreTest, DropWhileAppendsAreQueued) {
  auto log = Create("t");
  auto other = Create("u");
  std::atomic<bool> stop{false};
  std::atomic<int> not_found{0}, ok{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 6; ++t) {
    workers.emplace_back([&, t] {
      while (!stop) {
        auto& target = (t % 3 == 0) ? other : log;
        absl::StatusOr<AppendResult> r = target->Append(MakeBatch("x", 1));
        if (r.ok()) {
          ok++;
        } else {
          EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound)
              << r.status();
          not_found++;
          if (t % 3 != 0) return;
        }
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(store_->DropPartition({"t", 0}).ok());
  absl::SleepFor(absl::Milliseconds(100));
  stop = true;
  for (auto& w : workers) w.join();
  EXPECT_GT(ok, 0);
  EXPECT_EQ(not_found,
            4);  // each thread on the dropped partition fails once, then stops
  EXPECT_GT(other->log_end_offset(), 0);
  absl::StatusOr<std::vector<StoredBatch>> read =
      other->Read(0, size_t{1} << 30);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(static_cast<int64_t>(read->size()), other->log_end_offset());
}

TEST_F(LogStoreTest, CloseRefusesFurtherWorkAndIsIdempotent) {
  auto log = Create("t");
  ASSERT_TRUE(log->Append(MakeBatch("a", 1)).ok());
  ASSERT_TRUE(store_->Close().ok());
  ASSERT_TRUE(store_->Close().ok());
  EXPECT_EQ(log->Append(MakeBatch("b", 1)).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(log->Read(0, 10).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->CreatePartition({"u", 0}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->DropPartition({"t", 0}).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->PutMeta("k", "v").code(), absl::StatusCode::kUnavailable);
}

TEST_F(LogStoreTest, OffsetForTimestamp) {
  auto log = Create("t");
  // Timestamps: batch 0 -> 100,101; batch 1 -> 50 (earlier!); batch 2 ->
  // 300..302.
  ASSERT_TRUE(log->Append(MakeBatch("a", 2, 100)).ok());
  ASSERT_TRUE(log->Append(MakeBatch("b", 1, 50)).ok());
  ASSERT_TRUE(log->Append(MakeBatch("c", 3, 300)).ok());
  auto at = [&](int64_t ts) {
    absl::StatusOr<std::pair<int64_t, int64_t>> r = log->OffsetForTimestamp(ts);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::pair<int64_t, int64_t>{-99, -99};
  };
  EXPECT_EQ(at(0), (std::pair<int64_t, int64_t>{0, 100}));
  EXPECT_EQ(at(101), (std::pair<int64_t, int64_t>{1, 101}));
  EXPECT_EQ(at(102), (std::pair<int64_t, int64_t>{3, 300}));
  EXPECT_EQ(at(301), (std::pair<int64_t, int64_t>{4, 301}));
  EXPECT_EQ(at(303), (std::pair<int64_t, int64_t>{6, -1}));
}

// Opens the store's directory with a bare RocksDB, for tests that tamper with
// it.
class RawDb {
 public:
  explicit RawDb(const std::string& dir) {
    std::vector<std::string> names;
    EXPECT_TRUE(
        rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names)
            .ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (auto& n : names)
      descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
    rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(), dir,
                                          descriptors, &handles_, &db_);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~RawDb() {
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
    delete db_;
  }
  rocksdb::ColumnFamilyHandle* cf(const std::string& name) {
    for (auto* h : handles_) {
      if (h->GetName() == name) return h;
    }
    ADD_FAILURE() << "no column family " << name;
    return nullptr;
  }
  rocksdb::DB* db() { return db_; }

 private:
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

std::string BigEndian(int64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i)
    s[i] = static_cast<char>((static_cast<uint64_t>(v) >> (56 - 8 * i)) & 0xFF);
  return s;
}

TEST_F(LogStoreTest, CorruptValueOnDiskIsDataLoss) {
  auto log = Create("t");
  ASSERT_TRUE(log->Append(MakeBatch("a", 2)).ok());
  const std::string second = MakeBatch("b", 2, /*timestamp_ms=*/2000);
  ASSERT_TRUE(log->Append(second).ok());
  ASSERT_TRUE(log->Append(MakeBatch("c", 2)).ok());
  ASSERT_TRUE(store_->Close().ok());
  {
    RawDb raw(options_.data_dir);
    std::string bad = second;
    bad[bad.size() / 2 + 10] ^=
        0x20;  // a body byte: header still parses, CRC fails
    ASSERT_TRUE(
        raw.db()
            ->Put(rocksdb::WriteOptions(), raw.cf("p.t.0"), BigEndian(2), bad)
            .ok());
  }
  Reopen();
  log = store_->GetPartition({"t", 0});
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_end_offset(), 6);
  absl::StatusOr<std::vector<StoredBatch>> first = log->Read(0, 1);
  ASSERT_TRUE(first.ok()) << "the batch before the damage is still readable";
  EXPECT_EQ(log->Read(0, 1 << 20).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(log->Read(3, 1).status().code(), absl::StatusCode::kDataLoss);
  // The damaged batch is the first whose max_timestamp reaches 1500.
  EXPECT_EQ(log->OffsetForTimestamp(1500).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(log->OffsetForTimestamp(1001)->first, 1)
      << "answered before the damage";
  absl::StatusOr<std::vector<StoredBatch>> last = log->Read(4, 1);
  ASSERT_TRUE(last.ok());
}

TEST_F(LogStoreTest, LogStartComesFromItsKeyOrTheFirstBatch) {
  auto log = Create("t");
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(log->Append(MakeBatch("a", 2)).ok());
  Create("u");
  ASSERT_TRUE(store_->Close().ok());
  {
    RawDb raw(options_.data_dir);
    rocksdb::WriteOptions wo;
    // Partition t: retention moved the start to 3 (inside the second batch).
    ASSERT_TRUE(
        raw.db()->Put(wo, raw.cf("default"), "lso/p.t.0", BigEndian(3)).ok());
    // Partition u: empty, but its log started at 10 once; a recreated empty log
    // must not reuse offsets below it.
    ASSERT_TRUE(
        raw.db()->Put(wo, raw.cf("default"), "lso/p.u.0", BigEndian(10)).ok());
  }
  Reopen();
  log = store_->GetPartition({"t", 0});
  EXPECT_EQ(log->log_start_offset(), 3);
  EXPECT_EQ(log->log_end_offset(), 8);
  EXPECT_EQ(log->Read(2, 10).status().code(), absl::StatusCode::kOutOfRange);
  absl::StatusOr<std::vector<StoredBatch>> read = log->Read(3, 1);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ((*read)[0].base_offset, 2);
  EXPECT_EQ(log->OffsetForTimestamp(0)->first, 3);
  auto u = store_->GetPartition({"u", 0});
  EXPECT_EQ(u->log_start_offset(), 10);
  EXPECT_EQ(u->log_end_offset(), 10);
  absl::StatusOr<AppendResult> r = u->Append(MakeBatch("x", 1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->base_offset, 10);
  // Dropping and recreating starts over at 0.
  ASSERT_TRUE(store_->DropPartition({"u", 0}).ok());
  Reopen();
  EXPECT_EQ(store_->GetPartition({"u", 0}), nullptr);
  u = Create("u");
  EXPECT_EQ(u->log_start_offset(), 0);
  EXPECT_EQ(u->log_end_offset(), 0);
}

TEST_F(LogStoreTest, MetaKeySpace) {
  ASSERT_TRUE(store_->PutMeta("topic/b", "2").ok());
  ASSERT_TRUE(store_->PutMeta("topic/a", "1").ok());
  ASSERT_TRUE(store_->PutMeta("topicz", "x").ok());
  ASSERT_TRUE(store_->PutMeta("broker", std::string("\0bin", 4)).ok());
  Create("t");  // its log start key must not show up as metadata
  Reopen();
  absl::StatusOr<std::optional<std::string>> got = store_->GetMeta("broker");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, std::string("\0bin", 4));
  got = store_->GetMeta("missing");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  auto scan = store_->ScanMeta("topic/");
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(*scan, (std::vector<std::pair<std::string, std::string>>{
                       {"topic/a", "1"}, {"topic/b", "2"}}));
  ASSERT_TRUE(store_->DeleteMeta("topic/a").ok());
  scan = store_->ScanMeta("");
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(*scan, (std::vector<std::pair<std::string, std::string>>{
                       {"broker", std::string("\0bin", 4)},
                       {"topic/b", "2"},
                       {"topicz", "x"}}));
}

TEST_F(LogStoreTest, IntervalAndNeverPoliciesStillPersistAcrossClose) {
  for (FsyncPolicy policy : {FsyncPolicy::kInterval, FsyncPolicy::kNever}) {
    options_.fsync = policy;
    options_.fsync_interval = absl::Milliseconds(10);
    Reopen();
    auto log = store_->GetPartition({"t", 0});
    if (log == nullptr) log = Create("t");
    const int64_t before = log->log_end_offset();
    ASSERT_TRUE(log->Append(MakeBatch("a", 2)).ok());
    absl::SleepFor(absl::Milliseconds(30));
    Reopen();
    EXPECT_EQ(store_->GetPartition({"t", 0})->log_end_offset(), before + 2);
  }
}

TEST_F(LogStoreTest, TwoThousandPartitions) {
  constexpr int kPartitions = 2000;
  std::vector<PartitionId> ids;
  for (int p = 0; p < kPartitions; ++p) ids.push_back({"many", p});
  absl::Time t0 = absl::Now();
  absl::StatusOr<std::vector<std::shared_ptr<PartitionLog>>> logs =
      store_->CreatePartitions(ids);
  ASSERT_TRUE(logs.ok()) << logs.status();
  LOG(INFO) << "created " << kPartitions << " partitions in "
            << absl::Now() - t0;

  t0 = absl::Now();
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      for (int p = t; p < kPartitions; p += 4) {
        for (int i = 0; i <= p % 3; ++i) {
          ASSERT_TRUE(
              (*logs)[p]->Append(MakeBatch(absl::StrCat(p, "/", i), 1)).ok());
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  LOG(INFO) << "appended to " << kPartitions << " partitions in "
            << absl::Now() - t0;

  t0 = absl::Now();
  Reopen();
  LOG(INFO) << "reopened " << kPartitions << " partitions in "
            << absl::Now() - t0;
  ASSERT_EQ(store_->ListPartitions().size(), static_cast<size_t>(kPartitions));
  for (int p = 0; p < kPartitions; ++p) {
    auto log = store_->GetPartition({"many", p});
    ASSERT_NE(log, nullptr);
    ASSERT_EQ(log->log_end_offset(), p % 3 + 1) << p;
    absl::StatusOr<std::vector<StoredBatch>> read = log->Read(p % 3, 1 << 20);
    ASSERT_TRUE(read.ok());
    ASSERT_EQ(Values(*read),
              (std::vector<std::string>{absl::StrCat(p, "/", p % 3, "#0")}));
  }
  // One more, created alone, next to 2000 others.
  t0 = absl::Now();
  EXPECT_TRUE(store_->CreatePartition({"one-more", 0}).ok());
  LOG(INFO) << "one CreatePartition beside " << kPartitions << " took "
            << absl::Now() - t0;
}

}  // namespace
}  // namespace fjord::storage
