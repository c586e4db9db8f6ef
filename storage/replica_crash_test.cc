// Replica operations under process crashes. A child process works two
// partitions, one thread each, with fsync=always, mixing what a replica does:
// leader appends (Append), follower appends (AppendReplicated at the log end),
// truncations (TruncateTo, followed by appends in a new leader epoch or in the
// epoch of the last batch left) and high watermark moves (SetHighWatermark).
// Before each operation it reports its intent and after it the acknowledgement,
// through a pipe. The parent SIGKILLs it at a random moment, reopens the store
// and checks the partition against the acknowledged history, replayed on a
// model:
//   - the batches are exactly the model's (every acknowledged append not
//     removed by an acknowledged truncation is there, unchanged, and nothing
//     an acknowledged truncation removed is), except that the one operation in
//     flight when the child died may or may not have taken effect, whole;
//   - the leader epoch cache matches the headers of the remaining batches;
//   - the high watermark is at most the last one set (or the one in flight),
//     and at least the one written by the last acknowledged append or
//     truncation (appends carry the high watermark set before them;
//     truncations write it synced).
// Several kill/reopen rounds run on the same directory.
//
// FJORD_CRASH_TEST_SEED=<n> replays the parent's choices (kill times, and the
// seed handed to the child); the seed is printed on every run.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "storage/crash_test_util.h"
#include "storage/log_store.h"
#include "storage/record_batch.h"

