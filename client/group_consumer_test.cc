// Consumer groups (Consumer with a group_id, GroupAdmin) against the
// FakeBroker's model coordinator. End-to-end behaviour against the real
// coordinator belongs in integration_tests/.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/consumer.h"
#include "client/group_admin.h"
#include "client/testing/fake_broker.h"
#include "gtest/gtest.h"

namespace fjord::client {
namespace {

using testing::FakeBroker;

constexpr char kGroup[] = "g";

std::shared_ptr<Cluster> Connect(const std::string& bootstrap) {
  ClientOptions options;
  options.bootstrap = bootstrap;
  options.rpc_timeout = absl::Seconds(2);
  auto cluster = Cluster::Create(options);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return *cluster;
}

ConsumerOptions GroupOptions() {
  ConsumerOptions options;
  options.group_id = kGroup;
  options.auto_offset_reset = OffsetReset::kEarliest;
  options.reconnect_backoff = absl::Milliseconds(20);
  options.reconnect_backoff_max = absl::Milliseconds(200);
  options.api_timeout = absl::Seconds(5);
  options.close_timeout = absl::Seconds(5);
  return options;
}

std::unique_ptr<Consumer> MakeConsumer(
    const FakeBroker& broker, ConsumerOptions options = GroupOptions()) {
  auto consumer = Consumer::Create(Connect(broker.address()), options);
  EXPECT_TRUE(consumer.ok()) << consumer.status();
  return *std::move(consumer);
}

std::vector<TopicPartition> Tps(std::vector<int> partitions,
                                const std::string& topic = "t") {
  std::vector<TopicPartition> out;
  for (int p : partitions) out.push_back({topic, p});
  return out;
}

// Polls until `done()` or `timeout`; appends what Poll returns to `records`
// (when given). Poll errors fail the test.
template <typename Done>
bool PollUntil(Consumer& consumer, Done done,
               std::vector<ConsumerRecord>* records = nullptr,
               absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time until = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > until) return false;
    auto polled = consumer.Poll(absl::Milliseconds(20));
    if (!polled.ok()) {
      ADD_FAILURE() << polled.status();
      return false;
    }
    if (records != nullptr) {
      for (auto& r : *polled) records->push_back(std::move(r));
    }
  }
  return true;
}

// The group's committed offset for t-`partition`, -1 without one.
int64_t CommittedAt(FakeBroker& broker, int partition) {
  const auto offsets = broker.CommittedOffsets(kGroup);
  auto it = offsets.find({"t", partition});
  return it == offsets.end() ? -1 : it->second;
}

bool OwnedIs(const Consumer& consumer, std::vector<int> partitions) {
  return consumer.Assignment() == Tps(partitions);
}

std::set<std::pair<std::string, int>> Owned(
    const fjord::v1::GroupHeartbeatRequest& hb) {
  std::set<std::pair<std::string, int>> out;
  for (const auto& t : hb.owned_partitions()) {
    for (int32_t p : t.partitions()) out.insert({t.topic(), p});
  }
  return out;
}

