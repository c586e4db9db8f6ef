#include "controller/metadata/controller_logic.h"

#include <algorithm>
#include <string>
#include <vector>

#include "controller/metadata/errors.h"
#include "gtest/gtest.h"

namespace fjord::controller {
namespace {

using records::ControllerErrorInfo;

// An image, the logic on top of it, and a metadata log that is just a
// counter: every batch the logic returns is applied at once, as the active
// controller does.
class ControllerLogicTest : public ::testing::Test {
 protected:
  ControllerLogicTest() : logic_(&image_, {absl::Seconds(6)}) {
    logic_.Activate(now_);
  }

  void Apply(const RecordBatch& batch) {
    for (const auto& r : batch) {
      absl::Status s = image_.Apply(r);
      ASSERT_TRUE(s.ok()) << s << " for " << r.ShortDebugString();
      ++next_offset_;
    }
    ASSERT_TRUE(image_.CheckInvariants().ok()) << image_.CheckInvariants();
  }

  RegisterBrokerRequest Request(int32_t id, std::string incarnation,
                                std::string rack = "") {
    return {id, incarnation, {{"client", "127.0.0.1", 9092 + id}}, rack};
  }

  // Registers broker `id` and heartbeats it unfenced; returns its epoch.
  int64_t Join(int32_t id, std::string rack = "",
               std::string incarnation = "") {
    if (incarnation.empty()) incarnation = "inc-" + std::to_string(id);
    auto reg = logic_.RegisterBroker(Request(id, incarnation, rack), now_,
                                     next_offset_);
    EXPECT_TRUE(reg.ok()) << reg.status();
    if (!reg.ok()) return -1;
    Apply(reg->records);
    auto hb = Beat(id, reg->broker_epoch);
    EXPECT_TRUE(hb.ok()) << hb.status();
    if (hb.ok()) EXPECT_FALSE(hb->fenced);
    return reg->broker_epoch;
  }

  // A caught-up heartbeat; applies its records.
  absl::StatusOr<HeartbeatResult> Beat(int32_t id, int64_t epoch,
                                       bool want_shutdown = false,
                                       bool want_fence = false) {
    HeartbeatRequest req{id, epoch, next_offset_ - 1, want_fence,
                         want_shutdown};
    auto hb = logic_.Heartbeat(req, now_, next_offset_);
    if (hb.ok()) Apply(hb->records);
    return hb;
  }

  std::string CreateTopic(const std::string& name, int32_t partitions,
                          int32_t rf,
                          std::map<std::string, std::string> configs = {}) {
    std::string id = NextId();
    auto batch = logic_.CreateTopics({{name, partitions, rf, configs}},
                                     [&] { return id; });
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (batch.ok()) Apply(*batch);
    return id;
  }

  std::string NextId() {
    std::string n = std::to_string(++ids_);
    return std::string(32 - n.size(), 'a') + n;
  }

  const Partition& P(const std::string& topic_id, int32_t i) {
    return image_.FindTopicById(topic_id)->partitions[i];
  }

  // Heartbeats every unfenced broker except `silent` at now_.
  void BeatAllBut(std::set<int32_t> silent) {
    for (const auto& [id, b] : image_.brokers()) {
      if (silent.contains(id) || b.fenced) continue;
      ASSERT_TRUE(Beat(id, b.epoch, b.in_controlled_shutdown).ok());
    }
  }

  AlterPartitionRequest Alter(const std::string& topic_id, int32_t partition,
                              std::vector<int32_t> isr) {
    const Partition& p = P(topic_id, partition);
    AlterPartitionRequest req;
    req.broker_id = p.leader;
    req.broker_epoch = image_.FindBroker(p.leader)->epoch;
    req.topic_id = topic_id;
    req.partition = partition;
    req.leader_epoch = p.leader_epoch;
    req.partition_epoch = p.partition_epoch;
    for (int32_t b : isr) {
      const Broker* broker = image_.FindBroker(b);
      req.new_isr.push_back({b, broker ? broker->epoch : -1});
    }
    return req;
  }

  // Fences broker `id` (it asks to be), applying the records.
  void FenceBroker(int32_t id) {
    ASSERT_TRUE(Beat(id, image_.FindBroker(id)->epoch, false, true).ok());
    ASSERT_TRUE(image_.FindBroker(id)->fenced);
  }

  // A caught-up heartbeat from fenced broker `id`: it is unfenced.
  void UnfenceBroker(int32_t id) {
    ASSERT_TRUE(Beat(id, image_.FindBroker(id)->epoch).ok());
    ASSERT_FALSE(image_.FindBroker(id)->fenced);
  }

