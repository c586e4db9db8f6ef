#include "integration_tests/chaos/nemesis.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "fjord/internal/v1/controller.grpc.pb.h"
#include "fjord/v1/record.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/client_context.h"
#include "integration_tests/chaos/disk_damage.h"

namespace fjord::testing::chaos {
namespace {

// SplitMix64: small, fast, and the same sequence everywhere, unlike the
// implementation-defined std:: distributions.
class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) (the modulo bias is irrelevant for n this small).
  uint64_t Below(uint64_t n) { return Next() % n; }
  // Uniform in [lo, hi], in milliseconds.
  absl::Duration Between(absl::Duration lo, absl::Duration hi) {
    const int64_t lo_ms = absl::ToInt64Milliseconds(lo);
    const int64_t hi_ms = absl::ToInt64Milliseconds(hi);
    return absl::Milliseconds(lo_ms +
                              static_cast<int64_t>(Below(hi_ms - lo_ms + 1)));
  }

 private:
  uint64_t state_;
};

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d));
}

int RestartsOf(FaultKind kind, int brokers) {
  switch (kind) {
    case FaultKind::kPauseLeader:
    case FaultKind::kPauseController:
      return 0;
    case FaultKind::kKillAllBrokers:
      return brokers;
    default:
      return IsNetworkFault(kind) || IsClockFault(kind) ? 0 : 1;
  }
}

bool OneOf(FaultKind kind, const std::vector<FaultKind>& kinds) {
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

std::string Braced(const std::vector<std::string>& nodes) {
  return absl::StrCat("{", absl::StrJoin(nodes, ","), "}");
}

}  // namespace

const std::vector<FaultKind>& AllFaultKinds() {
  static const auto* kinds = new std::vector<FaultKind>{
      FaultKind::kKillBroker,      FaultKind::kKillLeader,
      FaultKind::kKillController,  FaultKind::kPauseLeader,
      FaultKind::kPauseController, FaultKind::kTerminateBroker,
      FaultKind::kKillAllBrokers,
  };
  return *kinds;
}

const std::vector<FaultKind>& NetworkFaultKinds() {
  static const auto* kinds = new std::vector<FaultKind>{
      FaultKind::kIsolateBroker,     FaultKind::kIsolateLeaderFromFollowers,
      FaultKind::kIsolateController, FaultKind::kSplitMajorityMinority,
      FaultKind::kBridgePartition,   FaultKind::kBrokersFromControllers,
  };
  return *kinds;
}

const std::vector<FaultKind>& ClockFaultKinds() {
  static const auto* kinds = new std::vector<FaultKind>{
      FaultKind::kClockJumpLeader,
      FaultKind::kClockJumpController,
      FaultKind::kClockSkewAll,
  };
  return *kinds;
}

bool IsClockFault(FaultKind kind) { return OneOf(kind, ClockFaultKinds()); }

const std::vector<FaultKind>& DiskFaultKinds() {
  static const auto* kinds = new std::vector<FaultKind>{
      FaultKind::kDamageStore,
      FaultKind::kLoseUnsynced,
  };
  return *kinds;
}

bool IsDiskFault(FaultKind kind) { return OneOf(kind, DiskFaultKinds()); }

bool IsNetworkFault(FaultKind kind) { return OneOf(kind, NetworkFaultKinds()); }

