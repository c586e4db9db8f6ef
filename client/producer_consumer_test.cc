// Producer and Consumer against the in-process FakeBroker.
#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/consumer.h"
#include "client/partitioner.h"
#include "client/producer.h"
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

ProducerOptions FastRetries() {
  ProducerOptions options;
  options.retry_backoff = absl::Milliseconds(10);
  options.retry_backoff_max = absl::Milliseconds(50);
  options.delivery_timeout = absl::Seconds(5);
  options.request_timeout = absl::Seconds(2);
  return options;
}

TEST(ErrorInfoTest, RoundTripsThroughStatusDetails) {
  fjord::v1::ErrorInfo info;
  info.set_reason(fjord::v1::ErrorInfo::NOT_LEADER);
  info.set_leader_id(3);
  info.set_leader_address("h:1");
  auto status = testing::StatusWithErrorInfo(grpc::StatusCode::UNAVAILABLE,
                                             "not the leader", info);
  auto parsed = ErrorInfoOf(status);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->reason(), fjord::v1::ErrorInfo::NOT_LEADER);
  EXPECT_EQ(parsed->leader_id(), 3);
  EXPECT_EQ(parsed->leader_address(), "h:1");
  EXPECT_FALSE(ErrorInfoOf(grpc::Status(grpc::StatusCode::UNAVAILABLE, "x"))
                   .has_value());
}

TEST(ParseBootstrapTest, AcceptsListsAndRejectsJunk) {
  auto list = ParseBootstrap(" a:1, b:2 ,,");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_FALSE(ParseBootstrap("").ok());
  EXPECT_FALSE(ParseBootstrap("nohost").ok());
  EXPECT_FALSE(ParseBootstrap("h:0").ok());
  EXPECT_FALSE(ParseBootstrap("h:99999").ok());
}

TEST(ProducerTest, BatchesKeyedAndKeylessRecordsInOrder) {
  FakeBroker broker;
  broker.CreateTopic("t", 3);
  auto producer = Producer::Create(Connect(broker.address()), FastRetries());
  ASSERT_TRUE(producer.ok());
  constexpr int kRecords = 3000;
  std::atomic<int> acked{0}, failed{0};
  for (int i = 0; i < kRecords; ++i) {
    ProducerRecord r;
    r.topic = "t";
    if (i % 2 == 0) r.key = absl::StrCat("k", i % 10);
    r.value = absl::StrCat("v", i);
    ASSERT_TRUE((*producer)
                    ->Send(std::move(r),
                           [&](const absl::StatusOr<RecordMetadata>& md) {
                             (md.ok() ? acked : failed)++;
                           })
                    .ok());
  }
  ASSERT_TRUE((*producer)->Flush(absl::Seconds(10)).ok());
  EXPECT_EQ(acked, kRecords);
  EXPECT_EQ(failed, 0);
  // Batching: far fewer requests than records.
  EXPECT_LT(broker.produce_calls(), kRecords / 10);
  int total = 0;
  for (int p = 0; p < 3; ++p) {
    int last_index = -1;
    for (const auto& rec : broker.Log("t", p)) {
      ++total;
      const int index = std::stoi(rec.value().substr(1));
      EXPECT_GT(index, last_index) << "out of order in partition " << p;
      last_index = index;
      if (rec.has_key()) {
        EXPECT_EQ(PartitionForKey(rec.key(), 3), p);
      }
    }
  }
  EXPECT_EQ(total, kRecords);
}

TEST(ProducerTest, FutureReportsOffsetAndExplicitPartition) {
  FakeBroker broker;
  broker.CreateTopic("t", 4);
  auto producer = Producer::Create(Connect(broker.address()), FastRetries());
  ASSERT_TRUE(producer.ok());
  ProducerRecord r{"t", std::nullopt, "hello", {{"h", "1"}}, 1234, 2};
  auto first = (*producer)->Send(r).get();
  auto second = (*producer)->Send(r).get();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->partition, 2);
  EXPECT_EQ(first->offset, 0);
  EXPECT_EQ(second->offset, 1);
  EXPECT_EQ(first->timestamp_ms, 1234);
  ASSERT_EQ(broker.Log("t", 2).size(), 2u);
  EXPECT_EQ(broker.Log("t", 2)[0].headers(0).key(), "h");

  r.partition = 9;
  auto bad = (*producer)->Send(r).get();
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kNotFound);
}

TEST(ProducerTest, UnknownTopicIsRefusedAtSend) {
  FakeBroker broker;
  auto producer = Producer::Create(Connect(broker.address()), FastRetries());
  ASSERT_TRUE(producer.ok());
  absl::Status s = (*producer)->Send({"nope", std::nullopt, "v"}, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
}

TEST(ProducerTest, RetriesNotLeaderAndUnavailable) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  fjord::v1::ErrorInfo info;
  info.set_reason(fjord::v1::ErrorInfo::NOT_LEADER);
  broker.FailNextProduces(
      {testing::StatusWithErrorInfo(grpc::StatusCode::UNAVAILABLE,
                                    "not the leader", info),
       grpc::Status(grpc::StatusCode::UNAVAILABLE, "electing")});
  auto producer = Producer::Create(Connect(broker.address()), FastRetries());
  ASSERT_TRUE(producer.ok());
  auto md = (*producer)->Send({"t", std::nullopt, "v"}).get();
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->offset, 0);
  EXPECT_EQ(broker.produce_calls(), 3);
  EXPECT_EQ(broker.Log("t", 0).size(), 1u);
}

