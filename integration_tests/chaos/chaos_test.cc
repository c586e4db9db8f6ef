// The quick chaos suite (issue 6, first slice: process faults): 3 controllers
// and 3 brokers on 127.0.0.1, concurrent acks=all producers of unique values
// on a 3x3 topic plus a keyed workload on another 3x3 topic, a reader of
// committed records, and two consumers in a group reading the first topic and
// committing, while a seeded nemesis kills, pauses and restarts brokers and
// controllers. Then every fault is healed, every partition is read from
// offset 0 and the checker judges the history. Prints the seed, the schedule,
// the fault timeline, the checker's report and one line
//
//   run seed=S faults=F acked=N lost=0 unexpected=0 duplicated=D reordered=0
//   double_owned=0 max_recovery_ms=M
//
// FJORD_CHAOS_SEED=S reproduces a run's schedule. See docs/RELIABILITY.md.
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "integration_tests/chaos/checker.h"
#include "integration_tests/chaos/clock.h"
#include "integration_tests/chaos/group_checker.h"
#include "integration_tests/chaos/group_workload.h"
#include "integration_tests/chaos/history.h"
#include "integration_tests/chaos/nemesis.h"
#include "integration_tests/chaos/run_support.h"
#include "integration_tests/chaos/workload.h"
#include "integration_tests/cluster.h"

namespace fjord::testing::chaos {
namespace {

constexpr char kTopic[] = "chaos";
constexpr char kKeyedTopic[] = "keyed";
constexpr int kPartitions = 3;

uint64_t SeedFromEnvironment() {
  uint64_t seed = 0;
  if (const char* env = std::getenv("FJORD_CHAOS_SEED");
      env != nullptr && absl::SimpleAtoi(env, &seed)) {
    return seed;
  }
  // Time-based, short enough to type back in.
  return static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())) % 1000000000;
}

class ChaosTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) {
      std::cerr << cluster_->DescribeForDebugging() << "\n";
    }
  }

  std::unique_ptr<Cluster> cluster_;
};

enum class FaultSet { kProcess, kClock, kDisk };

const char* FaultSetName(FaultSet faults) {
  switch (faults) {
    case FaultSet::kProcess:
      return "chaos";
    case FaultSet::kClock:
      return "clock";
    case FaultSet::kDisk:
      return "disk";
  }
  return "?";
}