TEST(GroupConsumerTest, OptionsAreValidated) {
  auto cluster = Connect("127.0.0.1:1");
  auto bad = [&](auto mutate) {
    ConsumerOptions options = GroupOptions();
    mutate(options);
    auto c = Consumer::Create(cluster, options);
    return !c.ok() && c.status().code() == absl::StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(bad([](ConsumerOptions& o) { o.group_id = "has space"; }));
  EXPECT_TRUE(
      bad([](ConsumerOptions& o) { o.group_id = std::string(250, 'g'); }));
  EXPECT_TRUE(bad([](ConsumerOptions& o) {
    o.group_id.clear();
    o.group_instance_id = "i";
  }));
  EXPECT_TRUE(bad([](ConsumerOptions& o) { o.assignor = "sticky"; }));
  EXPECT_TRUE(bad([](ConsumerOptions& o) {
    o.auto_commit_interval = absl::ZeroDuration();
  }));
  EXPECT_TRUE(bad(
      [](ConsumerOptions& o) { o.session_timeout = absl::Milliseconds(-1); }));
  EXPECT_TRUE(bad(
      [](ConsumerOptions& o) { o.max_poll_interval = absl::ZeroDuration(); }));
  EXPECT_FALSE(bad([](ConsumerOptions& o) {
    o.group_id = "a.B_c-9";
    o.group_instance_id = "host-1";
    o.assignor = "range";
    o.session_timeout = absl::Seconds(10);
  }));
  // Auto-commit settings mean nothing without a group.
  EXPECT_FALSE(bad([](ConsumerOptions& o) {
    o.group_id.clear();
    o.auto_commit_interval = absl::ZeroDuration();
  }));
}

TEST(GroupConsumerTest, SubscribeAndAssignAreExclusive) {
  FakeBroker broker;
  broker.CreateTopic("t", 2);
  {
    ConsumerOptions options = GroupOptions();
    options.group_id.clear();
    auto plain = MakeConsumer(broker, options);
    EXPECT_EQ(plain->Subscribe({"t"}).code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(plain->Commit().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(plain->Committed(Tps({0})).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
  auto consumer = MakeConsumer(broker);
  ASSERT_TRUE(consumer->Assign(Tps({0})).ok());
  EXPECT_EQ(consumer->Subscribe({"t"}).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(consumer->Assign({}).ok());
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  EXPECT_EQ(consumer->Subscription(), std::vector<std::string>{"t"});
  EXPECT_EQ(consumer->Assign(Tps({0})).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(consumer->Subscribe({""}).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(consumer->Unsubscribe().ok());
  EXPECT_TRUE(consumer->Subscription().empty());
  EXPECT_TRUE(consumer->Assign(Tps({1})).ok());
  ASSERT_TRUE(consumer->Close().ok());
  EXPECT_EQ(consumer->Poll(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(GroupConsumerTest, StartsAtCommittedOffsetsAndCommitsOnClose) {
  FakeBroker broker;
  broker.CreateTopic("t", 2);
  for (int i = 0; i < 5; ++i) {
    broker.Append("t", 0, absl::StrCat("a", i));
    broker.Append("t", 1, absl::StrCat("b", i));
  }
  broker.SetCommittedOffset(kGroup, "t", 0, 3);
  auto consumer = MakeConsumer(broker);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  std::vector<ConsumerRecord> records;
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return records.size() >= 7; }, &records));
  std::map<int, std::vector<int64_t>> offsets;
  for (const auto& r : records) offsets[r.partition].push_back(r.offset);
  EXPECT_EQ(offsets[0], (std::vector<int64_t>{3, 4}));           // Committed.
  EXPECT_EQ(offsets[1], (std::vector<int64_t>{0, 1, 2, 3, 4}));  // Earliest.
  EXPECT_EQ(*consumer->Position({"t", 0}), 5);
  auto committed = consumer->Committed(Tps({0, 1}));
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->at(TopicPartition{"t", 0}), 3);
  EXPECT_EQ(committed->count({"t", 1}), 0u);

  ASSERT_TRUE(consumer->Close().ok());
  EXPECT_EQ(broker.CommittedOffsets(kGroup),
            (std::map<std::pair<std::string, int>, int64_t>{{{"t", 0}, 5},
                                                            {{"t", 1}, 5}}));
  // And it left: a final heartbeat with epoch -1, and no members.
  const auto calls = broker.GroupCalls();
  ASSERT_FALSE(calls.empty());
  EXPECT_FALSE(calls.back().is_commit);
  EXPECT_EQ(calls.back().heartbeat.member_epoch(), -1);
  EXPECT_TRUE(broker.GroupMembers(kGroup).empty());
}

TEST(GroupConsumerTest, RevokedPartitionIsCommittedBeforeItIsReleased) {
  FakeBroker broker;
  broker.CreateTopic("t", 2);
  for (int i = 0; i < 4; ++i) broker.Append("t", 1, absl::StrCat("b", i));
  auto consumer = MakeConsumer(broker);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  std::vector<ConsumerRecord> records;
  ASSERT_TRUE(PollUntil(
      *consumer,
      [&] {
        return records.size() >= 4 && OwnedIs(*consumer, {0, 1});
      },
      &records));

  const std::string member = broker.GroupMembers(kGroup).at(0);
  broker.SetMemberAssignment(kGroup, member, {{"t", 0}});
  ASSERT_TRUE(PollUntil(*consumer, [&] { return OwnedIs(*consumer, {0}); }));
  EXPECT_EQ(CommittedAt(broker, 1), 4);

  // The commit of t-1 came before the heartbeat that released it.
  const auto calls = broker.GroupCalls();
  int commit_at = -1, release_at = -1;
  for (int i = 0; i < static_cast<int>(calls.size()); ++i) {
    if (calls[i].is_commit) {
      for (const auto& o : calls[i].commit.offsets()) {
        if (o.partition() == 1 && commit_at < 0) commit_at = i;
      }
    } else if (calls[i].heartbeat.member_epoch() > 0 && release_at < 0 &&
               commit_at >= 0 &&
               Owned(calls[i].heartbeat).count({"t", 1}) == 0) {
      release_at = i;
    }
  }
  ASSERT_GE(commit_at, 0);
  ASSERT_GT(release_at, commit_at);

  // Nothing of t-1 comes back afterwards.
  broker.Append("t", 1, "late");
  broker.Append("t", 0, "a0");
  records.clear();
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return !records.empty(); }, &records));
  for (const auto& r : records) EXPECT_EQ(r.partition, 0) << r.value;
  EXPECT_EQ(consumer->Position({"t", 1}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(GroupConsumerTest, TwoConsumersSharePartitionsAndHandOver) {
  FakeBroker broker;
  broker.CreateTopic("t", 2);
  auto append = [&](int n) {
    for (int i = 0; i < n; ++i) {
      broker.Append("t", 0, "x");
      broker.Append("t", 1, "x");
    }
  };
  append(10);
  std::map<std::pair<int, int64_t>, int> seen;  // (partition, offset) -> count
  auto note = [&](std::vector<ConsumerRecord>& rs) {
    for (const auto& r : rs) ++seen[{r.partition, r.offset}];
    rs.clear();
  };

  auto a = MakeConsumer(broker);
  ASSERT_TRUE(a->Subscribe({"t"}).ok());
  std::vector<ConsumerRecord> ra, rb;
  ASSERT_TRUE(PollUntil(
      *a, [&] { return ra.size() >= 20; }, &ra));
  note(ra);

  // B joins: one partition moves from A to B, after A released it.
  auto b = MakeConsumer(broker);
  ASSERT_TRUE(b->Subscribe({"t"}).ok());
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (!(a->Assignment().size() == 1 && b->Assignment().size() == 1)) {
    ASSERT_LT(absl::Now(), until) << "no rebalance";
    auto x = a->Poll(absl::Milliseconds(10));
    ASSERT_TRUE(x.ok()) << x.status();
    ra.insert(ra.end(), x->begin(), x->end());
    auto y = b->Poll(absl::Milliseconds(10));
    ASSERT_TRUE(y.ok()) << y.status();
    rb.insert(rb.end(), y->begin(), y->end());
    for (const auto& tp : a->Assignment()) {
      const auto owned_b = b->Assignment();
      ASSERT_TRUE(std::find(owned_b.begin(), owned_b.end(), tp) ==
                  owned_b.end())
          << tp.ToString() << " owned by both";
    }
  }
  note(ra);
  note(rb);
  append(10);
  ASSERT_TRUE(PollUntil(
      *a, [&] { return ra.size() >= 10; }, &ra));
  ASSERT_TRUE(PollUntil(
      *b, [&] { return rb.size() >= 10; }, &rb));
  note(ra);
  note(rb);

  // A leaves (committing); B takes its partition from A's position.
  ASSERT_TRUE(a->Close().ok());
  ASSERT_TRUE(PollUntil(
      *b, [&] { return b->Assignment().size() == 2; }, &rb));
  append(5);
  ASSERT_TRUE(PollUntil(
      *b, [&] { return rb.size() >= 10; }, &rb));
  note(rb);
  ASSERT_TRUE(b->Close().ok());

  // Every record exactly once: each move committed the released position.
  EXPECT_EQ(seen.size(), 50u);
  for (const auto& [key, count] : seen) {
    EXPECT_EQ(count, 1) << "t-" << key.first << "@" << key.second;
  }
}

TEST(GroupConsumerTest, LostPartitionsAreDroppedWithoutCommitThenRejoined) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  for (int i = 0; i < 3; ++i) broker.Append("t", 0, absl::StrCat("v", i));
  ConsumerOptions options = GroupOptions();
  options.enable_auto_commit = false;
  auto consumer = MakeConsumer(broker, options);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  std::vector<ConsumerRecord> records;
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return records.size() >= 3; }, &records));
  const std::string member = broker.GroupMembers(kGroup).at(0);
  const size_t calls_before = broker.GroupCalls().size();

  // As if its session expired: the next heartbeat is UNKNOWN_MEMBER_ID.
  broker.RemoveGroupMember(kGroup, member);
  records.clear();
  // Joins again and, without a committed offset, reads from the start.
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return records.size() >= 3; }, &records));
  EXPECT_EQ(records.front().offset, 0);
  const auto calls = broker.GroupCalls();
  bool rejoined = false;
  for (size_t i = calls_before; i < calls.size(); ++i) {
    EXPECT_FALSE(calls[i].is_commit);
    if (!calls[i].is_commit && calls[i].heartbeat.member_epoch() == 0) {
      rejoined = true;
      EXPECT_TRUE(Owned(calls[i].heartbeat).empty());
    }
  }
  EXPECT_TRUE(rejoined);
  EXPECT_NE(broker.GroupMembers(kGroup).at(0), member);
}

