#include "integration_tests/chaos/checker.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace fjord::testing::chaos {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1000000);

absl::Time At(int ms) { return kStart + absl::Milliseconds(ms); }

// Builds synthetic histories: each produce or read takes 10 ms of a process's
// time, in the order they are added.
class HistoryBuilder {
 public:
  HistoryBuilder& Produce(int process, int partition, const std::string& value,
                          Outcome outcome, int64_t offset = -1,
                          const std::string& topic = "t") {
    Op op;
    op.id = static_cast<int64_t>(ops_.size());
    op.process = process;
    op.type = OpType::kProduce;
    op.topic = topic;
    op.partition = partition;
    op.value = value;
    op.invoked = At(clock_);
    op.completed =
        outcome == Outcome::kPending ? absl::InfinitePast() : At(clock_ + 10);
    clock_ += 10;
    op.outcome = outcome;
    op.offset = outcome == Outcome::kOk ? offset : -1;
    if (outcome == Outcome::kFailed) op.error = "refused";
    ops_.push_back(op);
    return *this;
  }
  HistoryBuilder& Read(int partition, std::vector<ReadRecord> records) {
    Op op;
    op.id = static_cast<int64_t>(ops_.size());
    op.process = 99;
    op.type = OpType::kRead;
    op.topic = "t";
    op.partition = partition;
    op.invoked = At(clock_);
    op.completed = At(clock_ + 10);
    clock_ += 10;
    op.outcome = Outcome::kOk;
    op.records = std::move(records);
    ops_.push_back(op);
    return *this;
  }
  HistoryBuilder& Sleep(int ms) {
    clock_ += ms;
    return *this;
  }
  int now() const { return clock_; }
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
  int clock_ = 0;
};

// A final read of partition t/p holding `values` at offsets 0, 1, ...
FinalReads Final(std::vector<std::vector<std::string>> partitions) {
  FinalReads out;
  for (size_t p = 0; p < partitions.size(); ++p) {
    auto& records = out[{"t", static_cast<int32_t>(p)}];
    for (size_t i = 0; i < partitions[p].size(); ++i) {
      records.push_back({static_cast<int64_t>(i), "", partitions[p][i]});
    }
  }
  return out;
}

TEST(CheckerTest, ACleanHistoryIsValid) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kOk, 0)
      .Produce(0, 0, "b", Outcome::kOk, 1)
      .Produce(1, 1, "x", Outcome::kOk, 0)
      .Read(0, {{0, "", "a"}});
  const CheckResult r = Check(h.ops(), Final({{"a", "b"}, {"x"}}), {});
  EXPECT_TRUE(r.valid()) << r.Report();
  EXPECT_EQ(r.acked, 3);
  EXPECT_EQ(r.records_read, 3);
  EXPECT_EQ(r.Summary(7, 0),
            "run seed=7 faults=0 acked=3 lost=0 unexpected=0 duplicated=0 "
            "reordered=0 double_owned=0 max_recovery_ms=0");
}

TEST(CheckerTest, AnAcknowledgedValueMissingFromTheFinalReadIsLost) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kOk, 0).Produce(0, 0, "b", Outcome::kOk, 1);
  const CheckResult r = Check(h.ops(), Final({{"a"}}), {});
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.lost, 1);
  ASSERT_FALSE(r.details.empty());
  EXPECT_NE(r.details[0].find("lost: t/0 value=b acked at offset 1"),
            std::string::npos)
      << r.Report();
}

TEST(CheckerTest, IndeterminateAndFailedValuesMayBeMissing) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kOk, 0)
      .Produce(0, 0, "b", Outcome::kIndeterminate)
      .Produce(0, 0, "c", Outcome::kFailed)
      .Produce(0, 0, "d", Outcome::kPending);
  const CheckResult r = Check(h.ops(), Final({{"a"}}), {});
  EXPECT_TRUE(r.valid()) << r.Report();
  EXPECT_EQ(r.acked, 1);
  EXPECT_EQ(r.indeterminate, 2);
  EXPECT_EQ(r.failed, 1);
}

TEST(CheckerTest, IndeterminateWritesMayAppear) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kIndeterminate)
      .Produce(0, 0, "b", Outcome::kPending);
  EXPECT_TRUE(Check(h.ops(), Final({{"a", "b"}}), {}).valid());
}

TEST(CheckerTest, AValueNobodySentIsUnexpected) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kOk, 0).Produce(1, 1, "x", Outcome::kOk, 0);
  // "zz" was never sent; "x" was sent to partition 1, not 0.
  const CheckResult r = Check(h.ops(), Final({{"a", "zz", "x"}, {"x"}}), {});
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.unexpected, 2) << r.Report();
}

TEST(CheckerTest, AMidRunReadOfAnUnsentValueIsUnexpected) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kOk, 0).Read(0, {{0, "", "a"}, {1, "", "q"}});
  const CheckResult r = Check(h.ops(), Final({{"a"}}), {});
  EXPECT_EQ(r.unexpected, 1) << r.Report();
  // And offset 1 was seen holding q but the final log ends before it.
  EXPECT_EQ(r.double_valued, 1);
  EXPECT_FALSE(r.valid());
}

TEST(CheckerTest, ADefinitelyFailedWriteThatAppearsIsFlagged) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kOk, 0).Produce(0, 0, "b", Outcome::kFailed);
  const CheckResult r = Check(h.ops(), Final({{"a", "b"}}), {});
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.read_from_failed, 1) << r.Report();
}

