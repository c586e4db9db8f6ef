#include "controller/metadata/controller_logic.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/errors.h"
#include "broker/topic_config.h"
#include "controller/metadata/errors.h"
#include "controller/metadata/replica_placement.h"

namespace fjord::controller {
namespace {

using records::ControllerErrorInfo;
using V1Error = fjord::v1::ErrorInfo;

bool Contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

bool UncleanAllowed(const Topic& topic) {
  auto config = broker::TopicConfig::Parse(topic.configs);
  return config.ok() && config->unclean_leader_election_enable;
}

// The ELR that goes with `isr`, the next ISR of `current` (KIP-966). Empty
// once `isr` has `min_isr` members. Otherwise the current ELR plus the
// current ISR members that leave the ISR (with the high watermark held while
// the ISR is below min.insync.replicas, they hold every committed record),
// minus the members of `isr` and minus `forget` (new incarnations, which may
// have lost their disks), in replica order.
std::vector<int32_t> NextElr(const Partition& current,
                             const std::vector<int32_t>& isr, int32_t min_isr,
                             const std::set<int32_t>& forget) {
  std::vector<int32_t> elr;
  if (static_cast<int64_t>(isr.size()) >= min_isr) return elr;
  for (int32_t r : current.replicas) {
    if ((Contains(current.elr, r) || Contains(current.isr, r)) &&
        !Contains(isr, r) && !forget.contains(r)) {
      elr.push_back(r);
    }
  }
  return elr;
}

struct Election {
  int32_t leader = kNoLeader;
  std::vector<int32_t> isr;
  std::vector<int32_t> elr;
};

// Picks a leader for `current`, a partition that has none once its ISR is
// `isr` and its ELR `elr`, in KIP-966's order: the first replica, in replica
// order, that is in `isr` and eligible, keeping the ISR. Failing that, the
// first eligible ELR member, which forms the ISR alone: a clean election,
// since it holds every committed record; the ISR members it replaces (at most
// one ineligible last member) join the ELR. Failing that, and only when the
// topic allows unclean election, the first eligible replica, alone in the ISR
// and with an empty ELR (records it lacks are lost: that is what "unclean"
// means, and what others hold no longer counts). Otherwise no leader, ISR and
// ELR as given.
template <typename Eligible>
Election Elect(const Partition& current, std::vector<int32_t> isr,
               std::vector<int32_t> elr, int32_t min_isr,
               const std::set<int32_t>& forget, const Eligible& eligible,
               bool unclean) {
  for (int32_t r : current.replicas) {
    if (Contains(isr, r) && eligible(r)) {
      return {r, std::move(isr), std::move(elr)};
    }
  }
  for (int32_t r : current.replicas) {
    if (Contains(elr, r) && eligible(r)) {
      // `isr` is empty or a lone ineligible member still in current.isr, so
      // NextElr moves it to the ELR.
      return {r, {r}, NextElr(current, {r}, min_isr, forget)};
    }
  }
  if (unclean) {
    for (int32_t r : current.replicas) {
      if (eligible(r)) return {r, {r}, {}};
    }
  }
  return {kNoLeader, std::move(isr), std::move(elr)};
}

records::MetadataRecord ChangeRecord(const Topic& topic, int32_t index,
                                     const Partition& current, int32_t leader,
                                     const std::vector<int32_t>& isr,
                                     const std::vector<int32_t>& elr) {
  records::MetadataRecord out;
  records::ChangePartitionRecord* r = out.mutable_change_partition();
  r->set_topic_id(topic.id);
  r->set_partition(index);
  r->set_leader(leader);
  r->set_leader_epoch(current.leader_epoch +
                      (leader != current.leader ? 1 : 0));
  for (int32_t b : isr) r->add_isr(b);
  r->set_partition_epoch(current.partition_epoch + 1);
  for (int32_t b : elr) r->add_elr(b);
  return out;
}

absl::Status NotRegistered(int32_t broker_id) {
  return ControllerError(
      absl::StatusCode::kFailedPrecondition,
      ControllerErrorInfo::BROKER_NOT_REGISTERED, V1Error::REASON_UNSPECIFIED,
      absl::StrCat("broker ", broker_id, " is not registered"));
}

absl::Status StaleEpoch(const Broker& b, int64_t epoch) {
  return ControllerError(
      absl::StatusCode::kFailedPrecondition,
      ControllerErrorInfo::STALE_BROKER_EPOCH, V1Error::REASON_UNSPECIFIED,
      absl::StrCat("broker ", b.id, " epoch ", epoch,
                   " is stale; the current registration has epoch ", b.epoch,
                   "; register again"));
}

absl::Status InvalidRequest(std::string message) {
  return ControllerError(absl::StatusCode::kInvalidArgument,
                         ControllerErrorInfo::INVALID_REQUEST,
                         V1Error::INVALID_REQUEST, std::move(message));
}

}  // namespace

ControllerLogic::ControllerLogic(const MetadataImage* image,
                                 ControllerOptions options)
    : image_(image), options_(options) {}

void ControllerLogic::Activate(absl::Time now) {
  sessions_.clear();
  for (const auto& [id, b] : image_->brokers()) {
    sessions_[id] = Session{now, -1, -1};
  }
}

ControllerLogic::Session& ControllerLogic::SessionOf(int32_t broker_id,
                                                     absl::Time now) {
  auto [it, inserted] = sessions_.try_emplace(broker_id);
  if (inserted) it->second.last_contact = now;
  return it->second;
}

RecordBatch ControllerLogic::RemoveFromPartitions(
    const std::set<int32_t>& leaving, bool forget) const {
  auto eligible = [&](int32_t b) {
    return !leaving.contains(b) && image_->IsEligible(b);
  };
  const std::set<int32_t> forgotten = forget ? leaving : std::set<int32_t>{};
  RecordBatch out;
  for (const auto& [id, topic] : image_->topics()) {
    std::optional<bool> unclean;
    for (size_t i = 0; i < topic.partitions.size(); ++i) {
      const Partition& p = topic.partitions[i];
      bool touched = leaving.contains(p.leader);
      for (int32_t b : p.isr) touched = touched || leaving.contains(b);
      for (int32_t b : p.elr) touched = touched || forgotten.contains(b);
      if (!touched) continue;
      std::vector<int32_t> isr = p.isr;
      // One leaving broker at a time, in id order, so that when every ISR
      // member leaves the one with the largest id stays as the last member
      // (unless forgotten: a new incarnation never stays).
      for (int32_t b : leaving) {
        auto it = std::find(isr.begin(), isr.end(), b);
        if (it != isr.end() && (forget || isr.size() > 1)) isr.erase(it);
      }
      const int32_t min_isr = EffectiveMinIsr(topic.configs, p);
      std::vector<int32_t> elr = NextElr(p, isr, min_isr, forgotten);
      int32_t leader = leaving.contains(p.leader) ? kNoLeader : p.leader;
      if (leader == kNoLeader) {
        if (!unclean.has_value()) unclean = UncleanAllowed(topic);
        Election e = Elect(p, std::move(isr), std::move(elr), min_isr,
                           forgotten, eligible, *unclean);
        leader = e.leader;
        isr = std::move(e.isr);
        elr = std::move(e.elr);
      }
      if (leader == p.leader && isr == p.isr && elr == p.elr) continue;
      out.push_back(ChangeRecord(topic, i, p, leader, isr, elr));
    }
  }
  return out;
}

RecordBatch ControllerLogic::ElectForLeaderless(int32_t joining) const {
  auto eligible = [&](int32_t b) {
    return b == joining || image_->IsEligible(b);
  };
  RecordBatch out;
  for (const auto& [id, topic] : image_->topics()) {
    std::optional<bool> unclean;
    for (size_t i = 0; i < topic.partitions.size(); ++i) {
      const Partition& p = topic.partitions[i];
      if (p.leader != kNoLeader) continue;
      if (!unclean.has_value()) unclean = UncleanAllowed(topic);
      Election e = Elect(p, p.isr, p.elr, EffectiveMinIsr(topic.configs, p), {},
                         eligible, *unclean);
      if (e.leader == kNoLeader) continue;
      out.push_back(ChangeRecord(topic, i, p, e.leader, e.isr, e.elr));
    }
  }
  return out;
}

RecordBatch ControllerLogic::Fence(const std::set<int32_t>& brokers,
                                   records::FenceReason reason) {
  RecordBatch out = RemoveFromPartitions(brokers, /*forget=*/false);
  for (int32_t id : brokers) {
    records::MetadataRecord r;
    r.mutable_fence_broker()->set_broker_id(id);
    r.mutable_fence_broker()->set_broker_epoch(image_->FindBroker(id)->epoch);
    r.mutable_fence_broker()->set_reason(reason);
    out.push_back(std::move(r));
    if (auto it = sessions_.find(id); it != sessions_.end()) {
      it->second.controlled_shutdown_offset = -1;
    }
  }
  return out;
}

int64_t ControllerLogic::LowestActiveOffset(int32_t except) const {
  int64_t lowest = std::numeric_limits<int64_t>::max();
  for (const auto& [id, b] : image_->brokers()) {
    if (id == except || !b.eligible()) continue;
    auto it = sessions_.find(id);
    lowest =
        std::min(lowest, it == sessions_.end() ? int64_t{-1}
                                               : it->second.metadata_offset);
  }
  return lowest;
}

absl::StatusOr<RecordBatch> ControllerLogic::CreateTopics(
    const std::vector<CreateTopicRequest>& requests,
    const std::function<std::string()>& new_topic_id) {
  std::vector<PlacementBroker> eligible;
  for (const auto& [id, b] : image_->brokers()) {
    if (b.eligible()) eligible.push_back({id, b.rack});
  }
  // Replication factor 0 asks for the default: min(3, unfenced brokers), at
  // least 1 (so a single-node cluster gets 1).
  std::vector<CreateTopicRequest> defaulted = requests;
  for (CreateTopicRequest& req : defaulted) {
    if (req.replication_factor == 0) {
      req.replication_factor =
          std::max<int32_t>(1, std::min<int32_t>(3, static_cast<int32_t>(eligible.size())));
    }
  }
  std::set<std::string> names;
  for (const CreateTopicRequest& req : defaulted) {
    absl::Status s = broker::ValidateTopicName(req.name);
    if (!s.ok()) return s;
    if (image_->FindTopicByName(req.name) != nullptr) {
      return broker::MakeError(
          absl::StatusCode::kAlreadyExists, V1Error::TOPIC_ALREADY_EXISTS,
          absl::StrCat("topic \"", req.name, "\" already exists"));
    }
    if (!names.insert(req.name).second) {
      return InvalidRequest(
          absl::StrCat("topic \"", req.name, "\" is named twice"));
    }
    if (req.partitions < 1 || req.partitions > broker::kMaxPartitionsPerTopic) {
      return broker::MakeError(
          absl::StatusCode::kInvalidArgument, V1Error::INVALID_PARTITION_COUNT,
          absl::StrCat("topic \"", req.name, "\": ", req.partitions,
                       " partitions; expected 1 to ",
                       broker::kMaxPartitionsPerTopic));
    }
    if (req.replication_factor < 1 ||
        req.replication_factor > eligible.size()) {
      return broker::MakeError(
          absl::StatusCode::kInvalidArgument,
          V1Error::INVALID_REPLICATION_FACTOR,
          absl::StrCat("topic \"", req.name, "\": replication factor ",
                       req.replication_factor, " needs 1 to ", eligible.size(),
                       " (the number of unfenced brokers)"));
    }
    auto config = broker::TopicConfig::Parse(req.configs);
    if (!config.ok()) {
      return broker::WithPrefix(config.status(),
                                absl::StrCat("topic \"", req.name, "\": "));
    }
  }
  RecordBatch out;
  std::set<std::string> ids;
  for (const CreateTopicRequest& req : defaulted) {
    std::string id = new_topic_id();
    if (!IsValidTopicId(id) || image_->FindTopicById(id) != nullptr ||
        !ids.insert(id).second) {
      return absl::InternalError(absl::StrCat(
          "topic id generator gave a bad or taken id \"", id, "\""));
    }
    auto placement = PlaceReplicas(eligible, req.partitions,
                                   req.replication_factor, StableHash(id));
    if (!placement.ok()) return placement.status();
    records::MetadataRecord r;
    records::CreateTopicRecord* ct = r.mutable_create_topic();
    ct->set_name(req.name);
    ct->set_topic_id(id);
    ct->mutable_configs()->insert(req.configs.begin(), req.configs.end());
    for (int32_t i = 0; i < req.partitions; ++i) {
      Partition p;
      p.replicas = (*placement)[i];
      p.isr = p.replicas;
      p.leader = p.replicas.front();
      *ct->add_partitions() = PartitionToProto(i, p);
    }
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<RecordBatch> ControllerLogic::DeleteTopics(
    const std::vector<std::string>& names) {
  RecordBatch out;
  std::set<std::string> seen;
  for (const std::string& name : names) {
    const Topic* topic = image_->FindTopicByName(name);
    if (topic == nullptr) {
      return broker::MakeError(absl::StatusCode::kNotFound,
                               V1Error::UNKNOWN_TOPIC,
                               absl::StrCat("unknown topic \"", name, "\""));
    }
    if (!seen.insert(name).second) {
      return InvalidRequest(absl::StrCat("topic \"", name, "\" named twice"));
    }
    records::MetadataRecord r;
    r.mutable_delete_topic()->set_topic_id(topic->id);
    r.mutable_delete_topic()->set_name(topic->name);
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<RegisterBrokerResult> ControllerLogic::RegisterBroker(
    const RegisterBrokerRequest& request, absl::Time now, int64_t next_offset) {
  if (request.broker_id < 0) {
    return InvalidRequest(
        absl::StrCat("broker id ", request.broker_id, " is negative"));
  }
  if (request.incarnation_id.empty()) {
    return InvalidRequest("empty incarnation id");
  }
  if (request.endpoints.empty()) return InvalidRequest("no endpoint");
  std::set<std::string> endpoint_names;
  for (const BrokerEndpoint& e : request.endpoints) {
    if (e.host.empty() || e.port < 1 || e.port > 65535 ||
        !endpoint_names.insert(e.name).second) {
      return InvalidRequest(absl::StrCat("bad or repeated endpoint \"", e.name,
                                         "\" ", e.host, ":", e.port));
    }
  }
  const Broker* existing = image_->FindBroker(request.broker_id);
  if (existing != nullptr &&
      existing->incarnation_id != request.incarnation_id) {
    const Session& s = SessionOf(request.broker_id, now);
    if (now - s.last_contact < options_.session_timeout) {
      return ControllerError(
          absl::StatusCode::kAlreadyExists,
          ControllerErrorInfo::DUPLICATE_BROKER_REGISTRATION,
          V1Error::REASON_UNSPECIFIED,
          absl::StrCat("broker ", request.broker_id,
                       " is registered by another live process (incarnation ",
                       existing->incarnation_id,
                       "); retry after its session times out"));
    }
  }
  RegisterBrokerResult result;
  // A new incarnation, or an id registered again after it was unregistered,
  // may come with an empty disk: forget it everywhere, even as the last ISR
  // member. The same incarnation (a restart on the same disk) is removed as
  // fencing removes it.
  const bool new_incarnation =
      existing == nullptr || existing->incarnation_id != request.incarnation_id;
  result.records =
      RemoveFromPartitions({request.broker_id}, /*forget=*/new_incarnation);
  result.broker_epoch = next_offset + result.records.size();
  if (result.broker_epoch <= image_->max_broker_epoch()) {
    return absl::InternalError(
        absl::StrCat("next_offset ", next_offset, " gives broker epoch ",
                     result.broker_epoch, ", not above the largest so far, ",
                     image_->max_broker_epoch()));
  }
  records::MetadataRecord r;
  records::RegisterBrokerRecord* rb = r.mutable_register_broker();
  rb->set_broker_id(request.broker_id);
  rb->set_incarnation_id(request.incarnation_id);
  for (const BrokerEndpoint& e : request.endpoints) {
    records::BrokerEndpoint* pe = rb->add_endpoints();
    pe->set_name(e.name);
    pe->set_host(e.host);
    pe->set_port(e.port);
  }
  rb->set_rack(request.rack);
  rb->set_broker_epoch(result.broker_epoch);
  result.records.push_back(std::move(r));
  sessions_[request.broker_id] = Session{now, -1, -1};
  return result;
}

absl::StatusOr<HeartbeatResult> ControllerLogic::Heartbeat(
    const HeartbeatRequest& request, absl::Time now, int64_t next_offset) {
  const Broker* b = image_->FindBroker(request.broker_id);
  if (b == nullptr) return NotRegistered(request.broker_id);
  if (b->epoch != request.broker_epoch) {
    return StaleEpoch(*b, request.broker_epoch);
  }
  const int32_t id = b->id;
  Session& s = SessionOf(id, now);
  s.last_contact = now;
  s.metadata_offset = request.current_metadata_offset;

  HeartbeatResult result;
  if (b->fenced) {
    if (request.want_shutdown) {
      result.should_shutdown = true;
    } else if (!request.want_fence &&
               request.current_metadata_offset >= b->epoch) {
      records::MetadataRecord r;
      r.mutable_unfence_broker()->set_broker_id(id);
      r.mutable_unfence_broker()->set_broker_epoch(b->epoch);
      result.records.push_back(std::move(r));
      for (auto& e : ElectForLeaderless(id)) {
        result.records.push_back(std::move(e));
      }
      result.fenced = false;
    }
    return result;
  }

  result.fenced = false;
  if (b->in_controlled_shutdown) {
    result.in_controlled_shutdown = true;
    // After a controller failover the offset is unknown: wait for everything
    // proposed so far.
    if (s.controlled_shutdown_offset < 0) {
      s.controlled_shutdown_offset = next_offset - 1;
    }
    if (LowestActiveOffset(id) >= s.controlled_shutdown_offset) {
      result.records = Fence({id}, records::FENCE_REASON_CONTROLLED_SHUTDOWN);
      result.fenced = true;
      result.in_controlled_shutdown = false;
      result.should_shutdown = true;
    }
    return result;
  }

  if (request.want_shutdown) {
    RecordBatch moves = RemoveFromPartitions({id}, /*forget=*/false);
    if (moves.empty()) {
      // Leads nothing and shares no ISR: Kafka's UNFENCED -> SHUTDOWN_NOW.
      result.records = Fence({id}, records::FENCE_REASON_CONTROLLED_SHUTDOWN);
      result.fenced = true;
      result.should_shutdown = true;
      return result;
    }
    records::MetadataRecord r;
    r.mutable_controlled_shutdown()->set_broker_id(id);
    r.mutable_controlled_shutdown()->set_broker_epoch(b->epoch);
    moves.push_back(std::move(r));
    s.controlled_shutdown_offset = next_offset + moves.size() - 1;
    result.records = std::move(moves);
    result.in_controlled_shutdown = true;
    return result;
  }
  if (request.want_fence) {
    result.records = Fence({id}, records::FENCE_REASON_REQUESTED);
    result.fenced = true;
  }
  return result;
}

RecordBatch ControllerLogic::TickSessions(absl::Time now) {
  std::set<int32_t> expired;
  for (const auto& [id, b] : image_->brokers()) {
    if (b.fenced) continue;
    if (now - SessionOf(id, now).last_contact >= options_.session_timeout) {
      expired.insert(id);
    }
  }
  if (expired.empty()) return {};
  return Fence(expired, records::FENCE_REASON_SESSION_EXPIRED);
}

absl::StatusOr<AlterPartitionResult> ControllerLogic::AlterPartition(
    const AlterPartitionRequest& request) {
  const Topic* topic = image_->FindTopicById(request.topic_id);
  if (topic == nullptr) {
    return broker::MakeError(
        absl::StatusCode::kNotFound, V1Error::UNKNOWN_TOPIC,
        absl::StrCat("no topic with id ", request.topic_id));
  }
  if (request.partition < 0 || request.partition >= topic->partitions.size()) {
    return broker::MakeError(
        absl::StatusCode::kNotFound, V1Error::UNKNOWN_PARTITION,
        absl::StrCat("topic ", topic->name, " has no partition ",
                     request.partition));
  }
  const Partition& p = topic->partitions[request.partition];
  const std::string where =
      absl::StrCat(topic->name, "-", request.partition, ": ");
  const Broker* sender = image_->FindBroker(request.broker_id);
  if (sender == nullptr) return NotRegistered(request.broker_id);
  if (sender->epoch != request.broker_epoch) {
    return StaleEpoch(*sender, request.broker_epoch);
  }
  if (p.leader != request.broker_id) {
    return ControllerError(
        absl::StatusCode::kFailedPrecondition, ControllerErrorInfo::NOT_LEADER,
        V1Error::NOT_LEADER,
        absl::StrCat(where, "broker ", request.broker_id,
                     " is not the leader; the leader is ", p.leader));
  }
  if (request.leader_epoch != p.leader_epoch) {
    return ControllerError(
        absl::StatusCode::kAborted, ControllerErrorInfo::FENCED_LEADER_EPOCH,
        V1Error::REASON_UNSPECIFIED,
        absl::StrCat(where, "leader epoch ", request.leader_epoch,
                     " is not the current ", p.leader_epoch));
  }
  if (request.partition_epoch != p.partition_epoch) {
    return ControllerError(
        absl::StatusCode::kAborted, ControllerErrorInfo::INVALID_UPDATE_VERSION,
        V1Error::REASON_UNSPECIFIED,
        absl::StrCat(where, "partition epoch ", request.partition_epoch,
                     " is not the current ", p.partition_epoch));
  }
  std::vector<int32_t> requested;
  for (const IsrMember& m : request.new_isr) requested.push_back(m.broker_id);
  std::set<int32_t> unique(requested.begin(), requested.end());
  if (requested.empty() || unique.size() != requested.size() ||
      !unique.contains(p.leader)) {
    return InvalidRequest(absl::StrCat(
        where, "new ISR [", absl::StrJoin(requested, ","),
        "] must be non-empty, without duplicates and include the leader"));
  }
  for (const IsrMember& m : request.new_isr) {
    if (!Contains(p.replicas, m.broker_id)) {
      return InvalidRequest(
          absl::StrCat(where, "broker ", m.broker_id, " holds no replica"));
    }
    const Broker* b = image_->FindBroker(m.broker_id);
    if (b == nullptr || !b->eligible() || b->epoch != m.broker_epoch) {
      return ControllerError(
          absl::StatusCode::kFailedPrecondition,
          ControllerErrorInfo::INELIGIBLE_REPLICA, V1Error::REASON_UNSPECIFIED,
          absl::StrCat(where, "broker ", m.broker_id, " with epoch ",
                       m.broker_epoch, " cannot be in the ISR: ",
                       b == nullptr ? std::string("not registered")
                       : b->fenced  ? std::string("fenced")
                       : b->in_controlled_shutdown
                           ? std::string("in controlled shutdown")
                           : absl::StrCat("its current epoch is ", b->epoch)));
    }
  }
  // ISRs are kept in replica order.
  std::vector<int32_t> isr;
  for (int32_t r : p.replicas) {
    if (unique.contains(r)) isr.push_back(r);
  }
  AlterPartitionResult result;
  result.partition = p;
  if (isr == p.isr) return result;
  // A member the leader drops for lag joins the ELR like a fenced one: the
  // leader's high watermark waited for it until this change, and stops once
  // the ISR is below min.insync.replicas (see NextElr).
  std::vector<int32_t> elr =
      NextElr(p, isr, EffectiveMinIsr(topic->configs, p), {});
  result.records.push_back(
      ChangeRecord(*topic, request.partition, p, p.leader, isr, elr));
  result.partition.isr = isr;
  result.partition.elr = std::move(elr);
  result.partition.partition_epoch = p.partition_epoch + 1;
  return result;
}

RecordBatch ControllerLogic::ElectPreferredLeaders() {
  RecordBatch out;
  for (const auto& [id, topic] : image_->topics()) {
    for (size_t i = 0; i < topic.partitions.size(); ++i) {
      const Partition& p = topic.partitions[i];
      const int32_t preferred = p.replicas.front();
      if (p.leader != preferred && Contains(p.isr, preferred) &&
          image_->IsEligible(preferred)) {
        out.push_back(ChangeRecord(topic, i, p, preferred, p.isr, p.elr));
      }
    }
  }
  return out;
}

absl::StatusOr<RecordBatch> ControllerLogic::UnregisterBroker(
    int32_t broker_id) {
  const Broker* b = image_->FindBroker(broker_id);
  if (b == nullptr) return NotRegistered(broker_id);
  RecordBatch out = RemoveFromPartitions({broker_id}, /*forget=*/false);
  records::MetadataRecord r;
  r.mutable_unregister_broker()->set_broker_id(broker_id);
  r.mutable_unregister_broker()->set_broker_epoch(b->epoch);
  out.push_back(std::move(r));
  sessions_.erase(broker_id);
  return out;
}

}  // namespace fjord::controller