  // The chaos scenario LastInSyncReplicaWithAnEmptyDiskIsNotElected up to
  // the wipe: brokers 1-3, a 1x3 topic with min.insync.replicas=2 led by
  // `l`; `f` is fenced (ISR {l, v}), then `l` (v leads alone; l holds every
  // committed record and joins the ELR), then `v` (no leader, v stays the
  // last ISR member).
  struct LastMember {
    std::string topic;
    int32_t l = 0, v = 0, f = 0;
  };
  LastMember ShrinkToAFencedLastMember(
      std::map<std::string, std::string> configs = {}) {
    Join(1);
    Join(2);
    Join(3);
    configs["min.insync.replicas"] = "2";
    LastMember m;
    m.topic = CreateTopic("t", 1, 3, configs);
    const Partition p = P(m.topic, 0);
    m.l = p.leader;
    std::vector<int32_t> followers;
    for (int32_t r : p.replicas) {
      if (r != m.l) followers.push_back(r);
    }
    m.v = followers[0];
    m.f = followers[1];
    FenceBroker(m.f);
    EXPECT_EQ(P(m.topic, 0).leader, m.l);
    EXPECT_EQ(P(m.topic, 0).isr.size(), 2u);
    EXPECT_TRUE(P(m.topic, 0).elr.empty()) << "the ISR is at min.insync";
    FenceBroker(m.l);
    EXPECT_EQ(P(m.topic, 0).leader, m.v);
    EXPECT_EQ(P(m.topic, 0).isr, std::vector<int32_t>{m.v});
    EXPECT_EQ(P(m.topic, 0).elr, std::vector<int32_t>{m.l});
    FenceBroker(m.v);
    EXPECT_EQ(P(m.topic, 0).leader, kNoLeader);
    EXPECT_EQ(P(m.topic, 0).isr, std::vector<int32_t>{m.v});
    EXPECT_EQ(P(m.topic, 0).elr, std::vector<int32_t>{m.l});
    // Every broker is down long enough for its session to expire.
    now_ += absl::Seconds(6);
    return m;
  }

  MetadataImage image_;
  absl::Time now_ = absl::FromUnixSeconds(1000000);
  int64_t next_offset_ = 1;
  int ids_ = 0;
  ControllerLogic logic_;
};

TEST_F(ControllerLogicTest, RegistrationGivesIncreasingEpochsAndStartsFenced) {
  auto a = logic_.RegisterBroker(Request(1, "x"), now_, next_offset_);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->broker_epoch, next_offset_);
  Apply(a->records);
  EXPECT_TRUE(image_.FindBroker(1)->fenced);
  // The same incarnation again (a retry): accepted, with a larger epoch.
  auto b = logic_.RegisterBroker(Request(1, "x"), now_, next_offset_);
  ASSERT_TRUE(b.ok());
  EXPECT_GT(b->broker_epoch, a->broker_epoch);
  Apply(b->records);
  EXPECT_EQ(logic_.RegisterBroker(Request(-1, "x"), now_, next_offset_)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(logic_.RegisterBroker({2, "y", {}, ""}, now_, next_offset_)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  // A caller handing out an old offset is a bug, caught.
  EXPECT_EQ(logic_.RegisterBroker(Request(2, "y"), now_, 1).status().code(),
            absl::StatusCode::kInternal);
}

TEST_F(ControllerLogicTest, HeartbeatUnfencesOnlyOnceCaughtUp) {
  auto reg = logic_.RegisterBroker(Request(1, "x"), now_, next_offset_);
  ASSERT_TRUE(reg.ok());
  Apply(reg->records);
  const int64_t epoch = reg->broker_epoch;
  // Behind its own registration record: stays fenced.
  auto hb =
      logic_.Heartbeat({1, epoch, epoch - 1, false, false}, now_, next_offset_);
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->fenced);
  EXPECT_TRUE(hb->records.empty());
  // Wants to stay fenced: stays fenced.
  hb = logic_.Heartbeat({1, epoch, epoch, true, false}, now_, next_offset_);
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->fenced);
  // Caught up: unfenced.
  hb = logic_.Heartbeat({1, epoch, epoch, false, false}, now_, next_offset_);
  ASSERT_TRUE(hb.ok());
  EXPECT_FALSE(hb->fenced);
  Apply(hb->records);
  EXPECT_FALSE(image_.FindBroker(1)->fenced);
}

TEST_F(ControllerLogicTest, StaleAndUnknownBrokersAreRefused) {
  const int64_t epoch = Join(1);
  auto hb =
      logic_.Heartbeat({1, epoch - 1, 100, false, false}, now_, next_offset_);
  EXPECT_EQ(hb.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ControllerReasonOf(hb.status()),
            ControllerErrorInfo::STALE_BROKER_EPOCH);
  hb = logic_.Heartbeat({7, 1, 100, false, false}, now_, next_offset_);
  EXPECT_EQ(hb.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ControllerReasonOf(hb.status()),
            ControllerErrorInfo::BROKER_NOT_REGISTERED);
  // A stale heartbeat does not keep the session alive.
  now_ += absl::Seconds(4);
  ASSERT_FALSE(
      logic_.Heartbeat({1, epoch - 1, 100, false, false}, now_, next_offset_)
          .ok());
  now_ += absl::Seconds(2);
  RecordBatch fenced = logic_.TickSessions(now_);
  ASSERT_EQ(fenced.size(), 1u);
  EXPECT_EQ(fenced[0].fence_broker().reason(),
            records::FENCE_REASON_SESSION_EXPIRED);
}

TEST_F(ControllerLogicTest, DuplicateRegistrationRefusedWhileSessionIsLive) {
  Join(1, "", "first");
  auto dup = logic_.RegisterBroker(Request(1, "second"), now_, next_offset_);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ControllerReasonOf(dup.status()),
            ControllerErrorInfo::DUPLICATE_BROKER_REGISTRATION);
  // Still refused just before the session times out, accepted at expiry.
  now_ += absl::Seconds(6) - absl::Milliseconds(1);
  EXPECT_FALSE(
      logic_.RegisterBroker(Request(1, "second"), now_, next_offset_).ok());
  now_ += absl::Milliseconds(1);
  auto reg = logic_.RegisterBroker(Request(1, "second"), now_, next_offset_);
  ASSERT_TRUE(reg.ok()) << reg.status();
  Apply(reg->records);
  EXPECT_EQ(image_.FindBroker(1)->incarnation_id, "second");
  EXPECT_TRUE(image_.FindBroker(1)->fenced);
}

