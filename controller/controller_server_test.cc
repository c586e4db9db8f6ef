#include "controller/controller_server.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "fjord/v1/record.pb.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace fjord::controller {
namespace {

namespace fiv1 = fjord::internal::v1;

// A one-node replicated log: every proposal commits and applies at once.
class LocalConsensus : public Consensus {
 public:
  explicit LocalConsensus(MetadataStateMachine* state) : state_(state) {}
  absl::StatusOr<int64_t> Propose(std::string data, absl::Time) override {
    absl::MutexLock lock(&mu_);
    if (!leader_) return absl::UnavailableError("not leader");
    state_->Apply(++index_, data);
    return index_;
  }
  absl::Status ReadBarrier(absl::Time) override {
    return leader_ ? absl::OkStatus() : absl::UnavailableError("no leader");
  }
  bool IsLeader() const override { return leader_; }
  int32_t LeaderId() const override { return leader_ ? 1 : 2; }
  int64_t Term() const override { return 1; }
  int64_t CommitIndex() const override { return index_; }
  void set_leader(bool leader) { leader_ = leader; }

 private:
  MetadataStateMachine* state_;
  absl::Mutex mu_;
  int64_t index_ = 0;
  std::atomic<bool> leader_{true};
};

class ControllerServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ControllerServerOptions options;
    options.node_id = 1;
    options.voters = {{1, "127.0.0.1:1"}, {2, "127.0.0.1:2"}};
    options.logic.session_timeout = absl::Milliseconds(600);
    options.session_check_interval = absl::Milliseconds(20);
    options.preferred_leader_interval = absl::ZeroDuration();
    server_ = std::make_unique<ControllerServer>(options, &consensus_, &state_);
    server_->Start();
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!server_->active() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    ASSERT_TRUE(server_->active());
  }

  int64_t Register(int32_t id, std::string incarnation = "") {
    fiv1::RegisterBrokerRequest req;
    req.set_broker_id(id);
    req.set_incarnation_id(incarnation.empty() ? absl::StrCat("inc-", id) : incarnation);
    auto* e = req.add_endpoints();
    e->set_name("client");
    e->set_host("127.0.0.1");
    e->set_port(9000 + id);
    absl::StatusOr<int64_t> epoch = server_->RegisterBroker(req);
    EXPECT_TRUE(epoch.ok()) << epoch.status();
    return epoch.value_or(-1);
  }

  absl::StatusOr<fiv1::BrokerHeartbeatResponse> Beat(int32_t id, int64_t epoch) {
    fiv1::BrokerHeartbeatRequest req;
    req.set_broker_id(id);
    req.set_broker_epoch(epoch);
    req.set_metadata_offset(state_.next_offset() - 1);
    return server_->Heartbeat(req);
  }

  MetadataStateMachine state_;
  LocalConsensus consensus_{&state_};
  std::unique_ptr<ControllerServer> server_;
};

