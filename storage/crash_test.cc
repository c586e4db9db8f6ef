// Durability under process crashes: a child process appends from several
// threads with fsync=always and reports every acknowledged append through a
// pipe; the parent SIGKILLs it at a random moment, reopens the store and checks
// that every acknowledged append is there, unchanged, and that each partition's
// offsets run from 0 with no gap or duplicate. Several kill/reopen rounds run
// on the same directory, so each round also checks that appends continue from
// the log end.
//
// The child is this same binary, re-executed (crash_test_util.h) with
// --gtest_filter selecting CrashChild.* and the data directory and pipe
// descriptor in environment variables.
//
// FJORD_CRASH_TEST_SEED=<n> replays a run; the seed is printed on every run.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
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

constexpr char kDirEnv[] = "FJORD_CRASH_TEST_CHILD_DIR";
constexpr char kFdEnv[] = "FJORD_CRASH_TEST_ACK_FD";
constexpr char kSeedEnv[] = "FJORD_CRASH_TEST_SEED";
constexpr int kPartitions = 3;
constexpr int kChildThreads = 4;
constexpr int kRounds = 8;

// One acknowledged append, written to the pipe in a single write(2) (smaller
// than PIPE_BUF, so atomic even with several threads writing).
struct Ack {
  int32_t partition;
  int32_t round;
  int64_t base_offset;
  int64_t last_offset;
  uint32_t crc;  // Crc32c of the whole batch as appended
  uint32_t unused;
};
static_assert(sizeof(Ack) == 32);

PartitionId Partition(int p) { return {"crash", p}; }

std::string MakeBatch(int round, int thread, int seq, int count) {
  google::protobuf::RepeatedPtrField<fjord::v1::Record> records;
  for (int i = 0; i < count; ++i) {
    fjord::v1::Record* r = records.Add();
    r->set_key(absl::StrCat("t", thread));
    r->set_value(absl::StrCat("r", round, "-t", thread, "-s", seq, "-i", i,
                              std::string(16 * (seq % 7), 'x')));
  }
  return *EncodeBatch(records, round, absl::ToUnixMillis(absl::Now()));
}

// The child: appends until killed. Runs only when re-executed by the parent.
TEST(CrashChild, AppendUntilKilled) {
  const char* dir = std::getenv(kDirEnv);
  const char* fd_text = std::getenv(kFdEnv);
  if (dir == nullptr || fd_text == nullptr) {
    GTEST_SKIP() << "runs only as the child of CrashTest";
  }
  int fd, round;
  ASSERT_TRUE(absl::SimpleAtoi(fd_text, &fd));
  ASSERT_TRUE(absl::SimpleAtoi(std::getenv("FJORD_CRASH_TEST_ROUND"), &round));
  StoreOptions options;
  options.data_dir = dir;
  options.fsync = FsyncPolicy::kAlways;
  absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(options);
  if (!store.ok()) {
    std::cerr << "child: open failed: " << store.status() << "\n";
    _exit(2);
  }
  std::vector<PartitionId> missing;
  for (int p = 0; p < kPartitions; ++p) {
    if ((*store)->GetPartition(Partition(p)) == nullptr)
      missing.push_back(Partition(p));
  }
  if (!missing.empty() && !(*store)->CreatePartitions(missing).ok()) _exit(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < kChildThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t * 7919 + round);
      for (int seq = 0;; ++seq) {
        const int p = static_cast<int>(rng() % kPartitions);
        const std::string batch = MakeBatch(round, t, seq, 1 + rng() % 4);
        absl::StatusOr<AppendResult> r =
            (*store)->GetPartition(Partition(p))->Append(batch);
        if (!r.ok()) {
          std::cerr << "child: append failed: " << r.status() << "\n";
          _exit(3);
        }
        const Ack ack{p, round, r->base_offset, r->last_offset, Crc32c(batch),
                      0};
        if (write(fd, &ack, sizeof(ack)) != sizeof(ack)) _exit(4);
      }
    });
  }
  for (auto& t : threads) t.join();  // never: the parent kills us
}

// Decodes the whole Ack records read from the child.
std::vector<Ack> Decode(const std::vector<std::string>& records) {
  std::vector<Ack> acks;
  for (const std::string& record : records) {
    Ack ack;
    std::memcpy(&ack, record.data(), sizeof(Ack));
    acks.push_back(ack);
  }
  return acks;
}

