// Seeded random walks through the controller: thousands of register,
// heartbeat, fence, shutdown, create, delete, AlterPartition, election,
// unregister and session-tick operations, with every invariant checked after
// each one. A failure names its seed and step; re-run with that seed.
//
// Beside the image, the walk keeps an abstract model of committed data (the
// brokers' side, which it does not run): per partition, how many records are
// committed, and per replica how many of those it holds. A record commits
// only while the ISR has at least EffectiveMinIsr members (the brokers'
// strict min ISR) and lands on every ISR member; a follower that the leader
// adds to the ISR has caught up; a new incarnation holds nothing; an unclean
// election makes the new leader's log the truth. The check: every ISR and
// ELR member holds every committed record, so a clean election loses
// nothing.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controller/metadata/controller_logic.h"
#include "controller/metadata/metadata_image.h"
#include "gtest/gtest.h"

namespace fjord::controller {
namespace {

constexpr int kBrokers = 6;
constexpr int kSteps = 4000;

bool Contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

class Walk {
 public:
  explicit Walk(uint32_t seed)
      : rng_(seed), logic_(&image_, {absl::Seconds(6)}) {
    logic_.Activate(now_);
  }

  // Runs `steps` random operations, stopping at the first violation (a
  // fatal gtest failure naming the step and operation).
  void Run(int steps) {
    for (step_ = 0; step_ < steps && !::testing::Test::HasFatalFailure();
         ++step_) {
      const MetadataImage before = image_;
      op_ = "";
      RecordBatch batch = RandomOperation();
      ApplyBatch(batch);
      if (::testing::Test::HasFatalFailure()) return;
      CheckStep(before);
    }
  }

  std::map<std::string, int> stats;

 private:
  int Pick(int n) { return static_cast<int>(rng_() % n); }
  bool Chance(int percent) { return Pick(100) < percent; }

  std::string Where() const {
    return absl::StrCat("step ", step_, " op ", op_);
  }

  void ApplyBatch(const RecordBatch& batch) {
    for (const auto& r : batch) {
      // Followers get the records as bytes, like from the Raft log.
      records::MetadataRecord copy;
      ASSERT_TRUE(copy.ParseFromString(r.SerializeAsString()));
      absl::Status s = image_.Apply(r);
      ASSERT_TRUE(s.ok()) << Where() << ": " << s << " for "
                          << r.ShortDebugString();
      ASSERT_TRUE(follower_.Apply(copy).ok()) << Where();
      ++next_offset_;
    }
  }

  RecordBatch RandomOperation() {
    switch (Pick(13)) {
      case 0:
      case 1:
        return RandomRegister();
      case 2:
      case 3:
      case 4:
        return RandomHeartbeat();
      case 5:
        return Tick();
      case 6:
        return RandomCreate();
      case 7:
        return RandomDelete();
      case 8:
      case 9:
        return RandomAlter();
      case 10:
        op_ = "preferred";
        return logic_.ElectPreferredLeaders();
      case 11:
        return RandomCommit();
      default:
        return RandomUnregister();
    }
  }

  RecordBatch RandomRegister() {
    const int32_t id = Pick(kBrokers);
    op_ = absl::StrCat("register ", id);
    std::string incarnation = incarnations_[id];
    if (incarnation.empty() || Chance(50)) {
      incarnation = absl::StrCat("inc-", id, "-", step_);
    }
    RegisterBrokerRequest req{id,
                              incarnation,
                              {{"client", "localhost", 9000 + id}},
                              Chance(80) ? absl::StrCat("rack", id % 3) : ""};
    const Broker* old = image_.FindBroker(id);
    const bool fresh = old == nullptr || old->incarnation_id != incarnation;
    auto r = logic_.RegisterBroker(req, now_, next_offset_);
    if (!r.ok()) {
      ++stats["register refused"];
      return {};
    }
    ++stats[fresh ? "register new incarnation" : "register"];
    incarnations_[id] = incarnation;
    if (fresh) forgotten_ = id;
    return r->records;
  }

