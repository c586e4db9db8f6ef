#include "controller/metadata/metadata_image.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fjord::controller {
namespace {

using records::MetadataRecord;

std::string TopicId(int n) {
  std::string id = std::to_string(n);
  return std::string(32 - id.size(), '0') + id;
}

MetadataRecord Register(int32_t id, int64_t epoch, std::string rack = "",
                        std::string incarnation = "inc") {
  MetadataRecord r;
  auto* rb = r.mutable_register_broker();
  rb->set_broker_id(id);
  rb->set_incarnation_id(incarnation);
  auto* e = rb->add_endpoints();
  e->set_name("client");
  e->set_host("127.0.0.1");
  e->set_port(9092 + id);
  rb->set_rack(rack);
  rb->set_broker_epoch(epoch);
  return r;
}

MetadataRecord Unfence(int32_t id, int64_t epoch) {
  MetadataRecord r;
  r.mutable_unfence_broker()->set_broker_id(id);
  r.mutable_unfence_broker()->set_broker_epoch(epoch);
  return r;
}

MetadataRecord Fence(int32_t id, int64_t epoch) {
  MetadataRecord r;
  r.mutable_fence_broker()->set_broker_id(id);
  r.mutable_fence_broker()->set_broker_epoch(epoch);
  r.mutable_fence_broker()->set_reason(records::FENCE_REASON_SESSION_EXPIRED);
  return r;
}

MetadataRecord CreateTopic(const std::string& name, const std::string& id,
                           std::vector<std::vector<int32_t>> replicas,
                           std::map<std::string, std::string> configs = {}) {
  MetadataRecord r;
  auto* ct = r.mutable_create_topic();
  ct->set_name(name);
  ct->set_topic_id(id);
  ct->mutable_configs()->insert(configs.begin(), configs.end());
  for (size_t i = 0; i < replicas.size(); ++i) {
    Partition p;
    p.replicas = replicas[i];
    p.isr = replicas[i];
    p.leader = replicas[i].front();
    *ct->add_partitions() = PartitionToProto(i, p);
  }
  return r;
}

MetadataRecord Change(const std::string& topic_id, int32_t partition,
                      int32_t leader, int32_t leader_epoch,
                      std::vector<int32_t> isr, int32_t partition_epoch,
                      std::vector<int32_t> elr = {}) {
  MetadataRecord r;
  auto* c = r.mutable_change_partition();
  c->set_topic_id(topic_id);
  c->set_partition(partition);
  c->set_leader(leader);
  c->set_leader_epoch(leader_epoch);
  for (int32_t b : isr) c->add_isr(b);
  c->set_partition_epoch(partition_epoch);
  for (int32_t b : elr) c->add_elr(b);
  return r;
}

// Three unfenced brokers 1, 2, 3 (epochs 10, 11, 12) and topic "t" with one
// partition on [1, 2, 3], led by 1.
class MetadataImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int32_t id : {1, 2, 3}) {
      ASSERT_TRUE(
          image_.Apply(Register(id, 9 + id, "r" + std::to_string(id))).ok());
      ASSERT_TRUE(image_.Apply(Unfence(id, 9 + id)).ok());
    }
    ASSERT_TRUE(image_.Apply(CreateTopic("t", kT, {{1, 2, 3}})).ok());
    ASSERT_TRUE(image_.CheckInvariants().ok());
  }

  // Applies `r`, expecting a rejection that leaves the image unchanged.
  void ExpectRejected(const MetadataRecord& r) {
    MetadataImage before = image_;
    absl::Status s = image_.Apply(r);
    EXPECT_FALSE(s.ok()) << r.ShortDebugString();
    EXPECT_EQ(image_, before) << r.ShortDebugString();
  }

  const Partition& P0() { return image_.FindTopicById(kT)->partitions[0]; }

  const std::string kT = TopicId(1);
  MetadataImage image_;
};

