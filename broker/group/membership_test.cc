#include "broker/group/membership.h"

#include <random>

#include "broker/errors.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace fjord::broker::group {
namespace {

using fjord::v1::ErrorInfo;
using fjord::v1::GroupHeartbeatRequest;
using fjord::v1::GroupHeartbeatResponse;

// A consumer as the protocol expects it to behave: it owns what the last answer
// gave it, and releases at once what an answer took away.
struct Client {
  std::string member_id;
  std::string instance_id;
  int32_t epoch = 0;
  Assignment owned;
  std::vector<std::string> topics = {"t"};
  bool joined = false;
};

class MembershipTest : public ::testing::Test {
 protected:
  MembershipTest() : group_("g") { limits_.min_session_timeout_ms = 100; }

  absl::StatusOr<GroupHeartbeatResponse> Beat(Client& c, int32_t epoch_override = INT32_MIN) {
    GroupHeartbeatRequest req;
    req.set_group_id("g");
    req.set_member_id(c.member_id);
    req.set_member_epoch(epoch_override != INT32_MIN ? epoch_override
                                                     : (c.joined ? c.epoch : 0));
    req.set_instance_id(c.instance_id);
    for (const std::string& t : c.topics) req.add_subscribed_topics(t);
    req.set_session_timeout_ms(session_ms_);
    req.set_assignor(assignor_);
    ToProto(c.owned, req.mutable_owned_partitions());
    bool changed = false;
    auto r = group_.Heartbeat(
        req, limits_, [this](const std::string& t) { return counts_.contains(t) ? counts_[t] : 0; },
        [this] { return "member-" + std::to_string(++next_id_); }, now_, &changed);
    if (r.ok() && r->member_epoch() >= 0) {
      c.member_id = r->member_id();
      c.epoch = r->member_epoch();
      c.joined = true;
      c.owned = FromProto(r->assignment());
    }
    return r;
  }

  // Heartbeats every client until nothing changes (bounded).
  void Settle(std::vector<Client*> clients) {
    for (int round = 0; round < 20; ++round) {
      bool any = false;
      for (Client* c : clients) {
        Assignment before = c->owned;
        ASSERT_TRUE(Beat(*c).ok());
        any |= before != c->owned;
        CheckDisjoint(clients);
      }
      if (!any && group_.state() == fjord::v1::STABLE) return;
    }
    FAIL() << "the group did not settle";
  }

  static void CheckDisjoint(const std::vector<Client*>& clients) {
    std::map<std::pair<std::string, int32_t>, std::string> owner;
    for (const Client* c : clients) {
      for (const auto& [t, ps] : c->owned) {
        for (int32_t p : ps) {
          auto [it, fresh] = owner.emplace(std::make_pair(t, p), c->member_id);
          ASSERT_TRUE(fresh) << t << "-" << p << " owned by " << it->second << " and "
                             << c->member_id;
        }
      }
    }
  }

