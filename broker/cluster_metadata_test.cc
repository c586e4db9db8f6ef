// ControllerClient and ClusterMetadata against three in-process fake
// controllers, each of which acts as the active controller, a follower that
// names the active one, a controller that knows no active one (leader id 0:
// an election, or just elected and catching up), or a hung one (SIGSTOPped:
// its connections stay open and it answers nothing).
#include "broker/cluster_metadata.h"

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/errors.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "storage/log_store.h"

namespace fjord::broker {
namespace {

namespace fiv1 = fjord::internal::v1;

enum class Role { kActive, kFollower, kNoLeader, kHung };

// One fake controller voter. Thread-safe.
class FakeController final : public fiv1::ControllerService::Service {
 public:
  explicit FakeController(int32_t id) : id_(id) {}

  void Set(Role role, int32_t hint = -1) {
    absl::MutexLock lock(&mu_);
    role_ = role;
    hint_ = hint;
  }
  int heartbeats_seen() const { return heartbeats_seen_.load(); }
  int fetches_seen() const { return fetches_seen_.load(); }
  // When this fake, as the active controller, accepted heartbeats.
  std::vector<absl::Time> accepted() const {
    absl::MutexLock lock(&mu_);
    return accepted_;
  }

  grpc::Status RegisterBroker(grpc::ServerContext* ctx, const fiv1::RegisterBrokerRequest*,
                              fiv1::RegisterBrokerResponse* resp) override {
    if (grpc::Status s = Answer(ctx); !s.ok()) return s;
    resp->set_broker_epoch(1);
    return grpc::Status::OK;
  }

  grpc::Status BrokerHeartbeat(grpc::ServerContext* ctx, const fiv1::BrokerHeartbeatRequest*,
                               fiv1::BrokerHeartbeatResponse* resp) override {
    heartbeats_seen_.fetch_add(1);
    if (grpc::Status s = Answer(ctx); !s.ok()) return s;
    {
      absl::MutexLock lock(&mu_);
      accepted_.push_back(absl::Now());
    }
    resp->set_is_fenced(false);
    resp->set_heartbeat_interval_ms(100);
    return grpc::Status::OK;
  }

  // As the active controller: an empty response every 50 ms. Hung: silence
  // with the stream left open.
  grpc::Status FetchMetadata(grpc::ServerContext* ctx, const fiv1::FetchMetadataRequest* req,
                             grpc::ServerWriter<fiv1::FetchMetadataResponse>* writer) override {
    fetches_seen_.fetch_add(1);
    while (!ctx->IsCancelled()) {
      const Role role = role_now();
      if (role == Role::kFollower || role == Role::kNoLeader) return NotLeader();
      if (role == Role::kActive) {
        fiv1::FetchMetadataResponse idle;
        idle.set_base_offset(req->from_offset());
        idle.set_next_offset(req->from_offset());
        if (!writer->Write(idle)) break;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return grpc::Status::OK;
  }

 private:
  Role role_now() const {
    absl::MutexLock lock(&mu_);
    return role_;
  }

  grpc::Status NotLeader() const {
    absl::MutexLock lock(&mu_);
    fjord::v1::ErrorInfo info;
    info.set_reason(fjord::v1::ErrorInfo::NOT_LEADER);
    // A controller that knows no active one sends 0, as the real one does
    // while it catches up after its election.
    info.set_leader_id(role_ == Role::kFollower ? hint_ : 0);
    return ToGrpcStatus(WithErrorInfo(
        absl::UnavailableError(absl::StrCat("controller ", id_, " is not active")), info));
  }

  // OK as the active controller, NOT_LEADER otherwise; hung, it waits until
  // the caller gives up.
  grpc::Status Answer(grpc::ServerContext* ctx) {
    while (role_now() == Role::kHung && !ctx->IsCancelled()) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "gave up");
    if (role_now() == Role::kActive) return grpc::Status::OK;
    return NotLeader();
  }

  const int32_t id_;
  mutable absl::Mutex mu_;
  Role role_ ABSL_GUARDED_BY(mu_) = Role::kFollower;
  int32_t hint_ ABSL_GUARDED_BY(mu_) = -1;
  std::vector<absl::Time> accepted_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> heartbeats_seen_{0};
  std::atomic<int> fetches_seen_{0};
};

class FakeQuorumTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int32_t id = 1; id <= 3; ++id) {
      auto fake = std::make_unique<FakeController>(id);
      grpc::ServerBuilder builder;
      int port = 0;
      builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
      builder.RegisterService(fake.get());
      std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
      ASSERT_NE(server, nullptr);
      voters_[id] = absl::StrCat("127.0.0.1:", port);
      fakes_[id] = std::move(fake);
      servers_.push_back(std::move(server));
    }
  }