TEST(CheckerTest, AFailedAttemptRetriedIndeterminatelyMayAppear) {
  HistoryBuilder h;
  h.Produce(0, 0, "b", Outcome::kFailed)
      .Produce(0, 0, "b", Outcome::kIndeterminate);
  const CheckResult r = Check(h.ops(), Final({{"b"}}), {});
  EXPECT_TRUE(r.valid()) << r.Report();
  EXPECT_EQ(r.read_from_failed, 0);
}

TEST(CheckerTest,
     SequentialAcknowledgedWritesReadInTheOppositeOrderAreReordered) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kOk, 0)
      .Produce(0, 0, "b", Outcome::kOk, 1)
      .Produce(0, 0, "c", Outcome::kOk, 2);
  const CheckResult r = Check(h.ops(), Final({{"a", "c", "b"}}), {});
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.reordered, 1) << r.Report();
}

TEST(CheckerTest, WritesOfDifferentProducersMayInterleaveInAnyOrder) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kOk, 1).Produce(1, 0, "b", Outcome::kOk, 0);
  EXPECT_TRUE(Check(h.ops(), Final({{"b", "a"}}), {}).valid());
}

TEST(CheckerTest, RetriedDuplicatesAreCountedButAllowed) {
  HistoryBuilder h;
  // "a": first attempt timed out but was appended at 0; the retry acked at 1.
  h.Produce(0, 0, "a", Outcome::kIndeterminate)
      .Produce(0, 0, "a", Outcome::kOk, 1)
      .Produce(0, 0, "b", Outcome::kOk, 2);
  const CheckResult r = Check(h.ops(), Final({{"a", "a", "b"}}), {});
  EXPECT_TRUE(r.valid()) << r.Report();
  EXPECT_EQ(r.duplicated, 1);
  EXPECT_EQ(r.reordered, 0);
  EXPECT_EQ(r.acked, 2);
}

TEST(CheckerTest, AnAckedOffsetHoldingAnotherValueIsDoubleValued) {
  HistoryBuilder h;
  // b was acked at offset 1 but the log has c there, and b only later (as if
  // the acknowledged copy had been truncated and a retry appended again).
  h.Produce(0, 0, "a", Outcome::kOk, 0)
      .Produce(0, 0, "b", Outcome::kOk, 1)
      .Produce(1, 0, "c", Outcome::kOk, 2);
  const CheckResult r = Check(h.ops(), Final({{"a", "c", "b"}}), {});
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.double_valued, 2) << r.Report();  // offsets 1 and 2
}

TEST(CheckerTest, AMidRunReadDisagreeingWithTheFinalReadIsDoubleValued) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kIndeterminate)
      .Produce(1, 0, "b", Outcome::kIndeterminate)
      .Read(0, {{0, "", "a"}});
  const CheckResult r = Check(h.ops(), Final({{"b", "a"}}), {});
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.double_valued, 1) << r.Report();
}

TEST(CheckerTest, GapsInTheFinalReadAreFlagged) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kOk, 0).Produce(0, 0, "b", Outcome::kOk, 2);
  FinalReads final_reads;
  final_reads[{"t", 0}] = {{0, "", "a"}, {2, "", "b"}};
  const CheckResult r = Check(h.ops(), final_reads, {});
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.offset_gaps, 1) << r.Report();
}

TEST(CheckerTest, RecoveryIsTheSlowestPartitionsFirstAckAfterTheHeal) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kOk, 0).Produce(1, 1, "x", Outcome::kOk, 0);
  const int healed = h.now();
  // Partition 0 acks 20 ms after the heal; partition 1 fails until 120 ms.
  h.Sleep(10).Produce(0, 0, "b", Outcome::kOk, 1);
  h.Produce(1, 1, "y", Outcome::kIndeterminate)
      .Sleep(90)
      .Produce(1, 1, "y", Outcome::kOk, 1);
  FaultRecord fault;
  fault.index = 0;
  fault.kind = "kill-leader";
  fault.target = "broker-1";
  fault.started = At(0);
  fault.healed = At(healed);
  const CheckResult r =
      Check(h.ops(), Final({{"a", "b"}, {"x", "y"}}), {fault});
  EXPECT_TRUE(r.valid()) << r.Report();
  ASSERT_EQ(r.recoveries.size(), 1u);
  EXPECT_EQ(r.recoveries[0].recovery_ms, 130);
  EXPECT_EQ(r.recoveries[0].slowest, "t/1");
  EXPECT_EQ(r.max_recovery_ms, 130);
}

TEST(CheckerTest, APartitionThatNeverAcksAgainAfterTheHealIsUnrecovered) {
  HistoryBuilder h;
  h.Produce(0, 0, "a", Outcome::kOk, 0);
  const int healed = h.now();
  h.Produce(0, 0, "b", Outcome::kIndeterminate);
  FaultRecord fault;
  fault.kind = "pause-leader";
  fault.started = At(0);
  fault.healed = At(healed);
  const CheckResult r = Check(h.ops(), Final({{"a"}}), {fault});
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.unrecovered, 1) << r.Report();
  EXPECT_EQ(r.recoveries[0].recovery_ms, -1);
}

}  // namespace
}  // namespace fjord::testing::chaos