TEST(GroupConsumerTest, FencedHeartbeatLosesPartitions) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  auto consumer = MakeConsumer(broker);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  ASSERT_TRUE(PollUntil(*consumer, [&] { return OwnedIs(*consumer, {0}); }));
  const std::string member = broker.GroupMembers(kGroup).at(0);
  // The coordinator replaced the member (a real one would also forget it).
  broker.RemoveGroupMember(kGroup, member);
  broker.FailNextHeartbeats({FakeBroker::GroupError(
      grpc::StatusCode::FAILED_PRECONDITION,
      fjord::v1::ErrorInfo::FENCED_MEMBER_EPOCH, "fenced")});
  ASSERT_TRUE(PollUntil(*consumer, [&] {
    const auto members = broker.GroupMembers(kGroup);
    return members.size() == 1 && members[0] != member &&
           OwnedIs(*consumer, {0});
  }));
}

TEST(GroupConsumerTest, StaleEpochCommitIsRetriedAfterAHeartbeat) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  broker.Append("t", 0, "v");
  ConsumerOptions options = GroupOptions();
  options.enable_auto_commit = false;
  auto consumer = MakeConsumer(broker, options);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  std::vector<ConsumerRecord> records;
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return !records.empty(); }, &records));
  broker.FailNextCommits({FakeBroker::GroupError(
      grpc::StatusCode::FAILED_PRECONDITION,
      fjord::v1::ErrorInfo::STALE_MEMBER_EPOCH, "stale")});
  const size_t before = broker.GroupCalls().size();
  ASSERT_TRUE(consumer->Commit().ok());
  EXPECT_EQ(CommittedAt(broker, 0), 1);
  // The stale commit, then a heartbeat, then the commit again (regular
  // heartbeats may come in between).
  const auto calls = broker.GroupCalls();
  std::vector<size_t> commits;
  for (size_t i = before; i < calls.size(); ++i) {
    if (calls[i].is_commit) commits.push_back(i);
  }
  ASSERT_EQ(commits.size(), 2u);
  bool heartbeat_between = false;
  for (size_t i = commits[0] + 1; i < commits[1]; ++i) {
    if (!calls[i].is_commit) heartbeat_between = true;
  }
  EXPECT_TRUE(heartbeat_between);

  // Refusals other than a stale epoch are returned.
  broker.FailNextCommits({FakeBroker::GroupError(
      grpc::StatusCode::FAILED_PRECONDITION,
      fjord::v1::ErrorInfo::PARTITION_NOT_ASSIGNED, "not yours")});
  EXPECT_EQ(consumer->Commit({{{"t", 0}, 0}}).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(GroupConsumerTest, FollowsCoordinatorLoadingAndNotCoordinator) {
  FakeBroker data(1), coordinator(2);
  data.CreateTopic("t", 1);
  // The coordinator's view of the topic (it checks commits against it).
  coordinator.CreateTopic("t", 1);
  coordinator.Append("t", 0, "v0");
  data.AddBroker(2, coordinator.address());
  data.Append("t", 0, "v0");
  fjord::v1::ErrorInfo moved;
  moved.set_reason(fjord::v1::ErrorInfo::NOT_COORDINATOR);
  moved.set_leader_id(2);
  moved.set_leader_address(coordinator.address());
  data.FailNextHeartbeats(
      {FakeBroker::GroupError(grpc::StatusCode::UNAVAILABLE,
                              fjord::v1::ErrorInfo::COORDINATOR_LOADING,
                              "loading"),
       testing::StatusWithErrorInfo(grpc::StatusCode::UNAVAILABLE,
                                    "not the coordinator", moved)});
  auto consumer = MakeConsumer(data);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  std::vector<ConsumerRecord> records;
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return !records.empty(); }, &records));
  EXPECT_EQ(records[0].value, "v0");
  EXPECT_EQ(coordinator.GroupMembers(kGroup).size(), 1u);
  EXPECT_EQ(data.GroupCalls().size(), 2u);  // The two refused heartbeats.
  const absl::Status closed = consumer->Close();
  ASSERT_TRUE(closed.ok()) << closed;
  EXPECT_EQ(CommittedAt(coordinator, 0), 1);
}

