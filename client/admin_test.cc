// Admin against in-process FakeBrokers posing as one cluster.
#include "client/admin.h"

#include <map>
#include <memory>
#include <string>

#include "client/testing/fake_broker.h"
#include "gtest/gtest.h"

namespace fjord::client {
namespace {

using testing::FakeBroker;

std::shared_ptr<Cluster> Connect(const std::string& bootstrap) {
  ClientOptions options;
  options.bootstrap = bootstrap;
  options.rpc_timeout = absl::Seconds(2);
  auto cluster = Cluster::Create(options);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return *cluster;
}

// Partition -> log end offset, from a description's offsets.
std::map<int32_t, int64_t> LogEnds(const fjord::v1::TopicDescription& d) {
  std::map<int32_t, int64_t> out;
  for (const auto& o : d.offsets()) {
    EXPECT_EQ(o.high_watermark(), o.log_end_offset());
    out[o.partition()] = o.log_end_offset();
  }
  return out;
}

// Broker 1 leads t-0 and t-2, broker 2 leads t-1; each reports the offsets of
// its own partitions only, as real brokers do.
class DescribeTopicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (FakeBroker* b : {&one_, two_.get()}) {
      b->CreateTopic("t", 3);
      b->SetLeader("t", 0, 1);
      b->SetLeader("t", 1, 2);
      b->SetLeader("t", 2, 1);
    }
    one_.AddBroker(2, two_->address());
    two_->AddBroker(1, one_.address());
    for (int i = 0; i < 3; ++i) one_.Append("t", 0, "a");
    for (int i = 0; i < 5; ++i) two_->Append("t", 1, "b");
    one_.Append("t", 2, "c");
  }

  FakeBroker one_{1};
  std::unique_ptr<FakeBroker> two_ = std::make_unique<FakeBroker>(2);
};

TEST_F(DescribeTopicTest, AsksEachLeaderForItsPartitionsOffsets) {
  // Bootstrapped through either broker, the answer is the same.
  for (const std::string& bootstrap : {one_.address(), two_->address()}) {
    Admin admin(Connect(bootstrap));
    auto d = admin.DescribeTopic("t");
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->topic().partitions_size(), 3);
    EXPECT_EQ(LogEnds(*d), (std::map<int32_t, int64_t>{{0, 3}, {1, 5}, {2, 1}}))
        << bootstrap;
    ASSERT_EQ(d->offsets_size(), 3);
    EXPECT_EQ(d->offsets(0).partition(), 0);  // Ordered by partition.
    EXPECT_EQ(d->offsets(2).partition(), 2);
  }
}

TEST_F(DescribeTopicTest, UnreachableLeaderLeavesItsPartitionsUnknown) {
  Admin admin(Connect(one_.address()));
  two_.reset();  // Broker 2 dies; the metadata still names it leader of t-1.
  auto d = admin.DescribeTopic("t");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(LogEnds(*d), (std::map<int32_t, int64_t>{{0, 3}, {2, 1}}));

  // A partition without a leader has no offsets either.
  one_.SetLeader("t", 2, -1);
  d = admin.DescribeTopic("t");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(LogEnds(*d), (std::map<int32_t, int64_t>{{0, 3}}));
}

TEST_F(DescribeTopicTest, UnknownTopicIsNotFound) {
  Admin admin(Connect(one_.address()));
  EXPECT_EQ(admin.DescribeTopic("nope").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace fjord::client
