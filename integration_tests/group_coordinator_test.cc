// The group coordinator through fjord.v1.GroupService on a real single-node
// broker: memberships and committed offsets are durable (they survive SIGKILL of
// the coordinator), and every bad input gets a clear status with nothing
// committed.
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fjord/v1/admin.grpc.pb.h"
#include "fjord/v1/group.grpc.pb.h"
#include "fjord/v1/metadata.grpc.pb.h"
#include "fjord/v1/produce.grpc.pb.h"
#include "gtest/gtest.h"
#include "integration_tests/broker_fixture.h"
#include "integration_tests/grpc_assertions.h"

namespace fjord::testing {
namespace {

using ::fjord::v1::ErrorInfo;

class GroupApi {
 public:
  explicit GroupApi(std::shared_ptr<grpc::Channel> channel)
      : groups_(fjord::v1::GroupService::NewStub(channel)),
        produce_(fjord::v1::ProduceService::NewStub(channel)) {}

#define FJORD_UNARY(Stub, Method, Req, Resp)         \
  grpc::Status Method(const Req& req, Resp* resp) {  \
    grpc::ClientContext ctx;                         \
    SetDeadline(&ctx, kRpcTimeout);                  \
    return Stub->Method(&ctx, req, resp);            \
  }
  FJORD_UNARY(groups_, FindCoordinator, fjord::v1::FindCoordinatorRequest,
              fjord::v1::FindCoordinatorResponse)
  FJORD_UNARY(groups_, Heartbeat, fjord::v1::GroupHeartbeatRequest,
              fjord::v1::GroupHeartbeatResponse)
  FJORD_UNARY(groups_, CommitOffsets, fjord::v1::CommitOffsetsRequest,
              fjord::v1::CommitOffsetsResponse)
  FJORD_UNARY(groups_, FetchOffsets, fjord::v1::FetchOffsetsRequest,
              fjord::v1::FetchOffsetsResponse)
  FJORD_UNARY(groups_, DescribeGroup, fjord::v1::DescribeGroupRequest,
              fjord::v1::DescribeGroupResponse)
  FJORD_UNARY(groups_, DeleteGroup, fjord::v1::DeleteGroupRequest,
              fjord::v1::DeleteGroupResponse)
  FJORD_UNARY(groups_, ListGroups, fjord::v1::ListGroupsRequest, fjord::v1::ListGroupsResponse)
  FJORD_UNARY(produce_, Produce, fjord::v1::ProduceRequest, fjord::v1::ProduceResponse)
#undef FJORD_UNARY

  // Calls `call` until it stops answering UNAVAILABLE (the coordinator loading,
  // __consumer_offsets electing its leaders), for at most 30 s.
  template <typename F>
  static grpc::Status Retry(F call) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      grpc::Status s = call();
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE || absl::Now() > deadline) return s;
      absl::SleepFor(absl::Milliseconds(50));  // back-off between attempts
    }
  }

  // Joins `group` subscribed to `topic`; returns the answer.
  grpc::Status Join(const std::string& group, const std::string& topic,
                    fjord::v1::GroupHeartbeatResponse* resp, const std::string& instance = "") {
    fjord::v1::GroupHeartbeatRequest req;
    req.set_group_id(group);
    req.set_member_epoch(0);
    req.set_instance_id(instance);
    req.add_subscribed_topics(topic);
    req.set_session_timeout_ms(30000);
    return Retry([&] { return Heartbeat(req, resp); });
  }

  std::map<std::pair<std::string, int32_t>, int64_t> Committed(const std::string& group) {
    fjord::v1::FetchOffsetsRequest req;
    req.set_group_id(group);
    fjord::v1::FetchOffsetsResponse resp;
    std::map<std::pair<std::string, int32_t>, int64_t> out;
    grpc::Status s = Retry([&] { return FetchOffsets(req, &resp); });
    EXPECT_TRUE(s.ok()) << GrpcToString(s);
    for (const auto& c : resp.offsets()) out[{c.topic(), c.partition()}] = c.offset();
    return out;
  }

  grpc::Status Commit(const std::string& group, const std::string& member, int32_t epoch,
                      const std::string& topic, int32_t partition, int64_t offset) {
    fjord::v1::CommitOffsetsRequest req;
    req.set_group_id(group);
    req.set_member_id(member);
    req.set_member_epoch(epoch);
    auto* o = req.add_offsets();
    o->set_topic(topic);
    o->set_partition(partition);
    o->set_offset(offset);
    fjord::v1::CommitOffsetsResponse resp;
    return CommitOffsets(req, &resp);
  }

  void ProduceN(const std::string& topic, int32_t partition, int n) {
    fjord::v1::ProduceRequest req;
    req.set_topic(topic);
    req.set_partition(partition);
    for (int i = 0; i < n; ++i) req.add_records()->set_value(absl::StrCat("v", i));
    fjord::v1::ProduceResponse resp;
    grpc::Status s = Produce(req, &resp);
    ASSERT_TRUE(s.ok()) << GrpcToString(s);
  }

 private:
  std::unique_ptr<fjord::v1::GroupService::Stub> groups_;
  std::unique_ptr<fjord::v1::ProduceService::Stub> produce_;
};

class GroupCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerProcess::Options o;
    o.extra_args = {"--create-topics=orders:6:1", "--offsets-topic-partitions=4"};
    broker_ = std::make_unique<BrokerProcess>(o);
    ASSERT_OK(broker_->Start());
    api_ = std::make_unique<GroupApi>(broker_->channel());
    fjord::v1::FindCoordinatorRequest req;
    req.set_group_id("items-group");
    fjord::v1::FindCoordinatorResponse resp;
    ASSERT_GRPC_OK(GroupApi::Retry([&] { return api_->FindCoordinator(req, &resp); }));
    EXPECT_EQ(resp.coordinator_id(), 1);
    EXPECT_EQ(resp.address(), broker_->address());
    for (int32_t p = 0; p < 6; ++p) api_->ProduceN("orders", p, 10);
  }

  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<GroupApi> api_;
};

TEST_F(GroupCoordinatorTest, CommitsAndMembershipSurviveSigkill) {
  fjord::v1::GroupHeartbeatResponse joined;
  ASSERT_GRPC_OK(api_->Join("items-group", "orders", &joined));
  ASSERT_EQ(joined.assignment_size(), 1);
  EXPECT_EQ(joined.assignment(0).partitions_size(), 6);
  for (int32_t p = 0; p < 6; ++p) {
    ASSERT_GRPC_OK(api_->Commit("items-group", joined.member_id(), joined.member_epoch(),
                                "orders", p, p + 1));
  }
  ASSERT_OK(broker_->Restart());
  api_ = std::make_unique<GroupApi>(broker_->channel());
  auto committed = api_->Committed("items-group");
  ASSERT_EQ(committed.size(), 6u);
  for (int32_t p = 0; p < 6; ++p) EXPECT_EQ((committed[{"orders", p}]), p + 1);
  // The member is still a member at its epoch: its heartbeat and commits work.
  fjord::v1::GroupHeartbeatRequest beat;
  beat.set_group_id("items-group");
  beat.set_member_id(joined.member_id());
  beat.set_member_epoch(joined.member_epoch());
  beat.add_subscribed_topics("orders");
  beat.set_session_timeout_ms(30000);
  *beat.add_owned_partitions() = joined.assignment(0);
  fjord::v1::GroupHeartbeatResponse again;
  ASSERT_GRPC_OK(GroupApi::Retry([&] { return api_->Heartbeat(beat, &again); }));
  EXPECT_EQ(again.member_epoch(), joined.member_epoch());
  ASSERT_GRPC_OK(api_->Commit("items-group", joined.member_id(), joined.member_epoch(), "orders",
                              0, 10));
  fjord::v1::DescribeGroupRequest dreq;
  dreq.set_group_id("items-group");
  fjord::v1::DescribeGroupResponse d;
  ASSERT_GRPC_OK(api_->DescribeGroup(dreq, &d));
  EXPECT_EQ(d.state(), fjord::v1::STABLE);
  ASSERT_EQ(d.members_size(), 1);
  EXPECT_EQ(d.members(0).member_id(), joined.member_id());
  EXPECT_EQ(d.offsets_size(), 6);
  fjord::v1::ListGroupsResponse list;
  ASSERT_GRPC_OK(api_->ListGroups({}, &list));
  ASSERT_EQ(list.groups_size(), 1);
  EXPECT_EQ(list.groups(0).group_id(), "items-group");
  EXPECT_EQ(list.groups(0).members(), 1);
}