TEST(GroupConsumerTest, NoOffsetResetReportsThePartitionUntilSeek) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  broker.Append("t", 0, "v0");
  broker.Append("t", 0, "v1");
  ConsumerOptions options = GroupOptions();
  options.auto_offset_reset = OffsetReset::kNone;
  auto consumer = MakeConsumer(broker, options);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  absl::Status error;
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (error.ok() && absl::Now() < until) {
    auto polled = consumer->Poll(absl::Milliseconds(20));
    if (!polled.ok()) error = polled.status();
    if (polled.ok()) {
      EXPECT_TRUE(polled->empty());
    }
  }
  EXPECT_EQ(error.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(error.message().find("t-0"), absl::string_view::npos) << error;
  EXPECT_EQ(consumer->Position({"t", 0}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(consumer->Seek({"t", 0}, 1).ok());
  std::vector<ConsumerRecord> records;
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return !records.empty(); }, &records));
  EXPECT_EQ(records[0].value, "v1");
}

TEST(GroupConsumerTest, PausedPartitionReturnsNothingUntilResumed) {
  FakeBroker broker;
  broker.CreateTopic("t", 2);
  ConsumerOptions options = GroupOptions();
  options.group_id.clear();
  auto consumer = MakeConsumer(broker, options);
  ASSERT_TRUE(consumer->Assign(Tps({0, 1})).ok());
  EXPECT_EQ(consumer->Pause(Tps({2})).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(consumer->Pause(Tps({1})).ok());
  EXPECT_EQ(consumer->Paused(), Tps({1}));
  broker.Append("t", 1, "p1");
  broker.Append("t", 0, "p0");
  std::vector<ConsumerRecord> records;
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return !records.empty(); }, &records));
  absl::SleepFor(absl::Milliseconds(200));
  auto more = consumer->Poll(absl::Milliseconds(100));
  ASSERT_TRUE(more.ok());
  records.insert(records.end(), more->begin(), more->end());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].value, "p0");
  EXPECT_EQ(*consumer->Position({"t", 1}), 0);

  ASSERT_TRUE(consumer->Resume(Tps({1})).ok());
  EXPECT_TRUE(consumer->Paused().empty());
  records.clear();
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return !records.empty(); }, &records));
  EXPECT_EQ(records[0].value, "p1");
  EXPECT_EQ(*consumer->Position({"t", 1}), 1);
}

