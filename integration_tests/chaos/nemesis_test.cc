#include "integration_tests/chaos/nemesis.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fjord::testing::chaos {
namespace {

TEST(MakeScheduleTest, TheSeedAloneDecidesTheSchedule) {
  ScheduleOptions options;
  EXPECT_EQ(FormatSchedule(MakeSchedule(42, options), "t"),
            FormatSchedule(MakeSchedule(42, options), "t"));
  EXPECT_NE(FormatSchedule(MakeSchedule(42, options), "t"),
            FormatSchedule(MakeSchedule(43, options), "t"));
}

// Pinned: a schedule printed by an earlier run must still be what its seed
// gives, or old failure reports can no longer be reproduced.
constexpr char kSeedOneFirst[] =
    "t=+2.0s #0 terminate-broker target=broker-1 hold=1.2s gap=2.8s";

TEST(MakeScheduleTest, SeedOneIsPinned) {
  ScheduleOptions options;
  options.faults_per_kind = 1;
  const std::vector<ScheduledFault> schedule = MakeSchedule(1, options);
  ASSERT_EQ(schedule.size(), AllFaultKinds().size());
  EXPECT_EQ(schedule[0].ToString("t"), kSeedOneFirst);
}

TEST(MakeScheduleTest, EveryKindAppearsFaultsPerKindTimesWithSaneTimings) {
  ScheduleOptions options;
  options.faults_per_kind = 3;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const std::vector<ScheduledFault> schedule = MakeSchedule(seed, options);
    std::map<FaultKind, int> count;
    absl::Duration previous = absl::ZeroDuration();
    for (const ScheduledFault& f : schedule) {
      ++count[f.kind];
      EXPECT_GT(f.at, previous);
      previous = f.at;
      EXPECT_GE(f.broker, 1);
      EXPECT_LE(f.broker, options.brokers);
      EXPECT_GE(f.partition, 0);
      EXPECT_LT(f.partition, options.partitions);
      EXPECT_GE(f.gap, absl::Milliseconds(1500));
      if (f.kind == FaultKind::kPauseLeader) {
        EXPECT_GT(f.hold, options.session_timeout);
      } else if (f.kind == FaultKind::kPauseController) {
        EXPECT_GT(f.hold, options.max_election_timeout);
      }
    }
    for (FaultKind kind : AllFaultKinds()) EXPECT_EQ(count[kind], 3);
  }
}

// The quick suite's whole default schedule for seed 1, as it was before the
// network kinds existed (checked against the earlier code for seeds 0-49).
constexpr char kSeedOneDefault[] =
    "t=+2.0s #0 kill-controller target=active-controller hold=0.5s gap=1.6s\n"
    "t=+5.1s #1 pause-controller target=active-controller hold=2.6s gap=2.8s\n"
    "t=+10.5s #2 pause-controller target=active-controller hold=2.7s gap=1.9s\n"
    "t=+15.1s #3 kill-all-brokers target=all-brokers hold=0.7s gap=2.9s\n"
    "t=+21.7s #4 pause-leader target=leader(t/1) hold=4.8s gap=1.6s\n"
    "t=+28.1s #5 kill-broker target=broker-3 hold=0.8s gap=2.5s\n"
    "t=+32.5s #6 pause-leader target=leader(t/2) hold=4.8s gap=2.8s\n"
    "t=+40.0s #7 kill-leader target=leader(t/1) hold=1.4s gap=2.8s\n"
    "t=+45.2s #8 terminate-broker target=broker-2 hold=0.7s gap=1.7s\n"
    "t=+48.6s #9 kill-leader target=leader(t/0) hold=1.8s gap=1.8s\n"
    "t=+53.2s #10 kill-broker target=broker-1 hold=1.7s gap=2.1s\n"
    "t=+58.1s #11 terminate-broker target=broker-3 hold=1.1s gap=1.8s\n"
    "t=+61.9s #12 kill-all-brokers target=all-brokers hold=1.3s gap=2.4s\n"
    "t=+68.5s #13 kill-controller target=active-controller hold=1.5s "
    "gap=2.9s\n";