TEST(CrashTest, AcknowledgedAppendsSurviveSigkill) {
  uint64_t seed = std::random_device()();
  if (const char* s = std::getenv(kSeedEnv); s != nullptr) {
    ASSERT_TRUE(absl::SimpleAtoi(s, &seed));
  }
  std::cout << "crash test seed: " << seed << " (replay with " << kSeedEnv
            << "=" << seed << ")" << std::endl;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);

  const std::string dir =
      (std::filesystem::path(::testing::TempDir()) / "crash_test_store")
          .string();
  std::filesystem::remove_all(dir);

  // Every acknowledged append, by (partition, base offset).
  std::map<std::pair<int, int64_t>, Ack> acked;
  std::vector<int64_t> end_before(kPartitions, 0);
  size_t total_acks = 0;
  for (int round = 0; round < kRounds; ++round) {
    const testing::Child child =
        testing::StartChild("CrashChild.AppendUntilKilled", kFdEnv,
                            {absl::StrCat(kDirEnv, "=", dir),
                             absl::StrCat("FJORD_CRASH_TEST_ROUND=", round)});
    ASSERT_GT(child.pid, 0);
    // Let the child open the store (slower on a loaded machine) and append a
    // while.
    const absl::Duration run_for =
        absl::Milliseconds(300 + static_cast<int64_t>(rng() % 1200));
    std::string buffer;
    std::vector<std::string> records;
    testing::ReadRecords(child.fd, sizeof(Ack), absl::Now() + run_for, &buffer,
                         &records);
    std::string error;
    ASSERT_TRUE(
        testing::KillAndDrain(child, sizeof(Ack), &buffer, &records, &error))
        << error << " in round " << round;
    ASSERT_TRUE(buffer.empty()) << "torn ack record";
    const std::vector<Ack> acks = Decode(records);
    std::cout << "round " << round << ": killed after " << run_for << ", "
              << acks.size() << " acknowledged appends" << std::endl;
    total_acks += acks.size();

    for (const Ack& ack : acks) {
      ASSERT_GE(ack.partition, 0);
      ASSERT_LT(ack.partition, kPartitions);
      ASSERT_EQ(ack.round, round);
      // Appends continue from where the last round's log ended.
      ASSERT_GE(ack.base_offset, end_before[ack.partition])
          << "round " << round << " reused an offset of partition "
          << ack.partition;
      ASSERT_TRUE(
          acked.emplace(std::make_pair(ack.partition, ack.base_offset), ack)
              .second)
          << "offset " << ack.base_offset << " acknowledged twice";
    }

    // Reopen and check every partition from offset 0.
    StoreOptions options;
    options.data_dir = dir;
    absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    for (int p = 0; p < kPartitions; ++p) {
      std::shared_ptr<PartitionLog> log = (*store)->GetPartition(Partition(p));
      if (log == nullptr) {
        ASSERT_EQ(round, 0) << "partition vanished";
        continue;
      }
      ASSERT_GE(log->log_end_offset(), end_before[p]) << "log end moved back";
      ASSERT_EQ(log->log_start_offset(), 0);
      std::map<int64_t, std::pair<int64_t, uint32_t>>
          stored;  // base -> (last, crc)
      int64_t next = 0;
      while (next < log->log_end_offset()) {
        absl::StatusOr<std::vector<StoredBatch>> read =
            log->Read(next, 1 << 20);
        ASSERT_TRUE(read.ok()) << read.status();
        ASSERT_FALSE(read->empty());
        for (const StoredBatch& b : *read) {
          ASSERT_EQ(b.base_offset, next) << "gap or overlap in partition " << p;
          ASSERT_TRUE(ValidateBatch(b.data).ok());
          stored[b.base_offset] = {b.base_offset + b.record_count - 1,
                                   Crc32c(b.data)};
          next = b.base_offset + b.record_count;
        }
      }
      ASSERT_EQ(next, log->log_end_offset());
      for (auto it = acked.lower_bound({p, 0});
           it != acked.end() && it->first.first == p; ++it) {
        const Ack& ack = it->second;
        auto found = stored.find(ack.base_offset);
        ASSERT_NE(found, stored.end())
            << "acknowledged append lost: partition " << p << " offset "
            << ack.base_offset << " (round " << ack.round << ", seed " << seed
            << ")";
        EXPECT_EQ(found->second.first, ack.last_offset);
        EXPECT_EQ(found->second.second, ack.crc)
            << "content changed at " << ack.base_offset;
      }
      end_before[p] = log->log_end_offset();
    }
    ASSERT_TRUE((*store)->Close().ok());
  }
  EXPECT_GT(total_acks, 0u) << "the child never acknowledged anything";
  std::cout << kRounds << " kill/reopen rounds, " << total_acks
            << " acknowledged appends, all present" << std::endl;
}

}  // namespace
}  // namespace fjord::storage