TEST(GroupConsumerTest, MaxPollIntervalLeavesThenPollRejoins) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  ConsumerOptions options = GroupOptions();
  options.max_poll_interval = absl::Milliseconds(300);
  auto consumer = MakeConsumer(broker, options);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  ASSERT_TRUE(PollUntil(*consumer, [&] { return OwnedIs(*consumer, {0}); }));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_TRUE(broker.GroupMembers(kGroup).empty());
  const auto calls = broker.GroupCalls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back().heartbeat.member_epoch(), -1);
  // The next Poll() drops the partition and joins again.
  ASSERT_TRUE(PollUntil(*consumer, [&] {
    return broker.GroupMembers(kGroup).size() == 1 && OwnedIs(*consumer, {0});
  }));
}

TEST(GroupConsumerTest, RefusedHeartbeatReachesPoll) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  broker.FailNextHeartbeats(
      {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad assignor")});
  auto consumer = MakeConsumer(broker);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  absl::Status error;
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (error.ok() && absl::Now() < until) {
    auto polled = consumer->Poll(absl::Milliseconds(20));
    if (!polled.ok()) error = polled.status();
  }
  EXPECT_EQ(error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(error.message().find("bad assignor"), absl::string_view::npos);
  // A new Subscribe() tries again.
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  ASSERT_TRUE(PollUntil(*consumer, [&] { return OwnedIs(*consumer, {0}); }));
}

TEST(GroupConsumerTest, StaticMemberLeavesWithEpochMinusTwo) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  ConsumerOptions options = GroupOptions();
  options.group_instance_id = "host-1";
  options.session_timeout = absl::Seconds(7);
  auto consumer = MakeConsumer(broker, options);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  ASSERT_TRUE(PollUntil(*consumer, [&] { return OwnedIs(*consumer, {0}); }));
  ASSERT_TRUE(consumer->Close().ok());
  const auto calls = broker.GroupCalls();
  ASSERT_FALSE(calls.empty());
  for (const auto& c : calls) {
    if (c.is_commit) continue;
    EXPECT_EQ(c.heartbeat.instance_id(), "host-1");
    if (c.heartbeat.member_epoch() >= 0) {
      EXPECT_EQ(c.heartbeat.session_timeout_ms(), 7000);
      EXPECT_EQ(c.heartbeat.assignor(), "uniform");
      EXPECT_EQ(c.heartbeat.subscribed_topics_size(), 1);
    }
  }
  EXPECT_EQ(calls.back().heartbeat.member_epoch(), -2);
}

TEST(GroupConsumerTest, UnreleasedInstanceIdIsRetried) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  const grpc::Status held = FakeBroker::GroupError(
      grpc::StatusCode::FAILED_PRECONDITION,
      fjord::v1::ErrorInfo::UNRELEASED_INSTANCE_ID, "still held");
  broker.FailNextHeartbeats({held, held, held});
  ConsumerOptions options = GroupOptions();
  options.group_instance_id = "host-1";
  auto consumer = MakeConsumer(broker, options);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  ASSERT_TRUE(PollUntil(*consumer, [&] { return OwnedIs(*consumer, {0}); }));
  int joins = 0;
  for (const auto& c : broker.GroupCalls()) {
    if (!c.is_commit && c.heartbeat.member_epoch() == 0) ++joins;
  }
  EXPECT_EQ(joins, 4);  // Three refused, then accepted.
}