// One run of the quick suite with `seed`: the process faults; the clock
// faults, with every node under a clock of its own (libfaketime); or the disk
// faults, with every broker journaling its syncs (FJORD_TESTING_SYNC_JOURNAL).
void RunQuickSuite(uint64_t seed, FaultSet faults, std::unique_ptr<Cluster>* cluster_out) {
  ScheduleOptions schedule_options;
  if (faults == FaultSet::kClock) schedule_options.kinds = ClockFaultKinds();
  if (faults == FaultSet::kDisk) {
    schedule_options.kinds = DiskFaultKinds();
    schedule_options.faults_per_kind = 3;
  }
  const std::vector<ScheduledFault> schedule =
      MakeSchedule(seed, schedule_options);
  const std::string name = absl::StrCat(FaultSetName(faults), "-", seed);
  std::cerr << "chaos: seed=" << seed
            << " (rerun with FJORD_CHAOS_SEED=" << seed
            << ")\nchaos: schedule:\n"
            << FormatSchedule(schedule, kTopic);

  // FJORD_CHAOS_DIR keeps the nodes' logs and data after the test (Bazel
  // deletes TEST_TMPDIR), in FJORD_CHAOS_DIR/chaos-<seed>.
  ClusterOptions o = ChaosClusterOptions(
      name, absl::StrCat(kTopic, ":", kPartitions, ":3,", kKeyedTopic, ":", kPartitions, ":3"));
  std::unique_ptr<ClockSkew> clock;
  if (faults == FaultSet::kClock) {
    std::vector<std::string> nodes;
    for (int i = 1; i <= 3; ++i) nodes.push_back(absl::StrCat("controller-", i));
    for (int i = 1; i <= 3; ++i) nodes.push_back(absl::StrCat("broker-", i));
    absl::StatusOr<std::unique_ptr<ClockSkew>> created = ClockSkew::Create(
        absl::StrCat(o.base_dir, "/clocks"), nodes,
        Runfile("integration_tests/chaos/libclock_skew_shim.so"));
    ASSERT_TRUE(created.ok()) << created.status();
    clock = std::move(*created);
    for (const std::string& node : nodes) o.node_env[node] = clock->EnvFor(node);
  }
  if (faults == FaultSet::kDisk) o.env = {{"FJORD_TESTING_SYNC_JOURNAL", "1"}};
  absl::StatusOr<std::unique_ptr<Cluster>> up = Cluster::Up(o);
  ASSERT_TRUE(up.ok()) << up.status();
  *cluster_out = std::move(*up);
  Cluster& cluster = **cluster_out;
  std::cerr << "chaos: cluster in " << cluster.base_dir() << "\n";

  ChaosClient client(BrokerAddresses(cluster));
  ASSERT_TRUE(WaitForLeaders(client, {kTopic, kKeyedTopic}, kPartitions, /*full_isr=*/true,
                             absl::Seconds(30)))
      << "topics did not get leaders with full ISRs";

  History history;
  Workload workload(&client, &history, WorkloadOptions{});
  StartProducersAndReader(workload, kTopic, kKeyedTopic, kPartitions);
  // Two consumers in a group read the unique-value topic and commit, coming
  // and going as new members now and then.
  GroupLog group_log;
  GroupWorkloadOptions group_options;
  group_options.bootstrap = cluster.bootstrap();
  group_options.topic = kTopic;
  group_options.group = "chaos-group";
  GroupWorkload group_workload(group_options, &group_log);
  group_workload.Start();

  // The nemesis: at most 90 s of faults; a fault under way is always healed.
  Nemesis nemesis(&cluster, &client, &history, kTopic, &std::cerr, /*network=*/nullptr,
                  clock.get());
  if (faults == FaultSet::kDisk) {
    nemesis.SetDiskFaults(Runfile("storage/drop-unsynced"),
                          {kTopic, kKeyedTopic, "__consumer_offsets"});
  }
  std::atomic<bool> stop_nemesis{false};
  const absl::Time nemesis_start = absl::Now();
  const int executed =
      nemesis.Run(schedule, stop_nemesis, nemesis_start + absl::Seconds(90));
  std::cerr << "chaos: nemesis ran " << executed << " of " << schedule.size()
            << " faults in "
            << absl::ToDoubleSeconds(absl::Now() - nemesis_start) << " s\n";

  // Heal everything, wait for leaders, and keep producing a little so the last
  // fault's recovery is measured.
  absl::Status healed = nemesis.HealAll(absl::Seconds(60));
  EXPECT_TRUE(healed.ok()) << healed;
  const bool leaders = WaitForLeaders(client, {kTopic, kKeyedTopic}, kPartitions,
                                      /*full_isr=*/true, absl::Seconds(30));
  EXPECT_TRUE(leaders) << "not every partition has a leader and a full ISR "
                          "30 s after healing";
  absl::SleepFor(absl::Seconds(3));
  workload.Stop();

  // The final read: every partition from offset 0, from its leader, repeated
  // until two reads a second apart end at the same offset (a new leader's
  // high watermark may still be catching up).
  FinalReads final_reads;
  ASSERT_TRUE(ReadAll(client, {kTopic, kKeyedTopic}, kPartitions, "chaos", &final_reads));

  // The group: let its consumers read everything committed, stop them, and
  // judge what they saw against the final read and the committed offsets.
  std::map<int32_t, std::vector<ReadRecord>> group_final;
  std::map<int32_t, int64_t> ends;
  for (int p = 0; p < kPartitions; ++p) {
    group_final[p] = final_reads[{kTopic, p}];
    ends[p] = static_cast<int64_t>(group_final[p].size());
  }
  EXPECT_TRUE(group_workload.WaitCaughtUp(ends, absl::Seconds(60)))
      << "the group's consumers did not read every committed record within 60 s";
  group_workload.Stop();
  absl::StatusOr<std::map<int32_t, int64_t>> committed = group_workload.Committed();
  EXPECT_TRUE(committed.ok()) << committed.status();
  const GroupCheckResult group_result =
      CheckGroup(group_log.polls(), group_log.commits(), group_final,
                 committed.value_or(std::map<int32_t, int64_t>{}));
  std::cerr << group_result.Report();
  EXPECT_TRUE(group_result.valid()) << "group anomalies in seed " << seed;
  EXPECT_GT(group_result.commits, 0);

  const std::vector<FaultRecord> faults = history.faults();
  CheckResult result = Check(history.ops(), final_reads, faults);
  result.double_owned = group_result.double_owned;
  std::cerr << result.Report();
  std::cerr << result.Summary(seed, static_cast<int>(faults.size())) << "\n";
  // std::cout too, so that the line is in the test log even when it passes.
  std::cout << result.Summary(seed, static_cast<int>(faults.size()))
            << std::endl;
  EXPECT_TRUE(result.valid())
      << "anomalies in seed " << seed << "; see the report above";
  if (!result.valid()) DumpHistory(history, name);
  EXPECT_EQ(executed, static_cast<int>(schedule.size()))
      << "the nemesis ran out of time";
  for (const FaultRecord& f : faults) {
    EXPECT_TRUE(f.note.empty()) << "fault #" << f.index << " " << f.kind << " "
                                << f.target << ": " << f.note;
  }
  EXPECT_GT(result.acked, 0);
}

