#include "integration_tests/chaos/history.h"

#include <string>
#include <thread>
#include <vector>

#include "fjord/v1/record.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace fjord::testing::chaos {
namespace {

// A status as a Fjord broker sends it: code, message, and ErrorInfo in the
// google.rpc.Status details.
grpc::Status BrokerStatus(grpc::StatusCode code, const std::string& message,
                          fjord::v1::ErrorInfo::Reason reason,
                          int32_t leader_id = 0) {
  fjord::v1::ErrorInfo info;
  info.set_reason(reason);
  info.set_leader_id(leader_id);
  google::rpc::Status details;
  details.set_code(code);
  details.set_message(message);
  details.add_details()->PackFrom(info);
  return grpc::Status(code, message, details.SerializeAsString());
}

TEST(ClassifyProduceStatusTest, OkIsOk) {
  EXPECT_EQ(ClassifyProduceStatus(grpc::Status::OK), Outcome::kOk);
}

TEST(ClassifyProduceStatusTest, RefusalsBeforeTheAppendAreFailed) {
  for (grpc::StatusCode code :
       {grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::NOT_FOUND,
        grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::OUT_OF_RANGE}) {
    EXPECT_EQ(ClassifyProduceStatus(grpc::Status(code, "no")), Outcome::kFailed)
        << code;
  }
  EXPECT_EQ(ClassifyProduceStatus(BrokerStatus(
                grpc::StatusCode::UNAVAILABLE,
                "acks=all needs 2 in-sync replicas (min.insync.replicas) but "
                "partition t-0 has 1; nothing was appended",
                fjord::v1::ErrorInfo::NOT_ENOUGH_REPLICAS)),
            Outcome::kFailed);
  EXPECT_EQ(ClassifyProduceStatus(BrokerStatus(
                grpc::StatusCode::UNAVAILABLE, "the broker is shutting down",
                fjord::v1::ErrorInfo::SHUTTING_DOWN)),
            Outcome::kFailed);
}

TEST(ClassifyProduceStatusTest, NotLeaderFromANonLeaderIsFailed) {
  EXPECT_EQ(ClassifyProduceStatus(BrokerStatus(
                grpc::StatusCode::UNAVAILABLE,
                "this broker does not lead partition t-0; broker 2 does",
                fjord::v1::ErrorInfo::NOT_LEADER, 2)),
            Outcome::kFailed);
  EXPECT_EQ(ClassifyProduceStatus(BrokerStatus(
                grpc::StatusCode::UNAVAILABLE,
                "partition t-0 has no leader right now (its in-sync replicas "
                "are down); retry",
                fjord::v1::ErrorInfo::NOT_LEADER, -1)),
            Outcome::kFailed);
}

TEST(ClassifyProduceStatusTest, NotLeaderAfterTheAppendIsIndeterminate) {
  EXPECT_EQ(ClassifyProduceStatus(BrokerStatus(
                grpc::StatusCode::UNAVAILABLE,
                "lost leadership before the batch was replicated to every "
                "in-sync replica; it may or may not be committed",
                fjord::v1::ErrorInfo::NOT_LEADER)),
            Outcome::kIndeterminate);
  // An unknown wording is never proof that nothing was appended.
  EXPECT_EQ(ClassifyProduceStatus(
                BrokerStatus(grpc::StatusCode::UNAVAILABLE, "some new message",
                             fjord::v1::ErrorInfo::NOT_LEADER, 3)),
            Outcome::kIndeterminate);
}

TEST(ClassifyProduceStatusTest, TimeoutsAndTransportErrorsAreIndeterminate) {
  for (grpc::StatusCode code :
       {grpc::StatusCode::DEADLINE_EXCEEDED, grpc::StatusCode::CANCELLED,
        grpc::StatusCode::UNKNOWN, grpc::StatusCode::INTERNAL,
        grpc::StatusCode::ABORTED, grpc::StatusCode::FAILED_PRECONDITION,
        grpc::StatusCode::UNAVAILABLE}) {
    EXPECT_EQ(ClassifyProduceStatus(grpc::Status(code, "connection reset")),
              Outcome::kIndeterminate)
        << code;
  }
}

TEST(HistoryTest, RecordsInvocationsAndCompletionsFromManyThreads) {
  History history;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&history, t] {
      for (int i = 0; i < 100; ++i) {
        Op op;
        op.process = t;
        op.value = std::to_string(t * 1000 + i);
        const int64_t id = history.Invoke(op);
        history.Complete(id, i % 2 ? Outcome::kOk : Outcome::kIndeterminate, i);
      }
    });
  }
  for (auto& t : threads) t.join();
  const std::vector<Op> ops = history.ops();
  ASSERT_EQ(ops.size(), 400u);
  for (size_t i = 0; i < ops.size(); ++i) {
    EXPECT_EQ(ops[i].id, static_cast<int64_t>(i));
    EXPECT_NE(ops[i].outcome, Outcome::kPending);
    EXPECT_LE(ops[i].invoked, ops[i].completed);
  }
  EXPECT_EQ(history.acked(), 200);
}

}  // namespace
}  // namespace fjord::testing::chaos
