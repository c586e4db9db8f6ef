#include "integration_tests/chaos/group_checker.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fjord::testing::chaos {
namespace {

absl::Time T(int ms) { return absl::FromUnixMillis(1000000 + ms); }

GroupPoll Poll(int consumer, int ms, std::set<int32_t> owned,
               std::vector<std::pair<int32_t, int64_t>> records = {}) {
  GroupPoll p;
  p.consumer = consumer;
  p.at = T(ms);
  p.owned = std::move(owned);
  for (auto [partition, offset] : records) {
    p.records.push_back({partition, ReadRecord{offset, "", absl::StrCat("v", offset)}});
  }
  return p;
}

std::map<int32_t, std::vector<ReadRecord>> FinalRead(int32_t partition, int64_t n) {
  std::map<int32_t, std::vector<ReadRecord>> out;
  for (int64_t o = 0; o < n; ++o) out[partition].push_back({o, "", absl::StrCat("v", o)});
  return out;
}

TEST(GroupCheckerTest, CleanHandoverIsValid) {
  // Consumer 1 reads 0..2 and commits 3, releases; consumer 2 starts at 3.
  std::vector<GroupPoll> polls = {Poll(1, 0, {0}, {{0, 0}, {0, 1}, {0, 2}}), Poll(1, 100, {}),
                                  Poll(2, 200, {0}, {{0, 3}, {0, 4}})};
  std::vector<GroupCommit> commits = {{1, 0, 3, T(50)}, {2, 0, 5, T(250)}};
  GroupCheckResult r = CheckGroup(polls, commits, FinalRead(0, 5), {{0, 5}});
  EXPECT_TRUE(r.valid()) << r.Report();
  EXPECT_EQ(r.handovers, 1);
}

TEST(GroupCheckerTest, OverlappingOwnershipIsDoubleOwned) {
  std::vector<GroupPoll> polls = {Poll(1, 0, {0}), Poll(2, 100, {0}), Poll(1, 200, {0}),
                                  Poll(1, 300, {})};
  GroupCheckResult r = CheckGroup(polls, {}, {}, {});
  EXPECT_EQ(r.double_owned, 1) << r.Report();
  EXPECT_FALSE(r.valid());
}

TEST(GroupCheckerTest, SkipsBackwardsRegressionsAndMisses) {
  std::vector<GroupPoll> polls = {Poll(1, 0, {0}, {{0, 0}, {0, 1}, {0, 3}, {0, 2}}),
                                  Poll(1, 100, {}), Poll(2, 200, {0}, {{0, 1}})};
  std::vector<GroupCommit> commits = {{1, 0, 4, T(50)}};
  GroupCheckResult r = CheckGroup(polls, commits, FinalRead(0, 6), {{0, 2}});
  EXPECT_EQ(r.skipped, 1) << r.Report();            // 1 -> 3
  EXPECT_EQ(r.backwards, 1) << r.Report();          // 3 -> 2
  EXPECT_EQ(r.commit_regressions, 1) << r.Report();  // 2 starts at 1 < 4
  EXPECT_EQ(r.final_commit_behind, 1) << r.Report();  // 2 < 4
  EXPECT_EQ(r.missed, 2) << r.Report();             // 4 and 5
}

TEST(GroupCheckerTest, PartitionLostAndTakenAgainInOnePollIsANewRun) {
  // Consumer 1 reads 0..2, its commit of 3 fails; within one Poll it loses
  // its membership (on_partitions_lost), joins again, gets partition 0 back
  // and restarts at the committed offset 2: a new run, not going backwards.
  GroupPoll again = Poll(1, 100, {0}, {{0, 2}, {0, 3}});
  again.released = {0};
  std::vector<GroupPoll> polls = {Poll(1, 0, {0}, {{0, 0}, {0, 1}, {0, 2}}), again};
  std::vector<GroupCommit> commits = {{1, 0, 2, T(50)}, {1, 0, 4, T(150)}};
  GroupCheckResult r = CheckGroup(polls, commits, FinalRead(0, 4), {{0, 4}});
  EXPECT_TRUE(r.valid()) << r.Report();

  // Without the release it is one run that went back: 2 after 2.
  polls[1].released.clear();
  r = CheckGroup(polls, commits, FinalRead(0, 4), {{0, 4}});
  EXPECT_EQ(r.backwards, 1) << r.Report();
}

}  // namespace
}  // namespace fjord::testing::chaos