TEST_F(ControllerLogicTest, CreateTopicsValidatesAllOrNothing) {
  Join(1);
  Join(2);
  CreateTopic("exists", 1, 1);
  auto gen = [&] { return NextId(); };
  struct Case {
    std::vector<CreateTopicRequest> requests;
    absl::StatusCode code;
  };
  std::vector<Case> cases = {
      {{{"ok", 1, 1, {}}, {"bad name", 1, 1, {}}},
       absl::StatusCode::kInvalidArgument},
      {{{"ok", 1, 1, {}}, {"exists", 1, 1, {}}},
       absl::StatusCode::kAlreadyExists},
      {{{"ok", 1, 1, {}}, {"ok", 1, 1, {}}},
       absl::StatusCode::kInvalidArgument},
      {{{"ok", 0, 1, {}}}, absl::StatusCode::kInvalidArgument},
      {{{"ok", 10001, 1, {}}}, absl::StatusCode::kInvalidArgument},
      {{{"ok", 1, 3, {}}}, absl::StatusCode::kInvalidArgument},
      {{{"ok", 1, -1, {}}}, absl::StatusCode::kInvalidArgument},
      {{{"ok", 1, 1, {{"retention.bytes", "1"}}}},
       absl::StatusCode::kInvalidArgument},
      {{{"ok", 1, 1, {{"unclean.leader.election.enable", "maybe"}}}},
       absl::StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto batch = logic_.CreateTopics(c.requests, gen);
    EXPECT_EQ(batch.status().code(), c.code) << batch.status();
  }
  EXPECT_EQ(image_.topics().size(), 1u);
  EXPECT_EQ(logic_.CreateTopics({{"ok", 1, 1, {}}}, [] { return "bad"; })
                .status()
                .code(),
            absl::StatusCode::kInternal);
  // Two valid topics in one call.
  auto batch = logic_.CreateTopics(
      {{"a", 2, 2, {{"min.insync.replicas", "2"}}}, {"b", 1, 1, {}}}, gen);
  ASSERT_TRUE(batch.ok());
  Apply(*batch);
  const Topic* a = image_.FindTopicByName("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->configs.at("min.insync.replicas"), "2");
  for (const Partition& p : a->partitions) {
    EXPECT_EQ(p.isr, p.replicas);
    EXPECT_EQ(p.leader, p.replicas[0]);
    EXPECT_EQ(p.leader_epoch, 0);
    EXPECT_EQ(p.partition_epoch, 0);
  }
}

TEST_F(ControllerLogicTest, ReplicationFactorZeroMeansMinOfThreeAndBrokers) {
  auto gen = [&] { return NextId(); };
  Join(1);
  Join(2);
  auto batch = logic_.CreateTopics({{"two", 2, 0, {}}}, gen);
  ASSERT_TRUE(batch.ok()) << batch.status();
  Apply(*batch);
  EXPECT_EQ(image_.FindTopicByName("two")->partitions[0].replicas.size(), 2u);
  Join(3);
  Join(4);
  batch = logic_.CreateTopics({{"three", 2, 0, {}}}, gen);
  ASSERT_TRUE(batch.ok()) << batch.status();
  Apply(*batch);
  EXPECT_EQ(image_.FindTopicByName("three")->partitions[0].replicas.size(), 3u);
}

TEST_F(ControllerLogicTest, CreateTopicsPlacesOnlyOnEligibleBrokersByRack) {
  Join(1, "a");
  Join(2, "a");
  Join(3, "b");
  Join(4, "b");
  const int64_t e5 = Join(5, "c");
  // Broker 5 fenced: placement must avoid it.
  ASSERT_TRUE(Beat(5, e5, false, /*want_fence=*/true).ok());
  std::string id = CreateTopic("t", 8, 2);
  std::map<int32_t, int> leaders;
  for (const Partition& p : image_.FindTopicById(id)->partitions) {
    ++leaders[p.leader];
    EXPECT_NE(image_.FindBroker(p.replicas[0])->rack,
              image_.FindBroker(p.replicas[1])->rack);
    for (int32_t r : p.replicas) EXPECT_NE(r, 5);
  }
  for (int32_t b = 1; b <= 4; ++b) EXPECT_EQ(leaders[b], 2);
}

TEST_F(ControllerLogicTest, SessionExpiryElectsANewLeaderFromTheIsr) {
  Join(1);
  Join(2);
  Join(3);
  std::string t = CreateTopic("t", 3, 3);
  const Partition before = P(t, 0);
  const int32_t old_leader = before.leader;
  now_ += absl::Seconds(3);
  BeatAllBut({old_leader});
  EXPECT_TRUE(logic_.TickSessions(now_).empty());
  now_ += absl::Seconds(3);
  RecordBatch batch = logic_.TickSessions(now_);
  ASSERT_FALSE(batch.empty());
  EXPECT_TRUE(batch.back().has_fence_broker());
  Apply(batch);
  EXPECT_TRUE(image_.FindBroker(old_leader)->fenced);
  for (int i = 0; i < 3; ++i) {
    const Partition& p = P(t, i);
    EXPECT_NE(p.leader, old_leader);
    EXPECT_NE(p.leader, kNoLeader);
    EXPECT_EQ(p.isr.size(), 2u);
    for (int32_t b : p.isr) EXPECT_NE(b, old_leader);
  }
  // The new leader of partition 0 is the next replica in replica order.
  std::vector<int32_t> rest;
  for (int32_t r : before.replicas) {
    if (r != old_leader) rest.push_back(r);
  }
  EXPECT_EQ(P(t, 0).leader, rest[0]);
  EXPECT_EQ(P(t, 0).leader_epoch, before.leader_epoch + 1);
  EXPECT_EQ(P(t, 0).partition_epoch, before.partition_epoch + 1);
}

TEST_F(ControllerLogicTest, LastIsrMemberFencedKeepsIsrWithoutLeader) {
  const int64_t e1 = Join(1);
  std::string t = CreateTopic("t", 1, 1);
  ASSERT_TRUE(Beat(1, e1, false, /*want_fence=*/true).ok());
  EXPECT_EQ(P(t, 0).leader, kNoLeader);
  EXPECT_EQ(P(t, 0).isr, std::vector<int32_t>{1});
  EXPECT_EQ(P(t, 0).leader_epoch, 1);
  // Back and caught up: it leads again, with a new leader epoch.
  auto hb = Beat(1, e1);
  ASSERT_TRUE(hb.ok());
  EXPECT_FALSE(hb->fenced);
  EXPECT_EQ(P(t, 0).leader, 1);
  EXPECT_EQ(P(t, 0).leader_epoch, 2);
}

TEST_F(ControllerLogicTest, NoElectionOutsideTheIsrUnlessUnclean) {
  Join(1);
  Join(2);
  Join(3);
  std::string clean = CreateTopic("clean", 1, 3);
  std::string unclean = CreateTopic(
      "unclean", 1, 3, {{"unclean.leader.election.enable", "true"}});
  // Each leader shrinks its ISR to itself (followers lag).
  for (const std::string& t : {clean, unclean}) {
    auto alter = logic_.AlterPartition(Alter(t, 0, {P(t, 0).leader}));
    ASSERT_TRUE(alter.ok()) << alter.status();
    Apply(alter->records);
  }
  const int32_t clean_leader = P(clean, 0).leader;
  const int32_t unclean_leader = P(unclean, 0).leader;
  ASSERT_TRUE(
      Beat(clean_leader, image_.FindBroker(clean_leader)->epoch, false, true)
          .ok());
  EXPECT_EQ(P(clean, 0).leader, kNoLeader);
  EXPECT_EQ(P(clean, 0).isr, std::vector<int32_t>{clean_leader});
  if (unclean_leader != clean_leader) {
    ASSERT_TRUE(Beat(unclean_leader, image_.FindBroker(unclean_leader)->epoch,
                     false, true)
                    .ok());
  }
  // Unclean: the first eligible replica leads, alone in the ISR.
  const Partition& u = P(unclean, 0);
  EXPECT_NE(u.leader, kNoLeader);
  EXPECT_NE(u.leader, unclean_leader);
  EXPECT_EQ(u.isr, std::vector<int32_t>{u.leader});
}

TEST_F(ControllerLogicTest, AlterPartitionRefusesStaleOrInvalidChanges) {
  Join(1);
  Join(2);
  Join(3);
  std::string t = CreateTopic("t", 1, 3);
  const Partition p = P(t, 0);
  const int32_t leader = p.leader;
  std::vector<int32_t> followers;
  for (int32_t r : p.replicas) {
    if (r != leader) followers.push_back(r);
  }
  auto expect = [&](AlterPartitionRequest req, absl::StatusCode code,
                    ControllerErrorInfo::Reason reason) {
    auto r = logic_.AlterPartition(req);
    EXPECT_EQ(r.status().code(), code) << r.status();
    EXPECT_EQ(ControllerReasonOf(r.status()), reason) << r.status();
  };
  AlterPartitionRequest req = Alter(t, 0, {leader, followers[0]});
  req.broker_epoch -= 1;
  expect(req, absl::StatusCode::kFailedPrecondition,
         ControllerErrorInfo::STALE_BROKER_EPOCH);
  req = Alter(t, 0, {leader, followers[0]});
  req.broker_id = followers[0];
  req.broker_epoch = image_.FindBroker(followers[0])->epoch;
  expect(req, absl::StatusCode::kFailedPrecondition,
         ControllerErrorInfo::NOT_LEADER);
  req = Alter(t, 0, {leader, followers[0]});
  req.leader_epoch -= 1;
  expect(req, absl::StatusCode::kAborted,
         ControllerErrorInfo::FENCED_LEADER_EPOCH);
  req = Alter(t, 0, {leader, followers[0]});
  req.partition_epoch += 1;
  expect(req, absl::StatusCode::kAborted,
         ControllerErrorInfo::INVALID_UPDATE_VERSION);
  expect(Alter(t, 0, {followers[0], followers[1]}),
         absl::StatusCode::kInvalidArgument,
         ControllerErrorInfo::INVALID_REQUEST);
  expect(Alter(t, 0, {}), absl::StatusCode::kInvalidArgument,
         ControllerErrorInfo::INVALID_REQUEST);
  expect(Alter(t, 0, {leader, leader}), absl::StatusCode::kInvalidArgument,
         ControllerErrorInfo::INVALID_REQUEST);
  Join(4);
  expect(Alter(t, 0, {leader, 4}), absl::StatusCode::kInvalidArgument,
         ControllerErrorInfo::INVALID_REQUEST);
  EXPECT_EQ(logic_.AlterPartition(Alter(t, 0, {leader})).ok(), true);
  req = Alter(t, 0, {leader});
  req.topic_id = NextId();
  EXPECT_EQ(logic_.AlterPartition(req).status().code(),
            absl::StatusCode::kNotFound);

  // Shrink, then a retry of the same request is refused (epoch moved on),
  // and the same ISR under the new epoch is a no-op.
  AlterPartitionRequest shrink = Alter(t, 0, {leader, followers[0]});
  auto r = logic_.AlterPartition(shrink);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->records.size(), 1u);
  EXPECT_EQ(r->partition.partition_epoch, p.partition_epoch + 1);
  EXPECT_EQ(r->partition.leader_epoch, p.leader_epoch);
  Apply(r->records);
  EXPECT_EQ(P(t, 0).isr.size(), 2u);
  expect(shrink, absl::StatusCode::kAborted,
         ControllerErrorInfo::INVALID_UPDATE_VERSION);
  r = logic_.AlterPartition(Alter(t, 0, {followers[0], leader}));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->records.empty());

  // A fenced broker cannot be added.
  ASSERT_TRUE(
      Beat(followers[1], image_.FindBroker(followers[1])->epoch, false, true)
          .ok());
  expect(Alter(t, 0, {leader, followers[0], followers[1]}),
         absl::StatusCode::kFailedPrecondition,
         ControllerErrorInfo::INELIGIBLE_REPLICA);
}

