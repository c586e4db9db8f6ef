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

TEST(ProducerTest, RetriesNotEnoughReplicas) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  fjord::v1::ErrorInfo info;
  info.set_reason(fjord::v1::ErrorInfo::NOT_ENOUGH_REPLICAS);
  broker.FailNextProduces(std::vector<grpc::Status>(
      3, testing::StatusWithErrorInfo(grpc::StatusCode::UNAVAILABLE,
                                      "too few in-sync replicas", info)));
  auto producer = Producer::Create(Connect(broker.address()), FastRetries());
  ASSERT_TRUE(producer.ok());
  auto md = (*producer)->Send({"t", std::nullopt, "v"}).get();
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(broker.produce_calls(), 4);
  EXPECT_EQ(broker.Log("t", 0).size(), 1u);
}

TEST(ProducerTest, NotEnoughReplicasUntilTimeoutReportsTheReason) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  fjord::v1::ErrorInfo info;
  info.set_reason(fjord::v1::ErrorInfo::NOT_ENOUGH_REPLICAS);
  broker.FailNextProduces(std::vector<grpc::Status>(
      200,
      testing::StatusWithErrorInfo(
          grpc::StatusCode::UNAVAILABLE,
          "acks=all needs 2 in-sync replicas; nothing was appended", info)));
  ProducerOptions options = FastRetries();
  options.delivery_timeout = absl::Milliseconds(300);
  auto producer = Producer::Create(Connect(broker.address()), options);
  ASSERT_TRUE(producer.ok());
  auto md = (*producer)->Send({"t", std::nullopt, "v"}).get();
  EXPECT_EQ(md.status().code(), absl::StatusCode::kUnavailable) << md.status();
  EXPECT_FALSE(IsIndeterminate(md.status())) << md.status();
  EXPECT_NE(md.status().message().find("NOT_ENOUGH_REPLICAS"),
            std::string::npos)
      << md.status();
  EXPECT_NE(md.status().message().find("nothing was appended"),
            std::string::npos)
      << md.status();
  EXPECT_GT(broker.produce_calls(), 1);
}

TEST(ProducerTest, NotLeaderAfterAppendingIsIndeterminate) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  fjord::v1::ErrorInfo info;
  info.set_reason(fjord::v1::ErrorInfo::NOT_LEADER);
  // What a leader that appended, then lost leadership while waiting for its
  // followers, answers.
  broker.FailNextProduces(std::vector<grpc::Status>(
      200, testing::StatusWithErrorInfo(
               grpc::StatusCode::UNAVAILABLE,
               "lost leadership before the batch was replicated to every "
               "in-sync replica; it may or may not be committed",
               info)));
  ProducerOptions options = FastRetries();
  options.delivery_timeout = absl::Milliseconds(300);
  auto producer = Producer::Create(Connect(broker.address()), options);
  ASSERT_TRUE(producer.ok());
  auto md = (*producer)->Send({"t", std::nullopt, "v"}).get();
  EXPECT_TRUE(IsIndeterminate(md.status())) << md.status();
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

// Polls for `d`; true when nothing arrived (and no error).
bool PollUntilEmpty(Consumer& consumer, absl::Duration d) {
  const absl::Time until = absl::Now() + d;
  while (absl::Now() < until) {
    auto records = consumer.Poll(absl::Milliseconds(50));
    if (!records.ok() || !records->empty()) {
      ADD_FAILURE() << (records.ok() ? absl::StrCat(records->size(), " records")
                                     : records.status().ToString());
      return false;
    }
  }
  return true;
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

ConsumerOptions FastReconnects(OffsetReset reset) {
  ConsumerOptions options;
  options.auto_offset_reset = reset;
  options.reconnect_backoff = absl::Milliseconds(20);
  options.reconnect_backoff_max = absl::Milliseconds(100);
  options.fetch_max_wait_ms = 100;
  return options;
}

grpc::Status NotLeader() {
  fjord::v1::ErrorInfo info;
  info.set_reason(fjord::v1::ErrorInfo::NOT_LEADER);
  info.set_leader_id(-1);
  return testing::StatusWithErrorInfo(grpc::StatusCode::UNAVAILABLE,
                                      "this broker does not lead t-0", info);
}

// Checks that `records` are exactly offsets [from, to) of `partition`.
void ExpectOffsets(const std::vector<ConsumerRecord>& records, int partition,
                   int64_t from, int64_t to) {
  ASSERT_EQ(static_cast<int64_t>(records.size()), to - from);
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].partition, partition);
    EXPECT_EQ(records[i].offset, from + static_cast<int64_t>(i));
  }
}