TEST_F(GroupCoordinatorTest, DeleteNeedsAnEmptyGroupAndRemovesOffsets) {
  fjord::v1::GroupHeartbeatResponse joined;
  ASSERT_GRPC_OK(api_->Join("g1", "orders", &joined));
  ASSERT_GRPC_OK(api_->Commit("g1", joined.member_id(), joined.member_epoch(), "orders", 0, 5));
  fjord::v1::DeleteGroupRequest del;
  del.set_group_id("g1");
  fjord::v1::DeleteGroupResponse dresp;
  EXPECT_TRUE(IsRejected(api_->DeleteGroup(del, &dresp),
                         {grpc::StatusCode::FAILED_PRECONDITION,
                          {ErrorInfo::GROUP_NOT_EMPTY},
                          {"g1"}}));
  fjord::v1::GroupHeartbeatRequest leave;
  leave.set_group_id("g1");
  leave.set_member_id(joined.member_id());
  leave.set_member_epoch(-1);
  fjord::v1::GroupHeartbeatResponse left;
  ASSERT_GRPC_OK(api_->Heartbeat(leave, &left));
  // Empty now: an admin may reset its offsets, then delete it.
  ASSERT_GRPC_OK(api_->Commit("g1", "", -1, "orders", 0, 0));
  EXPECT_EQ((api_->Committed("g1")[{"orders", 0}]), 0);
  ASSERT_GRPC_OK(api_->DeleteGroup(del, &dresp));
  EXPECT_TRUE(api_->Committed("g1").empty());
  ASSERT_OK(broker_->Restart());
  api_ = std::make_unique<GroupApi>(broker_->channel());
  EXPECT_TRUE(api_->Committed("g1").empty()) << "the deletion is durable";
  fjord::v1::DescribeGroupRequest dreq;
  dreq.set_group_id("g1");
  fjord::v1::DescribeGroupResponse d;
  EXPECT_TRUE(IsRejected(
      GroupApi::Retry([&] { return api_->DescribeGroup(dreq, &d); }),
      {grpc::StatusCode::NOT_FOUND, {ErrorInfo::UNKNOWN_GROUP}, {"g1"}}));
}