TEST_F(ControllerServerTest, BrokersRegisterWithIncreasingEpochsAndUnfence) {
  int64_t e1 = Register(1), e2 = Register(2), e3 = Register(3);
  EXPECT_LT(e1, e2);
  EXPECT_LT(e2, e3);
  for (auto [id, epoch] : {std::pair{1, e1}, {2, e2}, {3, e3}}) {
    auto beat = Beat(id, epoch);
    ASSERT_TRUE(beat.ok()) << beat.status();
    EXPECT_FALSE(beat->is_fenced());
  }
  // A restart under the same id with the same incarnation (a retry) gets a new,
  // larger epoch; the old epoch is then stale.
  int64_t again = Register(1);
  EXPECT_GT(again, e3);
  EXPECT_EQ(Beat(1, e1).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ControllerServerTest, CreateTopicsPlacesReplicasAndIsAllOrNothing) {
  for (int id = 1; id <= 3; ++id) ASSERT_TRUE(Beat(id, Register(id)).ok());
  fjord::v1::CreateTopicsRequest req;
  auto* t = req.add_topics();
  t->set_name("test-topic");
  t->set_partitions(5);
  t->set_replication_factor(2);
  auto created = server_->CreateTopics(req);
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_EQ(created->size(), 1u);
  EXPECT_EQ((*created)[0].partitions_size(), 5);
  std::map<int32_t, int> leaders;
  for (const auto& p : (*created)[0].partitions()) {
    EXPECT_EQ(p.replicas_size(), 2);
    EXPECT_EQ(p.isr_size(), 2);
    leaders[p.leader_id()]++;
  }
  EXPECT_EQ(leaders.size(), 3u);  // leadership spread over the brokers

  // One bad topic: nothing is created.
  fjord::v1::CreateTopicsRequest mixed;
  auto* ok = mixed.add_topics();
  ok->set_name("fine");
  ok->set_partitions(1);
  ok->set_replication_factor(1);
  auto* bad = mixed.add_topics();
  bad->set_name("too-many-replicas");
  bad->set_partitions(1);
  bad->set_replication_factor(4);
  EXPECT_EQ(server_->CreateTopics(mixed).status().code(),
            absl::StatusCode::kInvalidArgument);
  state_.WithImage([](const MetadataImage& image, int64_t) {
    EXPECT_EQ(image.FindTopicByName("fine"), nullptr);
  });
  EXPECT_EQ(server_->CreateTopics(req).status().code(), absl::StatusCode::kAlreadyExists);

  fjord::v1::DeleteTopicsRequest del;
  del.add_topics("test-topic");
  ASSERT_TRUE(server_->DeleteTopics(del).ok());
  EXPECT_EQ(server_->DeleteTopics(del).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ControllerServerTest, SilentBrokerIsFencedAndLosesLeadership) {
  int64_t e1 = Register(1), e2 = Register(2);
  ASSERT_TRUE(Beat(1, e1).ok());
  ASSERT_TRUE(Beat(2, e2).ok());
  fjord::v1::CreateTopicsRequest req;
  auto* t = req.add_topics();
  t->set_name("t");
  t->set_partitions(4);
  t->set_replication_factor(2);
  ASSERT_TRUE(server_->CreateTopics(req).ok());
  // Broker 1 keeps beating, broker 2 goes silent.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  bool fenced = false;
  while (!fenced && absl::Now() < deadline) {
    ASSERT_TRUE(Beat(1, e1).ok());
    state_.WithImage([&](const MetadataImage& image, int64_t) {
      fenced = image.FindBroker(2)->fenced;
    });
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(fenced);
  state_.WithImage([](const MetadataImage& image, int64_t) {
    absl::StatusOr<fjord::v1::TopicInfo> info = image.TopicInfoByName("t");
    ASSERT_TRUE(info.ok());
    for (const auto& p : info->partitions()) {
      EXPECT_EQ(p.leader_id(), 1);
      EXPECT_EQ(p.isr_size(), 1);
    }
  });
  // Heartbeating again (caught up) unfences it.
  auto beat = Beat(2, e2);
  ASSERT_TRUE(beat.ok());
  EXPECT_FALSE(beat->is_fenced());
}

TEST_F(ControllerServerTest, FollowersAnswerNotLeaderWithTheLeader) {
  consensus_.set_leader(false);
  fiv1::RegisterBrokerRequest req;
  req.set_broker_id(1);
  absl::StatusOr<int64_t> epoch = server_->RegisterBroker(req);
  ASSERT_EQ(epoch.status().code(), absl::StatusCode::kUnavailable);
  auto payload = epoch.status().GetPayload("type.googleapis.com/fjord.v1.ErrorInfo");
  ASSERT_TRUE(payload.has_value());
  fjord::v1::ErrorInfo info;
  ASSERT_TRUE(info.ParseFromString(std::string(*payload)));
  EXPECT_EQ(info.reason(), fjord::v1::ErrorInfo::NOT_LEADER);
  EXPECT_EQ(info.leader_id(), 2);
  EXPECT_EQ(info.leader_address(), "127.0.0.1:2");
}

TEST(MetadataStateMachineTest, FollowersReadBatchesOrASnapshot) {
  MetadataStateMachine state(/*retained_records=*/2);
  auto batch_with = [](int broker) {
    fiv1::MetadataBatch batch;
    auto* r = batch.add_records()->mutable_register_broker();
    r->set_broker_id(broker);
    r->set_incarnation_id("i");
    r->set_broker_epoch(broker * 10);
    auto* e = r->add_endpoints();
    e->set_name("client");
    e->set_host("h");
    e->set_port(1);
    return batch.SerializeAsString();
  };
  state.Apply(1, batch_with(1));
  state.Apply(2, fiv1::MetadataBatch().SerializeAsString());  // a barrier
  state.Apply(3, batch_with(2));
  state.Apply(4, batch_with(3));
  EXPECT_EQ(state.next_offset(), 3);
  EXPECT_EQ(state.applied_index(), 4);

  fiv1::FetchMetadataResponse recent;
  ASSERT_TRUE(state.ReadFrom(1, 100, &recent));
  EXPECT_FALSE(recent.has_snapshot());
  EXPECT_EQ(recent.base_offset(), 1);
  EXPECT_EQ(recent.records_size(), 2);
  EXPECT_EQ(recent.next_offset(), 3);

  fiv1::FetchMetadataResponse old;  // offset 0 is no longer retained
  ASSERT_TRUE(state.ReadFrom(0, 100, &old));
  ASSERT_TRUE(old.has_snapshot());
  EXPECT_EQ(old.snapshot().brokers_size(), 3);
  EXPECT_EQ(old.next_offset(), 3);

  fiv1::FetchMetadataResponse none;
  EXPECT_FALSE(state.ReadFrom(3, 100, &none));

  // Snapshot and restore carry the offset.
  MetadataStateMachine copy;
  ASSERT_TRUE(copy.Restore(state.Snapshot()).ok());
  EXPECT_EQ(copy.next_offset(), 3);
}

}  // namespace
}  // namespace fjord::controller
