#include "controller/raft/memory_storage.h"

#include "gtest/gtest.h"

namespace fjord::raft {
namespace {

Entry E(uint64_t index, uint64_t term) {
  return Entry{Term(term), LogIndex(index), EntryType::kNormal, "d"};
}

TEST(MemoryStorageTest, AppendOverwritesConflictingSuffix) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append({E(1, 1), E(2, 1), E(3, 1)}).ok());
  ASSERT_TRUE(s.Append({E(2, 2)}).ok());
  EXPECT_EQ(s.LastIndex(), LogIndex(2));
  EXPECT_EQ(s.TermAt(LogIndex(2)).value(), Term(2));
  EXPECT_FALSE(s.Append({E(5, 2)}).ok());  // A hole.
}

TEST(MemoryStorageTest, SnapshotAndCompact) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append({E(1, 1), E(2, 1), E(3, 2), E(4, 2)}).ok());
  EXPECT_FALSE(s.Compact(LogIndex(2)).ok());  // No snapshot covers it yet.
  ASSERT_TRUE(s.CreateSnapshot(LogIndex(3), {NodeId(1)}, "state").ok());
  ASSERT_TRUE(s.Compact(LogIndex(3)).ok());
  EXPECT_EQ(s.FirstIndex(), LogIndex(4));
  EXPECT_EQ(s.TermAt(LogIndex(3)).value(), Term(2));
  EXPECT_TRUE(IsCompacted(s.TermAt(LogIndex(2)).status()));
  EXPECT_TRUE(IsCompacted(s.Entries(LogIndex(3), LogIndex(5), 100).status()));
  EXPECT_TRUE(IsUnavailableEntry(s.TermAt(LogIndex(9)).status()));
  EXPECT_EQ(s.Entries(LogIndex(4), LogIndex(5), 0).value().size(), 1u);
}

TEST(MemoryStorageTest, ApplySnapshotReplacesLog) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append({E(1, 1), E(2, 1)}).ok());
  Snapshot snap;
  snap.metadata.index = LogIndex(10);
  snap.metadata.term = Term(3);
  ASSERT_TRUE(s.ApplySnapshot(snap).ok());
  EXPECT_EQ(s.FirstIndex(), LogIndex(11));
  EXPECT_EQ(s.LastIndex(), LogIndex(10));
  snap.metadata.index = LogIndex(5);
  EXPECT_TRUE(IsCompacted(s.ApplySnapshot(snap)));
}

}  // namespace
}  // namespace fjord::raft