// KIP-903: a broker restarted with an empty disk under the same id gets a new
// epoch; an AlterPartition that adds it with the epoch the leader saw from
// its previous incarnation is refused.
TEST_F(ControllerLogicTest, Kip903RestartedBrokerCannotRejoinOnItsOldEpoch) {
  Join(1);
  Join(2);
  Join(3);
  std::string t = CreateTopic("t", 1, 3);
  const int32_t leader = P(t, 0).leader;
  const int32_t victim =
      P(t, 0).replicas[leader == P(t, 0).replicas[1] ? 2 : 1];
  const int64_t old_epoch = image_.FindBroker(victim)->epoch;
  // The victim dies silently and comes back with an empty disk: its session
  // expires, it registers as a new incarnation.
  now_ += absl::Seconds(6);
  BeatAllBut({victim});
  Apply(logic_.TickSessions(now_));
  EXPECT_EQ(P(t, 0).isr.size(), 2u);
  auto reg = logic_.RegisterBroker(Request(victim, "after-disk-loss"), now_,
                                   next_offset_);
  ASSERT_TRUE(reg.ok()) << reg.status();
  Apply(reg->records);
  const int64_t new_epoch = reg->broker_epoch;
  EXPECT_GT(new_epoch, old_epoch);
  ASSERT_TRUE(Beat(victim, new_epoch).ok());
  ASSERT_FALSE(image_.FindBroker(victim)->fenced);
  // The leader still has fetch state from the old incarnation: refused.
  AlterPartitionRequest stale = Alter(t, 0, P(t, 0).replicas);
  for (IsrMember& m : stale.new_isr) {
    if (m.broker_id == victim) m.broker_epoch = old_epoch;
  }
  auto refused = logic_.AlterPartition(stale);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ControllerReasonOf(refused.status()),
            ControllerErrorInfo::INELIGIBLE_REPLICA);
  EXPECT_EQ(P(t, 0).isr.size(), 2u);
  // Once the new incarnation has caught up and fetched with its new epoch.
  auto accepted = logic_.AlterPartition(Alter(t, 0, P(t, 0).replicas));
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  Apply(accepted->records);
  EXPECT_EQ(P(t, 0).isr, P(t, 0).replicas);
}