const char* FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKillBroker:
      return "kill-broker";
    case FaultKind::kKillLeader:
      return "kill-leader";
    case FaultKind::kKillController:
      return "kill-controller";
    case FaultKind::kPauseLeader:
      return "pause-leader";
    case FaultKind::kPauseController:
      return "pause-controller";
    case FaultKind::kTerminateBroker:
      return "terminate-broker";
    case FaultKind::kKillAllBrokers:
      return "kill-all-brokers";
    case FaultKind::kIsolateBroker:
      return "isolate-broker";
    case FaultKind::kIsolateLeaderFromFollowers:
      return "isolate-leader-from-followers";
    case FaultKind::kIsolateController:
      return "isolate-controller";
    case FaultKind::kSplitMajorityMinority:
      return "split-majority-minority";
    case FaultKind::kBridgePartition:
      return "bridge-partition";
    case FaultKind::kBrokersFromControllers:
      return "brokers-from-controllers";
    case FaultKind::kClockJumpLeader:
      return "clock-jump-leader";
    case FaultKind::kClockJumpController:
      return "clock-jump-controller";
    case FaultKind::kClockSkewAll:
      return "clock-skew-all";
    case FaultKind::kDamageStore:
      return "damage-store";
    case FaultKind::kLoseUnsynced:
      return "lose-unsynced";
  }
  return "?";
}

std::string ScheduledFault::ToString(const std::string& topic) const {
  std::string target;
  switch (kind) {
    case FaultKind::kKillBroker:
    case FaultKind::kTerminateBroker:
      target = absl::StrCat("broker-", broker);
      break;
    case FaultKind::kKillLeader:
    case FaultKind::kPauseLeader:
      target = absl::StrCat("leader(", topic, "/", partition, ")");
      break;
    case FaultKind::kKillController:
    case FaultKind::kPauseController:
      target = "active-controller";
      break;
    case FaultKind::kKillAllBrokers:
      target = "all-brokers";
      break;
    case FaultKind::kIsolateBroker:
      target = absl::StrCat("broker-", broker, "|rest");
      break;
    case FaultKind::kIsolateLeaderFromFollowers:
      target = absl::StrCat("leader(", topic, "/", partition, ")|followers");
      break;
    case FaultKind::kIsolateController:
      target = "active-controller|rest";
      break;
    case FaultKind::kSplitMajorityMinority:
      target = absl::StrCat(Braced(side_a), "|rest");
      break;
    case FaultKind::kBridgePartition:
      target =
          absl::StrCat(Braced(side_a), "|", Braced(side_b), ",bridge=", bridge);
      break;
    case FaultKind::kBrokersFromControllers:
      target = "brokers|controllers";
      break;
    case FaultKind::kClockJumpLeader:
      target = absl::StrCat("leader(", topic, "/", partition, ")");
      break;
    case FaultKind::kClockJumpController:
      target = "active-controller";
      break;
    case FaultKind::kClockSkewAll:
      target = "all-nodes";
      break;
    case FaultKind::kDamageStore:
    case FaultKind::kLoseUnsynced:
      target = absl::StrCat("broker-", broker);
      break;
  }
  if (!offsets.empty()) {
    std::vector<std::string> shown;
    for (absl::Duration d : offsets) shown.push_back(FaketimeOffset(d));
    absl::StrAppend(&target, ",offset=", absl::StrJoin(shown, "/"));
  }
  return absl::StrCat("t=+", Seconds(at), " #", index, " ", FaultKindName(kind),
                      " target=", target, " hold=", Seconds(hold),
                      " gap=", Seconds(gap));
}

