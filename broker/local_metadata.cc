#include "broker/local_metadata.h"

#include <set>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/errors.h"
#include "common/status_macros.h"
#include "fjord/internal/v1/metadata_records.pb.h"
#include "glog/logging.h"

namespace fjord::broker {
namespace {

constexpr char kClusterKey[] = "cluster";
constexpr char kTopicPrefix[] = "topic/";

std::string RandomId() {
  absl::BitGen gen;
  std::string bytes(16, '\0');
  for (char& c : bytes) c = static_cast<char>(absl::Uniform<uint8_t>(gen));
  return absl::BytesToHexString(bytes);
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalMetadata>> LocalMetadata::Open(
    storage::LogStore* store, fjord::v1::BrokerInfo self) {
  std::unique_ptr<LocalMetadata> md(new LocalMetadata(store, std::move(self)));
  RETURN_IF_ERROR(md->Load());
  return md;
}

absl::Status LocalMetadata::Load() {
  ASSIGN_OR_RETURN(std::optional<std::string> cluster, store_->GetMeta(kClusterKey));
  fjord::internal::v1::ClusterRecord cluster_record;
  if (cluster.has_value()) {
    if (!cluster_record.ParseFromString(*cluster)) {
      return absl::DataLossError("the stored cluster record does not parse");
    }
  } else {
    cluster_record.set_cluster_id(RandomId());
    cluster_record.set_created_ms(absl::ToUnixMillis(absl::Now()));
    RETURN_IF_ERROR(
        store_->PutMeta(kClusterKey, cluster_record.SerializeAsString()));
    LOG(INFO) << "new cluster " << cluster_record.cluster_id();
  }
  cluster_id_ = cluster_record.cluster_id();

  ASSIGN_OR_RETURN(auto records, store_->ScanMeta(kTopicPrefix));
  std::set<std::string> wanted_cfs;
  absl::MutexLock lock(&mu_);
  for (const auto& [key, value] : records) {
    fjord::internal::v1::TopicRecord record;
    if (!record.ParseFromString(value)) {
      return absl::DataLossError(absl::StrCat("topic record ", key, " does not parse"));
    }
    auto topic = std::make_shared<TopicState>();
    topic->info = record.info();
    std::map<std::string, std::string> configs(record.info().configs().begin(),
                                               record.info().configs().end());
    ASSIGN_OR_RETURN(topic->config, TopicConfig::Parse(configs));
    for (int p = 0; p < topic->info.partitions_size(); ++p) {
      storage::PartitionId id{topic->info.topic_id(), p};
      wanted_cfs.insert(id.ColumnFamilyName());
      std::shared_ptr<storage::PartitionLog> log = store_->GetPartition(id);
      if (log == nullptr) {
        // The topic record exists, so creation finished; a missing column family
        // means the store lost it.
        return absl::DataLossError(absl::StrCat(
            "topic ", topic->info.name(), " partition ", p,
            " is recorded but its log is missing from the data directory"));
      }
      topic->logs.push_back(std::move(log));
    }
    topics_[topic->info.name()] = std::move(topic);
  }
  for (const storage::PartitionId& id : store_->ListPartitions()) {
    if (wanted_cfs.count(id.ColumnFamilyName()) == 0) {
      LOG(WARNING) << "dropping orphan partition log " << id.ColumnFamilyName()
                   << " (left by an interrupted topic create or delete)";
      RETURN_IF_ERROR(store_->DropPartition(id));
    }
  }
  LOG(INFO) << "loaded " << topics_.size() << " topics";
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<TopicState>> LocalMetadata::Validate(
    const fjord::v1::NewTopic& req) const {
  RETURN_IF_ERROR(ValidateTopicName(req.name()));
  if (req.partitions() < 1 || req.partitions() > kMaxPartitionsPerTopic) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     fjord::v1::ErrorInfo::INVALID_PARTITION_COUNT,
                     absl::StrCat("topic ", req.name(), ": partitions must be from 1 to ",
                                  kMaxPartitionsPerTopic, ", got ",
                                  req.partitions()));
  }
  int32_t rf = req.replication_factor() == 0 ? 1 : req.replication_factor();
  if (rf < 1) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     fjord::v1::ErrorInfo::INVALID_REPLICATION_FACTOR,
                     absl::StrCat("topic ", req.name(), ": replication factor must be "
                                  "at least 1 (0 means the default), got ", rf));
  }
  if (rf > 1) {
    return MakeError(
        absl::StatusCode::kInvalidArgument,
        fjord::v1::ErrorInfo::INVALID_REPLICATION_FACTOR,
        absl::StrCat("topic ", req.name(), ": replication factor ", rf, " needs ", rf,
                     " brokers, but this single-node cluster has 1"));
  }
  std::map<std::string, std::string> configs(req.configs().begin(),
                                             req.configs().end());
  absl::StatusOr<TopicConfig> config = TopicConfig::Parse(configs);
  if (!config.ok()) {
    return WithPrefix(config.status(), absl::StrCat("topic ", req.name(), ": "));
  }
  if (topics_.count(req.name()) > 0) {
    return MakeError(absl::StatusCode::kAlreadyExists,
                     fjord::v1::ErrorInfo::TOPIC_ALREADY_EXISTS,
                     absl::StrCat("topic ", req.name(), " already exists"));
  }
  auto topic = std::make_shared<TopicState>();
  topic->config = *config;
  fjord::v1::TopicInfo& info = topic->info;
  info.set_name(req.name());
  info.set_topic_id(RandomId());
  info.set_replication_factor(rf);
  for (const auto& [k, v] : config->ToMap()) (*info.mutable_configs())[k] = v;
  for (int p = 0; p < req.partitions(); ++p) {
    fjord::v1::PartitionInfo* part = info.add_partitions();
    part->set_partition(p);
    part->set_leader_id(node_id_);
    part->set_leader_epoch(0);
    part->add_replicas(node_id_);
    part->add_isr(node_id_);
  }
  return topic;
}