  void TearDown() override {
    // Hung handlers give up once their calls are cancelled.
    for (auto& server : servers_) server->Shutdown(absl::ToChronoTime(absl::Now()));
  }

  FakeController& fake(int32_t id) { return *fakes_.at(id); }

  static absl::Status Heartbeat(ControllerClient& client, absl::Duration timeout,
                                absl::Duration attempt_timeout) {
    return client.Call(
        [](ControllerClient::Stubs& stubs, grpc::ClientContext* ctx) {
          fiv1::BrokerHeartbeatResponse response;
          return stubs.controller->BrokerHeartbeat(ctx, fiv1::BrokerHeartbeatRequest(),
                                                   &response);
        },
        timeout, attempt_timeout);
  }

  std::map<int32_t, std::string> voters_;
  std::map<int32_t, std::unique_ptr<FakeController>> fakes_;
  std::vector<std::unique_ptr<grpc::Server>> servers_;
};

// The active controller hangs and another takes over: the next call costs
// one attempt timeout on the hung one, not its whole budget, and later calls
// go straight to the new active controller.
TEST_F(FakeQuorumTest, HungActiveControllerCostsOneAttemptThenIsAvoided) {
  fake(1).Set(Role::kActive);
  fake(2).Set(Role::kFollower, 1);
  fake(3).Set(Role::kFollower, 1);
  ControllerClient client(voters_);
  ASSERT_TRUE(Heartbeat(client, absl::Seconds(3), absl::Milliseconds(300)).ok());
  EXPECT_EQ(client.leader(), 1);

  fake(1).Set(Role::kHung);
  fake(2).Set(Role::kActive);
  fake(3).Set(Role::kFollower, 2);
  const int hung_before = fake(1).heartbeats_seen();
  const absl::Time start = absl::Now();
  absl::Status status = Heartbeat(client, absl::Seconds(3), absl::Milliseconds(300));
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(3)) << "waited for the whole budget";
  EXPECT_EQ(fake(1).heartbeats_seen() - hung_before, 1);
  EXPECT_EQ(client.leader(), 2);

  for (int i = 0; i < 10; ++i) {
    status = Heartbeat(client, absl::Seconds(3), absl::Milliseconds(300));
    ASSERT_TRUE(status.ok()) << status;
  }
  EXPECT_EQ(fake(1).heartbeats_seen() - hung_before, 1) << "went back to the hung controller";
}

// NOT_LEADER with leader id 0 (the new active controller is still catching
// up) names no voter: the client does not take it for a hint and go on to
// "the next voter" after it, here the hung one, again and again, but waits
// for the one that the follower names.
TEST_F(FakeQuorumTest, LeaderIdZeroIsNoHint) {
  fake(1).Set(Role::kFollower, 2);
  fake(2).Set(Role::kNoLeader);
  fake(3).Set(Role::kHung);
  ControllerClient client(voters_);
  absl::Status status = Heartbeat(client, absl::Milliseconds(1500), absl::Milliseconds(300));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_LE(fake(3).heartbeats_seen(), 1) << "kept trying the hung controller";

  fake(2).Set(Role::kActive);
  status = Heartbeat(client, absl::Seconds(3), absl::Milliseconds(300));
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(client.leader(), 2);
  EXPECT_LE(fake(3).heartbeats_seen(), 1);
}

// What an attempt on one voter shows changes the belief about that voter
// only: a call that timed out on the hung controller does not move the
// others off the active one that another call found meanwhile.
TEST_F(FakeQuorumTest, FailureOnOneVoterKeepsTheBeliefInAnother) {
  ControllerClient client(voters_);
  EXPECT_EQ(client.leader(), -1);
  client.Observe(2, absl::OkStatus());
  client.Observe(1, absl::DeadlineExceededError("hung"));
  absl::SleepFor(absl::Milliseconds(1));
  client.Observe(3, absl::UnavailableError("connection refused"));
  EXPECT_EQ(client.leader(), 2);

  ControllerClient::Round round;
  EXPECT_EQ(client.Next(&round), 2);
  // With an active controller known, a voter that did not answer is not
  // worth an attempt: back off, then retry the active one.
  EXPECT_EQ(client.Next(&round), -1);

  // With none known and none answering, the one that failed longest ago.
  client.Observe(2, absl::DeadlineExceededError("hung too"));
  EXPECT_EQ(client.leader(), -1);
  round.Reset();
  EXPECT_EQ(client.Next(&round), 1);
}

