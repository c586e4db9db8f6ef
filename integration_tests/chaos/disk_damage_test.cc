// Damaged data on one broker (issue 6, disk faults): a flipped bit or a
// truncated file under its data directory. The broker must find it by
// checksum, neither serve nor lead from it, and get its replicas back from the
// other brokers (broker/damage.h). Each scenario:
//
//   1. 3 controllers + 3 brokers, one partition with 3 replicas; acks=all
//      records of 64 KiB (enough to flush the partition's memtable into a
//      table file when the scenario damages one).
//   2. The damage, on the partition's leader:
//        - at rest (SIGKILL, damage, restart): a bit flipped in the largest
//          table file; that file cut to half its size; a bit flipped in the
//          middle of the write-ahead log;
//        - while it runs: a bit flipped in a table file, then every record
//          read back through it.
//   3. The broker must say the store is damaged, move it aside and start
//      empty (a new incarnation), then rejoin the ISR by fetching.
//   4. The other two brokers are killed: the recovered broker, the only one
//      left, must lead and serve every acknowledged record.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "integration_tests/chaos/checker.h"
#include "integration_tests/chaos/disk_damage.h"
#include "integration_tests/chaos/history.h"
#include "integration_tests/chaos/run_support.h"
#include "integration_tests/chaos/workload.h"
#include "integration_tests/cluster.h"