TEST_F(ControllerLogicTest, ReRegistrationDropsTheOldIncarnationFromIsrs) {
  Join(1);
  Join(2);
  std::string t = CreateTopic("t", 2, 2);
  // Broker 2's process restarts faster than the session timeout would
  // notice; once the old session expires the new one registers, and the
  // registration batch itself removes the old incarnation everywhere.
  now_ += absl::Seconds(6);
  BeatAllBut({2});
  auto reg = logic_.RegisterBroker(Request(2, "new"), now_, next_offset_);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_TRUE(reg->records.back().has_register_broker());
  EXPECT_EQ(reg->broker_epoch, next_offset_ + reg->records.size() - 1);
  Apply(reg->records);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(P(t, i).leader, 1);
    EXPECT_EQ(P(t, i).isr, std::vector<int32_t>{1});
  }
}

// KIP-903 meets KIP-966 (the chaos scenario of the same name): the last ISR
// member comes back with an empty disk, a new incarnation. It is forgotten
// (the ISR is left empty) and never elected; the ELR member, which holds
// every acknowledged record, is.
TEST_F(ControllerLogicTest, LastInSyncReplicaWithAnEmptyDiskIsNotElected) {
  const LastMember m = ShrinkToAFencedLastMember();
  const int32_t leader_epoch = P(m.topic, 0).leader_epoch;
  auto reg =
      logic_.RegisterBroker(Request(m.v, "empty-disk"), now_, next_offset_);
  ASSERT_TRUE(reg.ok()) << reg.status();
  ASSERT_EQ(reg->records.size(), 2u);
  EXPECT_TRUE(reg->records[0].has_change_partition());
  Apply(reg->records);
  EXPECT_TRUE(P(m.topic, 0).isr.empty());
  EXPECT_EQ(P(m.topic, 0).elr, std::vector<int32_t>{m.l});
  EXPECT_EQ(P(m.topic, 0).leader, kNoLeader);
  EXPECT_EQ(P(m.topic, 0).leader_epoch, leader_epoch);
  // Unfenced, the empty incarnation is not elected; nor is f, outside both
  // the ISR and the ELR.
  ASSERT_TRUE(Beat(m.v, reg->broker_epoch).ok());
  ASSERT_FALSE(image_.FindBroker(m.v)->fenced);
  EXPECT_EQ(P(m.topic, 0).leader, kNoLeader);
  UnfenceBroker(m.f);
  EXPECT_EQ(P(m.topic, 0).leader, kNoLeader);
  // The old leader is back (same disk): elected from the ELR, alone in the
  // ISR; the ELR is left empty (v was forgotten).
  UnfenceBroker(m.l);
  EXPECT_EQ(P(m.topic, 0).leader, m.l);
  EXPECT_EQ(P(m.topic, 0).leader_epoch, leader_epoch + 1);
  EXPECT_EQ(P(m.topic, 0).isr, std::vector<int32_t>{m.l});
  EXPECT_TRUE(P(m.topic, 0).elr.empty());
  // The new incarnation joins once the leader has seen it catch up.
  auto grow = logic_.AlterPartition(Alter(m.topic, 0, {m.l, m.v}));
  ASSERT_TRUE(grow.ok()) << grow.status();
  Apply(grow->records);
  EXPECT_EQ(P(m.topic, 0).isr.size(), 2u);
}