TEST(GroupConsumerTest, AssignWithGroupStartsAtCommittedAndCommitsOutside) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  for (int i = 0; i < 4; ++i) broker.Append("t", 0, absl::StrCat("v", i));
  broker.SetCommittedOffset(kGroup, "t", 0, 2);
  auto consumer = MakeConsumer(broker);
  ASSERT_TRUE(consumer->Assign(Tps({0})).ok());
  EXPECT_EQ(*consumer->Position({"t", 0}), 2);
  std::vector<ConsumerRecord> records;
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return records.size() >= 2; }, &records));
  ASSERT_TRUE(consumer->Commit().ok());
  EXPECT_EQ(CommittedAt(broker, 0), 4);
  const auto calls = broker.GroupCalls();
  ASSERT_TRUE(calls.back().is_commit);
  EXPECT_EQ(calls.back().commit.member_id(), "");
  EXPECT_EQ(calls.back().commit.member_epoch(), -1);
}

TEST(GroupConsumerTest, CommittedOffsetOutsideTheLogIsReset) {
  FakeBroker broker;
  broker.CreateTopic("t", 1);
  broker.Append("t", 0, "v0");
  broker.SetCommittedOffset(kGroup, "t", 0, 50);  // E.g. a recreated topic.
  auto consumer = MakeConsumer(broker);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  std::vector<ConsumerRecord> records;
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return !records.empty(); }, &records));
  EXPECT_EQ(records[0].value, "v0");
}