namespace fjord::testing::chaos {
namespace {

namespace fs = std::filesystem;

constexpr char kTopic[] = "damage";

enum class Damage { kTableBitFlip, kTableTruncated, kWalBitFlip, kTableBitFlipWhileRunning };

const char* DamageName(Damage d) {
  switch (d) {
    case Damage::kTableBitFlip:
      return "table-file-bit-flip";
    case Damage::kTableTruncated:
      return "table-file-truncated";
    case Damage::kWalBitFlip:
      return "wal-bit-flip";
    case Damage::kTableBitFlipWhileRunning:
      return "table-file-bit-flip-while-running";
  }
  return "?";
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool HasDamagedDir(const std::string& data_dir) {
  for (const fs::directory_entry& e : fs::directory_iterator(data_dir)) {
    if (e.path().filename().string().rfind("damaged-", 0) == 0) return true;
  }
  return false;
}

class DiskDamageTest : public ::testing::TestWithParam<Damage> {
 protected:
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) std::cerr << cluster_->DescribeForDebugging() << "\n";
  }
  std::unique_ptr<Cluster> cluster_;
};

TEST_P(DiskDamageTest, BrokerFindsDamageAndRecoversFromReplicas) {
  const Damage damage = GetParam();
  ClusterOptions o = ChaosClusterOptions(DamageName(damage), absl::StrCat(kTopic, ":1:3"));
  absl::StatusOr<std::unique_ptr<Cluster>> up = Cluster::Up(o);
  ASSERT_TRUE(up.ok()) << up.status();
  cluster_ = std::move(*up);
  ChaosClient client(BrokerAddresses(*cluster_));
  ASSERT_TRUE(WaitForLeaders(client, {kTopic}, 1, /*full_isr=*/true, absl::Seconds(30)));
  const std::optional<int> leader = client.Leader(kTopic, 0);
  ASSERT_TRUE(leader.has_value());
  const std::string target = absl::StrCat("broker-", *leader);
  const std::string data_dir = cluster_->Find(target)->data_dir;

  // 5 MiB flushes the partition's 4 MiB memtable into a table file; the WAL
  // scenario writes less, so that everything is still in the log.
  History history;
  Workload workload(&client, &history, WorkloadOptions{});
  const int records = damage == Damage::kWalBitFlip ? 40 : 80;
  for (int i = 0; i < records; ++i) {
    workload.ProduceWithRetries(0, kTopic, 0, "",
                                absl::StrCat("r", i, "-", std::string(64 << 10, 'a' + i % 26)));
  }

  FaultRecord fault;
  fault.kind = DamageName(damage);
  fault.target = target;
  fault.started = absl::Now();
  const std::string suffix = damage == Damage::kWalBitFlip ? ".log" : ".sst";
  if (damage == Damage::kTableBitFlipWhileRunning) {
    std::optional<fs::path> file = LargestFile(data_dir, suffix);
    ASSERT_TRUE(file.has_value()) << "no table file in " << data_dir << ": nothing flushed";
    ASSERT_TRUE(FlipMiddleBit(*file).ok()) << *file;
    std::cerr << "damage: flipped a bit in the middle of " << *file << " while " << target
              << " runs\n";
    // Reading every record back goes through the damaged block on the
    // leader: it must stop rather than serve it.
    absl::StatusOr<FinalRead> read = ReadUntilStable(client, kTopic, 0);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_NE(read->leader, *leader) << "the damaged broker served the final read";
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (cluster_->State(target) != NodeState::kExited && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));  // poll interval
    }
    ASSERT_EQ(cluster_->State(target), NodeState::kExited)
        << target << " kept running on damaged data";
    EXPECT_NE(ReadText(cluster_->Find(target)->log_path).find("damaged data in"),
              std::string::npos);
  } else {
    ASSERT_TRUE(cluster_->Kill(target).ok());
    std::optional<fs::path> file = LargestFile(data_dir, suffix);
    ASSERT_TRUE(file.has_value()) << "no " << suffix << " file in " << data_dir;
    if (damage == Damage::kTableTruncated) {
      fs::resize_file(*file, fs::file_size(*file) / 2);
      std::cerr << "damage: cut " << *file << " to half its size\n";
    } else {
      ASSERT_TRUE(FlipMiddleBit(*file).ok()) << *file;
      std::cerr << "damage: flipped a bit in the middle of " << *file << "\n";
    }
  }

  // The restarted broker finds the damage, moves the store aside and starts
  // empty.
  ASSERT_TRUE(cluster_->Restart(target).ok());
  fault.healed = absl::Now();
  history.AddFault(fault);
  // The partition takes writes again (its recovery time, in the run line).
  workload.ProduceWithRetries(0, kTopic, 0, "", "after-heal");
  const std::string log = ReadText(cluster_->Find(target)->log_path);
  EXPECT_NE(log.find("is damaged"), std::string::npos) << "no damage reported in the log";
  EXPECT_NE(log.find("moved the damaged store to"), std::string::npos);
  EXPECT_TRUE(HasDamagedDir(data_dir)) << "no damaged-* directory in " << data_dir;

  // It rejoins the ISR by fetching everything again.
  ASSERT_TRUE(WaitForLeaders(client, {kTopic}, 1, /*full_isr=*/true, absl::Seconds(60)))
      << target << " did not rejoin the ISR";

  // With the two other brokers gone, it is the only in-sync replica left:
  // it leads and must serve every acknowledged record.
  for (int id = 1; id <= 3; ++id) {
    if (id != *leader) ASSERT_TRUE(cluster_->Kill(absl::StrCat("broker-", id)).ok());
  }
  client.ForgetAll();
  // Read once the controller has fenced both: until then the recovered broker
  // may lead with a dead ISR member, and its high watermark (learned as a
  // follower) stays behind its log end until the ISR is just itself
  // (GUARANTEES.md, "Consumers and the high watermark").
  bool alone = false;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);
       !alone && absl::Now() < deadline;) {
    absl::StatusOr<fjord::v1::TopicInfo> info = client.Describe(kTopic);
    alone = info.ok() && info->partitions(0).leader_id() == *leader &&
            info->partitions(0).isr_size() == 1;
    if (!alone) absl::SleepFor(absl::Milliseconds(100));  // poll interval
  }
  ASSERT_TRUE(alone) << target << " is not the only in-sync replica 30 s after the others died";
  absl::StatusOr<FinalRead> read = ReadUntilStable(client, kTopic, 0);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->leader, *leader) << "the recovered broker should be the one left to lead";
  FinalReads final_reads;
  final_reads[{kTopic, 0}] = read->records;
  const CheckResult result = Check(history.ops(), final_reads, history.faults());
  std::cerr << result.Report();
  std::cout << DamageName(damage) << ": " << result.Summary(0, 1) << std::endl;
  EXPECT_EQ(result.acked, records + 1);
  EXPECT_TRUE(result.valid());
  EXPECT_TRUE(cluster_->Down().ok());
}

INSTANTIATE_TEST_SUITE_P(Damages, DiskDamageTest,
                         ::testing::Values(Damage::kTableBitFlip, Damage::kTableTruncated,
                                           Damage::kWalBitFlip,
                                           Damage::kTableBitFlipWhileRunning),
                         [](const ::testing::TestParamInfo<Damage>& info) {
                           std::string name = DamageName(info.param);
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace fjord::testing::chaos