TEST(ProducerTest, BrokerRefusalsAreNotRetried) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  broker.FailNextProduces(
      {grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "record too large")});
  auto producer = Producer::Create(Connect(broker.address()), FastRetries());
  ASSERT_TRUE(producer.ok());
  auto md = (*producer)->Send({"t", std::nullopt, "v"}).get();
  EXPECT_EQ(md.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(md.status().message().find("record too large"), std::string::npos);
  EXPECT_FALSE(IsIndeterminate(md.status()));
  EXPECT_EQ(broker.produce_calls(), 1);
}

TEST(ProducerTest, UnansweredAttemptsEndIndeterminate) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  std::vector<grpc::Status> timeouts(
      200, grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "slow"));
  broker.FailNextProduces(timeouts);
  ProducerOptions options = FastRetries();
  options.delivery_timeout = absl::Milliseconds(300);
  auto producer = Producer::Create(Connect(broker.address()), options);
  ASSERT_TRUE(producer.ok());
  auto md = (*producer)->Send({"t", std::nullopt, "v"}).get();
  EXPECT_TRUE(IsIndeterminate(md.status())) << md.status();
}

TEST(ProducerTest, DefiniteRefusalsUntilTimeoutAreNotIndeterminate) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  fjord::v1::ErrorInfo info;
  info.set_reason(fjord::v1::ErrorInfo::NOT_LEADER);
  broker.FailNextProduces(std::vector<grpc::Status>(
      200, testing::StatusWithErrorInfo(grpc::StatusCode::UNAVAILABLE,
                                        "not the leader", info)));
  ProducerOptions options = FastRetries();
  options.delivery_timeout = absl::Milliseconds(300);
  auto producer = Producer::Create(Connect(broker.address()), options);
  ASSERT_TRUE(producer.ok());
  auto md = (*producer)->Send({"t", std::nullopt, "v"}).get();
  EXPECT_EQ(md.status().code(), absl::StatusCode::kUnavailable) << md.status();
  EXPECT_FALSE(IsIndeterminate(md.status()));
}

std::vector<ConsumerRecord> PollUntil(Consumer& consumer, size_t n) {
  std::vector<ConsumerRecord> out;
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (out.size() < n && absl::Now() < until) {
    auto records = consumer.Poll(absl::Milliseconds(200));
    EXPECT_TRUE(records.ok()) << records.status();
    if (!records.ok()) break;
    for (auto& r : *records) out.push_back(std::move(r));
  }
  return out;
}

TEST(ConsumerTest, ReadsFromBeginningAndFollowsNewRecords) {
  FakeBroker broker;
  broker.CreateTopic("t", 2);
  auto cluster = Connect(broker.address());
  auto producer = Producer::Create(cluster, FastRetries());
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 1000; ++i) {
    ProducerRecord r{"t", absl::StrCat("k", i), absl::StrCat(i)};
    ASSERT_TRUE((*producer)->Send(std::move(r), nullptr).ok());
  }
  ASSERT_TRUE((*producer)->Flush().ok());

  ConsumerOptions options;
  options.auto_offset_reset = OffsetReset::kEarliest;
  options.buffer_max_records = 100;  // Exercise back-pressure.
  auto consumer = Consumer::Create(cluster, options);
  ASSERT_TRUE(consumer.ok());
  ASSERT_TRUE((*consumer)->Assign({{"t", 0}, {"t", 1}}).ok());
  auto records = PollUntil(**consumer, 1000);
  ASSERT_EQ(records.size(), 1000u);
  std::map<int, int64_t> next;
  for (const auto& r : records) {
    EXPECT_EQ(r.offset, next[r.partition]++);
    ASSERT_TRUE(r.key.has_value());
  }
  EXPECT_EQ(*(*consumer)->Position({"t", 0}) + *(*consumer)->Position({"t", 1}),
            1000);

  ASSERT_TRUE((*producer)->Send({"t", std::nullopt, "late"}).get().ok());
  auto late = PollUntil(**consumer, 1);
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].value, "late");
  EXPECT_FALSE(late[0].key.has_value());
}

TEST(ConsumerTest, LatestSkipsExistingAndSeekRewinds) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  auto cluster = Connect(broker.address());
  auto producer = Producer::Create(cluster, FastRetries());
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        (*producer)->Send({"t", std::nullopt, absl::StrCat(i)}).get().ok());
  }
  auto consumer = Consumer::Create(cluster);
  ASSERT_TRUE(consumer.ok());
  ASSERT_TRUE((*consumer)->Assign({{"t", 0}}).ok());
  EXPECT_EQ(*(*consumer)->Position({"t", 0}), 5);
  auto none = (*consumer)->Poll(absl::Milliseconds(300));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE((*consumer)->Seek({"t", 0}, 3).ok());
  auto two = PollUntil(**consumer, 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].value, "3");
  EXPECT_EQ(two[1].value, "4");

  ASSERT_TRUE((*consumer)->SeekToBeginning({}).ok());
  EXPECT_EQ(*(*consumer)->Position({"t", 0}), 0);
  EXPECT_EQ(PollUntil(**consumer, 5).size(), 5u);
}

TEST(ConsumerTest, OutOfRangeAndUnknownPartitionReachTheCaller) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  auto cluster = Connect(broker.address());
  auto consumer = Consumer::Create(cluster);
  ASSERT_TRUE(consumer.ok());
  EXPECT_EQ((*consumer)->Assign({{"t", 7}}).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ((*consumer)->Assign({{"zz", 0}}).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE((*consumer)->Assign({{"t", 0}}).ok());
  ASSERT_TRUE((*consumer)->Seek({"t", 0}, 42).ok());
  absl::StatusOr<std::vector<ConsumerRecord>> result;
  const absl::Time until = absl::Now() + absl::Seconds(5);
  do {
    result = (*consumer)->Poll(absl::Milliseconds(200));
  } while (result.ok() && absl::Now() < until);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(result.status().message().find("t-0"), std::string::npos);
}

}  // namespace
}  // namespace fjord::client