TEST(MakeScheduleTest, SeedOneDefaultScheduleIsPinned) {
  EXPECT_EQ(FormatSchedule(MakeSchedule(1, ScheduleOptions{}), "t"),
            kSeedOneDefault);
}

TEST(MakeScheduleTest, NetworkKindsAreSeededAndWellFormed) {
  ScheduleOptions options;
  options.kinds = NetworkFaultKinds();
  options.faults_per_kind = 2;
  EXPECT_EQ(FormatSchedule(MakeSchedule(7, options), "t"),
            FormatSchedule(MakeSchedule(7, options), "t"));
  EXPECT_NE(FormatSchedule(MakeSchedule(7, options), "t"),
            FormatSchedule(MakeSchedule(8, options), "t"));
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const std::vector<ScheduledFault> schedule = MakeSchedule(seed, options);
    std::map<FaultKind, int> count;
    for (const ScheduledFault& f : schedule) {
      ++count[f.kind];
      EXPECT_TRUE(IsNetworkFault(f.kind));
      EXPECT_GE(f.gap, absl::Milliseconds(1500));
      switch (f.kind) {
        case FaultKind::kIsolateLeaderFromFollowers:
          EXPECT_GT(f.hold, options.replica_lag);  // the ISR shrinks
          break;
        case FaultKind::kIsolateController:
          EXPECT_GT(f.hold, options.max_election_timeout);
          break;
        case FaultKind::kSplitMajorityMinority:
          EXPECT_GT(f.hold, options.session_timeout);
          ASSERT_EQ(f.side_a.size(), 2u);
          EXPECT_EQ(f.side_a[0].rfind("controller-", 0), 0u);
          EXPECT_EQ(f.side_a[1], absl::StrCat("broker-", f.broker));
          break;
        case FaultKind::kBridgePartition: {
          EXPECT_GT(f.hold, options.session_timeout);
          // Every node on exactly one side or the bridge, one controller on
          // each side.
          std::map<std::string, int> seen;
          for (const auto& n : f.side_a) ++seen[n];
          for (const auto& n : f.side_b) ++seen[n];
          ++seen[f.bridge];
          EXPECT_EQ(seen.size(), 6u);
          for (const auto& [n, c] : seen) EXPECT_EQ(c, 1) << n;
          int a = 0, b = 0;
          for (const auto& n : f.side_a) a += n.rfind("controller-", 0) == 0;
          for (const auto& n : f.side_b) b += n.rfind("controller-", 0) == 0;
          EXPECT_EQ(a, 1);
          EXPECT_EQ(b, 1);
          // And at least one broker on each side.
          EXPECT_GT(f.side_a.size(), 1u);
          EXPECT_GT(f.side_b.size(), 1u);
          break;
        }
        default:
          EXPECT_GE(f.hold, options.session_timeout * 0.5);
      }
    }
    for (FaultKind kind : NetworkFaultKinds()) EXPECT_EQ(count[kind], 2);
  }
}

TEST(MakeScheduleTest, NetworkTargetsArePrinted) {
  ScheduleOptions options;
  options.kinds = {FaultKind::kBridgePartition};
  options.faults_per_kind = 1;
  const std::string line = MakeSchedule(3, options)[0].ToString("t");
  EXPECT_NE(line.find("bridge-partition target={"), std::string::npos) << line;
  EXPECT_NE(line.find(",bridge=controller-"), std::string::npos) << line;
}

// The quick suite's schedules are what they were before network kinds
// existed: no process kind is a network kind, and the defaults schedule
// process kinds only.
TEST(MakeScheduleTest, DefaultScheduleHasNoNetworkFaults) {
  for (FaultKind kind : AllFaultKinds()) EXPECT_FALSE(IsNetworkFault(kind));
  for (const ScheduledFault& f : MakeSchedule(1, ScheduleOptions{})) {
    EXPECT_FALSE(IsNetworkFault(f.kind));
    EXPECT_TRUE(f.side_a.empty() && f.side_b.empty() && f.bridge.empty());
  }
}

}  // namespace
}  // namespace fjord::testing::chaos