TEST_F(ControllerLogicTest, EligibleLeaderReplicaLeadsWhenNoIsrMemberCan) {
  const LastMember m = ShrinkToAFencedLastMember();
  const int32_t leader_epoch = P(m.topic, 0).leader_epoch;
  // l is back first: v, the fenced last ISR member, cannot lead, so l, from
  // the ELR, does, alone in the ISR; v (which also holds every committed
  // record) takes its place in the ELR.
  UnfenceBroker(m.l);
  EXPECT_EQ(P(m.topic, 0).leader, m.l);
  EXPECT_EQ(P(m.topic, 0).leader_epoch, leader_epoch + 1);
  EXPECT_EQ(P(m.topic, 0).isr, std::vector<int32_t>{m.l});
  EXPECT_EQ(P(m.topic, 0).elr, std::vector<int32_t>{m.v});
  UnfenceBroker(m.v);
  EXPECT_EQ(P(m.topic, 0).leader, m.l);
  EXPECT_EQ(P(m.topic, 0).elr, std::vector<int32_t>{m.v});
  // The ISR back at min.insync.replicas clears the ELR.
  UnfenceBroker(m.f);
  auto grow = logic_.AlterPartition(Alter(m.topic, 0, {m.l, m.f}));
  ASSERT_TRUE(grow.ok()) << grow.status();
  EXPECT_TRUE(grow->partition.elr.empty());
  Apply(grow->records);
  EXPECT_EQ(P(m.topic, 0).isr.size(), 2u);
  EXPECT_TRUE(P(m.topic, 0).elr.empty());
}

TEST_F(ControllerLogicTest, SameIncarnationRestartKeepsItsIsrAndElrPlaces) {
  const LastMember m = ShrinkToAFencedLastMember();
  // Both restart on their disks (same incarnation ids, see Join).
  for (int32_t id : {m.l, m.v}) {
    auto reg = logic_.RegisterBroker(Request(id, "inc-" + std::to_string(id)),
                                     now_, next_offset_);
    ASSERT_TRUE(reg.ok()) << reg.status();
    EXPECT_EQ(reg->records.size(), 1u) << "no partition change";
    Apply(reg->records);
  }
  EXPECT_EQ(P(m.topic, 0).isr, std::vector<int32_t>{m.v});
  EXPECT_EQ(P(m.topic, 0).elr, std::vector<int32_t>{m.l});
  // The last ISR member leads again when it is back, before the ELR.
  UnfenceBroker(m.v);
  EXPECT_EQ(P(m.topic, 0).leader, m.v);
  EXPECT_EQ(P(m.topic, 0).isr, std::vector<int32_t>{m.v});
  EXPECT_EQ(P(m.topic, 0).elr, std::vector<int32_t>{m.l});
}