TEST(GroupAdminTest, ListDescribeResetDelete) {
  FakeBroker broker;
  broker.CreateTopic("t", 2);
  for (int i = 0; i < 6; ++i) broker.Append("t", 0, "x");
  broker.SetCommittedOffset("idle", "t", 0, 4);
  GroupAdmin admin(Connect(broker.address()), absl::Seconds(5));

  auto consumer = MakeConsumer(broker);
  ASSERT_TRUE(consumer->Subscribe({"t"}).ok());
  ASSERT_TRUE(PollUntil(*consumer, [&] { return OwnedIs(*consumer, {0, 1}); }));

  auto list = admin.ListGroups();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->groups.size(), 2u);
  EXPECT_EQ(list->groups[0].group_id, "g");
  EXPECT_EQ(list->groups[0].members, 1);
  EXPECT_EQ(list->groups[0].state, fjord::v1::STABLE);
  EXPECT_EQ(list->groups[1].group_id, "idle");
  EXPECT_EQ(list->groups[1].state, fjord::v1::EMPTY);
  EXPECT_EQ(list->groups[1].coordinator_id, 1);
  EXPECT_TRUE(list->failed.empty());

  auto d = admin.DescribeGroup("idle");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->offsets_size(), 1);
  EXPECT_EQ(d->offsets(0).offset(), 4);
  EXPECT_EQ(admin.DescribeGroup("nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(admin.DescribeGroup("bad group").status().code(),
            absl::StatusCode::kInvalidArgument);

  auto ends =
      admin.ListOffsets(Tps({0, 1}), fjord::v1::ListOffsetsRequest::LATEST);
  EXPECT_EQ(*ends.at({"t", 0}), 6);
  EXPECT_EQ(*ends.at({"t", 1}), 0);
  EXPECT_FALSE(
      admin.ListOffsets(Tps({5}), fjord::v1::ListOffsetsRequest::LATEST)
          .at({"t", 5})
          .ok());

  // Only an empty group's offsets can be overwritten, or the group deleted.
  EXPECT_EQ(admin.CommitOffsets("g", {{{"t", 0}, 1}}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(admin.DeleteGroup("g").code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(admin.CommitOffsets("idle", {{{"t", 0}, 1}}).ok());
  auto offsets = admin.FetchOffsets("idle");
  ASSERT_TRUE(offsets.ok()) << offsets.status();
  EXPECT_EQ(offsets->at({"t", 0}).offset(), 1);
  ASSERT_TRUE(admin.DeleteGroup("idle").ok());
  EXPECT_EQ(admin.DeleteGroup("idle").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(consumer->Close().ok());
}

}  // namespace
}  // namespace fjord::client
