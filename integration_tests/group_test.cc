// Consumer groups end to end, with real processes: `fjord consume --group`
// consumers sharing a topic on a 3-controller, 3-broker cluster through a
// consumer SIGKILL and a coordinator SIGKILL, and the seed article's consumer
// flow (group items-group, earliest, auto-commit, idle timeout, restart
// continues where it left off) on a single-node broker with the CLI.
#include <csignal>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "fjord/v1/group.grpc.pb.h"
#include "fjord/v1/metadata.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "client/cluster.h"
#include "client/consumer.h"
#include "integration_tests/broker_fixture.h"
#include "integration_tests/cluster.h"
#include "integration_tests/grpc_assertions.h"
#include "integration_tests/process.h"

namespace fjord::testing {
namespace {

std::string Must(absl::StatusOr<std::string> path) {
  EXPECT_TRUE(path.ok()) << path.status();
  return path.value_or("");
}

// One record as `fjord consume -o json` prints it.
struct Seen {
  int32_t partition = -1;
  int64_t offset = -1;
  std::string value;
};

// The records in a consumer's output (JSON lines; other lines, e.g. logs on
// stderr, are skipped).
std::vector<Seen> ParseConsumed(const std::string& text) {
  std::vector<Seen> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, "{")) continue;
    auto field = [&](absl::string_view name) -> absl::string_view {
      const std::string key = absl::StrCat("\"", name, "\":");
      size_t at = line.find(key);
      if (at == absl::string_view::npos) return {};
      absl::string_view rest = line.substr(at + key.size());
      if (absl::StartsWith(rest, "\"")) {
        rest.remove_prefix(1);
        return rest.substr(0, rest.find('"'));
      }
      return rest.substr(0, rest.find_first_of(",}"));
    };
    Seen s;
    if (!absl::SimpleAtoi(field("partition"), &s.partition) ||
        !absl::SimpleAtoi(field("offset"), &s.offset)) {
      continue;  // a line cut short by SIGKILL
    }
    s.value = std::string(field("value"));
    out.push_back(std::move(s));
  }
  return out;
}

// A `fjord consume TOPIC --group G -o json` process writing to its own file.
class GroupConsumer {
 public:
  GroupConsumer(const std::string& cli, const std::string& bootstrap, const std::string& dir,
                const std::string& name, const std::string& topic, const std::string& group) {
    path_ = absl::StrCat(dir, "/", name, ".out");
    Process::Options o;
    o.binary = cli;
    o.args = {"--bootstrap", bootstrap, "-o", "json", "consume", topic, "--group", group,
              "--from-beginning", "--session-timeout-ms", "6000"};
    o.log_path = path_;
    auto p = Process::Spawn(o);
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) process_ = std::move(*p);
  }
  std::vector<Seen> Records() const { return ParseConsumed(ReadFileOrEmpty(path_)); }
  Process& process() { return *process_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<Process> process_;
};

using PartitionSet = std::set<int32_t>;

class GroupClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions o;
    dir_ = absl::StrCat(getenv("TEST_TMPDIR"), "/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    o.base_dir = dir_;
    o.controllers = 3;
    o.brokers = 3;
    o.broker_binary = Must(FindRunfile("broker/fjord-broker"));
    o.controller_binary = Must(FindRunfile("controller/fjord-controller"));
    o.cli_binary = cli_ = Must(FindRunfile("client/fjord"));
    o.controller_args = {"--session-timeout-ms=3000"};
    o.broker_args = {"--replica-lag-time-max-ms=3000", "--offsets-topic-partitions=4"};
    o.create_topics = "orders:6:3";
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Up(o);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
  }

  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) {
      std::cerr << cluster_->DescribeForDebugging() << "\n";
      for (const auto& c : consumers_) {
        std::cerr << "--- " << c->path() << "\n"
                  << TailLines(ReadFileOrEmpty(c->path()), 15) << "\n";
      }
    }
  }

  std::shared_ptr<grpc::Channel> ChannelTo(const std::string& address) {
    auto& ch = channels_[address];
    if (ch == nullptr) ch = MakeChannel(address);
    return ch;
  }

  std::vector<int> LiveBrokers() {
    std::vector<int> ids;
    for (int id = 1; id <= 3; ++id) {
      if (cluster_->State(absl::StrCat("broker-", id)) == NodeState::kRunning) ids.push_back(id);
    }
    return ids;
  }

  // The group's coordinator, asked of any live broker.
  absl::StatusOr<fjord::v1::FindCoordinatorResponse> Coordinator(const std::string& group) {
    absl::Status last = absl::UnavailableError("no live broker");
    for (int id : LiveBrokers()) {
      auto stub = fjord::v1::GroupService::NewStub(
          ChannelTo(cluster_->Find(absl::StrCat("broker-", id))->address()));
      grpc::ClientContext ctx;
      SetDeadline(&ctx, absl::Seconds(5));
      fjord::v1::FindCoordinatorRequest req;
      req.set_group_id(group);
      fjord::v1::FindCoordinatorResponse resp;
      grpc::Status s = stub->FindCoordinator(&ctx, req, &resp);
      if (s.ok()) return resp;
      last = absl::UnavailableError(GrpcToString(s));
    }
    return last;
  }

  absl::StatusOr<fjord::v1::DescribeGroupResponse> DescribeGroup(const std::string& group) {
    absl::StatusOr<fjord::v1::FindCoordinatorResponse> c = Coordinator(group);
    if (!c.ok()) return c.status();
    auto stub = fjord::v1::GroupService::NewStub(ChannelTo(c->address()));
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(5));
    fjord::v1::DescribeGroupRequest req;
    req.set_group_id(group);
    fjord::v1::DescribeGroupResponse resp;
    grpc::Status s = stub->DescribeGroup(&ctx, req, &resp);
    if (!s.ok()) return absl::UnavailableError(GrpcToString(s));
    return resp;
  }

  // Waits (up to `timeout`) until the group is STABLE with `members` members
  // whose assignments are disjoint and cover all 6 partitions; returns them.
  absl::StatusOr<fjord::v1::DescribeGroupResponse> WaitStable(const std::string& group,
                                                              int members,
                                                              absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    std::string last;
    while (absl::Now() < deadline) {
      absl::StatusOr<fjord::v1::DescribeGroupResponse> d = DescribeGroup(group);
      if (d.ok()) {
        PartitionSet all;
        size_t owned = 0;
        for (const auto& m : d->members()) {
          for (const auto& tp : m.assignment()) {
            for (int32_t p : tp.partitions()) {
              all.insert(p);
              ++owned;
            }
          }
        }
        if (d->state() == fjord::v1::STABLE && d->members_size() == members && all.size() == 6 &&
            owned == 6) {
          return *d;
        }
        last = d->ShortDebugString();
      } else {
        last = d.status().ToString();
      }
      absl::SleepFor(absl::Milliseconds(100));  // poll interval
    }
    return absl::DeadlineExceededError(absl::StrCat("group ", group, " not stable with ", members,
                                                    " members: ", last));
  }

  // Waits until the group's committed offsets add up to `total` (every record
  // read and committed).
  ::testing::AssertionResult WaitCommitted(const std::string& group, int64_t total,
                                           absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    int64_t sum = -1;
    while (absl::Now() < deadline) {
      absl::StatusOr<fjord::v1::DescribeGroupResponse> d = DescribeGroup(group);
      if (d.ok()) {
        sum = 0;
        for (const auto& c : d->offsets()) sum += c.offset();
        if (sum == total) return ::testing::AssertionSuccess();
      }
      absl::SleepFor(absl::Milliseconds(200));  // poll interval
    }
    return ::testing::AssertionFailure()
           << "committed offsets add up to " << sum << ", want " << total;
  }

  // Produces values v-<from>..v-<to-1> with keys, acks=all, through the CLI.
  void Produce(int from, int to) {
    std::string lines;
    for (int i = from; i < to; ++i) absl::StrAppend(&lines, "k", i, ":v-", i, "\n");
    absl::StatusOr<CommandResult> r =
        cluster_->RunCli({"produce", "orders", "--key-separator", ":", "--acks", "all"}, lines);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->exit.ExitedWith(0)) << r->Describe();
  }

  // Waits until the consumers (all of them, dead ones' output included) have
  // printed every value below `n`.
  void WaitAllRead(int n, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    std::set<std::string> values;
    while (absl::Now() < deadline) {
      values.clear();
      for (const auto& c : consumers_) {
        for (const Seen& s : c->Records()) values.insert(s.value);
      }
      int missing = 0;
      for (int i = 0; i < n; ++i) missing += values.contains(absl::StrCat("v-", i)) ? 0 : 1;
      if (missing == 0) return;
      absl::SleepFor(absl::Milliseconds(100));  // poll interval
    }
    FAIL() << "consumers read " << values.size() << " distinct values, want all " << n;
  }

  std::string dir_;
  std::string cli_;
  std::unique_ptr<Cluster> cluster_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<GroupConsumer>> consumers_;
};