TEST_F(FakeQuorumTest, NotLeaderHintsNameVotersOnly) {
  ControllerClient client(voters_);
  auto not_leader = [](int32_t leader_id) {
    fjord::v1::ErrorInfo info;
    info.set_reason(fjord::v1::ErrorInfo::NOT_LEADER);
    info.set_leader_id(leader_id);
    return WithErrorInfo(absl::UnavailableError("not active"), info);
  };
  client.Observe(1, not_leader(0));
  EXPECT_EQ(client.leader(), -1);
  client.Observe(1, not_leader(-1));
  EXPECT_EQ(client.leader(), -1);
  client.Observe(1, not_leader(7));  // not a voter
  EXPECT_EQ(client.leader(), -1);
  client.Observe(1, not_leader(3));
  EXPECT_EQ(client.leader(), 3);
  // The believed active controller says it is not: forgotten.
  client.Observe(3, not_leader(0));
  EXPECT_EQ(client.leader(), -1);
  // An answer that is neither OK nor NOT_LEADER changes no belief, nor does
  // a read that any voter answers.
  client.Observe(2, absl::OkStatus());
  client.Observe(1, absl::FailedPreconditionError("stale broker epoch"));
  client.Observe(3, absl::OkStatus(), nullptr, ControllerClient::Answerer::kAnyVoter);
  EXPECT_EQ(client.leader(), 2);
}

// A broker whose active controller hangs (mid-stream, its connections open)
// keeps heartbeating the new active controller without a gap anywhere near a
// session timeout, and follows the metadata log from it.
TEST_F(FakeQuorumTest, BrokerMovesToTheNewActiveControllerWhenTheActiveOneHangs) {
  fake(1).Set(Role::kActive);
  fake(2).Set(Role::kFollower, 1);
  fake(3).Set(Role::kFollower, 1);
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/hung-controller");
  std::filesystem::remove_all(dir);
  storage::StoreOptions store_options;
  store_options.data_dir = dir;
  absl::StatusOr<std::unique_ptr<storage::LogStore>> store =
      storage::LogStore::Open(store_options);
  ASSERT_TRUE(store.ok()) << store.status();
  ClusterOptions options;
  options.node_id = 1;
  options.voters = voters_;
  options.heartbeat_interval = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<ClusterMetadata>> metadata =
      ClusterMetadata::Create(store->get(), options, nullptr);
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  (*metadata)->Run("127.0.0.1", 9092);
  ASSERT_TRUE((*metadata)->WaitUnfenced(absl::Seconds(10)));
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (fake(1).fetches_seen() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GT(fake(1).fetches_seen(), 0);
  absl::SleepFor(absl::Milliseconds(300));  // the stream is flowing

  const absl::Time hung_at = absl::Now();
  fake(1).Set(Role::kHung);
  fake(2).Set(Role::kActive);
  fake(3).Set(Role::kFollower, 2);
  absl::SleepFor(absl::Seconds(4));

  // The last heartbeat the old controller took, then every one the new took.
  std::vector<absl::Time> beats;
  for (absl::Time t : fake(1).accepted()) {
    if (t <= hung_at) beats = {t};
  }
  ASSERT_FALSE(beats.empty());
  for (absl::Time t : fake(2).accepted()) beats.push_back(t);
  ASSERT_GT(beats.size(), 1u) << "no heartbeat reached the new active controller";
  absl::Duration longest_gap;
  for (size_t i = 1; i < beats.size(); ++i) {
    longest_gap = std::max(longest_gap, beats[i] - beats[i - 1]);
  }
  // One attempt timeout (500 ms with a 100 ms interval) on the hung
  // controller, then the new one; the session timeout in tests is 3 s.
  EXPECT_LT(longest_gap, absl::Seconds(2)) << "between heartbeats";
  EXPECT_GT(fake(2).fetches_seen(), 0) << "does not follow the new active controller";
  EXPECT_EQ((*metadata)->controller_id(), 2);
  EXPECT_FALSE((*metadata)->fenced());
  metadata->reset();
  EXPECT_TRUE((*store)->Close().ok());
}

}  // namespace
}  // namespace fjord::broker