std::vector<ScheduledFault> MakeSchedule(uint64_t seed,
                                         const ScheduleOptions& options) {
  SeededRandom random(seed);
  const std::vector<FaultKind>& base =
      options.kinds.empty() ? AllFaultKinds() : options.kinds;
  std::vector<FaultKind> kinds;
  for (int i = 0; i < options.faults_per_kind; ++i) {
    for (FaultKind kind : base) kinds.push_back(kind);
  }
  // Fisher-Yates.
  for (size_t i = kinds.size(); i > 1; --i) {
    std::swap(kinds[i - 1], kinds[random.Below(i)]);
  }
  std::vector<ScheduledFault> schedule;
  absl::Duration at = absl::Seconds(2);  // let the workload warm up
  for (size_t i = 0; i < kinds.size(); ++i) {
    ScheduledFault f;
    f.index = static_cast<int>(i);
    f.at = at;
    f.kind = kinds[i];
    f.broker = 1 + static_cast<int>(random.Below(options.brokers));
    f.partition = static_cast<int>(random.Below(options.partitions));
    switch (f.kind) {
      case FaultKind::kPauseLeader:
        f.hold = random.Between(options.session_timeout * 1.2,
                                options.session_timeout * 1.7);
        break;
      case FaultKind::kPauseController:
        f.hold = random.Between(options.max_election_timeout * 1.2,
                                options.max_election_timeout * 1.7);
        break;
      case FaultKind::kIsolateBroker:
      case FaultKind::kBrokersFromControllers:
        f.hold = random.Between(options.session_timeout * 0.5,
                                options.session_timeout * 1.7);
        break;
      case FaultKind::kIsolateLeaderFromFollowers:
        f.hold = random.Between(options.replica_lag * 1.2,
                                options.replica_lag * 1.7);
        break;
      case FaultKind::kIsolateController:
        f.hold = random.Between(options.max_election_timeout * 1.2,
                                options.session_timeout * 1.7);
        break;
      case FaultKind::kSplitMajorityMinority:
      case FaultKind::kBridgePartition:
        f.hold = random.Between(options.session_timeout * 1.2,
                                options.session_timeout * 1.7);
        break;
      case FaultKind::kClockJumpLeader:
      case FaultKind::kClockJumpController:
      case FaultKind::kClockSkewAll:
        f.hold = random.Between(options.session_timeout * 1.2,
                                options.session_timeout * 2);
        break;
      default:
        f.hold = random.Between(absl::Milliseconds(500), absl::Seconds(2));
    }
    f.gap = random.Between(absl::Milliseconds(1500), absl::Seconds(3));
    // Sides of network faults: drawn only for them, so that schedules of
    // process faults draw exactly what they did before network faults existed.
    if (IsNetworkFault(f.kind)) {
      const int controller =
          1 + static_cast<int>(random.Below(std::max(options.controllers, 1)));
      const int brokers = std::min(options.brokers, 30);
      uint64_t mask = random.Below(uint64_t{1} << brokers);
      // A bridge partition with every broker on one side: move the
      // seed-chosen broker over, so that each side has one.
      if (brokers > 1 && (mask == 0 || mask == (uint64_t{1} << brokers) - 1)) {
        mask ^= uint64_t{1} << (f.broker - 1);
      }
      if (f.kind == FaultKind::kSplitMajorityMinority) {
        f.side_a = {absl::StrCat("controller-", controller),
                    absl::StrCat("broker-", f.broker)};
      } else if (f.kind == FaultKind::kBridgePartition) {
        f.bridge = absl::StrCat("controller-", controller);
        int other = 0;
        for (int c = 1; c <= options.controllers; ++c) {
          if (c == controller) continue;
          (other++ % 2 == 0 ? f.side_a : f.side_b)
              .push_back(absl::StrCat("controller-", c));
        }
        for (int b = 1; b <= options.brokers; ++b) {
          ((mask >> (b - 1)) & 1 ? f.side_b : f.side_a)
              .push_back(absl::StrCat("broker-", b));
        }
      }
    }
    // Offsets of clock faults, likewise drawn only for them.
    if (f.kind == FaultKind::kClockJumpLeader ||
        f.kind == FaultKind::kClockJumpController) {
      const absl::Duration jump =
          random.Between(absl::Seconds(20), absl::Minutes(10));
      f.offsets = {random.Below(2) == 0 ? jump : -jump};
    } else if (f.kind == FaultKind::kClockSkewAll) {
      for (int n = 0; n < options.controllers + options.brokers; ++n) {
        const absl::Duration skew =
            random.Between(absl::Seconds(1), absl::Minutes(2));
        f.offsets.push_back(random.Below(2) == 0 ? skew : -skew);
      }
    } else if (f.kind == FaultKind::kDamageStore) {
      f.damage = random.Next();
    }
    at += f.hold +
          options.planned_restart * RestartsOf(f.kind, options.brokers) + f.gap;
    schedule.push_back(f);
  }
  return schedule;
}