// The end of a scenario on partition 0 of `topic`, after its heal: one more
// write (with retries: the first attempt may meet a leader the client has not
// learned yet) so that the recovery is measured, a final read, and the
// checker's verdict, printed after `label`.
CheckResult FinishScenario(ChaosClient& client, History& history, const std::string& topic,
                           const std::string& label) {
  Workload retrying(&client, &history, WorkloadOptions{});
  retrying.ProduceWithRetries(0, topic, 0, "", "after-heal");
  FinalReads final_reads;
  absl::StatusOr<FinalRead> read = ReadUntilStable(client, topic, 0);
  EXPECT_TRUE(read.ok()) << read.status();
  if (read.ok()) final_reads[{topic, 0}] = std::move(read->records);
  const CheckResult result = Check(history.ops(), final_reads, history.faults());
  std::cerr << result.Report();
  std::cout << label << ": " << result.Summary(0, 1) << std::endl;
  return result;
}

// The checker is shown to work: one partition (RF 3), its followers paused,
// 20 acks=all records written, the leader SIGKILLed, the followers resumed and
// the old leader restarted once another broker leads (or, when none can, after
// it was fenced). With the planted bug (FJORD_TESTING_PLANTED_BUG=
// ack-before-replication: acks=all answered right after the leader's append)
// the followers never had the records and a clean election makes one of them
// leader, so the checker must report them lost. Without it, the records are
// acknowledged only once the ISR has shrunk to the leader (min.insync.replicas
// is 1), no follower can be elected, and nothing is lost.
CheckResult RunPausedFollowersScenario(bool planted_bug, std::unique_ptr<Cluster>* cluster_out) {
  constexpr char kPlanted[] = "planted";
  ClusterOptions o = ChaosClusterOptions(absl::StrCat("planted-", planted_bug ? "bug" : "control"), absl::StrCat(kPlanted, ":", kPartitions, ":3"));
  if (planted_bug) o.env = {{"FJORD_TESTING_PLANTED_BUG", "ack-before-replication"}};
  absl::StatusOr<std::unique_ptr<Cluster>> up = Cluster::Up(o);
  EXPECT_TRUE(up.ok()) << up.status();
  if (!up.ok()) return {};
  *cluster_out = std::move(*up);
  Cluster& cluster = **cluster_out;
  ChaosClient client(BrokerAddresses(cluster));
  EXPECT_TRUE(WaitForLeaders(client, {kPlanted}, kPartitions, /*full_isr=*/true, absl::Seconds(30)));
  const std::optional<int> leader = client.Leader(kPlanted, 0);
  EXPECT_TRUE(leader.has_value());
  if (!leader.has_value()) return {};
  const std::string leader_node = absl::StrCat("broker-", *leader);
  std::vector<std::string> followers;
  for (int id = 1; id <= 3; ++id) {
    if (id != *leader) followers.push_back(absl::StrCat("broker-", id));
  }
  History history;
  WorkloadOptions wo;
  wo.max_attempts = 1;
  Workload workload(&client, &history, wo);
  const absl::Time started = absl::Now();
  for (const std::string& f : followers) EXPECT_TRUE(cluster.Pause(f).ok()) << f;
  for (int i = 0; i < 20; ++i) {
    workload.ProduceWithRetries(0, kPlanted, 0, "", absl::StrCat("v", i));
  }
  EXPECT_TRUE(cluster.Kill(leader_node).ok());
  for (const std::string& f : followers) EXPECT_TRUE(cluster.Resume(f).ok()) << f;
  // Wait until the old leader no longer leads (another broker does, or the
  // partition has none), so that its restart cannot simply resume leadership.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    absl::StatusOr<fjord::v1::TopicInfo> info = client.Describe(kPlanted);
    if (info.ok() && info->partitions(0).leader_id() != *leader) break;
    absl::SleepFor(absl::Milliseconds(100));  // poll interval
  }
  EXPECT_TRUE(cluster.Restart(leader_node).ok());
  FaultRecord fault;
  fault.kind = "pause-followers+kill-leader";
  fault.target = leader_node;
  fault.started = started;
  fault.healed = absl::Now();
  history.AddFault(fault);
  EXPECT_TRUE(WaitForLeaders(client, {kPlanted}, kPartitions, /*full_isr=*/true, absl::Seconds(30)));
  return FinishScenario(client, history, kPlanted,
                        planted_bug ? "planted bug ack-before-replication" : "control");
}