  RecordBatch RandomHeartbeat() {
    const int32_t id = Pick(kBrokers);
    op_ = absl::StrCat("heartbeat ", id);
    const Broker* b = image_.FindBroker(id);
    HeartbeatRequest req;
    req.broker_id = id;
    req.broker_epoch = b == nullptr ? 1 : b->epoch - (Chance(10) ? 1 : 0);
    req.current_metadata_offset =
        Chance(80) ? next_offset_ - 1 : Pick(static_cast<int>(next_offset_));
    req.want_fence = Chance(5);
    req.want_shutdown = Chance(5) || (b && b->in_controlled_shutdown);
    now_ += absl::Milliseconds(Pick(300));
    auto r = logic_.Heartbeat(req, now_, next_offset_);
    if (!r.ok()) {
      ++stats["heartbeat refused"];
      return {};
    }
    ++stats["heartbeat"];
    if (r->should_shutdown) ++stats["shutdown now"];
    if (r->in_controlled_shutdown) ++stats["in controlled shutdown"];
    return r->records;
  }

  RecordBatch Tick() {
    op_ = "tick";
    now_ += absl::Milliseconds(Pick(3000));
    RecordBatch batch = logic_.TickSessions(now_);
    if (!batch.empty()) ++stats["session expiry"];
    return batch;
  }

  RecordBatch RandomCreate() {
    op_ = "create";
    CreateTopicRequest req{
        absl::StrCat("t", Pick(8)), 1 + Pick(4), 1 + Pick(3), {}};
    if (Chance(30)) req.configs["unclean.leader.election.enable"] = "true";
    if (Chance(60)) {
      req.configs["min.insync.replicas"] = absl::StrCat(2 + Pick(2));
    }
    auto r = logic_.CreateTopics({req}, [&] {
      std::string n = std::to_string(++topic_ids_);
      return std::string(32 - n.size(), 'f') + n;
    });
    if (!r.ok()) {
      ++stats["create refused"];
      return {};
    }
    ++stats["create"];
    return *r;
  }

  RecordBatch RandomDelete() {
    op_ = "delete";
    auto r = logic_.DeleteTopics({absl::StrCat("t", Pick(8))});
    if (!r.ok()) return {};
    ++stats["delete"];
    return *r;
  }

  RecordBatch RandomAlter() {
    op_ = "alter";
    std::vector<std::pair<const Topic*, int32_t>> led;
    for (const auto& [id, t] : image_.topics()) {
      for (size_t i = 0; i < t.partitions.size(); ++i) {
        if (t.partitions[i].leader != kNoLeader) led.push_back({&t, i});
      }
    }
    if (led.empty()) return {};
    auto [topic, index] = led[Pick(led.size())];
    const Partition& p = topic->partitions[index];
    AlterPartitionRequest req;
    req.broker_id = p.leader;
    req.broker_epoch = image_.FindBroker(p.leader)->epoch;
    if (Chance(5)) req.broker_epoch -= 1;
    req.topic_id = topic->id;
    req.partition = index;
    req.leader_epoch = p.leader_epoch - (Chance(5) ? 1 : 0);
    req.partition_epoch = p.partition_epoch - (Chance(5) ? 1 : 0);
    for (int32_t r : p.replicas) {
      if (r != p.leader && Chance(50)) continue;
      const Broker* b = image_.FindBroker(r);
      // Mostly the epoch the broker has; sometimes one from an old
      // incarnation (KIP-903).
      int64_t epoch = b == nullptr ? 0 : b->epoch;
      if (Chance(10)) epoch -= 1;
      req.new_isr.push_back({r, epoch});
    }
    auto r = logic_.AlterPartition(req);
    if (!r.ok()) {
      ++stats["alter refused"];
      return {};
    }
    ++stats[r->records.empty() ? "alter no-op" : "alter"];
    return r->records;
  }

