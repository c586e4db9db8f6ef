#include "storage/leader_epoch_cache.h"

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fjord::storage {
namespace {

// Builds a cache by appending one batch per element of `batches`: (epoch,
// record count), from offset 0. Returns the log end offset in `*log_end`.
LeaderEpochCache Build(const std::vector<std::pair<int32_t, int>>& batches,
                       int64_t* log_end) {
  LeaderEpochCache cache;
  int64_t offset = 0;
  for (const auto& [epoch, count] : batches) {
    absl::StatusOr<bool> added = cache.Append(epoch, offset);
    EXPECT_TRUE(added.ok()) << added.status();
    offset += count;
  }
  *log_end = offset;
  return cache;
}

TEST(LeaderEpochCacheTest, AppendAddsAnEntryPerNewEpoch) {
  int64_t end;
  // Epochs 0,0,1,1,3 with 2,3,2,3,2 records: offsets 0-1,2-4,5-6,7-9,10-11.
  const LeaderEpochCache cache =
      Build({{0, 2}, {0, 3}, {1, 2}, {1, 3}, {3, 2}}, &end);
  EXPECT_EQ(end, 12);
  EXPECT_EQ(cache.entries(),
            (std::vector<EpochEntry>{{0, 0}, {1, 5}, {3, 10}}));
  EXPECT_EQ(cache.LatestEpoch(), 3);
  EXPECT_EQ(LeaderEpochCache().LatestEpoch(), kUndefinedEpoch);
}

TEST(LeaderEpochCacheTest, AppendRefusesADecreasingEpochAndLeavesTheCache) {
  LeaderEpochCache cache;
  ASSERT_TRUE(cache.Append(2, 0).ok());
  ASSERT_TRUE(cache.Append(5, 4).ok());
  const LeaderEpochCache before = cache;
  absl::StatusOr<bool> added = cache.Append(4, 9);
  EXPECT_EQ(added.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cache, before);
  EXPECT_EQ(cache.Append(-1, 9).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A new epoch cannot start where the latest one started.
  EXPECT_EQ(cache.Append(6, 4).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cache, before);
  // The same epoch again is a continuation, not a new entry.
  absl::StatusOr<bool> same = cache.Append(5, 9);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(*same);
  EXPECT_EQ(cache, before);
}

// OffsetsForLeaderEpoch on the log of epochs 0,0,1,1,3 (entries (0,0), (1,5),
// (3,10), log end 12).
TEST(LeaderEpochCacheTest, EndOffsetForTable) {
  int64_t end;
  const LeaderEpochCache cache =
      Build({{0, 2}, {0, 3}, {1, 2}, {1, 3}, {3, 2}}, &end);
  struct Case {
    int32_t requested;
    EpochEndOffset want;
    const char* why;
  };
  const Case cases[] = {
      {-5, {-1, -1}, "below every epoch: undefined"},
      {-1, {-1, -1}, "UNDEFINED_EPOCH asked: undefined"},
      {0, {0, 5}, "first epoch ends where epoch 1 starts"},
      {1, {1, 10}, "epoch 1 ends where epoch 3 starts"},
      {2, {1, 10}, "epoch 2 never wrote: epoch 1 and its end"},
      {3, {3, 12}, "latest epoch: the log end"},
      {4, {3, 12}, "above the latest: latest epoch, log end"},
      {1000, {3, 12}, "far above the latest: latest epoch, log end"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(cache.EndOffsetFor(c.requested, end), c.want)
        << "requested " << c.requested << ": " << c.why;
  }
  // The first cached epoch need not be 0.
  int64_t end2;
  const LeaderEpochCache later = Build({{4, 3}, {6, 1}}, &end2);
  EXPECT_EQ(later.EndOffsetFor(3, end2), EpochEndOffset{});
  EXPECT_EQ(later.EndOffsetFor(4, end2), (EpochEndOffset{4, 3}));
  EXPECT_EQ(later.EndOffsetFor(5, end2), (EpochEndOffset{4, 3}));
  EXPECT_EQ(later.EndOffsetFor(6, end2), (EpochEndOffset{6, 4}));
  // Empty cache.
  EXPECT_EQ(LeaderEpochCache().EndOffsetFor(0, 0), EpochEndOffset{});
  EXPECT_TRUE(LeaderEpochCache().EndOffsetFor(7, 10).undefined());
}

TEST(LeaderEpochCacheTest, TruncateFromEndDropsEntriesAtOrPastTheNewEnd) {
  int64_t end;
  LeaderEpochCache cache =
      Build({{0, 2}, {0, 3}, {1, 2}, {1, 3}, {3, 2}}, &end);
  EXPECT_FALSE(cache.TruncateFromEnd(11));  // inside epoch 3: kept
  EXPECT_TRUE(cache.TruncateFromEnd(10));   // epoch 3 started at 10: dropped
  EXPECT_EQ(cache.entries(), (std::vector<EpochEntry>{{0, 0}, {1, 5}}));
  EXPECT_EQ(cache.EndOffsetFor(1, 10), (EpochEndOffset{1, 10}));
  EXPECT_EQ(cache.EndOffsetFor(3, 10), (EpochEndOffset{1, 10}));
  EXPECT_TRUE(cache.TruncateFromEnd(0));
  EXPECT_TRUE(cache.empty());
  // After truncation a lower epoch than the one removed may be appended again.
  EXPECT_TRUE(cache.Append(2, 0).ok());
}

TEST(LeaderEpochCacheTest, EncodeDecodeRoundTripAndCorruption) {
  int64_t end;
  const LeaderEpochCache cache =
      Build({{0, 2}, {7, 3}, {70000, 2}, {2147483647, 1}}, &end);
  absl::StatusOr<LeaderEpochCache> decoded =
      LeaderEpochCache::Decode(cache.Encode());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, cache);
  EXPECT_EQ(cache.Encode().size(), 1u + 12 * 4);

  absl::StatusOr<LeaderEpochCache> empty =
      LeaderEpochCache::Decode(LeaderEpochCache().Encode());
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  const std::string good = cache.Encode();
  EXPECT_EQ(LeaderEpochCache::Decode("").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(
      LeaderEpochCache::Decode(good.substr(0, good.size() - 1)).status().code(),
      absl::StatusCode::kDataLoss);
  std::string bad_format = good;
  bad_format[0] = 2;
  EXPECT_EQ(LeaderEpochCache::Decode(bad_format).status().code(),
            absl::StatusCode::kDataLoss);
  // Entries out of order break the invariant.
  std::string swapped = good.substr(0, 1) + good.substr(13, 12) +
                        good.substr(1, 12) + good.substr(25);
  EXPECT_EQ(LeaderEpochCache::Decode(swapped).status().code(),
            absl::StatusCode::kDataLoss);
}

// ---------------------------------------------------------------------------
// Divergence scenarios (KIP-101, KIP-279). A log is written as a string of one
// epoch digit per offset, each offset its own batch ("0 0 1" = offsets 0 and 1
// in epoch 0, offset 2 in epoch 1). Two replicas agree on an offset when they
// hold it in the same epoch: only one leader ever wrote each (epoch, offset).

std::vector<int32_t> ParseLog(const std::string& log) {
  std::vector<int32_t> epochs;
  std::istringstream in(log);
  int32_t e;
  while (in >> e) epochs.push_back(e);
  return epochs;
}

LeaderEpochCache CacheOf(const std::vector<int32_t>& epochs) {
  LeaderEpochCache cache;
  for (size_t i = 0; i < epochs.size(); ++i)
    EXPECT_TRUE(cache.Append(epochs[i], static_cast<int64_t>(i)).ok());
  return cache;
}

// The follower's side of KIP-279: where a follower truncates, asking only
// OffsetsForLeaderEpoch of the leader and of its own cache. Falls back to the
// follower's high watermark when the leader answers UNDEFINED (KIP-101).
int64_t TruncationPoint(const LeaderEpochCache& leader, int64_t leader_end,
                        const LeaderEpochCache& follower, int64_t follower_end,
                        int64_t follower_hw, int* rounds) {
  int64_t end = follower_end;
  int32_t asked = follower.LatestEpoch();
  *rounds = 0;
  while (true) {
    ++*rounds;
    if (asked == kUndefinedEpoch) return std::min(end, follower_hw);
    const EpochEndOffset theirs = leader.EndOffsetFor(asked, leader_end);
    if (theirs.undefined()) return std::min(end, follower_hw);
    const EpochEndOffset mine = follower.EndOffsetFor(theirs.epoch, end);
    if (mine.undefined()) return 0;  // nothing in common
    if (mine.epoch == theirs.epoch) {
      return std::min({end, theirs.end_offset, mine.end_offset});
    }
    // I never wrote their epoch: everything from my next epoch on diverges.
    end = std::min(end, mine.end_offset);
    asked = mine.epoch;
  }
}

TEST(LeaderEpochCacheTest, DivergenceScenarios) {
  struct Scenario {
    const char* name;
    const char* leader;
    const char* follower;
    int64_t follower_hw;
    int64_t want;  // truncation point
  };
  const Scenario scenarios[] = {
      // KIP-101 scenario 1: the follower restarted with HW 1 below its log end.
      // Truncating to the HW would lose offset 1 once it becomes leader; the
      // epoch answer keeps it.
      {"KIP-101 HW truncation then election", "0 0", "0 0", 1, 2},
      // KIP-101 scenario 2: both crash, B (with only offset 0) comes back
      // first and leads epoch 1, writing offset 1; A (with offset 1 of epoch
      // 0) must drop its offset 1.
      {"KIP-101 replica divergence", "0 1", "0 0", 1, 1},
      // KIP-279: A leads epoch 1 and has 0-2; B has 0-1. B leads epoch 2 and
      // writes 2-3, then dies unreplicated; A leads epoch 3 and writes 3. B as
      // follower asks for epoch 2 and gets (1, 3): it has epoch 1 only up to 2,
      // so it must truncate to 2, not 3 (the pre-KIP-279 answer).
      {"KIP-279 fast double failover", "1 1 1 3", "1 1 2 2", 0, 2},
      // Several epochs the leader never saw.
      {"follower ahead by two unseen epochs", "0 0 3 3", "0 0 1 2 2", 0, 2},
      {"follower behind in the same epoch", "0 0 0 2 2", "0 0", 0, 2},
      {"follower ahead in the same epoch", "0 0", "0 0 0", 0, 2},
      {"follower caught up", "0 1 1", "0 1 1", 3, 3},
      {"empty follower", "0 1", "", 0, 0},
      {"leader never wrote the follower's epochs", "5 5", "1 2", 0, 0},
      // Two rounds: the leader never wrote epoch 3, and the follower never
      // wrote the leader's epoch 2.
      {"interleaved epochs", "0 2 2", "0 1 3", 0, 1},
  };
  for (const Scenario& sc : scenarios) {
    const std::vector<int32_t> leader = ParseLog(sc.leader);
    const std::vector<int32_t> follower = ParseLog(sc.follower);
    int rounds = 0;
    const int64_t point =
        TruncationPoint(CacheOf(leader), leader.size(), CacheOf(follower),
                        follower.size(), sc.follower_hw, &rounds);
    EXPECT_EQ(point, sc.want) << sc.name << " (" << rounds << " rounds)";
    // The truncation point is exactly where the two logs stop agreeing: the
    // follower keeps nothing the leader lacks and drops nothing it has.
    size_t common = 0;
    while (common < leader.size() && common < follower.size() &&
           leader[common] == follower[common]) {
      ++common;
    }
    EXPECT_EQ(point, static_cast<int64_t>(common)) << sc.name;
  }
}

TEST(LeaderEpochCacheTest, UndefinedAnswerFallsBackToTheHighWatermark) {
  int rounds = 0;
  // An empty leader (or one whose first epoch is above everything we asked)
  // answers UNDEFINED: the follower keeps what it knows is committed.
  EXPECT_EQ(
      TruncationPoint(LeaderEpochCache(), 0, CacheOf({0, 0, 0}), 3, 2, &rounds),
      2);
}

}  // namespace
}  // namespace fjord::storage