TEST_F(ChaosTest, CheckerCatchesAPlantedAckBeforeReplication) {
  {
    const CheckResult bug = RunPausedFollowersScenario(/*planted_bug=*/true, &cluster_);
    EXPECT_GT(bug.acked, 0);
    EXPECT_GT(bug.lost, 0) << "the checker missed acknowledged records lost to the planted bug";
    EXPECT_FALSE(bug.valid());
    if (cluster_ != nullptr) EXPECT_TRUE(cluster_->Down().ok());
  }
  {
    const CheckResult control = RunPausedFollowersScenario(/*planted_bug=*/false, &cluster_);
    EXPECT_GT(control.acked, 0);
    EXPECT_EQ(control.lost, 0);
    EXPECT_TRUE(control.valid());
    if (cluster_ != nullptr) EXPECT_TRUE(cluster_->Down().ok());
  }
}

// The lose-unsynced-data fault, shown to catch a planted bug: 3 brokers
// journal their syncs (FJORD_TESTING_SYNC_JOURNAL=1), 100 acks=all records go
// to one partition, every broker is SIGKILLed and loses what it never synced
// (//storage:drop-unsynced, as a power failure of the whole cluster would), and
// all restart. With --fsync always nothing acknowledged may be lost; with the
// planted bug (FJORD_TESTING_PLANTED_BUG=skip-fsync: appends acknowledged
// unsynced) the checker must report the records lost.
CheckResult RunLoseUnsyncedScenario(bool planted_bug, std::unique_ptr<Cluster>* cluster_out) {
  constexpr char kUnsynced[] = "unsynced";
  ClusterOptions o = ChaosClusterOptions(absl::StrCat("unsynced-", planted_bug ? "bug" : "control"), absl::StrCat(kUnsynced, ":", kPartitions, ":3"));
  o.env = {{"FJORD_TESTING_SYNC_JOURNAL", "1"}};
  if (planted_bug) o.env.push_back({"FJORD_TESTING_PLANTED_BUG", "skip-fsync"});
  absl::StatusOr<std::unique_ptr<Cluster>> up = Cluster::Up(o);
  EXPECT_TRUE(up.ok()) << up.status();
  if (!up.ok()) return {};
  *cluster_out = std::move(*up);
  Cluster& cluster = **cluster_out;
  ChaosClient client(BrokerAddresses(cluster));
  EXPECT_TRUE(WaitForLeaders(client, {kUnsynced}, kPartitions, /*full_isr=*/true, absl::Seconds(30)));
  History history;
  WorkloadOptions wo;
  wo.max_attempts = 1;
  Workload workload(&client, &history, wo);
  for (int i = 0; i < 100; ++i) {
    workload.ProduceWithRetries(0, kUnsynced, 0, "", absl::StrCat("u", i));
  }
  FaultRecord fault;
  fault.kind = "kill-all-brokers+lose-unsynced-data";
  fault.target = "broker-1,broker-2,broker-3";
  fault.started = absl::Now();
  for (int id = 1; id <= 3; ++id) {
    const std::string node = absl::StrCat("broker-", id);
    EXPECT_TRUE(cluster.Kill(node).ok()) << node;
  }
  for (int id = 1; id <= 3; ++id) {
    const NodeInfo* info = cluster.Find(absl::StrCat("broker-", id));
    absl::StatusOr<CommandResult> dropped =
        RunCommand(Runfile("storage/drop-unsynced"), {info->data_dir + ".sync-journal"}, "",
                   absl::Seconds(30));
    EXPECT_TRUE(dropped.ok() && dropped->exit.ExitedWith(0))
        << (dropped.ok() ? dropped->Describe() : dropped.status().ToString());
    if (dropped.ok()) std::cerr << "chaos: broker-" << id << ": " << dropped->out;
  }
  for (int id = 1; id <= 3; ++id) {
    const std::string node = absl::StrCat("broker-", id);
    EXPECT_TRUE(cluster.Restart(node).ok()) << node;
  }
  fault.healed = absl::Now();
  history.AddFault(fault);
  EXPECT_TRUE(WaitForLeaders(client, {kUnsynced}, kPartitions, /*full_isr=*/true, absl::Seconds(30)));
  return FinishScenario(client, history, kUnsynced,
                        planted_bug ? "planted bug skip-fsync" : "control (fsync always)");
}