std::string FormatSchedule(const std::vector<ScheduledFault>& schedule,
                           const std::string& topic) {
  std::string out;
  for (const ScheduledFault& f : schedule) {
    absl::StrAppend(&out, f.ToString(topic), "\n");
  }
  return out;
}

Nemesis::Nemesis(Cluster* cluster, ChaosClient* client, History* history,
                 std::string topic, std::ostream* log, NetworkControl* network,
                 ClockSkew* clock)
    : cluster_(cluster),
      client_(client),
      history_(history),
      topic_(std::move(topic)),
      log_(log),
      network_(network),
      clock_(clock),
      start_(absl::Now()) {}

std::vector<std::string> Nemesis::AllNodes() const {
  std::vector<std::string> nodes;
  for (const NodeInfo& n : cluster_->nodes()) nodes.push_back(n.name);
  return nodes;
}

double Nemesis::Since(absl::Time t) const {
  return absl::ToDoubleSeconds(t - start_);
}

absl::StatusOr<std::string> Nemesis::ActiveController(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last = "no controller answered";
  while (absl::Now() < deadline) {
    for (int id = 1; id <= cluster_->controllers(); ++id) {
      const std::string name = absl::StrCat("controller-", id);
      if (cluster_->State(name) != NodeState::kRunning) continue;
      auto stub = fjord::internal::v1::ControllerService::NewStub(
          MakeChaosChannel(cluster_->Find(name)->address()));
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
      fjord::internal::v1::DescribeQuorumRequest req;
      fjord::internal::v1::DescribeQuorumResponse resp;
      grpc::Status s = stub->DescribeQuorum(&ctx, req, &resp);
      int leader = s.ok() ? resp.leader_id() : 0;
      if (!s.ok() && !s.error_details().empty()) {
        google::rpc::Status details;
        if (details.ParseFromString(s.error_details())) {
          for (const auto& any : details.details()) {
            fjord::v1::ErrorInfo info;
            if (any.UnpackTo(&info)) leader = info.leader_id();
          }
        }
      }
      if (leader > 0 && leader <= cluster_->controllers()) {
        return absl::StrCat("controller-", leader);
      }
      last = absl::StrCat(name, ": ", s.error_code(), " ", s.error_message());
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::UnavailableError(absl::StrCat("no active controller: ", last));
}

absl::StatusOr<std::string> Nemesis::LeaderOf(int partition,
                                              absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < deadline) {
    absl::StatusOr<fjord::v1::TopicInfo> info = client_->Describe(topic_);
    if (info.ok() && partition < info->partitions_size() &&
        info->partitions(partition).leader_id() > 0) {
      return absl::StrCat("broker-", info->partitions(partition).leader_id());
    }
    last = info.ok() ? "no leader" : std::string(info.status().message());
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::UnavailableError(
      absl::StrCat("no leader for ", topic_, "/", partition, ": ", last));
}

void Nemesis::RestartNode(const std::string& node, std::string* note) {
  absl::Status s = cluster_->Restart(node);
  if (!s.ok()) {
    absl::StrAppend(note, "restart ", node, ": ", s.message(), "; ");
    s = cluster_->Restart(node);
    if (!s.ok()) absl::StrAppend(note, "second restart: ", s.message(), "; ");
  }
}

void Nemesis::ExecuteNetwork(const ScheduledFault& fault, FaultRecord* record) {
  std::string& note = record->note;
  const std::vector<std::string> all = AllNodes();
  auto rest_of = [&all](const std::vector<std::string>& group) {
    std::vector<std::string> rest;
    for (const std::string& n : all) {
      if (std::find(group.begin(), group.end(), n) == group.end()) {
        rest.push_back(n);
      }
    }
    return rest;
  };
  std::vector<std::string> controllers, brokers;
  for (const NodeInfo& n : cluster_->nodes()) {
    (n.role == NodeRole::kController ? controllers : brokers).push_back(n.name);
  }
  std::vector<NodeCut> cuts;
  switch (fault.kind) {
    case FaultKind::kIsolateBroker: {
      const std::string node = absl::StrCat("broker-", fault.broker);
      cuts.emplace_back(std::vector<std::string>{node}, rest_of({node}));
      break;
    }
    case FaultKind::kIsolateLeaderFromFollowers: {
      absl::StatusOr<std::string> leader =
          LeaderOf(fault.partition, absl::Seconds(10));
      if (!leader.ok()) {
        absl::StrAppend(&note, "find leader: ", leader.status().message(),
                        "; ");
        break;
      }
      std::vector<std::string> followers;
      absl::StatusOr<fjord::v1::TopicInfo> info = client_->Describe(topic_);
      if (info.ok() && fault.partition < info->partitions_size()) {
        for (int32_t id : info->partitions(fault.partition).replicas()) {
          const std::string name = absl::StrCat("broker-", id);
          if (name != *leader) followers.push_back(name);
        }
      }
      if (followers.empty()) {
        absl::StrAppend(&note, "no followers of ", topic_, "/", fault.partition,
                        " known; ");
        break;
      }
      cuts.emplace_back(std::vector<std::string>{*leader}, followers);
      break;
    }
    case FaultKind::kIsolateController: {
      absl::StatusOr<std::string> active = ActiveController(absl::Seconds(10));
      if (!active.ok()) {
        absl::StrAppend(
            &note, "find active controller: ", active.status().message(), "; ");
        break;
      }
      cuts.emplace_back(std::vector<std::string>{*active}, rest_of({*active}));
      break;
    }
    case FaultKind::kSplitMajorityMinority:
      cuts.emplace_back(fault.side_a, rest_of(fault.side_a));
      break;
    case FaultKind::kBridgePartition:
      cuts.emplace_back(fault.side_a, fault.side_b);
      break;
    case FaultKind::kBrokersFromControllers:
      cuts.emplace_back(brokers, controllers);
      break;
    default:
      break;
  }
  std::vector<std::string> described;
  for (const auto& [a, b] : cuts) {
    described.push_back(
        absl::StrCat(absl::StrJoin(a, ","), "|", absl::StrJoin(b, ",")));
  }
  record->target = absl::StrJoin(described, " ");
  if (!fault.bridge.empty()) {
    absl::StrAppend(&record->target, ",bridge=", fault.bridge);
  }
  record->started = absl::Now();
  record->healed = absl::InfiniteFuture();
  if (network_ == nullptr) {
    absl::StrAppend(&note,
                    "no network topology (network faults need the cluster "
                    "in namespaces: root); ");
    return;
  }
  if (cuts.empty()) return;
  if (absl::Status s = network_->Cut(cuts); !s.ok()) {
    absl::StrAppend(&note, "cut: ", s.message(), "; ");
    (void)network_->Heal();
    return;
  }
  LogInjected(*record);
  absl::SleepFor(fault.hold);
  absl::Status healed = network_->Heal();
  if (!healed.ok()) {
    absl::StrAppend(&note, "heal: ", healed.message(), "; ");
    healed = network_->Heal();
    if (!healed.ok())
      absl::StrAppend(&note, "second heal: ", healed.message(), "; ");
  }
  if (healed.ok()) record->healed = absl::Now();
  LogHealed(*record, healed.ok());
}

void Nemesis::ExecuteClock(const ScheduledFault& fault, FaultRecord* record) {
  std::string& note = record->note;
  // (node, offset) pairs to set.
  std::vector<std::pair<std::string, absl::Duration>> moves;
  switch (fault.kind) {
    case FaultKind::kClockJumpLeader: {
      absl::StatusOr<std::string> leader =
          LeaderOf(fault.partition, absl::Seconds(10));
      if (!leader.ok()) {
        absl::StrAppend(&note, "find leader: ", leader.status().message(),
                        "; ");
        break;
      }
      moves.emplace_back(*leader, fault.offsets.at(0));
      break;
    }
    case FaultKind::kClockJumpController: {
      absl::StatusOr<std::string> active = ActiveController(absl::Seconds(10));
      if (!active.ok()) {
        absl::StrAppend(
            &note, "find active controller: ", active.status().message(), "; ");
        break;
      }
      moves.emplace_back(*active, fault.offsets.at(0));
      break;
    }
    case FaultKind::kClockSkewAll: {
      const std::vector<std::string> all = AllNodes();
      for (size_t i = 0; i < all.size() && i < fault.offsets.size(); ++i) {
        moves.emplace_back(all[i], fault.offsets[i]);
      }
      break;
    }
    default:
      break;
  }
  std::vector<std::string> described;
  for (const auto& [node, offset] : moves) {
    described.push_back(absl::StrCat(node, FaketimeOffset(offset)));
  }
  record->target = absl::StrJoin(described, ",");
  record->started = absl::Now();
  record->healed = absl::InfiniteFuture();
  if (clock_ == nullptr) {
    absl::StrAppend(&note,
                    "no clock control (clock faults need the nodes under "
                    "libfaketime: ClockSkew); ");
    return;
  }
  if (moves.empty()) return;
  for (const auto& [node, offset] : moves) {
    if (absl::Status s = clock_->Set(node, offset); !s.ok()) {
      absl::StrAppend(&note, "set clock of ", node, ": ", s.message(), "; ");
    }
  }
  LogInjected(*record);
  absl::SleepFor(fault.hold);
  absl::Status healed = clock_->ResetAll();
  if (!healed.ok()) absl::StrAppend(&note, "heal: ", healed.message(), "; ");
  if (healed.ok()) record->healed = absl::Now();
  LogHealed(*record, healed.ok());
}

void Nemesis::LogInjected(const FaultRecord& record) const {
  *log_ << absl::StrFormat("nemesis %6.1fs #%d %s %s: injected\n", Since(record.started),
                           record.index, record.kind, record.target)
        << std::flush;
}

void Nemesis::LogHealed(const FaultRecord& record, bool complete) const {
  *log_ << absl::StrFormat("nemesis %6.1fs #%d %s %s: healed%s%s\n", Since(absl::Now()),
                           record.index, record.kind, record.target,
                           complete ? "" : " (INCOMPLETE)",
                           record.note.empty() ? "" : absl::StrCat(" notes: ", record.note))
        << std::flush;
}

void Nemesis::SetDiskFaults(std::string drop_unsynced, std::vector<std::string> topics) {
  drop_unsynced_ = std::move(drop_unsynced);
  disk_topics_ = std::move(topics);
}

bool Nemesis::WaitForFullIsr(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    bool full = true;
    for (const std::string& topic : disk_topics_) {
      absl::StatusOr<fjord::v1::TopicInfo> info = client_->Describe(topic);
      if (!info.ok()) {
        full = false;
        break;
      }
      for (const auto& p : info->partitions()) {
        full &= p.leader_id() > 0 && p.isr_size() == p.replicas_size();
      }
    }
    if (full) return true;
    absl::SleepFor(absl::Milliseconds(200));  // poll interval
  }
  return false;
}


void Nemesis::ExecuteDisk(const ScheduledFault& fault, FaultRecord* record) {
  std::string& note = record->note;
  const std::string node = absl::StrCat("broker-", fault.broker);
  record->target = node;
  record->started = absl::Now();
  record->healed = absl::InfiniteFuture();
  if (drop_unsynced_.empty()) {
    absl::StrAppend(&note, "disk faults not enabled (SetDiskFaults); ");
    return;
  }
  const NodeInfo* info = cluster_->Find(node);
  if (info == nullptr) {
    absl::StrAppend(&note, "no node ", node, "; ");
    return;
  }
  if (absl::Status s = cluster_->Kill(node); !s.ok()) {
    absl::StrAppend(&note, "kill ", node, ": ", s.message(), "; ");
    return;
  }
  std::string what;
  if (fault.kind == FaultKind::kLoseUnsynced) {
    absl::StatusOr<CommandResult> dropped = RunCommand(
        drop_unsynced_, {info->data_dir + ".sync-journal"}, "", absl::Seconds(30));
    if (!dropped.ok() || !dropped->exit.ExitedWith(0)) {
      absl::StrAppend(&note, "drop-unsynced: ",
                      dropped.ok() ? dropped->err : std::string(dropped.status().message()),
                      "; ");
    } else {
      what = std::string(absl::StripTrailingAsciiWhitespace(dropped->out));
    }
  } else {
    // A table file when there is one and the seed says so (or there is no
    // WAL), else the write-ahead log; a table file is flipped or cut to half.
    std::optional<std::filesystem::path> table = LargestFile(info->data_dir, ".sst");
    std::optional<std::filesystem::path> wal = LargestFile(info->data_dir, ".log");
    const bool use_table = table.has_value() && (!wal.has_value() || fault.damage % 2 == 0);
    const std::optional<std::filesystem::path>& file = use_table ? table : wal;
    if (!file.has_value()) {
      absl::StrAppend(&note, "no table file or WAL in ", info->data_dir, "; ");
    } else if (use_table && (fault.damage / 2) % 2 == 0) {
      std::error_code ec;
      std::filesystem::resize_file(*file, std::filesystem::file_size(*file) / 2, ec);
      if (ec) absl::StrAppend(&note, "truncate ", file->string(), ": ", ec.message(), "; ");
      what = absl::StrCat("cut ", file->filename().string(), " to half");
    } else {
      absl::Status s = FlipMiddleBit(*file);
      if (!s.ok()) absl::StrAppend(&note, s.message(), "; ");
      what = absl::StrCat("flipped a bit in ", file->filename().string());
    }
  }
  absl::StrAppend(&record->target, " (", what, ")");
  LogInjected(*record);
  absl::SleepFor(fault.hold);
  const size_t notes_before = note.size();
  RestartNode(node, &note);
  // One disk at a time: healed once the broker is back in every ISR.
  if (note.size() == notes_before && !WaitForFullIsr(absl::Seconds(60))) {
    absl::StrAppend(&note, "ISRs not full 60 s after the restart; ");
  }
  const bool healed = note.size() == notes_before;
  if (healed) record->healed = absl::Now();
  LogHealed(*record, healed);
}

void Nemesis::Execute(const ScheduledFault& fault, FaultRecord* record) {
  record->index = fault.index;
  record->kind = FaultKindName(fault.kind);
  if (IsNetworkFault(fault.kind)) {
    ExecuteNetwork(fault, record);
    return;
  }
  if (IsClockFault(fault.kind)) {
    ExecuteClock(fault, record);
    return;
  }
  if (IsDiskFault(fault.kind)) {
    ExecuteDisk(fault, record);
    return;
  }
  std::string& note = record->note;
  auto check = [&](const std::string& what, const absl::Status& s) {
    if (!s.ok()) absl::StrAppend(&note, what, ": ", s.message(), "; ");
    return s.ok();
  };
  std::vector<std::string> targets;
  switch (fault.kind) {
    case FaultKind::kKillBroker:
    case FaultKind::kTerminateBroker:
      targets.push_back(absl::StrCat("broker-", fault.broker));
      break;
    case FaultKind::kKillLeader:
    case FaultKind::kPauseLeader: {
      absl::StatusOr<std::string> leader =
          LeaderOf(fault.partition, absl::Seconds(10));
      if (check("find leader", leader.status())) targets.push_back(*leader);
      break;
    }
    case FaultKind::kKillController:
    case FaultKind::kPauseController: {
      absl::StatusOr<std::string> active = ActiveController(absl::Seconds(10));
      if (check("find active controller", active.status())) {
        targets.push_back(*active);
      }
      break;
    }
    case FaultKind::kKillAllBrokers:
      for (int id = 1; id <= cluster_->brokers(); ++id) {
        targets.push_back(absl::StrCat("broker-", id));
      }
      break;
    default:  // network faults: ExecuteNetwork
      break;
  }
  record->target = absl::StrJoin(targets, ",");
  record->started = absl::Now();
  record->healed = absl::InfiniteFuture();
  if (targets.empty()) return;
  const bool pause = fault.kind == FaultKind::kPauseLeader ||
                     fault.kind == FaultKind::kPauseController;
  for (const std::string& node : targets) {
    if (pause) {
      check(absl::StrCat("pause ", node), cluster_->Pause(node));
    } else if (fault.kind == FaultKind::kTerminateBroker) {
      check(absl::StrCat("terminate ", node),
            cluster_->Terminate(node, absl::Seconds(15)));
    } else {
      check(absl::StrCat("kill ", node), cluster_->Kill(node));
    }
  }
  LogInjected(*record);
  absl::SleepFor(fault.hold);
  const size_t notes_before = note.size();
  for (const std::string& node : targets) {
    if (pause) {
      check(absl::StrCat("resume ", node), cluster_->Resume(node));
    } else {
      RestartNode(node, &note);
    }
  }
  // The heal is done once every target is running (and, restarted, SERVING).
  bool healed = note.size() == notes_before;
  for (const std::string& node : targets) {
    healed &= cluster_->State(node) == NodeState::kRunning;
  }
  if (healed) record->healed = absl::Now();
  LogHealed(*record, healed);
}

int Nemesis::Run(const std::vector<ScheduledFault>& schedule,
                 const std::atomic<bool>& stop, absl::Time deadline) {
  start_ = absl::Now();
  absl::Time ready = start_;  // earliest start of the next fault
  int executed = 0;
  for (const ScheduledFault& fault : schedule) {
    const absl::Time at = std::max(start_ + fault.at, ready);
    while (absl::Now() < at && !stop.load() && absl::Now() < deadline) {
      absl::SleepFor(std::min(absl::Milliseconds(100), at - absl::Now()));
    }
    if (stop.load() || absl::Now() >= deadline) {
      *log_ << "nemesis: out of time, skipping #" << fault.index
            << " and later\n";
      break;
    }
    FaultRecord record;
    Execute(fault, &record);
    ready = absl::Now() + fault.gap;
    history_->AddFault(std::move(record));
    ++executed;
  }
  return executed;
}

absl::Status Nemesis::HealAll(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string note;
  if (clock_ != nullptr) {
    if (absl::Status s = clock_->ResetAll(); !s.ok()) {
      absl::StrAppend(&note, "clock reset: ", s.message(), "; ");
    }
  }
  if (network_ != nullptr && network_->partitioned()) {
    if (absl::Status s = network_->Heal(); !s.ok()) {
      absl::StrAppend(&note, "network heal: ", s.message(), "; ");
    }
  }
  for (const NodeInfo& node : cluster_->nodes()) {
    switch (cluster_->State(node.name)) {
      case NodeState::kPaused:
        if (absl::Status s = cluster_->Resume(node.name); !s.ok()) {
          absl::StrAppend(&note, "resume ", node.name, ": ", s.message(), "; ");
        }
        break;
      case NodeState::kExited:
        RestartNode(node.name, &note);
        break;
      case NodeState::kRunning:
        break;
    }
  }
  for (const NodeInfo& node : cluster_->nodes()) {
    absl::Status s = cluster_->WaitServing(
        node.name, std::max(deadline - absl::Now(), absl::Seconds(1)));
    if (!s.ok()) absl::StrAppend(&note, node.name, ": ", s.message(), "; ");
  }
  if (!note.empty()) return absl::UnavailableError(note);
  return absl::OkStatus();
}

}  // namespace fjord::testing::chaos