TEST_F(MetadataImageTest, RegistrationStartsFencedWithIncreasingEpochs) {
  EXPECT_TRUE(image_.Apply(Register(4, 20)).ok());
  EXPECT_TRUE(image_.FindBroker(4)->fenced);
  EXPECT_EQ(image_.max_broker_epoch(), 20);
  ExpectRejected(Register(5, 20));  // not above the largest epoch so far
  ExpectRejected(Register(5, 3));
  // A broker unregistered and registered again still needs a larger epoch.
  MetadataRecord unregister;
  unregister.mutable_unregister_broker()->set_broker_id(4);
  unregister.mutable_unregister_broker()->set_broker_epoch(20);
  ASSERT_TRUE(image_.Apply(unregister).ok());
  ExpectRejected(Register(4, 20));
  EXPECT_TRUE(image_.Apply(Register(4, 21)).ok());
}

TEST_F(MetadataImageTest, RejectsInvalidRecordsWithoutChangingState) {
  ExpectRejected(MetadataRecord());
  ExpectRejected(Register(-1, 100));
  ExpectRejected(Register(7, 100, "", ""));                // no incarnation id
  ExpectRejected(Unfence(1, 10));                          // not fenced
  ExpectRejected(Unfence(9, 10));                          // unknown broker
  ExpectRejected(Fence(1, 10));                            // still leads t-0
  ExpectRejected(Fence(2, 11));                            // in a 3-member ISR
  ExpectRejected(Fence(3, 99));                            // stale epoch
  ExpectRejected(CreateTopic("t", TopicId(2), {{1}}));     // name taken
  ExpectRejected(CreateTopic("u", kT, {{1}}));             // id taken
  ExpectRejected(CreateTopic("u", "xyz", {{1}}));          // malformed id
  ExpectRejected(CreateTopic("a b", TopicId(2), {{1}}));   // bad name
  ExpectRejected(CreateTopic("u", TopicId(2), {}));        // no partitions
  ExpectRejected(CreateTopic("u", TopicId(2), {{1, 1}}));  // duplicate
  ExpectRejected(CreateTopic("u", TopicId(2), {{7}}));  // unregistered leader
  // Partition changes: epochs must follow, ISR within replicas, leader in ISR.
  ExpectRejected(Change(kT, 0, 1, 0, {1, 2}, 2));  // skips an epoch
  ExpectRejected(Change(kT, 0, 1, 0, {1, 2}, 0));  // same epoch
  ExpectRejected(Change(kT, 0, 2, 0, {1, 2}, 1));  // leader change, same LE
  ExpectRejected(Change(kT, 0, 1, 1, {1, 2}, 1));  // LE bump, same leader
  ExpectRejected(Change(kT, 0, 1, 0, {1, 4}, 1));  // 4 holds no replica
  ExpectRejected(Change(kT, 0, 2, 1, {1, 3}, 1));  // leader outside ISR
  ExpectRejected(Change(kT, 0, 1, 0, {}, 1));      // empty ISR
  ExpectRejected(Change(kT, 0, 1, 0, {1, 1}, 1));  // duplicate
  ExpectRejected(Change(kT, 1, 1, 0, {1}, 1));     // no partition 1
  ExpectRejected(Change(TopicId(9), 0, 1, 0, {1}, 1));  // no topic
  MetadataRecord del;
  del.mutable_delete_topic()->set_topic_id(kT);
  del.mutable_delete_topic()->set_name("other");
  ExpectRejected(del);
  EXPECT_TRUE(image_.CheckInvariants().ok());
}