TEST_F(ChaosTest, LoseUnsyncedDataCatchesAPlantedSkippedFsync) {
  {
    const CheckResult bug = RunLoseUnsyncedScenario(/*planted_bug=*/true, &cluster_);
    EXPECT_GT(bug.acked, 0);
    EXPECT_GT(bug.lost, 0) << "the checker missed acknowledged records lost to the planted bug";
    if (cluster_ != nullptr) EXPECT_TRUE(cluster_->Down().ok());
  }
  {
    const CheckResult control = RunLoseUnsyncedScenario(/*planted_bug=*/false, &cluster_);
    EXPECT_GT(control.acked, 0);
    EXPECT_EQ(control.lost, 0);
    EXPECT_TRUE(control.valid());
    if (cluster_ != nullptr) EXPECT_TRUE(cluster_->Down().ok());
  }
}

// Named scenario (Kafka KIP-966): the last in-sync replica crashes and loses
// what it never synced. Both followers are paused until the ISR has shrunk to
// the leader alone (replica.lag.time.max.ms, 3 s); the leader acknowledges 50
// acks=all records on its own (min.insync.replicas=1); then it is SIGKILLed and
// loses its unsynced data, the followers resume, and the leader restarts. The
// followers cannot be elected (not in the ISR, unclean election off), so the
// partition waits for the old leader, which with --fsync always still has every
// record it acknowledged.
TEST_F(ChaosTest, LastInSyncReplicaLosingUnsyncedDataKeepsAcknowledgedRecords) {
  constexpr char kTopic966[] = "kip966";
  ClusterOptions o = ChaosClusterOptions("kip966", absl::StrCat(kTopic966, ":", kPartitions, ":3"));
  o.env = {{"FJORD_TESTING_SYNC_JOURNAL", "1"}};
  absl::StatusOr<std::unique_ptr<Cluster>> up = Cluster::Up(o);
  ASSERT_TRUE(up.ok()) << up.status();
  cluster_ = std::move(*up);
  ChaosClient client(BrokerAddresses(*cluster_));
  ASSERT_TRUE(WaitForLeaders(client, {kTopic966}, kPartitions, /*full_isr=*/true, absl::Seconds(30)));
  const std::optional<int> leader = client.Leader(kTopic966, 0);
  ASSERT_TRUE(leader.has_value());
  const std::string leader_node = absl::StrCat("broker-", *leader);
  std::vector<std::string> followers;
  for (int id = 1; id <= 3; ++id) {
    if (id != *leader) followers.push_back(absl::StrCat("broker-", id));
  }
  History history;
  Workload workload(&client, &history, WorkloadOptions{});
  const absl::Time started = absl::Now();
  for (const std::string& f : followers) ASSERT_TRUE(cluster_->Pause(f).ok()) << f;
  // The first write waits until the leader has dropped the followers from the
  // ISR; then the ISR is the leader alone.
  for (int i = 0; i < 50; ++i) {
    workload.ProduceWithRetries(0, kTopic966, 0, "", absl::StrCat("k", i));
  }
  absl::StatusOr<fjord::v1::TopicInfo> info = client.Describe(kTopic966);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->partitions(0).isr_size(), 1) << info->partitions(0).ShortDebugString();
  ASSERT_TRUE(cluster_->Kill(leader_node).ok());
  absl::StatusOr<CommandResult> dropped =
      RunCommand(Runfile("storage/drop-unsynced"),
                 {cluster_->Find(leader_node)->data_dir + ".sync-journal"}, "", absl::Seconds(30));
  ASSERT_TRUE(dropped.ok() && dropped->exit.ExitedWith(0));
  std::cerr << "chaos: " << leader_node << ": " << dropped->out;
  for (const std::string& f : followers) ASSERT_TRUE(cluster_->Resume(f).ok()) << f;
  ASSERT_TRUE(cluster_->Restart(leader_node).ok());
  FaultRecord fault;
  fault.kind = "isr-of-one+kill-leader+lose-unsynced-data";
  fault.target = leader_node;
  fault.started = started;
  fault.healed = absl::Now();
  history.AddFault(fault);
  ASSERT_TRUE(WaitForLeaders(client, {kTopic966}, kPartitions, /*full_isr=*/true, absl::Seconds(30)));
  const CheckResult result = FinishScenario(client, history, kTopic966, "KIP-966 scenario");
  EXPECT_EQ(result.acked, 51);
  EXPECT_TRUE(result.valid());
  EXPECT_TRUE(cluster_->Down().ok());
}