  GroupMembership group_;
  MembershipLimits limits_;
  std::map<std::string, int32_t> counts_ = {{"t", 6}};
  absl::Time now_ = absl::FromUnixSeconds(1000);
  int32_t session_ms_ = 3000;
  std::string assignor_ = "uniform";
  int next_id_ = 0;
};

TEST_F(MembershipTest, ThreeMembersShareSixPartitions) {
  Client a, b, c;
  Settle({&a, &b, &c});
  EXPECT_EQ(Size(a.owned), 2);
  EXPECT_EQ(Size(b.owned), 2);
  EXPECT_EQ(Size(c.owned), 2);
  EXPECT_EQ(group_.state(), fjord::v1::STABLE);
  EXPECT_EQ(a.epoch, group_.group_epoch());
}

TEST_F(MembershipTest, PartitionsMoveOnlyAfterTheOwnerReleasesThem) {
  Client a, b;
  ASSERT_TRUE(Beat(a).ok());
  EXPECT_EQ(Size(a.owned), 6);
  // b joins: its target is 3 partitions, but a still owns them.
  auto rb = Beat(b);
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(Size(b.owned), 0);
  EXPECT_TRUE(rb->assignment_pending());
  EXPECT_EQ(group_.state(), fjord::v1::RECONCILING);
  // a is told to keep only 3. Until it reports having released, b gets nothing.
  GroupHeartbeatRequest stale;
  Client a_copy = a;
  auto ra = Beat(a);  // sends owned = 6, answer = 3
  ASSERT_TRUE(ra.ok());
  EXPECT_EQ(Size(a.owned), 3);
  ASSERT_TRUE(Beat(b).ok());
  EXPECT_EQ(Size(b.owned), 0) << "a has not released yet";
  // a's next heartbeat reports 3 owned: now they are free.
  ASSERT_TRUE(Beat(a).ok());
  ASSERT_TRUE(Beat(b).ok());
  EXPECT_EQ(Size(b.owned), 3);
  CheckDisjoint({&a, &b});
  EXPECT_EQ(group_.state(), fjord::v1::STABLE);
}

TEST_F(MembershipTest, ExpiredMembersPartitionsGoToTheOthers) {
  Client a, b, c;
  Settle({&a, &b, &c});
  now_ += absl::Milliseconds(2000);
  ASSERT_TRUE(Beat(a).ok());
  ASSERT_TRUE(Beat(b).ok());
  now_ += absl::Milliseconds(1500);  // c silent for 3.5 s > 3 s
  EXPECT_TRUE(group_.ExpireMembers(now_, [](const std::string&) { return 6; }));
  EXPECT_EQ(group_.members().size(), 2u);
  Settle({&a, &b});
  EXPECT_EQ(Size(a.owned) + Size(b.owned), 6);
  auto r = Beat(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ErrorInfoOf(r.status()).reason(), ErrorInfo::UNKNOWN_MEMBER_ID);
}

TEST_F(MembershipTest, StaticMemberReturnsWithoutARebalance) {
  Client a, b;
  a.instance_id = "pod-0";
  b.instance_id = "pod-1";
  Settle({&a, &b});
  const Assignment a_had = a.owned;
  const int32_t epoch = group_.group_epoch();
  ASSERT_TRUE(Beat(a, -2).ok());  // clean shutdown of a static member
  EXPECT_EQ(group_.group_epoch(), epoch);
  Client a2;
  a2.instance_id = "pod-0";
  ASSERT_TRUE(Beat(a2).ok());
  EXPECT_EQ(a2.owned, a_had);
  EXPECT_EQ(group_.group_epoch(), epoch);
  EXPECT_NE(a2.member_id, a.member_id);
  // The old member id is gone.
  auto r = Beat(a);
  EXPECT_EQ(ErrorInfoOf(r.status()).reason(), ErrorInfo::UNKNOWN_MEMBER_ID);
}

TEST_F(MembershipTest, InstanceIdOfALiveMemberIsRefused) {
  Client a, a2;
  a.instance_id = a2.instance_id = "pod-0";
  Settle({&a});
  auto r = Beat(a2);
  EXPECT_EQ(ErrorInfoOf(r.status()).reason(), ErrorInfo::UNRELEASED_INSTANCE_ID);
  EXPECT_EQ(Size(a2.owned), 0);
  // Once the first one's session expired, the instance id is free (a new member,
  // so its partitions come through a rebalance).
  now_ += absl::Milliseconds(3100);
  EXPECT_TRUE(group_.ExpireMembers(now_, [](const std::string&) { return 6; }));
  ASSERT_TRUE(Beat(a2).ok());
  EXPECT_EQ(Size(a2.owned), 6);
}

TEST_F(MembershipTest, DepartedStaticMemberIsRemovedAfterItsSession) {
  Client a, b;
  a.instance_id = "pod-0";
  Settle({&a, &b});
  ASSERT_TRUE(Beat(a, -2).ok());
  now_ += absl::Milliseconds(3100);
  ASSERT_TRUE(Beat(b).ok());
  EXPECT_TRUE(group_.ExpireMembers(now_, [](const std::string&) { return 6; }));
  Settle({&b});
  EXPECT_EQ(Size(b.owned), 6);
}

TEST_F(MembershipTest, LeaveFreesPartitionsAtOnce) {
  Client a, b;
  Settle({&a, &b});
  ASSERT_TRUE(Beat(a, -1).ok());
  ASSERT_TRUE(Beat(b).ok());
  EXPECT_EQ(Size(b.owned), 6);
  EXPECT_EQ(group_.members().size(), 1u);
}

TEST_F(MembershipTest, CommitFencing) {
  Client a, b;
  Settle({&a, &b});
  const auto a_part = std::make_pair(a.owned.begin()->first, *a.owned.begin()->second.begin());
  const auto b_part = std::make_pair(b.owned.begin()->first, *b.owned.begin()->second.begin());
  EXPECT_TRUE(group_.CheckCommit(a.member_id, a.epoch, {a_part}).ok());
  EXPECT_EQ(ErrorInfoOf(group_.CheckCommit(a.member_id, a.epoch, {a_part, b_part})).reason(),
            ErrorInfo::PARTITION_NOT_ASSIGNED);
  EXPECT_EQ(ErrorInfoOf(group_.CheckCommit("nobody", 3, {a_part})).reason(),
            ErrorInfo::UNKNOWN_MEMBER_ID);
  EXPECT_EQ(ErrorInfoOf(group_.CheckCommit(a.member_id, a.epoch + 1, {a_part})).reason(),
            ErrorInfo::FENCED_MEMBER_EPOCH);
  EXPECT_EQ(ErrorInfoOf(group_.CheckCommit("", -1, {a_part})).reason(),
            ErrorInfo::GROUP_NOT_EMPTY);
  // After a rebalance the old epoch is stale.
  Client c;
  Settle({&a, &b, &c});
  Settle({&a, &b, &c});
  EXPECT_EQ(ErrorInfoOf(group_.CheckCommit(a.member_id, 1, {})).reason(),
            ErrorInfo::STALE_MEMBER_EPOCH);
  // Everyone gone: admin commits are allowed.
  for (Client* x : {&a, &b, &c}) ASSERT_TRUE(Beat(*x, -1).ok());
  EXPECT_TRUE(group_.CheckCommit("", -1, {a_part}).ok());
  EXPECT_EQ(group_.state(), fjord::v1::EMPTY);
}

TEST_F(MembershipTest, BadRequestsAreRefused) {
  Client a;
  a.topics = {};
  EXPECT_EQ(Beat(a).status().code(), absl::StatusCode::kInvalidArgument);
  a.topics = {"bad topic"};
  EXPECT_EQ(Beat(a).status().code(), absl::StatusCode::kInvalidArgument);
  a.topics = {"t"};
  session_ms_ = 10;
  EXPECT_EQ(Beat(a).status().code(), absl::StatusCode::kInvalidArgument);
  session_ms_ = 3000;
  assignor_ = "roundrobin";
  EXPECT_EQ(Beat(a).status().code(), absl::StatusCode::kInvalidArgument);
  assignor_ = "range";
  EXPECT_EQ(Beat(a, -7).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(group_.empty()) << "nothing changed";
  ASSERT_TRUE(Beat(a).ok());
  EXPECT_EQ(group_.assignor(), "range");
  Client imposter = a;
  auto r = Beat(imposter, a.epoch + 5);
  EXPECT_EQ(ErrorInfoOf(r.status()).reason(), ErrorInfo::FENCED_MEMBER_EPOCH);
}

TEST_F(MembershipTest, NewPartitionsAreAssigned) {
  Client a, b;
  Settle({&a, &b});
  counts_["t"] = 10;
  Settle({&a, &b});
  EXPECT_EQ(Size(a.owned) + Size(b.owned), 10);
}

TEST_F(MembershipTest, RecordRoundTrip) {
  Client a, b;
  b.instance_id = "pod-1";
  Settle({&a, &b});
  GroupMembership copy("g");
  copy.FromRecord(group_.ToRecord(), now_);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(copy.ToRecord(),
                                                                 group_.ToRecord()));
  EXPECT_EQ(copy.state(), fjord::v1::STABLE);
  EXPECT_TRUE(copy.CheckCommit(a.member_id, a.epoch, {}).ok());
}

// Random joins, leaves, crashes, lost answers and topic growth: clients that follow
// the protocol never own a partition at the same time, and once everyone
// heartbeats the group settles with every partition owned.
TEST_F(MembershipTest, RandomizedNoDoubleOwnership) {
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    group_ = GroupMembership("g");
    counts_ = {{"t", 6}, {"u", 3}};
    std::mt19937 rng(seed);
    std::vector<std::unique_ptr<Client>> clients;
    for (int step = 0; step < 400; ++step) {
      const int action = static_cast<int>(rng() % 10);
      std::vector<Client*> live;
      for (auto& c : clients) live.push_back(c.get());
      if (action == 0 && clients.size() < 6) {
        clients.push_back(std::make_unique<Client>());
        clients.back()->topics = (rng() % 2) ? std::vector<std::string>{"t", "u"}
                                             : std::vector<std::string>{"t"};
        if (rng() % 3 == 0) clients.back()->instance_id = "i" + std::to_string(rng() % 4);
      } else if (action == 1 && !clients.empty()) {
        // Leaves cleanly: releases everything first.
        size_t i = rng() % clients.size();
        if (clients[i]->joined) {
          clients[i]->owned.clear();
          ASSERT_TRUE(Beat(*clients[i], clients[i]->instance_id.empty() ? -1 : -2).ok());
        }
        clients.erase(clients.begin() + static_cast<long>(i));
      } else if (action == 2 && !clients.empty()) {
        // Crashes: the process is gone (owns nothing); the coordinator finds out by
        // session expiry.
        clients.erase(clients.begin() + static_cast<long>(rng() % clients.size()));
      } else if (action == 3) {
        now_ += absl::Milliseconds(1000 + rng() % 2500);
        // Everyone alive heartbeats after a time jump (so only the crashed expire).
        for (Client* c : live) {
          if (c->joined) {
            auto r = Beat(*c);
            if (!r.ok()) {
              c->owned.clear();
              c->joined = false;
            }
          }
        }
        group_.ExpireMembers(now_, [this](const std::string& t) {
          return counts_.contains(t) ? counts_[t] : 0;
        });
      } else if (action == 4 && counts_["t"] < 12) {
        ++counts_["t"];
      } else if (!clients.empty()) {
        Client& c = *clients[rng() % clients.size()];
        auto r = Beat(c);
        if (!r.ok()) {
          // Fenced or unknown: drop everything, join again.
          c.owned.clear();
          c.joined = false;
          c.member_id.clear();
        }
      }
      std::vector<Client*> now_live;
      for (auto& c : clients) now_live.push_back(c.get());
      CheckDisjoint(now_live);
      if (HasFatalFailure()) {
        ADD_FAILURE() << "seed " << seed << " step " << step;
        return;
      }
    }
    // Everyone still alive heartbeats until the group settles.
    now_ += absl::Seconds(10);
    std::vector<Client*> live;
    for (auto& c : clients) {
      if (!c->joined) c->member_id.clear();
      live.push_back(c.get());
    }
    for (Client* c : live) {
      if (!Beat(*c).ok()) {
        c->owned.clear();
        c->joined = false;
        c->member_id.clear();
      }
    }
    group_.ExpireMembers(now_, [this](const std::string& t) {
      return counts_.contains(t) ? counts_[t] : 0;
    });
    if (live.empty()) continue;
    for (Client* c : live) {
      if (!c->joined) ASSERT_TRUE(Beat(*c).ok());
    }
    Settle(live);
    if (HasFatalFailure()) {
      ADD_FAILURE() << "seed " << seed << " did not settle";
      return;
    }
    int64_t owned_t = 0;
    for (Client* c : live) owned_t += c->owned.contains("t") ? c->owned["t"].size() : 0;
    EXPECT_EQ(owned_t, counts_["t"]) << "seed " << seed;
  }
}

}  // namespace
}  // namespace fjord::broker::group