TEST_F(GroupClusterTest, ShareRebalanceOnConsumerKillAndSurviveCoordinatorKill) {
  constexpr char kGroup[] = "orders-group";
  for (int i = 0; i < 3; ++i) {
    consumers_.push_back(std::make_unique<GroupConsumer>(cli_, cluster_->bootstrap(), dir_,
                                                         absl::StrCat("consumer-", i), "orders",
                                                         kGroup));
  }
  // 1. Three members, disjoint assignments covering all six partitions.
  absl::StatusOr<fjord::v1::DescribeGroupResponse> stable =
      WaitStable(kGroup, 3, absl::Seconds(60));
  ASSERT_TRUE(stable.ok()) << stable.status();
  for (const auto& m : stable->members()) {
    ASSERT_EQ(m.assignment_size(), 1);
    EXPECT_EQ(m.assignment(0).partitions_size(), 2) << m.ShortDebugString();
  }
  Produce(0, 600);
  WaitAllRead(600, absl::Seconds(60));
  std::map<int, PartitionSet> read_by;  // consumer -> partitions it read
  {
    std::map<std::string, int> times;
    for (int i = 0; i < 3; ++i) {
      for (const Seen& s : consumers_[i]->Records()) {
        ++times[s.value];
        read_by[i].insert(s.partition);
      }
    }
    int twice = 0;
    for (const auto& [v, n] : times) twice += n > 1 ? 1 : 0;
    EXPECT_EQ(times.size(), 600u);
    EXPECT_EQ(twice, 0) << "no record is read twice while the membership is stable";
    PartitionSet all;
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(read_by[i].size(), 2u) << "consumer-" << i << " read from "
                                        << absl::StrJoin(read_by[i], ",");
      for (int32_t p : read_by[i]) EXPECT_TRUE(all.insert(p).second) << "partition " << p;
    }
    std::cout << "phase 1: 3 consumers read 600 records, each from 2 partitions, none twice\n";
  }

  // 2. SIGKILL consumer 2: its partitions move to the others within the session
  // timeout (6 s), and they resume from its last committed offsets. First let
  // the auto-commit (every 5 s) record what everyone read, so that "resumes from
  // the committed offset" is not "starts from the beginning".
  ASSERT_TRUE(WaitCommitted(kGroup, 600, absl::Seconds(30)));
  ASSERT_OK(consumers_[2]->process().Kill());
  const absl::Time killed_at = absl::Now();
  std::map<int32_t, int64_t> committed_at_kill;
  {
    // Nobody else owns its partitions until its session expires, so their
    // committed offsets cannot move meanwhile.
    absl::StatusOr<fjord::v1::DescribeGroupResponse> d = DescribeGroup(kGroup);
    ASSERT_TRUE(d.ok()) << d.status();
    for (const auto& c : d->offsets()) {
      if (read_by[2].contains(c.partition())) committed_at_kill[c.partition()] = c.offset();
    }
  }
  stable = WaitStable(kGroup, 2, absl::Seconds(30));
  ASSERT_TRUE(stable.ok()) << stable.status();
  const absl::Duration moved_after = absl::Now() - killed_at;
  std::cout << "phase 2: consumer-2's partitions " << absl::StrJoin(read_by[2], ",")
            << " were reassigned " << absl::FormatDuration(moved_after)
            << " after its SIGKILL (session timeout 6 s)\n";
  // How long the handover took is a measurement, printed above, not an
  // assertion: on a loaded machine it may exceed the session timeout plus one
  // heartbeat interval. The deadline above bounds the wait.
  Produce(600, 1200);
  WaitAllRead(1200, absl::Seconds(60));
  {
    // For each partition consumer 2 had, the first record the others read from it
    // after the kill is at the committed offset: nothing skipped.
    std::map<int32_t, int64_t> first_after;
    for (int i = 0; i < 2; ++i) {
      for (const Seen& s : consumers_[i]->Records()) {
        if (!read_by[2].contains(s.partition)) continue;
        auto [it, fresh] = first_after.emplace(s.partition, s.offset);
        if (!fresh) it->second = std::min(it->second, s.offset);
      }
    }
    for (int32_t p : read_by[2]) {
      ASSERT_TRUE(committed_at_kill.contains(p)) << "consumer-2 committed nothing for " << p;
      EXPECT_EQ(first_after[p], committed_at_kill[p]) << "partition " << p;
      std::cout << "phase 2: partition " << p << " resumed at committed offset "
                << committed_at_kill[p] << "\n";
    }
  }

  // 3. SIGKILL the coordinator's broker: committed offsets are intact at the new
  // coordinator, and the consumers carry on.
  absl::StatusOr<fjord::v1::FindCoordinatorResponse> coordinator = Coordinator(kGroup);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  // Let the auto-commits after phase 2 land, then remember the offsets.
  absl::StatusOr<fjord::v1::DescribeGroupResponse> before = DescribeGroup(kGroup);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_OK(cluster_->Kill(absl::StrCat("broker-", coordinator->coordinator_id())));
  std::cout << "phase 3: killed broker-" << coordinator->coordinator_id()
            << ", the coordinator of " << kGroup << "\n";
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  absl::StatusOr<fjord::v1::DescribeGroupResponse> after;
  while (absl::Now() < deadline) {
    absl::StatusOr<fjord::v1::FindCoordinatorResponse> c = Coordinator(kGroup);
    if (c.ok() && c->coordinator_id() != coordinator->coordinator_id()) {
      after = DescribeGroup(kGroup);
      if (after.ok()) break;
    }
    absl::SleepFor(absl::Milliseconds(100));  // poll interval
  }
  ASSERT_TRUE(after.ok()) << "no new coordinator answered: " << after.status();
  std::map<int32_t, int64_t> old_offsets, new_offsets;
  for (const auto& c : before->offsets()) old_offsets[c.partition()] = c.offset();
  for (const auto& c : after->offsets()) new_offsets[c.partition()] = c.offset();
  for (const auto& [p, off] : old_offsets) {
    EXPECT_GE(new_offsets[p], off) << "partition " << p << ": a committed offset went back";
  }
  std::cout << "phase 3: broker-" << after->coordinator_id() << " coordinates now; "
            << after->offsets_size() << " committed offsets intact\n";
  Produce(1200, 1500);
  WaitAllRead(1500, absl::Seconds(90));
  // Everything read is committed eventually (auto-commit every 5 s).
  EXPECT_TRUE(WaitCommitted(kGroup, 1500, absl::Seconds(30)));
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(consumers_[i]->process().Running());
}

