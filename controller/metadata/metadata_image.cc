#include "controller/metadata/metadata_image.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/errors.h"
#include "broker/topic_config.h"
#include "common/status_macros.h"

namespace fjord::controller {
namespace {

bool Contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

bool HasDuplicates(const std::vector<int32_t>& v) {
  std::set<int32_t> seen(v.begin(), v.end());
  return seen.size() != v.size();
}

std::string Ids(const std::vector<int32_t>& v) {
  return absl::StrCat("[", absl::StrJoin(v, ","), "]");
}

absl::Status Invalid(std::string message) {
  return absl::InvalidArgumentError(std::move(message));
}
absl::Status Precondition(std::string message) {
  return absl::FailedPreconditionError(std::move(message));
}

Broker BrokerFromRegistration(const records::BrokerRegistration& r) {
  Broker b;
  b.id = r.broker_id();
  b.incarnation_id = r.incarnation_id();
  for (const auto& e : r.endpoints()) {
    b.endpoints.push_back({e.name(), e.host(), e.port()});
  }
  b.rack = r.rack();
  b.epoch = r.broker_epoch();
  b.fenced = r.fenced();
  b.in_controlled_shutdown = r.in_controlled_shutdown();
  return b;
}

absl::Status CheckEndpoints(
    const google::protobuf::RepeatedPtrField<records::BrokerEndpoint>& eps) {
  if (eps.empty()) return Invalid("a broker needs at least one endpoint");
  std::set<std::string> names;
  for (const auto& e : eps) {
    if (e.host().empty() || e.port() < 1 || e.port() > 65535) {
      return Invalid(absl::StrCat("bad endpoint \"", e.name(), "\" ", e.host(),
                                  ":", e.port()));
    }
    if (!names.insert(e.name()).second) {
      return Invalid(
          absl::StrCat("duplicate endpoint name \"", e.name(), "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsValidTopicId(absl::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

int32_t EffectiveMinIsr(const std::map<std::string, std::string>& configs,
                        const Partition& p) {
  auto config = broker::TopicConfig::Parse(configs);
  const int64_t min_isr = config.ok() ? config->min_insync_replicas : 1;
  return static_cast<int32_t>(std::max<int64_t>(
      1, std::min<int64_t>(min_isr, static_cast<int64_t>(p.replicas.size()))));
}

Partition PartitionFromProto(const records::PartitionState& p) {
  Partition out;
  out.replicas.assign(p.replicas().begin(), p.replicas().end());
  out.leader = p.leader();
  out.leader_epoch = p.leader_epoch();
  out.isr.assign(p.isr().begin(), p.isr().end());
  out.partition_epoch = p.partition_epoch();
  out.elr.assign(p.elr().begin(), p.elr().end());
  return out;
}

records::PartitionState PartitionToProto(int32_t index, const Partition& p) {
  records::PartitionState out;
  out.set_partition(index);
  for (int32_t r : p.replicas) out.add_replicas(r);
  out.set_leader(p.leader);
  out.set_leader_epoch(p.leader_epoch);
  for (int32_t r : p.isr) out.add_isr(r);
  out.set_partition_epoch(p.partition_epoch);
  for (int32_t r : p.elr) out.add_elr(r);
  return out;
}

const Broker* MetadataImage::FindBroker(int32_t id) const {
  auto it = brokers_.find(id);
  return it == brokers_.end() ? nullptr : &it->second;
}

const Topic* MetadataImage::FindTopicById(absl::string_view topic_id) const {
  auto it = topics_.find(std::string(topic_id));
  return it == topics_.end() ? nullptr : &it->second;
}

const Topic* MetadataImage::FindTopicByName(absl::string_view name) const {
  auto it = topic_ids_by_name_.find(std::string(name));
  return it == topic_ids_by_name_.end() ? nullptr : FindTopicById(it->second);
}

bool MetadataImage::IsEligible(int32_t broker_id) const {
  const Broker* b = FindBroker(broker_id);
  return b != nullptr && b->eligible();
}

absl::Status MetadataImage::Apply(const records::MetadataRecord& record) {
  switch (record.record_case()) {
    case records::MetadataRecord::kRegisterBroker:
      return ApplyRegisterBroker(record.register_broker());
    case records::MetadataRecord::kUnfenceBroker:
      return ApplyUnfenceBroker(record.unfence_broker());
    case records::MetadataRecord::kFenceBroker:
      return ApplyFenceBroker(record.fence_broker());
    case records::MetadataRecord::kControlledShutdown:
      return ApplyControlledShutdown(record.controlled_shutdown());
    case records::MetadataRecord::kUnregisterBroker:
      return ApplyUnregisterBroker(record.unregister_broker());
    case records::MetadataRecord::kCreateTopic:
      return ApplyCreateTopic(record.create_topic());
    case records::MetadataRecord::kDeleteTopic:
      return ApplyDeleteTopic(record.delete_topic());
    case records::MetadataRecord::kChangePartition:
      return ApplyChangePartition(record.change_partition());
    case records::MetadataRecord::kClusterId:
      if (record.cluster_id().cluster_id().empty()) return Invalid("empty cluster id");
      if (!cluster_id_.empty() && cluster_id_ != record.cluster_id().cluster_id()) {
        return Invalid("the cluster id is already set");
      }
      cluster_id_ = record.cluster_id().cluster_id();
      return absl::OkStatus();
    case records::MetadataRecord::RECORD_NOT_SET:
      break;
  }
  return Invalid("empty metadata record");
}

absl::StatusOr<Broker*> MetadataImage::MutableBroker(int32_t id,
                                                     int64_t epoch) {
  auto it = brokers_.find(id);
  if (it == brokers_.end()) {
    return absl::NotFoundError(
        absl::StrCat("broker ", id, " is not registered"));
  }
  if (it->second.epoch != epoch) {
    return Precondition(absl::StrCat("broker ", id, " has epoch ",
                                     it->second.epoch, ", not ", epoch));
  }
  return &it->second;
}

absl::Status MetadataImage::CheckHoldsNothing(int32_t broker_id) const {
  for (const auto& [id, topic] : topics_) {
    for (size_t i = 0; i < topic.partitions.size(); ++i) {
      const Partition& p = topic.partitions[i];
      if (p.leader == broker_id ||
          (p.isr.size() > 1 && Contains(p.isr, broker_id))) {
        return Precondition(absl::StrCat(
            "broker ", broker_id, " still leads or is in the ISR ", Ids(p.isr),
            " of ", topic.name, "-", i, " (leader ", p.leader, ")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status MetadataImage::CheckInNoIsrOrElr(int32_t broker_id) const {
  for (const auto& [id, topic] : topics_) {
    for (size_t i = 0; i < topic.partitions.size(); ++i) {
      const Partition& p = topic.partitions[i];
      if (Contains(p.isr, broker_id) || Contains(p.elr, broker_id)) {
        return Precondition(absl::StrCat(
            "broker ", broker_id, " is still in the ISR ", Ids(p.isr),
            " or the ELR ", Ids(p.elr), " of ", topic.name, "-", i,
            "; a new incarnation may have lost its disk"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status MetadataImage::CheckPartition(
    const Partition& p,
    const std::map<std::string, std::string>& configs) const {
  if (p.replicas.empty()) return Invalid("no replicas");
  if (HasDuplicates(p.replicas)) {
    return Invalid(absl::StrCat("duplicate replicas ", Ids(p.replicas)));
  }
  for (int32_t r : p.replicas) {
    if (r < 0) return Invalid(absl::StrCat("negative replica id ", r));
  }
  if (p.isr.empty() && p.leader != kNoLeader) {
    return Invalid("empty ISR with a leader");
  }
  if (HasDuplicates(p.isr)) {
    return Invalid(absl::StrCat("duplicate ISR members ", Ids(p.isr)));
  }
  for (int32_t r : p.isr) {
    if (!Contains(p.replicas, r)) {
      return Invalid(absl::StrCat("ISR ", Ids(p.isr), " is not a subset of ",
                                  Ids(p.replicas)));
    }
  }
  if (p.leader_epoch < 0 || p.partition_epoch < 0) {
    return Invalid("negative epoch");
  }
  if (p.leader != kNoLeader) {
    if (!Contains(p.isr, p.leader)) {
      return Invalid(
          absl::StrCat("leader ", p.leader, " is not in the ISR ", Ids(p.isr)));
    }
    if (!IsEligible(p.leader)) {
      return Precondition(
          absl::StrCat("leader ", p.leader,
                       " is not registered, fenced or in controlled shutdown"));
    }
  }
  if (p.isr.size() > 1) {
    for (int32_t r : p.isr) {
      if (!IsEligible(r)) {
        return Precondition(absl::StrCat(
            "ISR ", Ids(p.isr), " has more than one member and ", r,
            " is not registered, fenced or in controlled shutdown"));
      }
    }
  }
  if (HasDuplicates(p.elr)) {
    return Invalid(absl::StrCat("duplicate ELR members ", Ids(p.elr)));
  }
  for (int32_t r : p.elr) {
    if (!Contains(p.replicas, r) || Contains(p.isr, r)) {
      return Invalid(absl::StrCat("ELR ", Ids(p.elr), " is not within ",
                                  Ids(p.replicas), " and apart from the ISR ",
                                  Ids(p.isr)));
    }
  }
  if (!p.elr.empty() &&
      static_cast<int64_t>(p.isr.size()) >= EffectiveMinIsr(configs, p)) {
    return Invalid(absl::StrCat("ELR ", Ids(p.elr), " beside the ISR ",
                                Ids(p.isr), ", which has min.insync.replicas (",
                                EffectiveMinIsr(configs, p), ") members"));
  }
  return absl::OkStatus();
}

absl::Status MetadataImage::ApplyRegisterBroker(
    const records::RegisterBrokerRecord& r) {
  if (r.broker_id() < 0) return Invalid("negative broker id");
  if (r.incarnation_id().empty()) return Invalid("empty incarnation id");
  RETURN_IF_ERROR(CheckEndpoints(r.endpoints()));
  if (r.broker_epoch() <= max_broker_epoch_) {
    return Precondition(absl::StrCat("broker epoch ", r.broker_epoch(),
                                     " is not above the largest so far, ",
                                     max_broker_epoch_));
  }
  auto existing = brokers_.find(r.broker_id());
  if (existing != brokers_.end()) {
    // The old incarnation must already be out of every leadership and
    // multi-member ISR.
    RETURN_IF_ERROR(CheckHoldsNothing(r.broker_id()));
  }
  if (existing == brokers_.end() ||
      existing->second.incarnation_id != r.incarnation_id()) {
    // I12: the new process may have lost its disk (KIP-903).
    RETURN_IF_ERROR(CheckInNoIsrOrElr(r.broker_id()));
  }
  Broker b;
  b.id = r.broker_id();
  b.incarnation_id = r.incarnation_id();
  for (const auto& e : r.endpoints()) {
    b.endpoints.push_back({e.name(), e.host(), e.port()});
  }
  b.rack = r.rack();
  b.epoch = r.broker_epoch();
  b.fenced = true;
  b.in_controlled_shutdown = false;
  brokers_[b.id] = std::move(b);
  max_broker_epoch_ = r.broker_epoch();
  return absl::OkStatus();
}

absl::Status MetadataImage::ApplyUnfenceBroker(
    const records::UnfenceBrokerRecord& r) {
  ASSIGN_OR_RETURN(Broker * b, MutableBroker(r.broker_id(), r.broker_epoch()));
  if (!b->fenced) {
    return Precondition(absl::StrCat("broker ", b->id, " is not fenced"));
  }
  b->fenced = false;
  return absl::OkStatus();
}

absl::Status MetadataImage::ApplyFenceBroker(
    const records::FenceBrokerRecord& r) {
  ASSIGN_OR_RETURN(Broker * b, MutableBroker(r.broker_id(), r.broker_epoch()));
  if (b->fenced) {
    return Precondition(absl::StrCat("broker ", b->id, " is already fenced"));
  }
  RETURN_IF_ERROR(CheckHoldsNothing(b->id));
  b->fenced = true;
  b->in_controlled_shutdown = false;
  return absl::OkStatus();
}

absl::Status MetadataImage::ApplyControlledShutdown(
    const records::BrokerControlledShutdownRecord& r) {
  ASSIGN_OR_RETURN(Broker * b, MutableBroker(r.broker_id(), r.broker_epoch()));
  if (!b->eligible()) {
    return Precondition(absl::StrCat(
        "broker ", b->id, " is fenced or already in controlled shutdown"));
  }
  RETURN_IF_ERROR(CheckHoldsNothing(b->id));
  b->in_controlled_shutdown = true;
  return absl::OkStatus();
}

absl::Status MetadataImage::ApplyUnregisterBroker(
    const records::UnregisterBrokerRecord& r) {
  ASSIGN_OR_RETURN(Broker * b, MutableBroker(r.broker_id(), r.broker_epoch()));
  RETURN_IF_ERROR(CheckHoldsNothing(b->id));
  brokers_.erase(r.broker_id());
  return absl::OkStatus();
}

absl::Status MetadataImage::ApplyCreateTopic(
    const records::CreateTopicRecord& r) {
  RETURN_IF_ERROR(broker::ValidateTopicName(r.name()));
  if (!IsValidTopicId(r.topic_id())) {
    return Invalid(absl::StrCat("bad topic id \"", r.topic_id(), "\""));
  }
  if (topic_ids_by_name_.contains(r.name())) {
    return absl::AlreadyExistsError(
        absl::StrCat("topic ", r.name(), " already exists"));
  }
  if (topics_.contains(r.topic_id())) {
    return absl::AlreadyExistsError(
        absl::StrCat("topic id ", r.topic_id(), " is taken"));
  }
  if (r.partitions().empty()) return Invalid("a topic needs partitions");
  Topic topic;
  topic.name = r.name();
  topic.id = r.topic_id();
  topic.configs.insert(r.configs().begin(), r.configs().end());
  for (int i = 0; i < r.partitions_size(); ++i) {
    const records::PartitionState& ps = r.partitions(i);
    if (ps.partition() != i) {
      return Invalid(absl::StrCat("partition ", ps.partition(),
                                  " listed at position ", i));
    }
    Partition p = PartitionFromProto(ps);
    absl::Status s = p.isr.empty() ? Invalid("a new partition needs an ISR")
                                   : CheckPartition(p, topic.configs);
    if (!s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat(r.name(), "-", i, ": ", s.message()));
    }
    topic.partitions.push_back(std::move(p));
  }
  topic_ids_by_name_[topic.name] = topic.id;
  topics_[topic.id] = std::move(topic);
  return absl::OkStatus();
}

absl::Status MetadataImage::ApplyDeleteTopic(
    const records::DeleteTopicRecord& r) {
  auto it = topics_.find(r.topic_id());
  if (it == topics_.end()) {
    return absl::NotFoundError(absl::StrCat("no topic with id ", r.topic_id()));
  }
  if (it->second.name != r.name()) {
    return Precondition(absl::StrCat("topic ", r.topic_id(), " is named ",
                                     it->second.name, ", not ", r.name()));
  }
  topic_ids_by_name_.erase(it->second.name);
  topics_.erase(it);
  return absl::OkStatus();
}

absl::Status MetadataImage::ApplyChangePartition(
    const records::ChangePartitionRecord& r) {
  auto it = topics_.find(r.topic_id());
  if (it == topics_.end()) {
    return absl::NotFoundError(absl::StrCat("no topic with id ", r.topic_id()));
  }
  Topic& topic = it->second;
  if (r.partition() < 0 || r.partition() >= topic.partitions.size()) {
    return absl::NotFoundError(absl::StrCat(
        "topic ", topic.name, " has no partition ", r.partition()));
  }
  const Partition& current = topic.partitions[r.partition()];
  Partition next = current;
  next.leader = r.leader();
  next.isr.assign(r.isr().begin(), r.isr().end());
  next.elr.assign(r.elr().begin(), r.elr().end());
  next.leader_epoch = r.leader_epoch();
  next.partition_epoch = r.partition_epoch();
  const std::string where = absl::StrCat(topic.name, "-", r.partition(), ": ");
  if (current.partition_epoch == INT32_MAX ||
      next.partition_epoch != current.partition_epoch + 1) {
    return Precondition(absl::StrCat(where, "partition epoch ",
                                     next.partition_epoch, " does not follow ",
                                     current.partition_epoch));
  }
  const int32_t want_leader_epoch =
      current.leader_epoch + (next.leader != current.leader ? 1 : 0);
  if (current.leader_epoch == INT32_MAX ||
      next.leader_epoch != want_leader_epoch) {
    return Precondition(absl::StrCat(where, "leader epoch ", next.leader_epoch,
                                     " should be ", want_leader_epoch));
  }
  absl::Status s = CheckPartition(next, topic.configs);
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(where, s.message()));
  topic.partitions[r.partition()] = std::move(next);
  return absl::OkStatus();
}

records::MetadataSnapshot MetadataImage::Snapshot() const {
  records::MetadataSnapshot out;
  for (const auto& [id, b] : brokers_) {
    records::BrokerRegistration* r = out.add_brokers();
    r->set_broker_id(b.id);
    r->set_incarnation_id(b.incarnation_id);
    for (const BrokerEndpoint& e : b.endpoints) {
      records::BrokerEndpoint* pe = r->add_endpoints();
      pe->set_name(e.name);
      pe->set_host(e.host);
      pe->set_port(e.port);
    }
    r->set_rack(b.rack);
    r->set_broker_epoch(b.epoch);
    r->set_fenced(b.fenced);
    r->set_in_controlled_shutdown(b.in_controlled_shutdown);
  }
  for (const auto& [id, t] : topics_) {
    records::TopicState* ts = out.add_topics();
    ts->set_name(t.name);
    ts->set_topic_id(t.id);
    ts->mutable_configs()->insert(t.configs.begin(), t.configs.end());
    for (size_t i = 0; i < t.partitions.size(); ++i) {
      *ts->add_partitions() = PartitionToProto(i, t.partitions[i]);
    }
  }
  out.set_max_broker_epoch(max_broker_epoch_);
  out.set_cluster_id(cluster_id_);
  return out;
}

absl::Status MetadataImage::Restore(const records::MetadataSnapshot& snapshot) {
  MetadataImage image;
  image.max_broker_epoch_ = snapshot.max_broker_epoch();
  image.cluster_id_ = snapshot.cluster_id();
  for (const records::BrokerRegistration& r : snapshot.brokers()) {
    RETURN_IF_ERROR(CheckEndpoints(r.endpoints()));
    if (r.incarnation_id().empty()) return Invalid("empty incarnation id");
    if (!image.brokers_.emplace(r.broker_id(), BrokerFromRegistration(r))
             .second) {
      return Invalid(absl::StrCat("broker ", r.broker_id(), " listed twice"));
    }
  }
  for (const records::TopicState& ts : snapshot.topics()) {
    Topic t;
    t.name = ts.name();
    t.id = ts.topic_id();
    t.configs.insert(ts.configs().begin(), ts.configs().end());
    for (int i = 0; i < ts.partitions_size(); ++i) {
      if (ts.partitions(i).partition() != i) {
        return Invalid(absl::StrCat("topic ", t.name, ": partition ",
                                    ts.partitions(i).partition(),
                                    " at position ", i));
      }
      t.partitions.push_back(PartitionFromProto(ts.partitions(i)));
    }
    if (!image.topic_ids_by_name_.emplace(t.name, t.id).second) {
      return Invalid(absl::StrCat("topic name ", t.name, " listed twice"));
    }
    std::string id = t.id;
    if (!image.topics_.emplace(id, std::move(t)).second) {
      return Invalid(absl::StrCat("topic id ", id, " listed twice"));
    }
  }
  absl::Status s = image.CheckInvariants();
  if (!s.ok()) return Invalid(absl::StrCat("bad snapshot: ", s.message()));
  *this = std::move(image);
  return absl::OkStatus();
}

absl::Status MetadataImage::CheckInvariants() const {
  auto fail = [](auto&&... parts) {
    return absl::InternalError(absl::StrCat(parts...));
  };
  for (const auto& [id, b] : brokers_) {
    if (id != b.id || id < 0) return fail("I1: bad broker id ", id);
    if (b.epoch > max_broker_epoch_) {
      return fail("I1: broker ", id, " epoch ", b.epoch, " above max ",
                  max_broker_epoch_);
    }
    if (b.fenced && b.in_controlled_shutdown) {
      return fail("I3: broker ", id, " fenced and in controlled shutdown");
    }
  }
  if (topic_ids_by_name_.size() != topics_.size()) {
    return fail("I4: name index has ", topic_ids_by_name_.size(),
                " entries for ", topics_.size(), " topics");
  }
  for (const auto& [id, t] : topics_) {
    if (id != t.id || !IsValidTopicId(id)) return fail("I4: bad topic id ", id);
    auto by_name = topic_ids_by_name_.find(t.name);
    if (by_name == topic_ids_by_name_.end() || by_name->second != id) {
      return fail("I4: name index misses ", t.name);
    }
    if (!broker::ValidateTopicName(t.name).ok()) {
      return fail("I4: bad topic name ", t.name);
    }
    if (t.partitions.empty()) return fail("I4: topic ", t.name, " is empty");
    for (size_t i = 0; i < t.partitions.size(); ++i) {
      absl::Status s = CheckPartition(t.partitions[i], t.configs);
      if (!s.ok()) {
        return fail("I5-I9, I11: ", t.name, "-", i, ": ", s.message());
      }
    }
  }
  return absl::OkStatus();
}

std::vector<fjord::v1::BrokerInfo> MetadataImage::BrokerInfos() const {
  std::vector<fjord::v1::BrokerInfo> out;
  for (const auto& [id, b] : brokers_) out.push_back(*BrokerInfoOf(id));
  return out;
}

std::optional<fjord::v1::BrokerInfo> MetadataImage::BrokerInfoOf(
    int32_t id) const {
  const Broker* b = FindBroker(id);
  if (b == nullptr) return std::nullopt;
  fjord::v1::BrokerInfo info;
  info.set_id(b->id);
  if (!b->endpoints.empty()) {
    info.set_host(b->endpoints.front().host);
    info.set_port(b->endpoints.front().port);
  }
  info.set_rack(b->rack);
  info.set_epoch(b->epoch);
  info.set_fenced(b->fenced);
  return info;
}

fjord::v1::TopicInfo MetadataImage::ToTopicInfo(const Topic& topic) const {
  fjord::v1::TopicInfo info;
  info.set_name(topic.name);
  info.set_topic_id(topic.id);
  for (size_t i = 0; i < topic.partitions.size(); ++i) {
    const Partition& p = topic.partitions[i];
    fjord::v1::PartitionInfo* pi = info.add_partitions();
    pi->set_partition(i);
    pi->set_leader_id(p.leader);
    pi->set_leader_epoch(p.leader_epoch);
    for (int32_t r : p.replicas) pi->add_replicas(r);
    for (int32_t r : p.isr) pi->add_isr(r);
    for (int32_t r : p.elr) pi->add_elr(r);
  }
  info.set_replication_factor(
      topic.partitions.empty() ? 0 : topic.partitions[0].replicas.size());
  // Effective configs; configs written by a newer version that this one
  // cannot parse are shown as given.
  auto parsed = broker::TopicConfig::Parse(topic.configs);
  std::map<std::string, std::string> configs =
      parsed.ok() ? parsed->ToMap() : topic.configs;
  info.mutable_configs()->insert(configs.begin(), configs.end());
  return info;
}

absl::StatusOr<fjord::v1::TopicInfo> MetadataImage::TopicInfoByName(
    absl::string_view name) const {
  const Topic* topic = FindTopicByName(name);
  if (topic == nullptr) {
    return broker::MakeError(absl::StatusCode::kNotFound,
                             fjord::v1::ErrorInfo::UNKNOWN_TOPIC,
                             absl::StrCat("unknown topic \"", name, "\""));
  }
  return ToTopicInfo(*topic);
}

std::vector<fjord::v1::TopicInfo> MetadataImage::TopicInfos() const {
  std::vector<fjord::v1::TopicInfo> out;
  for (const auto& [name, id] : topic_ids_by_name_) {
    out.push_back(ToTopicInfo(topics_.at(id)));
  }
  return out;
}

}  // namespace fjord::controller