namespace fjord::storage {
namespace {

constexpr char kDirEnv[] = "FJORD_REPLICA_CRASH_DIR";
constexpr char kFdEnv[] = "FJORD_REPLICA_CRASH_FD";
constexpr char kChildSeedEnv[] = "FJORD_REPLICA_CRASH_CHILD_SEED";
constexpr char kSeedEnv[] = "FJORD_CRASH_TEST_SEED";
constexpr int kPartitions = 2;
constexpr int kRounds = 8;

enum Kind : int32_t {
  kAppendIntent = 1,
  kAppendAck,
  kTruncateIntent,
  kTruncateAck,
  kHwIntent,
  kHwAck,
};

// One report from the child, written with a single write(2).
struct Report {
  int32_t kind;
  int32_t partition;
  int32_t epoch;       // append: the batch's leader epoch
  int32_t replicated;  // append: 1 for AppendReplicated
  int64_t a;     // append: base offset; truncate: requested offset; hw: value
  int64_t b;     // append: last offset; truncate: new log end
  uint32_t crc;  // append: Crc32c of the batch
  uint32_t unused;
};
static_assert(sizeof(Report) == 40);

PartitionId Partition(int p) { return {"replica", p}; }

std::string MakeBatch(int32_t epoch, uint64_t tag, int count) {
  google::protobuf::RepeatedPtrField<fjord::v1::Record> records;
  for (int i = 0; i < count; ++i) {
    fjord::v1::Record* r = records.Add();
    r->set_value(absl::StrCat("v", tag, "-", i, std::string(tag % 50, 'x')));
  }
  return *EncodeBatch(records, epoch, absl::ToUnixMillis(absl::Now()));
}

void Send(int fd, const Report& report) {
  if (write(fd, &report, sizeof(report)) != sizeof(report)) _exit(4);
}

// One partition's worker in the child: runs operations until killed.
void Work(PartitionLog* log, int p, int fd, uint64_t seed) {
  std::mt19937_64 rng(seed * 31 + p);
  // A restarted replica comes back in a new epoch.
  int32_t epoch = std::max(log->LatestEpoch(), 0) + 1;
  for (uint64_t seq = 0;; ++seq) {
    const int choice = static_cast<int>(rng() % 100);
    const int64_t end = log->log_end_offset();
    if (choice < 60) {
      const bool replicated = rng() % 2 == 0;
      const std::string batch =
          MakeBatch(epoch, seed * 1000003 + seq, 1 + rng() % 4);
      Report r{kAppendIntent, p, epoch, replicated, end, -1, Crc32c(batch), 0};
      Send(fd, r);
      absl::StatusOr<AppendResult> result =
          replicated ? log->AppendReplicated(batch, end) : log->Append(batch);
      if (!result.ok()) {
        std::cerr << "child: append failed: " << result.status() << "\n";
        _exit(3);
      }
      r.kind = kAppendAck;
      r.a = result->base_offset;
      r.b = result->last_offset;
      Send(fd, r);
    } else if (choice < 75) {
      // Truncate somewhere in the last ~40 offsets (often inside a batch,
      // sometimes below the high watermark), then a new leader epoch.
      const int64_t lowest = std::max(log->log_start_offset(), end - 40);
      const int64_t target =
          lowest + static_cast<int64_t>(rng() % (end - lowest + 1));
      Report r{kTruncateIntent, p, 0, 0, target, -1, 0, 0};
      Send(fd, r);
      absl::StatusOr<int64_t> new_end = log->TruncateTo(target);
      if (!new_end.ok()) {
        std::cerr << "child: truncate failed: " << new_end.status() << "\n";
        _exit(3);
      }
      r.kind = kTruncateAck;
      r.b = *new_end;
      Send(fd, r);
      // Either a new leader's epoch, or (as a follower refetching from a
      // leader) the epoch of the last batch left, lower than the one removed.
      epoch = rng() % 2 == 0 ? epoch + 1 : std::max(log->LatestEpoch(), 0);
    } else {
      const int64_t hw = log->high_watermark();
      const int64_t target = hw + static_cast<int64_t>(rng() % (end - hw + 1));
      Report r{kHwIntent, p, 0, 0, target, -1, 0, 0};
      Send(fd, r);
      if (absl::Status s = log->SetHighWatermark(target); !s.ok()) {
        std::cerr << "child: SetHighWatermark failed: " << s << "\n";
        _exit(3);
      }
      r.kind = kHwAck;
      Send(fd, r);
    }
  }
}

// The child: runs only when re-executed by the parent.
TEST(ReplicaCrashChild, OperateUntilKilled) {
  const char* dir = std::getenv(kDirEnv);
  const char* fd_text = std::getenv(kFdEnv);
  const char* seed_text = std::getenv(kChildSeedEnv);
  if (dir == nullptr || fd_text == nullptr || seed_text == nullptr) {
    GTEST_SKIP() << "runs only as the child of ReplicaCrashTest";
  }
  int fd;
  uint64_t seed;
  ASSERT_TRUE(absl::SimpleAtoi(fd_text, &fd));
  ASSERT_TRUE(absl::SimpleAtoi(seed_text, &seed));
  StoreOptions options;
  options.data_dir = dir;
  options.fsync = FsyncPolicy::kAlways;
  // Exercise the background checkpoint too.
  options.high_watermark_checkpoint_interval = absl::Milliseconds(50);
  absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(options);
  if (!store.ok()) {
    std::cerr << "child: open failed: " << store.status() << "\n";
    _exit(2);
  }
  std::vector<std::shared_ptr<PartitionLog>> logs;
  for (int p = 0; p < kPartitions; ++p) {
    std::shared_ptr<PartitionLog> log = (*store)->GetPartition(Partition(p));
    if (log == nullptr) {
      absl::StatusOr<std::shared_ptr<PartitionLog>> created =
          (*store)->CreatePartition(Partition(p));
      if (!created.ok()) _exit(2);
      log = *created;
    }
    logs.push_back(log);
  }
  std::vector<std::thread> threads;
  for (int p = 0; p < kPartitions; ++p)
    threads.emplace_back([&, p] { Work(logs[p].get(), p, fd, seed); });
  for (auto& t : threads) t.join();  // never: the parent kills us
}

// ---------------------------------------------------------------------------
// The parent's model of one partition.

struct ModelBatch {
  int64_t last;
  uint32_t crc;
  int32_t epoch;
};

struct Model {
  std::map<int64_t, ModelBatch> batches;  // by base offset
  int64_t end = 0;
  int64_t hw = 0;        // the last high watermark set (lowered by truncation)
  int64_t hw_floor = 0;  // what the store must at least load
  std::optional<Report> in_flight;  // an intent not yet acknowledged