// The seed article's consumer, with the CLI: group items-group, earliest,
// auto-commit, stop after an idle timeout; a second run continues where the
// first left off.
TEST(GroupSeedFlowTest, CliContinuesWhereItLeftOff) {
  BrokerProcess::Options o;
  o.extra_args = {"--create-topics=test-topic:5:1"};
  BrokerProcess broker(o);
  ASSERT_OK(broker.Start());
  auto produce = [&](int from, int to) {
    std::string lines;
    for (int i = from; i < to; ++i) absl::StrAppend(&lines, "item-", i, "\n");
    absl::StatusOr<CommandResult> r = broker.RunCli({"produce", "test-topic"}, lines);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->exit.ExitedWith(0)) << r->Describe();
  };
  auto consume = [&]() -> std::multiset<std::string> {
    absl::StatusOr<CommandResult> r = broker.RunCli(
        {"consume", "test-topic", "--group", "items-group", "--from-beginning", "--timeout-ms",
         "3000"});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    EXPECT_TRUE(r->exit.ExitedWith(0)) << r->Describe();
    std::multiset<std::string> lines;
    for (absl::string_view l : absl::StrSplit(r->out, '\n', absl::SkipEmpty())) {
      lines.insert(std::string(l));
    }
    return lines;
  };
  produce(0, 100);
  std::multiset<std::string> first = consume();
  EXPECT_EQ(first.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(first.count(absl::StrCat("item-", i)), 1u) << i;
  produce(100, 150);
  std::multiset<std::string> second = consume();
  EXPECT_EQ(second.size(), 50u) << "the second run starts where the first left off";
  for (int i = 100; i < 150; ++i) EXPECT_EQ(second.count(absl::StrCat("item-", i)), 1u) << i;
  EXPECT_TRUE(consume().empty()) << "nothing new, nothing read";
  // The group shows in `fjord group list` and `describe` with zero lag.
  absl::StatusOr<CommandResult> list = broker.RunCli({"group", "list"});
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->exit.ExitedWith(0)) << list->Describe();
  EXPECT_NE(list->out.find("items-group"), std::string::npos) << list->out;
}