absl::StatusOr<std::vector<fjord::v1::TopicInfo>> LocalMetadata::CreateTopics(
    const std::vector<fjord::v1::NewTopic>& requests, bool validate_only) {
  absl::MutexLock admin(&admin_mu_);
  std::vector<std::shared_ptr<TopicState>> created;
  {
    absl::ReaderMutexLock lock(&mu_);
    std::set<std::string> names;
    for (const fjord::v1::NewTopic& req : requests) {
      if (!names.insert(req.name()).second) {
        return MakeError(absl::StatusCode::kInvalidArgument,
                         fjord::v1::ErrorInfo::INVALID_REQUEST,
                         absl::StrCat("topic ", req.name(),
                                      " appears twice in the request"));
      }
      ASSIGN_OR_RETURN(std::shared_ptr<TopicState> topic, Validate(req));
      created.push_back(std::move(topic));
    }
  }
  std::vector<fjord::v1::TopicInfo> infos;
  for (auto& topic : created) infos.push_back(topic->info);
  if (validate_only) return infos;

  for (auto& topic : created) {
    // One call for all partitions: RocksDB rewrites its OPTIONS file on every
    // column family change, so creating them one by one costs O(n^2).
    std::vector<storage::PartitionId> ids;
    for (int p = 0; p < topic->info.partitions_size(); ++p) {
      ids.push_back({topic->info.topic_id(), p});
    }
    ASSIGN_OR_RETURN(topic->logs, store_->CreatePartitions(ids));
    fjord::internal::v1::TopicRecord record;
    *record.mutable_info() = topic->info;
    record.set_created_ms(absl::ToUnixMillis(absl::Now()));
    RETURN_IF_ERROR(store_->PutMeta(absl::StrCat(kTopicPrefix, topic->info.name()),
                                    record.SerializeAsString()));
    {
      absl::MutexLock lock(&mu_);
      topics_[topic->info.name()] = topic;
    }
    LOG(INFO) << "created topic " << topic->info.name() << " id="
              << topic->info.topic_id()
              << " partitions=" << topic->info.partitions_size();
  }
  return infos;
}

absl::StatusOr<std::vector<std::string>> LocalMetadata::DeleteTopics(
    const std::vector<std::string>& names) {
  absl::MutexLock admin(&admin_mu_);
  std::vector<std::shared_ptr<const TopicState>> doomed;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(std::shared_ptr<const TopicState> topic, GetTopic(name));
    doomed.push_back(std::move(topic));
  }
  std::vector<std::string> ids;
  for (const auto& topic : doomed) {
    RETURN_IF_ERROR(store_->DeleteMeta(absl::StrCat(kTopicPrefix, topic->info.name())));
    {
      absl::MutexLock lock(&mu_);
      topics_.erase(topic->info.name());
    }
    for (int p = 0; p < topic->info.partitions_size(); ++p) {
      // A failure here leaves an orphan column family, which Open() drops.
      absl::Status s = store_->DropPartition({topic->info.topic_id(), p});
      if (!s.ok()) LOG(WARNING) << "dropping partition " << p << ": " << s;
    }
    ids.push_back(topic->info.topic_id());
    LOG(INFO) << "deleted topic " << topic->info.name() << " id="
              << topic->info.topic_id();
  }
  return ids;
}

absl::StatusOr<std::shared_ptr<const TopicState>> LocalMetadata::GetTopic(
    absl::string_view name) const {
  RETURN_IF_ERROR(ValidateTopicName(name));
  absl::ReaderMutexLock lock(&mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    return MakeError(absl::StatusCode::kNotFound, fjord::v1::ErrorInfo::UNKNOWN_TOPIC,
                     absl::StrCat("topic ", name, " does not exist"));
  }
  return it->second;
}

absl::StatusOr<PartitionHandle> LocalMetadata::Lookup(absl::string_view topic,
                                                      int32_t partition) const {
  ASSIGN_OR_RETURN(std::shared_ptr<const TopicState> state, GetTopic(topic));
  int32_t count = state->info.partitions_size();
  if (partition < 0) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     fjord::v1::ErrorInfo::UNKNOWN_PARTITION,
                     absl::StrCat("partition ", partition, " is negative"));
  }
  if (partition >= count) {
    return MakeError(absl::StatusCode::kNotFound,
                     fjord::v1::ErrorInfo::UNKNOWN_PARTITION,
                     absl::StrCat("topic ", topic, " has no partition ", partition,
                                  " (it has ", count, ": 0 to ", count - 1, ")"));
  }
  return PartitionHandle{std::move(state), partition};
}

absl::StatusOr<fjord::v1::DescribeClusterResponse> LocalMetadata::DescribeCluster() {
  fjord::v1::DescribeClusterResponse response;
  response.set_cluster_id(cluster_id_);
  response.set_controller_id(node_id_);
  *response.add_brokers() = self();
  response.set_controller_term(0);
  response.add_voters(node_id_);
  return response;
}

fjord::v1::BrokerInfo LocalMetadata::self() const {
  absl::ReaderMutexLock lock(&mu_);
  return self_;
}

void LocalMetadata::SetAdvertised(std::string host, int port) {
  absl::MutexLock lock(&mu_);
  self_.set_host(std::move(host));
  self_.set_port(port);
}

std::vector<std::shared_ptr<const TopicState>> LocalMetadata::ListTopics() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::shared_ptr<const TopicState>> out;
  for (const auto& [name, topic] : topics_) out.push_back(topic);
  return out;
}

}  // namespace fjord::broker