TEST_F(MetadataImageTest, FencedBrokerLeadsNothingAndStaysOnlyAsLastIsrMember) {
  // Move leadership to 2 and drop 1 from the ISR, then 1 may be fenced.
  ASSERT_TRUE(image_.Apply(Change(kT, 0, 2, 1, {2, 3}, 1)).ok());
  ASSERT_TRUE(image_.Apply(Fence(1, 10)).ok());
  // A fenced broker can neither lead nor join a multi-member ISR.
  ExpectRejected(Change(kT, 0, 1, 2, {1, 2, 3}, 2));
  ExpectRejected(Change(kT, 0, 2, 1, {1, 2, 3}, 2));
  // Shrink to {3} with 3 leading, fence 3: the ISR keeps 3, no leader.
  ASSERT_TRUE(image_.Apply(Change(kT, 0, 3, 2, {3}, 2)).ok());
  ExpectRejected(Fence(3, 12));  // still leads
  ASSERT_TRUE(image_.Apply(Change(kT, 0, kNoLeader, 3, {3}, 3)).ok());
  ASSERT_TRUE(image_.Apply(Fence(3, 12)).ok());
  EXPECT_EQ(P0().leader, kNoLeader);
  EXPECT_EQ(P0().isr, std::vector<int32_t>{3});
  EXPECT_TRUE(image_.CheckInvariants().ok());
  // 3 comes back: it may lead again once unfenced, not before.
  ExpectRejected(Change(kT, 0, 3, 4, {3}, 4));
  ASSERT_TRUE(image_.Apply(Unfence(3, 12)).ok());
  ASSERT_TRUE(image_.Apply(Change(kT, 0, 3, 4, {3}, 4)).ok());
  EXPECT_EQ(P0().leader_epoch, 4);
  EXPECT_EQ(P0().partition_epoch, 4);
}

TEST_F(MetadataImageTest,
       ReRegistrationRequiresTheOldIncarnationToHoldNothing) {
  ExpectRejected(Register(2, 30, "r2", "new"));  // 2 is in a 3-member ISR
  ASSERT_TRUE(image_.Apply(Change(kT, 0, 1, 0, {1, 3}, 1)).ok());
  ASSERT_TRUE(image_.Apply(Register(2, 30, "r2", "new")).ok());
  EXPECT_EQ(image_.FindBroker(2)->epoch, 30);
  EXPECT_EQ(image_.FindBroker(2)->incarnation_id, "new");
  EXPECT_TRUE(image_.FindBroker(2)->fenced);
}

