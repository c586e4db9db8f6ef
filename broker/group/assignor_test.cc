#include "broker/group/assignor.h"

#include <random>

#include "gtest/gtest.h"

namespace fjord::broker::group {
namespace {

AssignorMember M(std::string id, std::vector<std::string> topics, Assignment previous = {}) {
  AssignorMember m;
  m.member_id = std::move(id);
  m.subscribed = std::move(topics);
  m.previous = std::move(previous);
  return m;
}

// Every partition of `counts` is owned exactly once.
void ExpectExactCover(const std::map<std::string, Assignment>& result,
                      const PartitionCounts& counts) {
  std::map<std::pair<std::string, int32_t>, int> seen;
  for (const auto& [member, a] : result) {
    for (const auto& [topic, partitions] : a) {
      for (int32_t p : partitions) ++seen[{topic, p}];
    }
  }
  int64_t total = 0;
  for (const auto& [topic, n] : counts) {
    total += n;
    for (int32_t p = 0; p < n; ++p) {
      EXPECT_EQ((seen[{topic, p}]), 1) << topic << "-" << p;
    }
  }
  EXPECT_EQ(static_cast<int64_t>(seen.size()), total);
}

TEST(RangeAssignorTest, ConsecutiveRunsPerTopic) {
  auto r = RangeAssign({M("c", {"t"}), M("a", {"t"}), M("b", {"t"})}, {{"t", 7}});
  EXPECT_EQ(r["a"], (Assignment{{"t", {0, 1, 2}}}));
  EXPECT_EQ(r["b"], (Assignment{{"t", {3, 4}}}));
  EXPECT_EQ(r["c"], (Assignment{{"t", {5, 6}}}));
}

TEST(RangeAssignorTest, OnlySubscribersGetATopic) {
  auto r = RangeAssign({M("a", {"t", "u"}), M("b", {"u"})}, {{"t", 2}, {"u", 2}, {"x", 4}});
  EXPECT_EQ(r["a"], (Assignment{{"t", {0, 1}}, {"u", {0}}}));
  EXPECT_EQ(r["b"], (Assignment{{"u", {1}}}));
}

TEST(RangeAssignorTest, StaticMembersSortByInstanceId) {
  AssignorMember x = M("zzz", {"t"});
  x.instance_id = "a-instance";
  auto r = RangeAssign({x, M("aaa", {"t"})}, {{"t", 2}});
  // "a-instance" < "aaa": the static member gets the first run even though its
  // member id sorts last.
  EXPECT_EQ(r["zzz"], (Assignment{{"t", {0}}}));
}

TEST(UniformAssignorTest, SixPartitionsThreeMembers) {
  auto r = UniformAssign({M("a", {"t"}), M("b", {"t"}), M("c", {"t"})}, {{"t", 6}});
  ExpectExactCover(r, {{"t", 6}});
  for (const auto& [m, a] : r) EXPECT_EQ(Size(a), 2) << m;
}

TEST(UniformAssignorTest, AJoiningMemberTakesOnlyTheExcess) {
  const PartitionCounts counts = {{"t", 6}};
  auto before = UniformAssign({M("a", {"t"}), M("b", {"t"}), M("c", {"t"})}, counts);
  auto after = UniformAssign({M("a", {"t"}, before["a"]), M("b", {"t"}, before["b"]),
                              M("c", {"t"}, before["c"]), M("d", {"t"})},
                             counts);
  ExpectExactCover(after, counts);
  int moved = 0;
  for (const std::string id : {"a", "b", "c"}) {
    moved += static_cast<int>(Size(before[id]) - Size(after[id]));
    for (const auto& [topic, ps] : after[id]) {
      for (int32_t p : ps) EXPECT_TRUE(before[id][topic].contains(p)) << "partition moved in";
    }
  }
  EXPECT_EQ(moved, 1);  // 2,2,2,0 -> 2,2,1,1
  EXPECT_EQ(Size(after["d"]), 1);
}

TEST(UniformAssignorTest, ALeavingMembersPartitionsAreTheOnlyOnesThatMove) {
  const PartitionCounts counts = {{"t", 12}, {"u", 5}};
  auto before = UniformAssign({M("a", {"t", "u"}), M("b", {"t", "u"}), M("c", {"t", "u"})},
                              counts);
  auto after =
      UniformAssign({M("a", {"t", "u"}, before["a"]), M("c", {"t", "u"}, before["c"])}, counts);
  ExpectExactCover(after, counts);
  for (const std::string id : {"a", "c"}) {
    for (const auto& [topic, ps] : before[id]) {
      for (int32_t p : ps) EXPECT_TRUE(after[id][topic].contains(p)) << id << " lost " << p;
    }
  }
  EXPECT_LE(std::abs(Size(after["a"]) - Size(after["c"])), 1);
}

TEST(UniformAssignorTest, BalancedForRandomHomogeneousGroups) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    const int members = 1 + static_cast<int>(rng() % 9);
    PartitionCounts counts;
    const int topics = 1 + static_cast<int>(rng() % 4);
    std::vector<std::string> names;
    for (int t = 0; t < topics; ++t) {
      names.push_back("t" + std::to_string(t));
      counts[names.back()] = 1 + static_cast<int32_t>(rng() % 20);
    }
    std::vector<AssignorMember> in;
    for (int m = 0; m < members; ++m) {
      // A random (possibly stale, overlapping) previous assignment.
      Assignment prev;
      for (int k = 0; k < 5; ++k) {
        const std::string& t = names[rng() % names.size()];
        prev[t].insert(static_cast<int32_t>(rng() % 25));
      }
      in.push_back(M("m" + std::to_string(m), names, prev));
    }
    auto r = UniformAssign(in, counts);
    ExpectExactCover(r, counts);
    int64_t lo = INT64_MAX, hi = 0;
    for (const auto& [m, a] : r) {
      lo = std::min(lo, Size(a));
      hi = std::max(hi, Size(a));
    }
    EXPECT_LE(hi - lo, 1) << "round " << round;
  }
}

TEST(AssignorTest, UnknownNameIsRefused) {
  EXPECT_EQ(Assign("roundrobin", {}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(IsKnownAssignor("range"));
  EXPECT_TRUE(IsKnownAssignor("uniform"));
}

}  // namespace
}  // namespace fjord::broker::group