TEST(ConsumerRetryTest, OffsetResetRetriesNotLeaderAndUnavailable) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  for (int i = 0; i < 5; ++i) broker.Append("t", 0, absl::StrCat(i));
  broker.FailNextListOffsets(
      {NotLeader(),
       grpc::Status(grpc::StatusCode::UNAVAILABLE, "failed to connect"),
       NotLeader()});
  auto consumer = Consumer::Create(Connect(broker.address()),
                                   FastReconnects(OffsetReset::kEarliest));
  ASSERT_TRUE(consumer.ok());
  ASSERT_TRUE((*consumer)->Assign({{"t", 0}}).ok());
  auto position = (*consumer)->Position({"t", 0});
  ASSERT_TRUE(position.ok()) << position.status();
  EXPECT_EQ(*position, 0);
  EXPECT_EQ(broker.list_offsets_calls(), 4);
  ExpectOffsets(PollUntil(**consumer, 5), 0, 0, 5);

  broker.FailNextListOffsets({NotLeader(), NotLeader()});
  ASSERT_TRUE((*consumer)->SeekToEnd({}).ok());
  position = (*consumer)->Position({"t", 0});
  ASSERT_TRUE(position.ok()) << position.status();
  EXPECT_EQ(*position, 5);
  broker.Append("t", 0, "late");
  auto late = PollUntil(**consumer, 1);
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].value, "late");

  // A definite refusal still reaches the caller.
  broker.FailNextListOffsets(
      {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad spec")});
  EXPECT_EQ((*consumer)->SeekToBeginning({}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*consumer)->SeekToBeginning({{"t", 9}}).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ConsumerRetryTest, FetchRetriesNotLeaderAndUnavailable) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  for (int i = 0; i < 300; ++i) broker.Append("t", 0, absl::StrCat(i));
  broker.FailNextFetches(
      {NotLeader(), grpc::Status(grpc::StatusCode::UNAVAILABLE, "electing"),
       grpc::Status(grpc::StatusCode::CANCELLED, "shutting down")});
  ConsumerOptions options = FastReconnects(OffsetReset::kEarliest);
  options.buffer_max_records = 50;
  auto consumer = Consumer::Create(Connect(broker.address()), options);
  ASSERT_TRUE(consumer.ok());
  ASSERT_TRUE((*consumer)->Assign({{"t", 0}}).ok());
  auto records = PollUntil(**consumer, 300);
  ExpectOffsets(records, 0, 0, 300);
  EXPECT_GE(broker.fetch_calls(), 4);

  // Leadership moves away mid-stream (no leader for a while), then back.
  broker.SetLeader("t", 0, -1);
  absl::SleepFor(absl::Milliseconds(300));
  for (int i = 300; i < 310; ++i) broker.Append("t", 0, absl::StrCat(i));
  EXPECT_TRUE(PollUntilEmpty(**consumer, absl::Milliseconds(300)));
  broker.SetLeader("t", 0, 1);
  ExpectOffsets(PollUntil(**consumer, 10), 0, 300, 310);
}

TEST(ConsumerRetryTest, NewLeaderBehindOnHighWatermarkIsNotOutOfRange) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  for (int i = 0; i < 5; ++i) broker.Append("t", 0, absl::StrCat(i));
  auto consumer = Consumer::Create(Connect(broker.address()),
                                   FastReconnects(OffsetReset::kEarliest));
  ASSERT_TRUE(consumer.ok());
  ASSERT_TRUE((*consumer)->Assign({{"t", 0}}).ok());
  ExpectOffsets(PollUntil(**consumer, 5), 0, 0, 5);
  // The old leader goes; the new one refuses offset 5 until its high
  // watermark catches up.
  broker.FailNextFetches(std::vector<grpc::Status>(
      3, grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                      "offset 5 is outside partition t-0: valid offsets are 0 "
                      "to 3")));
  broker.SetLeader("t", 0, -1);
  absl::SleepFor(absl::Milliseconds(100));
  broker.SetLeader("t", 0, 1);
  broker.Append("t", 0, "5");
  ExpectOffsets(PollUntil(**consumer, 1), 0, 5, 6);
}

TEST(ConsumerRetryTest, DeadLeaderDoesNotHoldUpOtherPartitions) {
  FakeBroker broker(1);
  broker.CreateTopic("t", 2);
  {
    FakeBroker dead(2);
    broker.AddBroker(2, dead.address());
  }  // Broker 2 is gone, but the metadata still says it leads t-1.
  broker.SetLeader("t", 1, 2);
  for (int i = 0; i < 10; ++i) {
    broker.Append("t", 0, absl::StrCat("a", i));
    broker.Append("t", 1, absl::StrCat("b", i));
  }
  ConsumerOptions options = FastReconnects(OffsetReset::kEarliest);
  options.api_timeout = absl::Milliseconds(300);
  auto consumer = Consumer::Create(Connect(broker.address()), options);
  ASSERT_TRUE(consumer.ok());
  const absl::Time start = absl::Now();
  ASSERT_TRUE((*consumer)->Assign({{"t", 0}, {"t", 1}}).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  ExpectOffsets(PollUntil(**consumer, 10), 0, 0, 10);
  EXPECT_TRUE(PollUntilEmpty(**consumer, absl::Milliseconds(300)));
  auto position = (*consumer)->Position({"t", 1});
  EXPECT_EQ(position.status().code(), absl::StatusCode::kDeadlineExceeded)
      << position.status();

  // A new leader is elected: t-1 is read from its beginning.
  broker.SetLeader("t", 1, 1);
  ExpectOffsets(PollUntil(**consumer, 10), 1, 0, 10);
  EXPECT_EQ(*(*consumer)->Position({"t", 1}), 10);
}

}  // namespace
}  // namespace fjord::client
