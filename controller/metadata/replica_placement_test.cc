#include "controller/metadata/replica_placement.h"

#include <map>
#include <set>

#include "gtest/gtest.h"

namespace fjord::controller {
namespace {

std::vector<PlacementBroker> Brokers(std::map<int32_t, std::string> racks) {
  std::vector<PlacementBroker> out;
  for (const auto& [id, rack] : racks) out.push_back({id, rack});
  return out;
}

struct Load {
  std::map<int32_t, int> leaders;
  std::map<int32_t, int> replicas;
};

Load LoadOf(const std::vector<std::vector<int32_t>>& placement) {
  Load load;
  for (const auto& replicas : placement) {
    ++load.leaders[replicas.front()];
    for (int32_t b : replicas) ++load.replicas[b];
  }
  return load;
}

void ExpectDistinct(const std::vector<std::vector<int32_t>>& placement) {
  for (const auto& replicas : placement) {
    EXPECT_EQ(std::set<int32_t>(replicas.begin(), replicas.end()).size(),
              replicas.size());
  }
}

TEST(ReplicaPlacementTest, EvenWithoutRacks) {
  auto brokers = Brokers({{1, ""}, {2, ""}, {3, ""}, {4, ""}, {5, ""}});
  for (uint64_t seed = 0; seed < 50; ++seed) {
    auto placement = PlaceReplicas(brokers, 10, 3, seed * 7919);
    ASSERT_TRUE(placement.ok());
    ASSERT_EQ(placement->size(), 10u);
    ExpectDistinct(*placement);
    Load load = LoadOf(*placement);
    for (int32_t b = 1; b <= 5; ++b) {
      EXPECT_EQ(load.leaders[b], 2) << "seed " << seed << " broker " << b;
      EXPECT_EQ(load.replicas[b], 6) << "seed " << seed << " broker " << b;
    }
  }
}

TEST(ReplicaPlacementTest, NearlyEvenForAnyPartitionCount) {
  auto brokers = Brokers({{1, ""}, {2, ""}, {3, ""}, {4, ""}});
  auto placement = PlaceReplicas(brokers, 7, 2, 12345);
  ASSERT_TRUE(placement.ok());
  Load load = LoadOf(*placement);
  for (const auto& [b, n] : load.leaders) EXPECT_TRUE(n == 1 || n == 2);
  for (const auto& [b, n] : load.replicas) EXPECT_LE(n, 5);
}

TEST(ReplicaPlacementTest, RackAwareSpreadsEachPartitionOverRacks) {
  std::map<int32_t, std::string> racks = {{1, "a"}, {2, "a"}, {3, "b"},
                                          {4, "b"}, {5, "c"}, {6, "c"}};
  for (uint64_t seed = 0; seed < 50; ++seed) {
    auto placement = PlaceReplicas(Brokers(racks), 12, 3, seed * 104729);
    ASSERT_TRUE(placement.ok());
    ExpectDistinct(*placement);
    for (const auto& replicas : *placement) {
      std::set<std::string> used;
      for (int32_t b : replicas) used.insert(racks[b]);
      EXPECT_EQ(used.size(), 3u) << "seed " << seed;
    }
    Load load = LoadOf(*placement);
    for (int32_t b = 1; b <= 6; ++b) {
      EXPECT_EQ(load.leaders[b], 2) << "seed " << seed << " broker " << b;
      EXPECT_EQ(load.replicas[b], 6) << "seed " << seed << " broker " << b;
    }
  }
}

TEST(ReplicaPlacementTest, UnevenRacksStillSpreadFirst) {
  // Three brokers in rack "a", one in "b": every pair spans both racks.
  std::map<int32_t, std::string> racks = {
      {1, "a"}, {2, "a"}, {3, "a"}, {4, "b"}};
  auto placement = PlaceReplicas(Brokers(racks), 8, 2, 99);
  ASSERT_TRUE(placement.ok());
  for (const auto& replicas : *placement) {
    EXPECT_NE(racks[replicas[0]], racks[replicas[1]]);
  }
  // More replicas than racks: racks first, then any unused broker.
  placement = PlaceReplicas(Brokers(racks), 4, 4, 5);
  ASSERT_TRUE(placement.ok());
  ExpectDistinct(*placement);
}

TEST(ReplicaPlacementTest, SeedRotatesTheStartAndIsRepeatable) {
  auto brokers = Brokers({{1, ""}, {2, ""}, {3, ""}});
  std::set<int32_t> first_leaders;
  for (uint64_t seed = 0; seed < 3; ++seed) {
    auto a = PlaceReplicas(brokers, 1, 1, seed);
    auto b = PlaceReplicas(brokers, 1, 1, seed);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b);
    first_leaders.insert((*a)[0][0]);
  }
  EXPECT_EQ(first_leaders.size(), 3u);
  EXPECT_EQ(StableHash("abc"), StableHash("abc"));
  EXPECT_NE(StableHash("abc"), StableHash("abd"));
}

TEST(ReplicaPlacementTest, RefusesImpossibleRequests) {
  auto brokers = Brokers({{1, ""}, {2, ""}});
  EXPECT_FALSE(PlaceReplicas(brokers, 0, 1, 0).ok());
  EXPECT_FALSE(PlaceReplicas(brokers, 1, 0, 0).ok());
  EXPECT_FALSE(PlaceReplicas(brokers, 1, 3, 0).ok());
  EXPECT_FALSE(PlaceReplicas({}, 1, 1, 0).ok());
  EXPECT_TRUE(PlaceReplicas(brokers, 1, 2, 0).ok());
}

}  // namespace
}  // namespace fjord::controller