TEST_F(GroupCoordinatorTest, BadInputsAreRefusedAndCommitNothing) {
  fjord::v1::GroupHeartbeatResponse a, b;
  ASSERT_GRPC_OK(api_->Join("g", "orders", &a));
  ASSERT_GRPC_OK(api_->Commit("g", a.member_id(), a.member_epoch(), "orders", 0, 3));
  const auto before = api_->Committed("g");

  // Invalid group ids.
  for (const std::string& bad : {std::string(""), std::string("has space"), std::string(250, 'g')}) {
    fjord::v1::FindCoordinatorRequest req;
    req.set_group_id(bad);
    fjord::v1::FindCoordinatorResponse resp;
    EXPECT_TRUE(IsRejected(api_->FindCoordinator(req, &resp),
                           {grpc::StatusCode::INVALID_ARGUMENT, {ErrorInfo::INVALID_GROUP_ID}, {}}))
        << bad;
    EXPECT_TRUE(IsRejected(api_->Commit(bad, "", -1, "orders", 0, 1),
                           {grpc::StatusCode::INVALID_ARGUMENT, {ErrorInfo::INVALID_GROUP_ID}, {}}));
  }
  // Unknown group.
  fjord::v1::DescribeGroupRequest dreq;
  dreq.set_group_id("no-such-group");
  fjord::v1::DescribeGroupResponse d;
  EXPECT_TRUE(IsRejected(api_->DescribeGroup(dreq, &d),
                         {grpc::StatusCode::NOT_FOUND, {ErrorInfo::UNKNOWN_GROUP}, {"no-such-group"}}));
  // Unknown member, and a member of another group.
  EXPECT_TRUE(IsRejected(api_->Commit("g", "nobody", 1, "orders", 0, 4),
                         {grpc::StatusCode::FAILED_PRECONDITION, {ErrorInfo::UNKNOWN_MEMBER_ID}, {"nobody"}}));
  EXPECT_TRUE(IsRejected(api_->Commit("other", a.member_id(), a.member_epoch(), "orders", 0, 4),
                         {grpc::StatusCode::FAILED_PRECONDITION, {ErrorInfo::UNKNOWN_MEMBER_ID}, {}}));
  // A second member joins: a must hand over half; its old epoch is then stale once
  // it has reconciled, and partitions it gave away are not its to commit.
  ASSERT_GRPC_OK(api_->Join("g", "orders", &b));
  fjord::v1::GroupHeartbeatRequest beat;
  beat.set_group_id("g");
  beat.set_member_id(a.member_id());
  beat.set_member_epoch(a.member_epoch());
  beat.add_subscribed_topics("orders");
  beat.set_session_timeout_ms(30000);
  *beat.add_owned_partitions() = a.assignment(0);
  fjord::v1::GroupHeartbeatResponse a2, a3;
  ASSERT_GRPC_OK(api_->Heartbeat(beat, &a2));  // told to keep 3
  ASSERT_EQ(a2.assignment(0).partitions_size(), 3);
  beat.clear_owned_partitions();
  *beat.add_owned_partitions() = a2.assignment(0);
  beat.set_member_epoch(a2.member_epoch());
  ASSERT_GRPC_OK(api_->Heartbeat(beat, &a3));  // released: epoch bumps
  EXPECT_GT(a3.member_epoch(), a.member_epoch());
  int32_t given_away = -1;
  for (int32_t p = 0; p < 6; ++p) {
    bool kept = false;
    for (int32_t q : a3.assignment(0).partitions()) kept |= q == p;
    if (!kept) given_away = p;
  }
  ASSERT_GE(given_away, 0);
  EXPECT_TRUE(IsRejected(api_->Commit("g", a.member_id(), a3.member_epoch(), "orders", given_away, 4),
                         {grpc::StatusCode::FAILED_PRECONDITION,
                          {ErrorInfo::PARTITION_NOT_ASSIGNED},
                          {absl::StrCat("orders-", given_away)}}));
  EXPECT_TRUE(IsRejected(
      api_->Commit("g", a.member_id(), a3.member_epoch() + 1, "orders", a3.assignment(0).partitions(0), 4),
      {grpc::StatusCode::FAILED_PRECONDITION, {ErrorInfo::FENCED_MEMBER_EPOCH}, {}}));
  // An admin commit while the group has members.
  EXPECT_TRUE(IsRejected(api_->Commit("g", "", -1, "orders", 0, 1),
                         {grpc::StatusCode::FAILED_PRECONDITION, {ErrorInfo::GROUP_NOT_EMPTY}, {"g"}}));
  // Offsets outside the log, unknown topics and partitions.
  const int32_t mine = a3.assignment(0).partitions(0);
  EXPECT_TRUE(IsRejected(api_->Commit("g", a.member_id(), a3.member_epoch(), "orders", mine, 11),
                         {grpc::StatusCode::OUT_OF_RANGE, {ErrorInfo::OFFSET_OUT_OF_RANGE}, {"11", "10"}}));
  EXPECT_TRUE(IsRejected(api_->Commit("g", a.member_id(), a3.member_epoch(), "orders", mine, -2),
                         {grpc::StatusCode::OUT_OF_RANGE, {ErrorInfo::OFFSET_OUT_OF_RANGE}, {"-2"}}));
  EXPECT_TRUE(IsRejected(api_->Commit("g", a.member_id(), a3.member_epoch(), "nope", 0, 1),
                         {grpc::StatusCode::NOT_FOUND, {ErrorInfo::UNKNOWN_TOPIC}, {"nope"}}));
  EXPECT_TRUE(IsRejected(api_->Commit("g", a.member_id(), a3.member_epoch(), "orders", 6, 1),
                         {grpc::StatusCode::NOT_FOUND, {ErrorInfo::UNKNOWN_PARTITION}, {"6"}}));
  // A commit with one bad offset among good ones commits none of them.
  {
    fjord::v1::CommitOffsetsRequest req;
    req.set_group_id("g");
    req.set_member_id(a.member_id());
    req.set_member_epoch(a3.member_epoch());
    auto* ok = req.add_offsets();
    ok->set_topic("orders");
    ok->set_partition(mine);
    ok->set_offset(7);
    auto* bad = req.add_offsets();
    bad->set_topic("orders");
    bad->set_partition(given_away);
    bad->set_offset(7);
    fjord::v1::CommitOffsetsResponse resp;
    EXPECT_TRUE(IsRejected(api_->CommitOffsets(req, &resp),
                           {grpc::StatusCode::FAILED_PRECONDITION, {ErrorInfo::PARTITION_NOT_ASSIGNED}, {}}));
  }
  // Heartbeats: bad epochs, topics, assignors, timeouts.
  {
    fjord::v1::GroupHeartbeatRequest req = beat;
    req.set_member_epoch(a3.member_epoch() + 7);
    fjord::v1::GroupHeartbeatResponse resp;
    EXPECT_TRUE(IsRejected(api_->Heartbeat(req, &resp),
                           {grpc::StatusCode::FAILED_PRECONDITION, {ErrorInfo::FENCED_MEMBER_EPOCH}, {}}));
    req = beat;
    req.set_member_id("ghost");
    EXPECT_TRUE(IsRejected(api_->Heartbeat(req, &resp),
                           {grpc::StatusCode::FAILED_PRECONDITION, {ErrorInfo::UNKNOWN_MEMBER_ID}, {"ghost"}}));
    req = beat;
    req.set_member_epoch(-5);
    EXPECT_TRUE(IsRejected(api_->Heartbeat(req, &resp),
                           {grpc::StatusCode::INVALID_ARGUMENT, {ErrorInfo::INVALID_REQUEST}, {"-5"}}));
    req = beat;
    req.set_member_epoch(0);
    req.set_member_id("");
    req.set_assignor("roundrobin");
    EXPECT_TRUE(IsRejected(api_->Heartbeat(req, &resp),
                           {grpc::StatusCode::INVALID_ARGUMENT, {ErrorInfo::INVALID_REQUEST}, {"roundrobin"}}));
    req.set_assignor("");
    req.set_session_timeout_ms(5);
    EXPECT_TRUE(IsRejected(api_->Heartbeat(req, &resp),
                           {grpc::StatusCode::INVALID_ARGUMENT, {ErrorInfo::INVALID_REQUEST}, {"session_timeout_ms"}}));
    req.set_session_timeout_ms(30000);
    req.clear_subscribed_topics();
    EXPECT_TRUE(IsRejected(api_->Heartbeat(req, &resp),
                           {grpc::StatusCode::INVALID_ARGUMENT, {ErrorInfo::INVALID_REQUEST}, {"subscribe"}}));
    req.add_subscribed_topics("bad/topic");
    EXPECT_TRUE(IsRejected(api_->Heartbeat(req, &resp),
                           {grpc::StatusCode::INVALID_ARGUMENT, {ErrorInfo::INVALID_TOPIC_NAME}, {"bad/topic"}}));
  }
  // The internal topic is not writable by clients.
  {
    fjord::v1::ProduceRequest req;
    req.set_topic("__consumer_offsets");
    req.add_records()->set_value("x");
    fjord::v1::ProduceResponse resp;
    EXPECT_TRUE(IsRejected(api_->Produce(req, &resp),
                           {grpc::StatusCode::INVALID_ARGUMENT, {ErrorInfo::INVALID_TOPIC_NAME}, {"internal"}}));
  }
  // Nor can a client delete it; but it can describe it, like any topic.
  {
    auto admin = fjord::v1::AdminService::NewStub(broker_->channel());
    fjord::v1::DeleteTopicsRequest req;
    req.add_topics("__consumer_offsets");
    fjord::v1::DeleteTopicsResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kRpcTimeout);
    EXPECT_TRUE(IsRejected(admin->DeleteTopics(&ctx, req, &resp),
                           {grpc::StatusCode::INVALID_ARGUMENT, {ErrorInfo::INVALID_TOPIC_NAME}, {"internal"}}));
    auto metadata = fjord::v1::MetadataService::NewStub(broker_->channel());
    fjord::v1::MetadataRequest mreq;
    mreq.add_topics("__consumer_offsets");
    fjord::v1::MetadataResponse mresp;
    grpc::ClientContext mctx;
    SetDeadline(&mctx, kRpcTimeout);
    ASSERT_GRPC_OK(metadata->Metadata(&mctx, mreq, &mresp));
    ASSERT_EQ(mresp.topics_size(), 1);
    EXPECT_EQ(mresp.topics(0).partitions_size(), 4) << "--offsets-topic-partitions=4";
  }
  EXPECT_EQ(api_->Committed("g"), before) << "no rejected commit changed anything";
  fjord::v1::DescribeGroupRequest greq;
  greq.set_group_id("g");
  ASSERT_GRPC_OK(api_->DescribeGroup(greq, &d));
  EXPECT_EQ(d.members_size(), 2) << "no rejected heartbeat added or removed a member";
  // Still serving: a good commit goes through.
  ASSERT_GRPC_OK(api_->Commit("g", a.member_id(), a3.member_epoch(), "orders", mine, 10));
}

}  // namespace
}  // namespace fjord::testing