TEST_F(ControllerLogicTest, NewIncarnationLeavesTheElr) {
  const LastMember m = ShrinkToAFencedLastMember();
  auto reg =
      logic_.RegisterBroker(Request(m.l, "empty-disk"), now_, next_offset_);
  ASSERT_TRUE(reg.ok()) << reg.status();
  Apply(reg->records);
  EXPECT_EQ(P(m.topic, 0).isr, std::vector<int32_t>{m.v});
  EXPECT_TRUE(P(m.topic, 0).elr.empty());
  ASSERT_TRUE(Beat(m.l, reg->broker_epoch).ok());
  EXPECT_EQ(P(m.topic, 0).leader, kNoLeader);
  UnfenceBroker(m.v);
  EXPECT_EQ(P(m.topic, 0).leader, m.v);
}

// The leader dropping followers for lag: below min.insync.replicas they join
// the ELR (the high watermark waited for them until then and stops now), and
// an eligible ELR member is elected before an unclean candidate.
TEST_F(ControllerLogicTest, FollowersDroppedBelowMinInsyncJoinTheElr) {
  Join(1);
  Join(2);
  Join(3);
  std::string t = CreateTopic("t", 1, 3,
                              {{"min.insync.replicas", "2"},
                               {"unclean.leader.election.enable", "true"}});
  const int32_t l = P(t, 0).leader;
  const int32_t v = P(t, 0).replicas[l == P(t, 0).replicas[1] ? 0 : 1];
  const int32_t f = 6 - l - v;
  auto shrink = logic_.AlterPartition(Alter(t, 0, {l, v}));
  ASSERT_TRUE(shrink.ok()) << shrink.status();
  Apply(shrink->records);
  EXPECT_TRUE(P(t, 0).elr.empty()) << "two members: at min.insync";
  shrink = logic_.AlterPartition(Alter(t, 0, {l}));
  ASSERT_TRUE(shrink.ok()) << shrink.status();
  EXPECT_EQ(shrink->partition.elr, std::vector<int32_t>{v});
  Apply(shrink->records);
  EXPECT_EQ(P(t, 0).elr, std::vector<int32_t>{v});
  // l fails: v (ELR) leads, not f (eligible, but only an unclean choice).
  FenceBroker(l);
  EXPECT_EQ(P(t, 0).leader, v);
  EXPECT_EQ(P(t, 0).isr, std::vector<int32_t>{v});
  EXPECT_EQ(P(t, 0).elr, std::vector<int32_t>{l});
  // f rejoins: the ISR is at min.insync again, the ELR is cleared.
  auto grow = logic_.AlterPartition(Alter(t, 0, {v, f}));
  ASSERT_TRUE(grow.ok()) << grow.status();
  Apply(grow->records);
  EXPECT_TRUE(P(t, 0).elr.empty());
}

// With neither an ISR member nor an ELR member left, only an unclean
// election (when the topic allows it) gives the partition a leader: here the
// sole replica lost its disk, and min.insync.replicas=1 keeps no ELR.
TEST_F(ControllerLogicTest, ForgottenLastReplicaLeavesThePartitionLeaderless) {
  Join(1);
  std::string clean = CreateTopic("clean", 1, 1);
  std::string unclean = CreateTopic(
      "unclean", 1, 1, {{"unclean.leader.election.enable", "true"}});
  FenceBroker(1);
  now_ += absl::Seconds(6);
  auto reg =
      logic_.RegisterBroker(Request(1, "empty-disk"), now_, next_offset_);
  ASSERT_TRUE(reg.ok()) << reg.status();
  Apply(reg->records);
  ASSERT_TRUE(Beat(1, reg->broker_epoch).ok());
  EXPECT_EQ(P(clean, 0).leader, kNoLeader);
  EXPECT_TRUE(P(clean, 0).isr.empty());
  EXPECT_EQ(P(unclean, 0).leader, 1);
  EXPECT_EQ(P(unclean, 0).isr, std::vector<int32_t>{1});
}

TEST_F(ControllerLogicTest, PreferredLeaderTakesLeadershipBack) {
  Join(1);
  Join(2);
  Join(3);
  std::string t = CreateTopic("t", 1, 3);
  const int32_t preferred = P(t, 0).replicas[0];
  EXPECT_TRUE(logic_.ElectPreferredLeaders().empty());
  const int64_t old_epoch = image_.FindBroker(preferred)->epoch;
  ASSERT_TRUE(Beat(preferred, old_epoch, false, true).ok());
  ASSERT_NE(P(t, 0).leader, preferred);
  ASSERT_TRUE(Beat(preferred, old_epoch).ok());  // unfenced again
  // Not in the ISR yet: no move.
  EXPECT_TRUE(logic_.ElectPreferredLeaders().empty());
  auto grow = logic_.AlterPartition(Alter(t, 0, P(t, 0).replicas));
  ASSERT_TRUE(grow.ok()) << grow.status();
  Apply(grow->records);
  const int32_t leader_epoch = P(t, 0).leader_epoch;
  RecordBatch batch = logic_.ElectPreferredLeaders();
  ASSERT_EQ(batch.size(), 1u);
  Apply(batch);
  EXPECT_EQ(P(t, 0).leader, preferred);
  EXPECT_EQ(P(t, 0).leader_epoch, leader_epoch + 1);
  EXPECT_TRUE(logic_.ElectPreferredLeaders().empty());
}