  // Not a controller operation: a record commits on a partition whose ISR
  // is at min.insync.replicas (the data model above).
  RecordBatch RandomCommit() {
    op_ = "commit";
    std::vector<std::pair<const Topic*, int32_t>> ready;
    for (const auto& [id, t] : image_.topics()) {
      for (size_t i = 0; i < t.partitions.size(); ++i) {
        const Partition& p = t.partitions[i];
        if (p.leader != kNoLeader && static_cast<int64_t>(p.isr.size()) >=
                                         EffectiveMinIsr(t.configs, p)) {
          ready.push_back({&t, i});
        }
      }
    }
    if (ready.empty()) return {};
    auto [topic, index] = ready[Pick(ready.size())];
    Data& d = data_[{topic->id, index}];
    ++d.committed;
    for (int32_t m : topic->partitions[index].isr) d.held[m] = d.committed;
    ++stats["commit"];
    return {};
  }

  RecordBatch RandomUnregister() {
    if (!Chance(20)) return Tick();
    const int32_t id = Pick(kBrokers);
    op_ = absl::StrCat("unregister ", id);
    auto r = logic_.UnregisterBroker(id);
    if (!r.ok()) return {};
    ++stats["unregister"];
    return *r;
  }

  // Everything that must hold after every operation.
  void CheckStep(const MetadataImage& before) {
    ASSERT_TRUE(image_.CheckInvariants().ok())
        << Where() << ": " << image_.CheckInvariants();
    ASSERT_EQ(image_, follower_) << Where() << ": follower diverged";
    ASSERT_GE(image_.max_broker_epoch(), before.max_broker_epoch());
    for (const auto& [id, b] : image_.brokers()) {
      const Broker* old = before.FindBroker(id);
      if (old != nullptr) {
        ASSERT_GE(b.epoch, old->epoch) << Where();
      }
    }
    const int32_t forgotten = forgotten_;
    forgotten_ = -1;
    for (auto it = data_.begin(); it != data_.end();) {
      it = image_.FindTopicById(it->first.first) == nullptr ? data_.erase(it)
                                                            : std::next(it);
    }
    for (const auto& [id, t] : image_.topics()) {
      const bool unclean = t.configs.contains("unclean.leader.election.enable");
      for (size_t i = 0; i < t.partitions.size(); ++i) {
        const Partition& p = t.partitions[i];
        const std::string name = absl::StrCat(t.name, "-", i);
        // Liveness: a partition without a leader has no candidate.
        if (p.leader == kNoLeader) {
          for (int32_t r : p.isr) {
            ASSERT_FALSE(image_.IsEligible(r))
                << Where() << ": " << name << " has no leader but ISR member "
                << r << " is eligible";
          }
          for (int32_t r : p.elr) {
            ASSERT_FALSE(image_.IsEligible(r))
                << Where() << ": " << name << " has no leader but ELR member "
                << r << " is eligible";
          }
          if (unclean) {
            for (int32_t r : p.replicas) {
              ASSERT_FALSE(image_.IsEligible(r)) << Where();
            }
          }
        }
        if (!p.elr.empty()) ++stats["partition with an ELR"];
        if (p.isr.empty()) ++stats["partition with an empty ISR"];
        // A new incarnation may have lost its disk: it is in no ISR or ELR.
        ASSERT_FALSE(Contains(p.isr, forgotten) || Contains(p.elr, forgotten))
            << Where() << ": " << name << " kept new incarnation " << forgotten;
        Data& d = data_[{id, static_cast<int32_t>(i)}];
        if (forgotten >= 0) d.held[forgotten] = 0;
        const Topic* old_topic = before.FindTopicById(id);
        if (old_topic != nullptr) {
          const Partition& old = old_topic->partitions[i];
          ASSERT_GE(p.leader_epoch, old.leader_epoch) << Where();
          ASSERT_GE(p.partition_epoch, old.partition_epoch) << Where();
          bool elr_election = false;
          if (p.leader != old.leader) {
            ++stats["leader change"];
            ASSERT_EQ(p.leader_epoch, old.leader_epoch + 1) << Where();
            // A new leader comes from the ISR, then the ELR (alone in the
            // ISR), unless unclean is allowed.
            if (p.leader != kNoLeader && !Contains(old.isr, p.leader)) {
              if (Contains(old.elr, p.leader)) {
                ASSERT_EQ(p.isr, std::vector<int32_t>{p.leader}) << Where();
                elr_election = true;
                ++stats["elr election"];
              } else {
                ASSERT_TRUE(unclean)
                    << Where() << ": " << name << " leader " << p.leader
                    << " outside the ISR and the ELR";
                ASSERT_TRUE(p.elr.empty()) << Where();
                ++stats["unclean election"];
                // The new leader's log is the truth now.
                d.committed = d.held[p.leader];
                for (auto& [r, n] : d.held) n = std::min(n, d.committed);
              }
            }
          }
          // Only the leader's AlterPartition grows an ISR (or an election
          // from the ELR or an unclean one replaces it). A member it adds has
          // caught up.
          for (int32_t r : p.isr) {
            if (!Contains(old.isr, r)) {
              ASSERT_TRUE(op_ == "alter" || elr_election || unclean) << Where();
              if (op_ == "alter") d.held[r] = d.committed;
            }
          }
          for (int32_t r : p.elr) {
            if (!Contains(old.elr, r)) ++stats["elr join"];
          }
        }
        // What the ELR is for.
        for (const std::vector<int32_t>* members : {&p.isr, &p.elr}) {
          for (int32_t r : *members) {
            ASSERT_GE(d.held[r], d.committed)
                << Where() << ": " << name << " member " << r << " holds "
                << d.held[r] << " of " << d.committed
                << " committed records; ISR " << p.isr.size() << ", ELR "
                << p.elr.size();
          }
        }
      }
    }
    if (step_ % 97 == 0) {
      MetadataImage restored;
      ASSERT_TRUE(restored.Restore(image_.Snapshot()).ok()) << Where();
      ASSERT_EQ(restored, image_) << Where();
    }
  }

