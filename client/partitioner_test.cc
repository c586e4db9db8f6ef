#include "client/partitioner.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fjord::client {
namespace {

// Vectors from Kafka's UtilsTest.testMurmur2 (values of Utils.murmur2).
TEST(Murmur2Test, MatchesKafkaUtilsTestVectors) {
  EXPECT_EQ(Murmur2("21"), -973932308);
  EXPECT_EQ(Murmur2("foobar"), -790332482);
  EXPECT_EQ(Murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(Murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(Murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971);
  EXPECT_EQ(Murmur2("abc"), 479470107);
}

// Covers every tail length (0..3 leftover bytes); values of Kafka's murmur2 as
// other Kafka-compatible clients test them.
TEST(Murmur2Test, AllTailLengths) {
  EXPECT_EQ(Murmur2("1"), -1993445489);
  EXPECT_EQ(Murmur2("12"), 126087238);
  EXPECT_EQ(Murmur2("123"), -267702483);
  EXPECT_EQ(Murmur2("1234"), -1614185708);
  EXPECT_EQ(Murmur2("12345"), -1188365604);
}

TEST(Murmur2Test, HighBytesAreUnsigned) {
  // Java masks each byte with 0xff; a signed-char implementation would differ.
  const std::string high("\xff\xfe\x80\x81\x90", 5);
  const std::string low("\x7f\x7e\x00\x01\x10", 5);
  EXPECT_NE(Murmur2(high), Murmur2(low));
  EXPECT_EQ(Murmur2(high), Murmur2(std::string(high)));
}

TEST(ToPositiveTest, ClearsSignBitOnly) {
  EXPECT_EQ(ToPositive(-973932308), -973932308 & 0x7fffffff);
  EXPECT_EQ(ToPositive(INT32_MIN), 0);
  EXPECT_EQ(ToPositive(-1), 0x7fffffff);
  EXPECT_EQ(ToPositive(5), 5);
}

TEST(PartitionForKeyTest, KafkaDefaultPartitioner) {
  // toPositive(-973932308) = 1173551340; 1173551340 % 3 = 0, % 10 = 0, % 7 = 3.
  EXPECT_EQ(ToPositive(Murmur2("21")), 1173551340);
  EXPECT_EQ(PartitionForKey("21", 3), 1173551340 % 3);
  EXPECT_EQ(PartitionForKey("21", 7), 1173551340 % 7);
  // toPositive(479470107) = 479470107.
  EXPECT_EQ(PartitionForKey("abc", 10), 479470107 % 10);
  EXPECT_EQ(PartitionForKey("foobar", 1), 0);
}

TEST(PartitionerTest, KeyedRecordsAreStable) {
  Partitioner p;
  const int32_t first = p.Partition("t", std::string("user-42"), 6);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(p.Partition("t", std::string("user-42"), 6), first);
  }
  EXPECT_EQ(first, PartitionForKey("user-42", 6));
}

TEST(PartitionerTest, EmptyKeyIsARealKey) {
  Partitioner p;
  const int32_t expected = PartitionForKey("", 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(p.Partition("t", std::string(), 5), expected);
  }
}

TEST(PartitionerTest, NullKeysRoundRobinPerTopic) {
  Partitioner p;
  std::vector<int32_t> a, b;
  for (int i = 0; i < 7; ++i) a.push_back(p.Partition("a", std::nullopt, 3));
  for (int i = 0; i < 4; ++i) b.push_back(p.Partition("b", std::nullopt, 4));
  EXPECT_EQ(a, (std::vector<int32_t>{0, 1, 2, 0, 1, 2, 0}));
  EXPECT_EQ(b, (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST(PartitionerTest, KeyedRecordsDoNotAdvanceRoundRobin) {
  Partitioner p;
  EXPECT_EQ(p.Partition("a", std::nullopt, 3), 0);
  p.Partition("a", std::string("k"), 3);
  EXPECT_EQ(p.Partition("a", std::nullopt, 3), 1);
}

}  // namespace
}  // namespace fjord::client