TEST_F(ControllerLogicTest, ControlledShutdownMovesLeadershipsFirst) {
  Join(1);
  Join(2);
  Join(3);
  std::string t = CreateTopic("t", 6, 2);
  const int64_t e1 = image_.FindBroker(1)->epoch;
  auto hb = Beat(1, e1, /*want_shutdown=*/true);
  ASSERT_TRUE(hb.ok());
  EXPECT_FALSE(hb->fenced);
  EXPECT_TRUE(hb->in_controlled_shutdown);
  EXPECT_FALSE(hb->should_shutdown);
  EXPECT_TRUE(hb->records.back().has_controlled_shutdown());
  const int64_t shutdown_offset = next_offset_ - 1;
  bool checked_rejoin = false;
  for (int i = 0; i < 6; ++i) {
    const Partition& p = P(t, i);
    EXPECT_NE(p.leader, 1);
    EXPECT_NE(p.leader, kNoLeader);
    const bool has_1 =
        std::find(p.replicas.begin(), p.replicas.end(), 1) != p.replicas.end();
    EXPECT_EQ(p.isr.size(), has_1 ? 1u : 2u);
    if (has_1 && !checked_rejoin) {
      // It cannot rejoin an ISR while shutting down.
      auto alter = logic_.AlterPartition(Alter(t, i, p.replicas));
      EXPECT_EQ(ControllerReasonOf(alter.status()),
                ControllerErrorInfo::INELIGIBLE_REPLICA);
      checked_rejoin = true;
    }
  }
  EXPECT_TRUE(checked_rejoin);
  // Other brokers have not yet reported the new leaderships: wait.
  auto wait = logic_.Heartbeat({1, e1, shutdown_offset, false, true}, now_,
                               next_offset_);
  ASSERT_TRUE(wait.ok());
  EXPECT_FALSE(wait->should_shutdown);
  EXPECT_TRUE(wait->records.empty());
  ASSERT_TRUE(Beat(2, image_.FindBroker(2)->epoch).ok());
  ASSERT_TRUE(Beat(3, image_.FindBroker(3)->epoch).ok());
  auto done = Beat(1, e1, true);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->should_shutdown);
  EXPECT_TRUE(done->fenced);
  EXPECT_EQ(done->records.back().fence_broker().reason(),
            records::FENCE_REASON_CONTROLLED_SHUTDOWN);
  EXPECT_TRUE(image_.FindBroker(1)->fenced);
}

TEST_F(ControllerLogicTest, ShutdownOfABrokerHoldingNothingIsImmediate) {
  Join(1);
  const int64_t e2 = Join(2);
  CreateTopic("t", 2, 1);  // on broker 1 or 2, not shared
  Join(3);
  auto hb = Beat(3, image_.FindBroker(3)->epoch, true);
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->should_shutdown);
  EXPECT_TRUE(image_.FindBroker(3)->fenced);
  // A fenced broker asking to shut down may go at once too.
  ASSERT_TRUE(Beat(2, e2, false, true).ok());
  hb = Beat(2, e2, true);
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->should_shutdown);
  EXPECT_TRUE(hb->records.empty());
}

TEST_F(ControllerLogicTest, NewActiveControllerGivesEveryBrokerAFreshSession) {
  Join(1);
  Join(2);
  now_ += absl::Seconds(5);
  // Failover: the new active controller has no heartbeat history.
  ControllerLogic successor(&image_, {absl::Seconds(6)});
  successor.Activate(now_);
  EXPECT_TRUE(successor.TickSessions(now_ + absl::Seconds(5)).empty());
  RecordBatch batch = successor.TickSessions(now_ + absl::Seconds(6));
  int fences = 0;
  for (const auto& r : batch) fences += r.has_fence_broker();
  EXPECT_EQ(fences, 2);
}

TEST_F(ControllerLogicTest, DeleteAndUnregister) {
  Join(1);
  Join(2);
  CreateTopic("a", 1, 2);
  CreateTopic("b", 1, 1);
  EXPECT_EQ(logic_.DeleteTopics({"a", "nope"}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(logic_.DeleteTopics({"a", "a"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto del = logic_.DeleteTopics({"a"});
  ASSERT_TRUE(del.ok());
  Apply(*del);
  EXPECT_EQ(image_.FindTopicByName("a"), nullptr);
  EXPECT_NE(image_.FindTopicByName("b"), nullptr);
  // The name can be used again, with a new id.
  CreateTopic("a", 1, 1);
  auto unreg = logic_.UnregisterBroker(2);
  ASSERT_TRUE(unreg.ok());
  Apply(*unreg);
  EXPECT_EQ(image_.FindBroker(2), nullptr);
  EXPECT_EQ(ControllerReasonOf(logic_.UnregisterBroker(2).status()),
            ControllerErrorInfo::BROKER_NOT_REGISTERED);
}

}  // namespace
}  // namespace fjord::controller