  std::mt19937 rng_;
  MetadataImage image_;
  MetadataImage follower_;
  ControllerLogic logic_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  int64_t next_offset_ = 1;
  int topic_ids_ = 0;
  int step_ = 0;
  std::string op_;
  std::map<int32_t, std::string> incarnations_;
  // The broker the last operation registered as a new incarnation, or -1.
  int32_t forgotten_ = -1;
  // The data model (file comment), by topic id and partition.
  struct Data {
    int64_t committed = 0;
    std::map<int32_t, int64_t> held;  // by broker id
  };
  std::map<std::pair<std::string, int32_t>, Data> data_;
};

TEST(RandomizedControllerTest, InvariantsHoldAfterEveryOperation) {
  std::map<std::string, int> totals;
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    Walk walk(seed);
    walk.Run(kSteps);
    if (HasFatalFailure()) return;
    for (const auto& [k, v] : walk.stats) totals[k] += v;
  }
  for (const auto& [k, v] : totals) std::cout << k << ": " << v << "\n";
  // The walk must actually reach the interesting states.
  for (const char* key :
       {"register", "register new incarnation", "register refused",
        "heartbeat refused", "session expiry", "create", "delete", "alter",
        "alter refused", "leader change", "unclean election",
        "in controlled shutdown", "shutdown now", "unregister", "commit",
        "elr join", "elr election", "partition with an ELR",
        "partition with an empty ISR"}) {
    EXPECT_GT(totals[key], 0) << key;
  }
}

}  // namespace
}  // namespace fjord::controller