// The same flow with the C++ client library: a Consumer with group_id
// items-group, earliest, auto-commit, polling until one idle period passes, then
// Close(); a second Consumer continues where the first left off.
TEST(GroupSeedFlowTest, CppConsumerContinuesWhereItLeftOff) {
  BrokerProcess::Options o;
  o.extra_args = {"--create-topics=test-topic:5:1"};
  BrokerProcess broker(o);
  ASSERT_OK(broker.Start());
  auto produce = [&](int from, int to) {
    std::string lines;
    for (int i = from; i < to; ++i) absl::StrAppend(&lines, "item-", i, "\n");
    absl::StatusOr<CommandResult> r = broker.RunCli({"produce", "test-topic"}, lines);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->exit.ExitedWith(0)) << r->Describe();
  };
  client::ClientOptions co;
  co.bootstrap = broker.address();
  absl::StatusOr<std::shared_ptr<client::Cluster>> cluster = client::Cluster::Create(co);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  // Reads until `idle` passes without a record (the seed's consumer_timeout_ms),
  // at most 60 s, then closes (committing and leaving).
  auto consume = [&](absl::Duration idle) -> std::multiset<std::string> {
    client::ConsumerOptions opts;
    opts.group_id = "items-group";
    opts.auto_offset_reset = client::OffsetReset::kEarliest;
    opts.enable_auto_commit = true;
    std::multiset<std::string> values;
    absl::StatusOr<std::unique_ptr<client::Consumer>> consumer =
        client::Consumer::Create(*cluster, opts);
    EXPECT_TRUE(consumer.ok()) << consumer.status();
    if (!consumer.ok()) return values;
    EXPECT_OK_STATUS((*consumer)->Subscribe({"test-topic"}));
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    absl::Time last_record = absl::Now();
    while (absl::Now() - last_record < idle && absl::Now() < deadline) {
      absl::StatusOr<std::vector<client::ConsumerRecord>> records =
          (*consumer)->Poll(absl::Milliseconds(200));
      EXPECT_TRUE(records.ok()) << records.status();
      if (!records.ok()) break;
      if (!records->empty()) last_record = absl::Now();
      for (const client::ConsumerRecord& r : *records) values.insert(r.value);
    }
    EXPECT_OK_STATUS((*consumer)->Close());
    return values;
  };
  produce(0, 100);
  std::multiset<std::string> first = consume(absl::Seconds(3));
  EXPECT_EQ(first.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(first.count(absl::StrCat("item-", i)), 1u) << i;
  produce(100, 150);
  std::multiset<std::string> second = consume(absl::Seconds(3));
  EXPECT_EQ(second.size(), 50u) << "the second consumer starts where the first left off";
  for (int i = 100; i < 150; ++i) EXPECT_EQ(second.count(absl::StrCat("item-", i)), 1u) << i;
  EXPECT_TRUE(consume(absl::Seconds(2)).empty()) << "nothing new, nothing read";
}

}  // namespace
}  // namespace fjord::testing