  // Where TruncateTo(offset) must end the log: at `offset`, or at the base of
  // the batch holding it.
  int64_t TruncationEnd(int64_t offset) const {
    auto it = batches.upper_bound(offset);
    if (it == batches.begin()) return offset;
    --it;
    return it->second.last >= offset && it->first < offset ? it->first : offset;
  }
  void Truncate(int64_t new_end) {
    // TruncateTo at the log end changes nothing and writes nothing, so it does
    // not persist the high watermark either; only a real truncation writes it,
    // synced, with the removal.
    const bool removes = new_end < end;
    batches.erase(batches.lower_bound(new_end), batches.end());
    end = new_end;
    hw = std::min(hw, new_end);
    if (removes) hw_floor = hw;
  }
};

// Applies the acknowledged history of one round to `model`.
void Replay(const std::vector<Report>& reports, Model* model) {
  for (const Report& r : reports) {
    switch (r.kind) {
      case kAppendIntent:
      case kTruncateIntent:
      case kHwIntent:
        ASSERT_FALSE(model->in_flight.has_value()) << "two intents in a row";
        model->in_flight = r;
        break;
      case kAppendAck:
        ASSERT_EQ(r.a, model->end) << "append did not land at the log end";
        model->batches[r.a] = {r.b, r.crc, r.epoch};
        model->end = r.b + 1;
        // The append's write carried the high watermark set before it.
        model->hw_floor = model->hw;
        model->in_flight.reset();
        break;
      case kTruncateAck:
        ASSERT_EQ(r.b, model->TruncationEnd(r.a))
            << "TruncateTo(" << r.a << ") ended the log at " << r.b;
        model->Truncate(r.b);
        model->in_flight.reset();
        break;
      case kHwAck:
        ASSERT_GE(r.a, model->hw);
        ASSERT_LE(r.a, model->end);
        model->hw = r.a;
        model->in_flight.reset();
        break;
      default:
        FAIL() << "bad report kind " << r.kind;
    }
  }
}

struct StoredInfo {
  int64_t last;
  uint32_t crc;
  int32_t epoch;
};

// Reads the whole partition, checking contiguity.
std::map<int64_t, StoredInfo> ReadPartition(PartitionLog& log) {
  std::map<int64_t, StoredInfo> stored;
  int64_t next = log.log_start_offset();
  while (next < log.log_end_offset()) {
    absl::StatusOr<std::vector<StoredBatch>> read = log.Read(next, 1 << 20);
    EXPECT_TRUE(read.ok()) << read.status();
    if (!read.ok() || read->empty()) break;
    for (const StoredBatch& b : *read) {
      EXPECT_EQ(b.base_offset, next) << "gap or overlap";
      stored[b.base_offset] = {b.base_offset + b.record_count - 1,
                               Crc32c(b.data),
                               ParseBatchHeader(b.data)->leader_epoch};
      next = b.base_offset + b.record_count;
    }
  }
  EXPECT_EQ(next, log.log_end_offset());
  return stored;
}

bool SameBatches(const std::map<int64_t, StoredInfo>& stored,
                 const std::map<int64_t, ModelBatch>& model) {
  if (stored.size() != model.size()) return false;
  auto m = model.begin();
  for (const auto& [base, info] : stored) {
    if (base != m->first || info.last != m->second.last ||
        info.crc != m->second.crc || info.epoch != m->second.epoch) {
      return false;
    }
    ++m;
  }
  return true;
}

std::string Describe(const std::map<int64_t, StoredInfo>& stored) {
  std::string out;
  for (const auto& [base, info] : stored)
    absl::StrAppend(&out, " [", base, "-", info.last, " e", info.epoch, "]");
  return out;
}
std::string Describe(const std::map<int64_t, ModelBatch>& model) {
  std::string out;
  for (const auto& [base, info] : model)
    absl::StrAppend(&out, " [", base, "-", info.last, " e", info.epoch, "]");
  return out;
}

// Checks the reopened partition against the model, deciding whether the
// in-flight operation took effect, and leaves the model equal to the store.
// The last reports of a round, for failure messages.
std::string Tail(const std::vector<Report>& reports) {
  static constexpr const char* kNames[] = {"append?", "append!", "truncate?", "truncate!",
                                           "hw?",     "hw!"};
  std::string out;
  const size_t from = reports.size() > 12 ? reports.size() - 12 : 0;
  for (size_t i = from; i < reports.size(); ++i) {
    const Report& r = reports[i];
    const bool known = r.kind >= kAppendIntent && r.kind <= kHwAck;
    absl::StrAppend(&out, "\n  ", known ? kNames[r.kind - kAppendIntent] : "?", " a=", r.a,
                    " b=", r.b);
  }
  return out;
}

void Check(PartitionLog& log, Model* model, int p, uint64_t seed,
           const std::vector<Report>& round_reports) {
  SCOPED_TRACE(absl::StrCat("partition ", p, ", seed ", seed));
  const std::map<int64_t, StoredInfo> stored = ReadPartition(log);
  int64_t hw_ceiling = model->hw;
  if (!SameBatches(stored, model->batches) && model->in_flight.has_value()) {
    // The operation in flight may have taken effect: then the store matches
    // the model with that operation applied.
    const Report& r = *model->in_flight;
    Model applied = *model;
    if (r.kind == kAppendIntent) {
      auto found = stored.find(model->end);
      if (found != stored.end()) {
        applied.batches[model->end] = {found->second.last, r.crc, r.epoch};
        applied.end = found->second.last + 1;
      }
    } else if (r.kind == kTruncateIntent) {
      applied.Truncate(model->TruncationEnd(r.a));
    }
    ASSERT_TRUE(SameBatches(stored, applied.batches))
        << "store:" << Describe(stored)
        << "\nmodel:" << Describe(model->batches)
        << "\nwith the in-flight operation (kind " << r.kind << ", " << r.a
        << "):" << Describe(applied.batches);
    *model = applied;
  }
  ASSERT_TRUE(SameBatches(stored, model->batches))
      << "store:" << Describe(stored) << "\nmodel:" << Describe(model->batches);
  ASSERT_EQ(log.log_end_offset(), model->end);
  if (model->in_flight.has_value() && model->in_flight->kind == kHwIntent) {
    hw_ceiling = std::max(hw_ceiling, model->in_flight->a);
  }
  model->in_flight.reset();

  // The epoch cache describes the remaining batches' headers.
  std::vector<EpochEntry> derived;
  for (const auto& [base, info] : stored) {
    if (derived.empty() || info.epoch > derived.back().epoch)
      derived.push_back({info.epoch, base});
    ASSERT_GE(info.epoch, derived.back().epoch) << "epochs went down";
  }
  EXPECT_EQ(log.LeaderEpochs(), derived);
  if (!derived.empty()) {
    EXPECT_EQ(log.EndOffsetForEpoch(derived.back().epoch),
              (EpochEndOffset{derived.back().epoch, model->end}));
  }

  // The high watermark: a lower bound of what was set, never above it.
  const int64_t hw = log.high_watermark();
  EXPECT_LE(hw, std::min(hw_ceiling, model->end))
      << "loaded a high watermark that was never set";
  EXPECT_GE(hw, std::min(model->hw_floor, model->end))
      << "lost a high watermark written by an acknowledged operation; the round's last "
         "reports for this partition:"
      << Tail(round_reports);
  model->hw = hw;
  model->hw_floor = hw;
}

TEST(ReplicaCrashTest, AcknowledgedHistorySurvivesSigkill) {
  uint64_t seed = std::random_device()();
  if (const char* s = std::getenv(kSeedEnv); s != nullptr) {
    ASSERT_TRUE(absl::SimpleAtoi(s, &seed));
  }
  std::cout << "replica crash test seed: " << seed << " (replay with "
            << kSeedEnv << "=" << seed << ")" << std::endl;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);