TEST_F(ChaosTest, QuickSuiteLosesNothingAcknowledged) {
  RunQuickSuite(SeedFromEnvironment(), FaultSet::kProcess, &cluster_);
  if (cluster_ != nullptr) {
    EXPECT_TRUE(cluster_->Down().ok());
  }
}

// The same workload and checks under disk faults, one broker's disk at a
// time: its store damaged at rest (a flipped bit, a table file cut short), or
// what it had not synced lost as in a power failure.
TEST_F(ChaosTest, DiskFaultsLoseNothingAcknowledged) {
  RunQuickSuite(SeedFromEnvironment(), FaultSet::kDisk, &cluster_);
  if (cluster_ != nullptr) {
    EXPECT_TRUE(cluster_->Down().ok());
  }
}

// The same workload and checks under clock faults: wall clocks of single nodes
// jump by up to 10 min either way, or every node's is off by its own amount,
// while the monotonic clocks run on.
TEST_F(ChaosTest, ClockFaultsLoseNothingAcknowledged) {
  RunQuickSuite(SeedFromEnvironment(), FaultSet::kClock, &cluster_);
  if (cluster_ != nullptr) {
    EXPECT_TRUE(cluster_->Down().ok());
  }
}

// The long suite, for hours: FJORD_CHAOS_LONG_MINUTES=M runs the quick suite
// again and again with consecutive seeds (from FJORD_CHAOS_SEED, else a
// time-based one), cycling through the process, clock and disk faults, until
// M minutes have passed or a run finds an anomaly (the run's seed and its
// fault set reproduce it). Skipped unless the variable is set:
//   bazel test //integration_tests/chaos:chaos_test --test_filter=ChaosTest.LongSuite \
//     --test_env=FJORD_CHAOS_LONG_MINUTES=240 --test_timeout=20000 --test_output=streamed
TEST_F(ChaosTest, LongSuite) {
  int64_t minutes = 0;
  const char* env = std::getenv("FJORD_CHAOS_LONG_MINUTES");
  if (env == nullptr || !absl::SimpleAtoi(env, &minutes) || minutes <= 0) {
    GTEST_SKIP() << "set FJORD_CHAOS_LONG_MINUTES to run the long suite";
  }
  const absl::Time end = absl::Now() + absl::Minutes(minutes);
  const uint64_t first = SeedFromEnvironment();
  constexpr FaultSet kSets[] = {FaultSet::kProcess, FaultSet::kClock, FaultSet::kDisk};
  int runs = 0;
  for (uint64_t seed = first; absl::Now() < end && runs < 100000; ++seed) {
    const FaultSet faults = kSets[runs % 3];
    ++runs;
    std::cout << "long suite: run " << runs << ": " << FaultSetName(faults) << " faults, seed "
              << seed << std::endl;
    RunQuickSuite(seed, faults, &cluster_);
    if (cluster_ != nullptr) {
      EXPECT_TRUE(cluster_->Down().ok());
    }
    if (HasFailure()) {
      std::cout << "long suite: stopped at the first failing run: FJORD_CHAOS_SEED=" << seed
                << " with " << FaultSetName(faults) << " faults reproduces it" << std::endl;
      break;
    }
    cluster_.reset();
  }
  std::cout << "long suite: " << runs << " runs in "
            << absl::FormatDuration(absl::Now() - (end - absl::Minutes(minutes))) << std::endl;
}

}  // namespace
}  // namespace fjord::testing::chaos