TEST_F(MetadataImageTest, EligibleLeaderReplicasAndNewIncarnations) {
  const std::string kM = TopicId(2);
  ASSERT_TRUE(image_
                  .Apply(CreateTopic("m", kM, {{1, 2, 3}},
                                     {{"min.insync.replicas", "2"}}))
                  .ok());
  auto m0 = [&] { return image_.FindTopicById(kM)->partitions[0]; };
  // I11: the ELR is apart from the ISR, within the replicas, and only there
  // while the ISR is below min.insync.replicas (2 here, 1 for "t").
  ExpectRejected(Change(kM, 0, 1, 0, {1, 2}, 1, {3}));  // ISR at min.insync
  ExpectRejected(Change(kT, 0, 1, 0, {1}, 1, {2}));     // min.insync 1
  ExpectRejected(Change(kM, 0, 1, 0, {1}, 1, {1}));     // in the ISR
  ExpectRejected(Change(kM, 0, 1, 0, {1}, 1, {4}));     // holds no replica
  ExpectRejected(Change(kM, 0, 1, 0, {1}, 1, {2, 2}));  // duplicate
  ASSERT_TRUE(image_.Apply(Change(kM, 0, 1, 0, {1}, 1, {2, 3})).ok());
  EXPECT_EQ(m0().elr, (std::vector<int32_t>{2, 3}));
  // ELR members may be fenced; an ELR-only change keeps the leader epoch.
  ASSERT_TRUE(image_.Apply(Change(kT, 0, 1, 0, {1}, 1)).ok());
  ASSERT_TRUE(image_.Apply(Fence(3, 12)).ok());
  ExpectRejected(Change(kM, 0, 1, 1, {1}, 2, {3}));
  ASSERT_TRUE(image_.Apply(Change(kM, 0, 1, 0, {1}, 2, {3})).ok());
  // I12: a new incarnation must be in no ISR and no ELR; the same one may
  // stay in the ELR (it kept its disk).
  ExpectRejected(Register(3, 30, "r3", "new"));
  ASSERT_TRUE(image_.Apply(Register(3, 30, "r3", "inc")).ok());
  ASSERT_TRUE(image_.Apply(Change(kM, 0, 1, 0, {1}, 3, {2})).ok());
  ASSERT_TRUE(image_.Apply(Register(3, 31, "r3", "new")).ok());
  // I6: an empty ISR only without a leader (its last member was forgotten).
  ExpectRejected(Change(kM, 0, 1, 0, {}, 4, {2}));
  ASSERT_TRUE(image_.Apply(Change(kT, 0, 2, 1, {2}, 2)).ok());
  ASSERT_TRUE(image_.Apply(Change(kM, 0, kNoLeader, 1, {}, 4, {2})).ok());
  ASSERT_TRUE(image_.Apply(Fence(1, 10)).ok());
  ASSERT_TRUE(image_.Apply(Register(1, 32, "r1", "new")).ok());
  ExpectRejected(Register(2, 33, "r2", "new"));  // leads t-0, in m-0's ELR
  // A new partition needs an ISR.
  MetadataRecord empty = CreateTopic("e", TopicId(3), {{1}});
  empty.mutable_create_topic()->mutable_partitions(0)->clear_isr();
  empty.mutable_create_topic()->mutable_partitions(0)->set_leader(kNoLeader);
  ExpectRejected(empty);
  EXPECT_TRUE(image_.CheckInvariants().ok()) << image_.CheckInvariants();
  // The ELR survives a snapshot and shows in the public view.
  MetadataImage restored;
  ASSERT_TRUE(restored.Restore(image_.Snapshot()).ok());
  EXPECT_EQ(restored, image_);
  auto info = image_.TopicInfoByName("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->partitions(0).isr_size(), 0);
  ASSERT_EQ(info->partitions(0).elr_size(), 1);
  EXPECT_EQ(info->partitions(0).elr(0), 2);
  // A snapshot whose ELR breaks I11 is refused.
  records::MetadataSnapshot bad = image_.Snapshot();
  for (auto& t : *bad.mutable_topics()) {
    if (t.topic_id() == kM) t.mutable_partitions(0)->add_elr(2);
  }
  EXPECT_FALSE(restored.Restore(bad).ok());
}

TEST_F(MetadataImageTest, ControlledShutdownMakesTheBrokerIneligible) {
  MetadataRecord cs;
  cs.mutable_controlled_shutdown()->set_broker_id(3);
  cs.mutable_controlled_shutdown()->set_broker_epoch(12);
  ExpectRejected(cs);  // still in the ISR
  ASSERT_TRUE(image_.Apply(Change(kT, 0, 1, 0, {1, 2}, 1)).ok());
  ASSERT_TRUE(image_.Apply(cs).ok());
  EXPECT_FALSE(image_.FindBroker(3)->fenced);
  EXPECT_FALSE(image_.IsEligible(3));
  ExpectRejected(Change(kT, 0, 1, 0, {1, 2, 3}, 2));
  ASSERT_TRUE(image_.Apply(Fence(3, 12)).ok());
  EXPECT_FALSE(image_.FindBroker(3)->in_controlled_shutdown);
}

TEST_F(MetadataImageTest, SnapshotRestoreRoundTrip) {
  ASSERT_TRUE(image_.Apply(Change(kT, 0, 2, 1, {2, 3}, 1)).ok());
  ASSERT_TRUE(image_.Apply(Fence(1, 10)).ok());
  ASSERT_TRUE(image_
                  .Apply(CreateTopic("u", TopicId(2), {{2, 3}, {3, 2}},
                                     {{"min.insync.replicas", "2"}}))
                  .ok());
  records::MetadataSnapshot snapshot = image_.Snapshot();
  // Through bytes, as a snapshot travels.
  records::MetadataSnapshot parsed;
  ASSERT_TRUE(parsed.ParseFromString(snapshot.SerializeAsString()));
  MetadataImage restored;
  ASSERT_TRUE(restored.Restore(parsed).ok());
  EXPECT_EQ(restored, image_);
  EXPECT_EQ(restored.Snapshot().SerializeAsString(),
            snapshot.SerializeAsString());
  // The restored image keeps applying like the original.
  MetadataRecord next = Register(1, 40, "r1", "again");
  ASSERT_TRUE(image_.Apply(next).ok());
  ASSERT_TRUE(restored.Apply(next).ok());
  EXPECT_EQ(restored, image_);
  ExpectRejected(Register(5, 12));  // max epoch survived the snapshot
}

TEST_F(MetadataImageTest, RestoreRejectsABrokenSnapshotAndKeepsTheImage) {
  records::MetadataSnapshot snapshot = image_.Snapshot();
  snapshot.mutable_brokers(0)->set_fenced(true);  // broker 1 leads t-0
  MetadataImage before = image_;
  EXPECT_EQ(image_.Restore(snapshot).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(image_, before);
}

TEST_F(MetadataImageTest, PublicViews) {
  auto info = image_.TopicInfoByName("t");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->topic_id(), kT);
  EXPECT_EQ(info->replication_factor(), 3);
  ASSERT_EQ(info->partitions_size(), 1);
  EXPECT_EQ(info->partitions(0).leader_id(), 1);
  EXPECT_EQ(info->partitions(0).isr_size(), 3);
  EXPECT_EQ(info->configs().at("unclean.leader.election.enable"), "false");
  EXPECT_EQ(image_.TopicInfoByName("nope").status().code(),
            absl::StatusCode::kNotFound);
  auto brokers = image_.BrokerInfos();
  ASSERT_EQ(brokers.size(), 3u);
  EXPECT_EQ(brokers[1].id(), 2);
  EXPECT_EQ(brokers[1].port(), 9094);
  EXPECT_EQ(brokers[1].rack(), "r2");
  EXPECT_EQ(brokers[1].epoch(), 11);
  EXPECT_FALSE(brokers[1].fenced());
  EXPECT_FALSE(image_.BrokerInfoOf(9).has_value());
}

// Arbitrary records, most of them nonsense: every one is either applied with
// the invariants intact or rejected without a trace.
TEST(MetadataImageFuzzTest, ArbitraryRecordsNeverBreakInvariants) {
  std::mt19937 rng(20240607);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  auto ids = [&](int max_len) {
    std::vector<int32_t> v;
    for (int i = pick(max_len + 1); i > 0; --i) v.push_back(pick(5) - 1);
    return v;
  };
  MetadataImage image;
  int applied = 0;
  for (int step = 0; step < 20000; ++step) {
    MetadataRecord r;
    switch (pick(6)) {
      case 0:
        r = Register(pick(5), pick(3) == 0 ? pick(50) : step + 1);
        break;
      case 1:
        r = Unfence(pick(5),
                    pick(2) == 0 ? pick(50) : image.max_broker_epoch());
        break;
      case 2: {
        r = Fence(pick(5), 0);
        const Broker* b = image.FindBroker(r.fence_broker().broker_id());
        if (b != nullptr) r.mutable_fence_broker()->set_broker_epoch(b->epoch);
        break;
      }
      case 3: {
        std::vector<std::vector<int32_t>> parts;
        for (int i = pick(3); i >= 0; --i) {
          auto v = ids(3);
          if (v.empty()) v.push_back(0);
          parts.push_back(v);
        }
        r = CreateTopic("t" + std::to_string(pick(4)), TopicId(pick(4)), parts);
        break;
      }
      case 4: {
        std::string id = TopicId(pick(4));
        const Topic* t = image.FindTopicById(id);
        int32_t le = t ? t->partitions[0].leader_epoch + pick(2) : 0;
        int32_t pe = t ? t->partitions[0].partition_epoch + 1 : 1;
        r = Change(id, pick(2), pick(5) - 1, le, ids(3), pe);
        break;
      }
      case 5:
        r.mutable_delete_topic()->set_topic_id(TopicId(pick(4)));
        r.mutable_delete_topic()->set_name("t" + std::to_string(pick(4)));
        break;
    }
    MetadataImage before = image;
    if (image.Apply(r).ok()) {
      ++applied;
      ASSERT_TRUE(image.CheckInvariants().ok())
          << image.CheckInvariants() << " after " << r.ShortDebugString();
    } else {
      ASSERT_EQ(image, before) << r.ShortDebugString();
    }
  }
  EXPECT_GT(applied, 1000);
}

}  // namespace
}  // namespace fjord::controller