  const std::string dir =
      (std::filesystem::path(::testing::TempDir()) / "replica_crash_store")
          .string();
  std::filesystem::remove_all(dir);

  std::vector<Model> models(kPartitions);
  std::map<int32_t, size_t> totals;  // by report kind
  for (int round = 0; round < kRounds; ++round) {
    const testing::Child child =
        testing::StartChild("ReplicaCrashChild.OperateUntilKilled", kFdEnv,
                            {absl::StrCat(kDirEnv, "=", dir),
                             absl::StrCat(kChildSeedEnv, "=", seed + round)});
    ASSERT_GT(child.pid, 0);
    const absl::Duration run_for =
        absl::Milliseconds(300 + static_cast<int64_t>(rng() % 1200));
    std::string buffer;
    std::vector<std::string> records;
    testing::ReadRecords(child.fd, sizeof(Report), absl::Now() + run_for,
                         &buffer, &records);
    std::string error;
    ASSERT_TRUE(
        testing::KillAndDrain(child, sizeof(Report), &buffer, &records, &error))
        << error << " in round " << round;
    ASSERT_TRUE(buffer.empty()) << "torn report";

    std::vector<std::vector<Report>> by_partition(kPartitions);
    for (const std::string& record : records) {
      Report r;
      std::memcpy(&r, record.data(), sizeof(r));
      ASSERT_GE(r.partition, 0);
      ASSERT_LT(r.partition, kPartitions);
      by_partition[r.partition].push_back(r);
      totals[r.kind]++;
    }
    for (int p = 0; p < kPartitions; ++p) {
      ASSERT_NO_FATAL_FAILURE(Replay(by_partition[p], &models[p]))
          << "partition " << p << " round " << round << " seed " << seed;
    }
    std::cout << "round " << round << ": killed after " << run_for << ", "
              << records.size() << " reports" << std::endl;

    StoreOptions options;
    options.data_dir = dir;
    absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    for (int p = 0; p < kPartitions; ++p) {
      std::shared_ptr<PartitionLog> log = (*store)->GetPartition(Partition(p));
      if (log == nullptr) {
        // Killed before the child created it.
        ASSERT_TRUE(by_partition[p].empty() && models[p].batches.empty())
            << "partition " << p << " vanished in round " << round;
        continue;
      }
      ASSERT_NO_FATAL_FAILURE(Check(*log, &models[p], p, seed, by_partition[p]))
          << "round " << round;
    }
    ASSERT_TRUE((*store)->Close().ok());
  }
  std::cout << kRounds << " kill/reopen rounds: " << totals[kAppendAck]
            << " appends, " << totals[kTruncateAck] << " truncations, "
            << totals[kHwAck] << " high watermark moves acknowledged"
            << std::endl;
  EXPECT_GT(totals[kAppendAck], 0u);
  EXPECT_GT(totals[kTruncateAck], 0u);
  EXPECT_GT(totals[kHwAck], 0u);
}

}  // namespace
}  // namespace fjord::storage
