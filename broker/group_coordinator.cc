#include "broker/group_coordinator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/damage.h"
#include "broker/errors.h"
#include "common/clock.h"
#include "common/network_faults.h"
#include "common/random_id.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "storage/record_batch.h"

namespace fjord::broker {
namespace {

using fjord::internal::v1::GroupMetadataValue;
using fjord::internal::v1::GroupRecordKey;
using fjord::internal::v1::OffsetCommitValue;
using fjord::v1::ErrorInfo;

constexpr size_t kMaxGroupIdLength = 249;
constexpr size_t kMaxCommitMetadataBytes = 4096;
constexpr int kMaxOffsetsPerCommit = 10000;
constexpr int32_t kLoadReadBytes = 4 << 20;

absl::Status Invalid(std::string message) {
  return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::INVALID_REQUEST,
                   std::move(message));
}

absl::Status Loading(absl::string_view group_id) {
  return MakeError(absl::StatusCode::kUnavailable, ErrorInfo::COORDINATOR_LOADING,
                   absl::StrCat("the coordinator of group ", group_id,
                                " is loading the group's state; retry shortly"));
}

fjord::v1::Record GroupRecord(const std::string& group_id, const GroupMetadataValue* value) {
  GroupRecordKey key;
  key.set_group(group_id);
  fjord::v1::Record r;
  r.set_key(key.SerializeAsString());
  if (value != nullptr) r.set_value(value->SerializeAsString());
  return r;
}

fjord::v1::Record OffsetRecord(const std::string& group_id, const std::string& topic,
                               int32_t partition, const OffsetCommitValue* value) {
  GroupRecordKey key;
  key.mutable_offset()->set_group_id(group_id);
  key.mutable_offset()->set_topic(topic);
  key.mutable_offset()->set_partition(partition);
  fjord::v1::Record r;
  r.set_key(key.SerializeAsString());
  if (value != nullptr) r.set_value(value->SerializeAsString());
  return r;
}

absl::Status ToStatus(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace

int32_t OffsetsPartitionFor(absl::string_view group_id, int32_t partitions) {
  // FNV-1a, 32 bits: stable across versions and platforms.
  uint32_t h = 2166136261u;
  for (unsigned char c : group_id) {
    h ^= c;
    h *= 16777619u;
  }
  return static_cast<int32_t>(h % static_cast<uint32_t>(std::max(partitions, 1)));
}

absl::Status ValidateGroupId(absl::string_view group_id) {
  auto error = [&](absl::string_view why) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::INVALID_GROUP_ID,
                     absl::StrCat("invalid group id \"", group_id.substr(0, 300),
                                  group_id.size() > 300 ? "...\"" : "\"", ": ", why));
  };
  if (group_id.empty()) return error("a group id cannot be empty");
  if (group_id.size() > kMaxGroupIdLength) {
    return error(absl::StrCat("it is ", group_id.size(), " characters long; the limit is ",
                              kMaxGroupIdLength));
  }
  for (char c : group_id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return error("only ASCII letters, digits, '.', '_' and '-' are allowed");
  }
  return absl::OkStatus();
}

GroupCoordinator::GroupCoordinator(ServiceContext ctx, GroupCoordinatorOptions options)
    : ctx_(ctx), options_(std::move(options)) {
  thread_ = std::thread([this] { Loop(); });
}

GroupCoordinator::~GroupCoordinator() { Stop(); }

void GroupCoordinator::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    wake_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void GroupCoordinator::OnMetadata(
    const std::map<std::string, std::shared_ptr<const TopicState>, std::less<>>& topics) {
  absl::MutexLock lock(&mu_);
  auto it = topics.find(kOffsetsTopic);
  std::map<int32_t, std::shared_ptr<Shard>> next;
  if (it != topics.end()) {
    const std::shared_ptr<const TopicState>& topic = it->second;
    for (int32_t p = 0; p < topic->info.partitions_size(); ++p) {
      const fjord::v1::PartitionInfo& info = topic->info.partitions(p);
      if (info.leader_id() != ctx_.metadata->node_id() ||
          static_cast<size_t>(p) >= topic->logs.size() || topic->logs[p] == nullptr) {
        continue;
      }
      auto existing = shards_.find(p);
      if (existing != shards_.end() && existing->second->leader_epoch == info.leader_epoch() &&
          existing->second->topic->info.topic_id() == topic->info.topic_id()) {
        next[p] = existing->second;
        continue;
      }
      auto shard = std::make_shared<Shard>();
      shard->partition = p;
      shard->leader_epoch = info.leader_epoch();
      shard->topic = topic;
      next[p] = std::move(shard);
      LOG(INFO) << "group coordinator: leading " << kOffsetsTopic << "-" << p << " (epoch "
                << info.leader_epoch() << "); loading its groups";
    }
  }
  for (const auto& [p, shard] : shards_) {
    if (!next.contains(p) || next[p] != shard) {
      LOG(INFO) << "group coordinator: no longer coordinating " << kOffsetsTopic << "-" << p;
    }
  }
  shards_ = std::move(next);
  wake_.SignalAll();
}

void GroupCoordinator::Loop() {
  while (true) {
    std::vector<std::shared_ptr<Shard>> to_load;
    {
      absl::MutexLock lock(&mu_);
      wake_.WaitWithTimeout(&mu_, options_.tick);
      if (stopping_) return;
      for (const auto& [p, shard] : shards_) {
        if (!shard->loaded) to_load.push_back(shard);
      }
    }
    for (const std::shared_ptr<Shard>& shard : to_load) Load(shard);
    ExpireSessions();
  }
}

void GroupCoordinator::Load(std::shared_ptr<Shard> shard) {
  // Groups from an earlier load (a reload after a failed write) are retired
  // first: taking each one's lock waits for a change in flight on it, and `gone`
  // sends later ones back to Resolve, which answers COORDINATOR_LOADING. So every
  // change is either in the log read below or refused.
  std::map<std::string, std::shared_ptr<Group>> old;
  {
    absl::MutexLock lock(&mu_);
    old.swap(shard->groups);
  }
  for (auto& [id, g] : old) {
    absl::MutexLock lock(&g->mu);
    g->gone = true;
  }
  storage::PartitionLog& log = *shard->topic->logs[shard->partition];
  const absl::Time start = absl::Now();
  const int64_t end = log.log_end_offset();
  int64_t offset = log.log_start_offset();
  std::map<std::string, std::shared_ptr<Group>> groups;
  auto group = [&](const std::string& id) -> Group& {
    std::shared_ptr<Group>& g = groups[id];
    if (g == nullptr) g = std::make_shared<Group>(id);
    return *g;
  };
  int64_t records = 0;
  while (offset < end) {
    absl::StatusOr<std::vector<storage::StoredBatch>> batches = log.Read(offset, kLoadReadBytes);
    if (!batches.ok()) (void)CheckDamage(batches.status(), "loading groups");
    if (!batches.ok() || batches->empty()) {
      LOG(WARNING) << "group coordinator: reading " << kOffsetsTopic << "-" << shard->partition
                   << " at " << offset << " failed: "
                   << (batches.ok() ? absl::NotFoundError("no batch") : batches.status())
                   << "; retrying";
      return;  // stays unloaded; the loop retries
    }
    for (const storage::StoredBatch& batch : *batches) {
      google::protobuf::RepeatedPtrField<fjord::v1::ConsumedRecord> decoded;
      absl::Status s = CheckDamage(
          storage::DecodeBatch(batch.data, batch.base_offset, offset, &decoded), "loading groups");
      if (!s.ok()) {
        LOG(ERROR) << "group coordinator: " << kOffsetsTopic << "-" << shard->partition
                   << " batch at " << batch.base_offset << ": " << s;
        return;
      }
      for (const fjord::v1::ConsumedRecord& r : decoded) {
        ++records;
        offset = r.offset() + 1;
        GroupRecordKey key;
        if (!key.ParseFromString(r.key())) {
          LOG(WARNING) << "group coordinator: skipping an unreadable key at offset " << r.offset();
          continue;
        }
        if (key.has_offset()) {
          const auto& k = key.offset();
          Group& g = group(k.group_id());
          absl::MutexLock lock(&g.mu);
          if (r.value().empty()) {
            g.offsets.erase({k.topic(), k.partition()});
          } else {
            OffsetCommitValue v;
            if (v.ParseFromString(r.value())) g.offsets[{k.topic(), k.partition()}] = v;
          }
        } else if (key.key_case() == GroupRecordKey::kGroup) {
          Group& g = group(key.group());
          absl::MutexLock lock(&g.mu);
          GroupMetadataValue v;
          if (r.value().empty()) {
            g.membership = group::GroupMembership(key.group());
          } else if (v.ParseFromString(r.value())) {
            g.membership.FromRecord(v, MonotonicNow());
          }
        }
      }
      offset = std::max(offset, batch.base_offset + batch.record_count);
    }
  }
  // Drop groups that end up with neither members nor offsets (deleted).
  for (auto it = groups.begin(); it != groups.end();) {
    absl::MutexLock lock(&it->second->mu);
    if (it->second->membership.empty() && it->second->offsets.empty()) {
      it = groups.erase(it);
    } else {
      ++it;
    }
  }
  absl::MutexLock lock(&mu_);
  auto current = shards_.find(shard->partition);
  if (current == shards_.end() || current->second != shard) return;  // superseded
  shard->groups = std::move(groups);
  shard->loaded = true;
  LOG(INFO) << "group coordinator: loaded " << kOffsetsTopic << "-" << shard->partition << ": "
            << shard->groups.size() << " groups from " << records << " records in "
            << absl::FormatDuration(absl::Now() - start);
}

void GroupCoordinator::ExpireSessions() {
  std::vector<std::pair<std::shared_ptr<Shard>, std::shared_ptr<Group>>> all;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [p, shard] : shards_) {
      if (!shard->loaded) continue;
      for (const auto& [id, g] : shard->groups) all.emplace_back(shard, g);
    }
  }
  const absl::Time now = MonotonicNow();
  for (const auto& [shard, g] : all) {
    absl::MutexLock lock(&g->mu);
    if (g->gone) continue;
    if (g->membership.empty() && g->offsets.empty() && g->membership.group_epoch() == 0) {
      // Made by a join that was then refused (a bad request): nothing was ever
      // written for it, so forget it rather than keep it forever.
      g->gone = true;
      absl::MutexLock shard_lock(&mu_);
      auto it = shard->groups.find(g->membership.group_id());
      if (it != shard->groups.end() && it->second == g) shard->groups.erase(it);
      continue;
    }
    if (g->membership.empty()) continue;
    group::GroupMembership next = g->membership;
    if (!next.ExpireMembers(now, [this](const std::string& t) { return PartitionCount(t); })) {
      continue;
    }
    google::protobuf::RepeatedPtrField<fjord::v1::Record> records;
    const GroupMetadataValue value = next.ToRecord();
    *records.Add() = GroupRecord(next.group_id(), &value);
    absl::Status s = Write(*shard, records);
    if (!s.ok()) {
      LOG(WARNING) << "group coordinator: expiring members of group " << next.group_id()
                   << ": " << s;
      continue;
    }
    LOG(INFO) << "group coordinator: group " << next.group_id() << " removed "
              << g->membership.members().size() - next.members().size()
              << " member(s) whose session expired; epoch " << next.group_epoch();
    g->membership = std::move(next);
  }
}

int32_t GroupCoordinator::PartitionCount(const std::string& topic) const {
  absl::StatusOr<std::shared_ptr<const TopicState>> t = ctx_.metadata->GetTopic(topic);
  return t.ok() ? (*t)->info.partitions_size() : 0;
}

absl::StatusOr<GroupCoordinator::Resolved> GroupCoordinator::Resolve(absl::string_view group_id,
                                                                     bool create) {
  RETURN_IF_ERROR(CheckServing(ctx_));
  RETURN_IF_ERROR(ValidateGroupId(group_id));
  absl::StatusOr<std::shared_ptr<const TopicState>> topic = ctx_.metadata->GetTopic(kOffsetsTopic);
  if (!topic.ok()) {
    return MakeError(absl::StatusCode::kUnavailable, ErrorInfo::NOT_COORDINATOR,
                     absl::StrCat(kOffsetsTopic,
                                  " does not exist yet; call FindCoordinator, which creates it"));
  }
  const int32_t p = OffsetsPartitionFor(group_id, (*topic)->info.partitions_size());
  {
    absl::MutexLock lock(&mu_);
    auto it = shards_.find(p);
    if (it != shards_.end()) {
      const std::shared_ptr<Shard>& shard = it->second;
      if (!shard->loaded) return Loading(group_id);
      Resolved r{shard, nullptr};
      auto g = shard->groups.find(std::string(group_id));
      if (g != shard->groups.end()) {
        r.group = g->second;
      } else if (create) {
        r.group = std::make_shared<Group>(std::string(group_id));
        shard->groups[std::string(group_id)] = r.group;
      }
      return r;
    }
  }
  // Another broker coordinates it: say which.
  const int32_t leader = (*topic)->info.partitions(p).leader_id();
  ErrorInfo info;
  info.set_reason(ErrorInfo::NOT_COORDINATOR);
  info.set_leader_id(leader);
  for (const fjord::v1::BrokerInfo& b : ctx_.metadata->Brokers()) {
    if (b.id() == leader) info.set_leader_address(absl::StrCat(b.host(), ":", b.port()));
  }
  return WithErrorInfo(
      absl::UnavailableError(absl::StrCat("broker ", ctx_.metadata->node_id(),
                                          " does not coordinate group ", group_id,
                                          leader >= 0 ? absl::StrCat("; broker ", leader, " does")
                                                      : std::string("; no broker does right now"))),
      info);
}

absl::Status GroupCoordinator::Write(
    const Shard& shard, const google::protobuf::RepeatedPtrField<fjord::v1::Record>& records) {
  PartitionHandle handle{shard.topic, shard.partition};
  const int64_t isr = static_cast<int64_t>(ctx_.replicas->Isr(handle).size());
  if (isr < handle.config().min_insync_replicas) {
    return MakeError(absl::StatusCode::kUnavailable, ErrorInfo::NOT_ENOUGH_REPLICAS,
                     absl::StrCat(kOffsetsTopic, "-", shard.partition, " has ", isr,
                                  " in-sync replicas and needs ",
                                  handle.config().min_insync_replicas,
                                  " (min.insync.replicas); nothing was changed"));
  }
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  ASSIGN_OR_RETURN(std::string batch, storage::EncodeBatch(records, shard.leader_epoch, now_ms));
  ASSIGN_OR_RETURN(storage::AppendResult appended, handle.log().Append(std::move(batch)));
  ctx_.replicas->OnLeaderAppend(handle);
  absl::Status committed =
      ctx_.replicas->WaitForCommit(handle, appended.last_offset,
                                   MonotonicNow() + options_.write_timeout);
  if (!committed.ok()) {
    // The records are in the log and may yet commit: whatever this broker
    // remembers may now differ from the log, so reload the partition (while it
    // leads it) to make memory match the log again.
    absl::MutexLock lock(&mu_);
    auto it = shards_.find(shard.partition);
    if (it != shards_.end() && it->second.get() == &shard) {
      it->second->loaded = false;
      wake_.SignalAll();
    }
    return MakeError(committed.code(), ErrorInfo::OUTCOME_UNKNOWN,
                     absl::StrCat("the change was written but not seen replicated (",
                                  committed.message(), "); it may or may not take effect"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> GroupCoordinator::HighWatermark(const std::string& topic,
                                                        int32_t partition) {
  absl::StatusOr<PartitionHandle> local = ctx_.metadata->Lookup(topic, partition);
  if (local.ok()) return local->high_watermark();
  if (absl::IsNotFound(local.status()) || absl::IsInvalidArgument(local.status())) {
    return local.status();
  }
  const ErrorInfo info = ErrorInfoOf(local.status());
  if (info.reason() != ErrorInfo::NOT_LEADER || info.leader_address().empty()) {
    return local.status();
  }
  std::shared_ptr<grpc::Channel> channel;
  {
    absl::MutexLock lock(&hw_mu_);
    std::shared_ptr<grpc::Channel>& c = channels_[info.leader_address()];
    if (c == nullptr) {
      c = NewPeerChannel(info.leader_address(), grpc::ChannelArguments());
    }
    channel = c;
  }
  auto stub = fjord::v1::FetchService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  fjord::v1::ListOffsetsRequest req;
  req.set_topic(topic);
  req.set_partition(partition);
  req.set_spec(fjord::v1::ListOffsetsRequest::LATEST);
  fjord::v1::ListOffsetsResponse resp;
  grpc::Status s = stub->ListOffsets(&context, req, &resp);
  if (!s.ok()) {
    return MakeError(absl::StatusCode::kUnavailable, ErrorInfo::NOT_ENOUGH_REPLICAS,
                     absl::StrCat("cannot check the commit against ", topic, "-", partition,
                                  "'s high watermark: its leader answered ",
                                  ToStatus(s).ToString(), "; retry"));
  }
  return resp.offset();
}

// ---------------------------------------------------------------------------
// Handlers

grpc::Status GroupCoordinator::FindCoordinator(grpc::ServerContext*,
                                               const fjord::v1::FindCoordinatorRequest* request,
                                               fjord::v1::FindCoordinatorResponse* response) {
  absl::StatusOr<fjord::v1::FindCoordinatorResponse> r = DoFindCoordinator(*request);
  if (r.ok()) *response = *std::move(r);
  return ToGrpcStatus(r.status());
}

absl::StatusOr<fjord::v1::FindCoordinatorResponse> GroupCoordinator::DoFindCoordinator(
    const fjord::v1::FindCoordinatorRequest& req) {
  RETURN_IF_ERROR(CheckServing(ctx_));
  RETURN_IF_ERROR(ValidateGroupId(req.group_id()));
  absl::StatusOr<std::shared_ptr<const TopicState>> topic = ctx_.metadata->GetTopic(kOffsetsTopic);
  if (!topic.ok()) {
    int32_t brokers = 0;
    for (const fjord::v1::BrokerInfo& b : ctx_.metadata->Brokers()) {
      if (!b.fenced()) ++brokers;
    }
    const int32_t rf = options_.offsets_topic_replication_factor > 0
                           ? options_.offsets_topic_replication_factor
                           : std::clamp(brokers, 1, 3);
    fjord::v1::NewTopic t;
    t.set_name(kOffsetsTopic);
    t.set_partitions(options_.offsets_topic_partitions);
    t.set_replication_factor(rf);
    (*t.mutable_configs())["min.insync.replicas"] = absl::StrCat(std::min(rf, 2));
    absl::StatusOr<std::vector<fjord::v1::TopicInfo>> created =
        ctx_.metadata->CreateTopics({t}, /*validate_only=*/false);
    if (!created.ok() && !absl::IsAlreadyExists(created.status())) {
      return WithPrefix(created.status(), absl::StrCat("creating ", kOffsetsTopic, ": "));
    }
    if (created.ok()) {
      LOG(INFO) << "created " << kOffsetsTopic << " with " << t.partitions()
                << " partitions, replication factor " << rf;
    }
    topic = ctx_.metadata->GetTopic(kOffsetsTopic);
    if (!topic.ok()) {
      // Another broker created it a moment ago and this one has not seen it yet.
      return MakeError(absl::StatusCode::kUnavailable, ErrorInfo::NOT_COORDINATOR,
                       absl::StrCat(kOffsetsTopic, " is being created; retry shortly"));
    }
  }
  const int32_t p = OffsetsPartitionFor(req.group_id(), (*topic)->info.partitions_size());
  const int32_t leader = (*topic)->info.partitions(p).leader_id();
  for (const fjord::v1::BrokerInfo& b : ctx_.metadata->Brokers()) {
    if (b.id() == leader && leader >= 0) {
      fjord::v1::FindCoordinatorResponse response;
      response.set_coordinator_id(leader);
      response.set_address(absl::StrCat(b.host(), ":", b.port()));
      response.set_partition(p);
      return response;
    }
  }
  return MakeError(absl::StatusCode::kUnavailable, ErrorInfo::NOT_COORDINATOR,
                   absl::StrCat(kOffsetsTopic, "-", p, " (which holds group ", req.group_id(),
                                ") has no leader right now; retry shortly"));
}

grpc::Status GroupCoordinator::Heartbeat(grpc::ServerContext*,
                                         const fjord::v1::GroupHeartbeatRequest* request,
                                         fjord::v1::GroupHeartbeatResponse* response) {
  return ToGrpcStatus(DoHeartbeat(*request, response));
}

absl::Status GroupCoordinator::DoHeartbeat(const fjord::v1::GroupHeartbeatRequest& req,
                                           fjord::v1::GroupHeartbeatResponse* response) {
  // Twice at most: the group may be deleted or reloaded under us once.
  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSIGN_OR_RETURN(Resolved r, Resolve(req.group_id(), /*create=*/req.member_epoch() == 0));
    if (r.group == nullptr) {
      if (req.member_epoch() < 0) {
        response->set_member_id(req.member_id());
        response->set_member_epoch(req.member_epoch());
        return absl::OkStatus();
      }
      return MakeError(absl::StatusCode::kFailedPrecondition, ErrorInfo::UNKNOWN_MEMBER_ID,
                       absl::StrCat("group ", req.group_id(), " has no member ",
                                    req.member_id().substr(0, 255),
                                    "; join again with member_epoch 0"));
    }
    absl::MutexLock lock(&r.group->mu);
    if (r.group->gone) continue;
    group::GroupMembership next = r.group->membership;
    bool changed = false;
    ASSIGN_OR_RETURN(
        *response,
        next.Heartbeat(
            req, options_.limits, [this](const std::string& t) { return PartitionCount(t); },
            [] { return RandomHexId(); }, MonotonicNow(), &changed));
    if (changed) {
      google::protobuf::RepeatedPtrField<fjord::v1::Record> records;
      const GroupMetadataValue value = next.ToRecord();
      *records.Add() = GroupRecord(next.group_id(), &value);
      RETURN_IF_ERROR(Write(*r.shard, records));
      if (next.group_epoch() != r.group->membership.group_epoch()) {
        VLOG(1) << "group " << req.group_id() << " epoch " << next.group_epoch() << ", "
                << next.members().size() << " members";
      }
    }
    r.group->membership = std::move(next);
    return absl::OkStatus();
  }
  return Loading(req.group_id());
}

grpc::Status GroupCoordinator::CommitOffsets(grpc::ServerContext*,
                                             const fjord::v1::CommitOffsetsRequest* request,
                                             fjord::v1::CommitOffsetsResponse*) {
  return ToGrpcStatus(DoCommit(*request));
}

absl::Status GroupCoordinator::DoCommit(const fjord::v1::CommitOffsetsRequest& req) {
  RETURN_IF_ERROR(ValidateGroupId(req.group_id()));
  if (req.offsets_size() == 0) return Invalid("CommitOffsets needs at least one offset");
  if (req.offsets_size() > kMaxOffsetsPerCommit) {
    return MakeError(absl::StatusCode::kResourceExhausted, ErrorInfo::BATCH_TOO_LARGE,
                     absl::StrCat("a commit may carry at most ", kMaxOffsetsPerCommit,
                                  " offsets; got ", req.offsets_size()));
  }
  // Check every offset before anything is written: all or nothing.
  std::vector<TopicPartitionKey> partitions;
  for (const fjord::v1::OffsetToCommit& o : req.offsets()) {
    ASSIGN_OR_RETURN(std::shared_ptr<const TopicState> topic, ctx_.metadata->GetTopic(o.topic()));
    if (o.partition() < 0 || o.partition() >= topic->info.partitions_size()) {
      return MakeError(absl::StatusCode::kNotFound, ErrorInfo::UNKNOWN_PARTITION,
                       absl::StrCat("topic ", o.topic(), " has no partition ", o.partition(),
                                    " (it has ", topic->info.partitions_size(),
                                    "); nothing was committed"));
    }
    if (o.offset() < 0) {
      return MakeError(absl::StatusCode::kOutOfRange, ErrorInfo::OFFSET_OUT_OF_RANGE,
                       absl::StrCat("offset ", o.offset(), " for ", o.topic(), "-", o.partition(),
                                    " is negative; nothing was committed"));
    }
    if (o.metadata().size() > kMaxCommitMetadataBytes) {
      return Invalid(absl::StrCat("commit metadata for ", o.topic(), "-", o.partition(), " is ",
                                  o.metadata().size(), " bytes; the limit is ",
                                  kMaxCommitMetadataBytes));
    }
    const TopicPartitionKey key{o.topic(), o.partition()};
    int64_t known_hw = -1;
    {
      absl::MutexLock lock(&hw_mu_);
      if (auto it = hw_cache_.find(key); it != hw_cache_.end()) known_hw = it->second;
    }
    if (o.offset() > known_hw) {
      ASSIGN_OR_RETURN(int64_t hw, HighWatermark(o.topic(), o.partition()));
      {
        absl::MutexLock lock(&hw_mu_);
        int64_t& cached = hw_cache_[key];
        cached = std::max(cached, hw);
      }
      if (o.offset() > hw) {
        return MakeError(absl::StatusCode::kOutOfRange, ErrorInfo::OFFSET_OUT_OF_RANGE,
                         absl::StrCat("offset ", o.offset(), " for ", o.topic(), "-",
                                      o.partition(), " is beyond its high watermark ", hw,
                                      "; nothing was committed"));
      }
    }
    partitions.push_back(key);
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSIGN_OR_RETURN(Resolved r, Resolve(req.group_id(), /*create=*/req.member_id().empty()));
    if (r.group == nullptr) {
      return MakeError(absl::StatusCode::kFailedPrecondition, ErrorInfo::UNKNOWN_MEMBER_ID,
                       absl::StrCat("group ", req.group_id(), " has no member ",
                                    req.member_id().substr(0, 255), "; nothing was committed"));
    }
    absl::MutexLock lock(&r.group->mu);
    if (r.group->gone) continue;
    RETURN_IF_ERROR(r.group->membership.CheckCommit(req.member_id(), req.member_epoch(),
                                                    partitions));
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    google::protobuf::RepeatedPtrField<fjord::v1::Record> records;
    std::vector<std::pair<TopicPartitionKey, OffsetCommitValue>> values;
    for (const fjord::v1::OffsetToCommit& o : req.offsets()) {
      OffsetCommitValue v;
      v.set_offset(o.offset());
      v.set_metadata(o.metadata());
      v.set_commit_time_ms(now_ms);
      *records.Add() = OffsetRecord(req.group_id(), o.topic(), o.partition(), &v);
      values.emplace_back(TopicPartitionKey{o.topic(), o.partition()}, std::move(v));
    }
    RETURN_IF_ERROR(Write(*r.shard, records));
    for (auto& [key, v] : values) r.group->offsets[key] = std::move(v);
    return absl::OkStatus();
  }
  return Loading(req.group_id());
}

grpc::Status GroupCoordinator::FetchOffsets(grpc::ServerContext*,
                                            const fjord::v1::FetchOffsetsRequest* request,
                                            fjord::v1::FetchOffsetsResponse* response) {
  return ToGrpcStatus(DoFetchOffsets(*request, response));
}

absl::Status GroupCoordinator::DoFetchOffsets(const fjord::v1::FetchOffsetsRequest& req,
                                              fjord::v1::FetchOffsetsResponse* response) {
  ASSIGN_OR_RETURN(Resolved r, Resolve(req.group_id(), /*create=*/false));
  std::map<TopicPartitionKey, OffsetCommitValue> offsets;
  if (r.group != nullptr) {
    absl::MutexLock lock(&r.group->mu);
    offsets = r.group->offsets;
  }
  auto add = [&](const std::string& topic, int32_t partition) {
    fjord::v1::CommittedOffset* c = response->add_offsets();
    c->set_topic(topic);
    c->set_partition(partition);
    auto it = offsets.find({topic, partition});
    if (it == offsets.end()) {
      c->set_offset(-1);
    } else {
      c->set_offset(it->second.offset());
      c->set_metadata(it->second.metadata());
      c->set_commit_time_ms(it->second.commit_time_ms());
    }
  };
  if (req.partitions_size() == 0) {
    for (const auto& [key, v] : offsets) add(key.first, key.second);
    return absl::OkStatus();
  }
  for (const fjord::v1::TopicPartitions& tp : req.partitions()) {
    if (tp.partitions_size() == 0) {
      for (const auto& [key, v] : offsets) {
        if (key.first == tp.topic()) add(key.first, key.second);
      }
    }
    for (int32_t p : tp.partitions()) add(tp.topic(), p);
  }
  return absl::OkStatus();
}

grpc::Status GroupCoordinator::ListGroups(grpc::ServerContext*, const fjord::v1::ListGroupsRequest*,
                                          fjord::v1::ListGroupsResponse* response) {
  std::vector<std::shared_ptr<Group>> groups;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [p, shard] : shards_) {
      for (const auto& [id, g] : shard->groups) groups.push_back(g);
    }
  }
  std::map<std::string, fjord::v1::GroupListing> sorted;
  for (const std::shared_ptr<Group>& g : groups) {
    absl::MutexLock lock(&g->mu);
    if (g->gone || (g->membership.empty() && g->offsets.empty())) continue;
    fjord::v1::GroupListing l;
    l.set_group_id(g->membership.group_id());
    l.set_state(g->membership.state());
    l.set_members(static_cast<int32_t>(g->membership.members().size()));
    sorted[l.group_id()] = std::move(l);
  }
  for (auto& [id, l] : sorted) *response->add_groups() = std::move(l);
  response->set_coordinator_id(ctx_.metadata->node_id());
  return grpc::Status::OK;
}

grpc::Status GroupCoordinator::DescribeGroup(grpc::ServerContext*,
                                             const fjord::v1::DescribeGroupRequest* request,
                                             fjord::v1::DescribeGroupResponse* response) {
  return ToGrpcStatus(DoDescribe(*request, response));
}

absl::Status GroupCoordinator::DoDescribe(const fjord::v1::DescribeGroupRequest& req,
                                          fjord::v1::DescribeGroupResponse* response) {
  ASSIGN_OR_RETURN(Resolved r, Resolve(req.group_id(), /*create=*/false));
  auto unknown = [&] {
    return MakeError(absl::StatusCode::kNotFound, ErrorInfo::UNKNOWN_GROUP,
                     absl::StrCat("group ", req.group_id(),
                                  " does not exist (no members and no committed offsets)"));
  };
  if (r.group == nullptr) return unknown();
  absl::MutexLock lock(&r.group->mu);
  const group::GroupMembership& m = r.group->membership;
  if (r.group->gone || (m.empty() && r.group->offsets.empty())) return unknown();
  response->set_group_id(req.group_id());
  response->set_state(m.state());
  response->set_group_epoch(m.group_epoch());
  response->set_assignor(m.assignor());
  response->set_coordinator_id(ctx_.metadata->node_id());
  for (const auto& [id, member] : m.members()) {
    fjord::v1::GroupMember* out = response->add_members();
    out->set_member_id(id);
    out->set_instance_id(member.instance_id);
    out->set_member_epoch(member.member_epoch);
    for (const std::string& t : member.subscribed) out->add_subscribed_topics(t);
    group::ToProto(member.assigned, out->mutable_assignment());
    group::ToProto(m.Target(id), out->mutable_target_assignment());
    out->set_session_timeout_ms(member.session_timeout_ms);
    out->set_departed(member.departed);
  }
  for (const auto& [key, v] : r.group->offsets) {
    fjord::v1::CommittedOffset* c = response->add_offsets();
    c->set_topic(key.first);
    c->set_partition(key.second);
    c->set_offset(v.offset());
    c->set_metadata(v.metadata());
    c->set_commit_time_ms(v.commit_time_ms());
  }
  return absl::OkStatus();
}

grpc::Status GroupCoordinator::DeleteGroup(grpc::ServerContext*,
                                           const fjord::v1::DeleteGroupRequest* request,
                                           fjord::v1::DeleteGroupResponse*) {
  return ToGrpcStatus(DoDelete(*request));
}

absl::Status GroupCoordinator::DoDelete(const fjord::v1::DeleteGroupRequest& req) {
  ASSIGN_OR_RETURN(Resolved r, Resolve(req.group_id(), /*create=*/false));
  auto unknown = MakeError(absl::StatusCode::kNotFound, ErrorInfo::UNKNOWN_GROUP,
                           absl::StrCat("group ", req.group_id(), " does not exist"));
  if (r.group == nullptr) return unknown;
  absl::MutexLock lock(&r.group->mu);
  if (r.group->gone) return unknown;
  if (!r.group->membership.empty()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, ErrorInfo::GROUP_NOT_EMPTY,
                     absl::StrCat("group ", req.group_id(), " has ",
                                  r.group->membership.members().size(),
                                  " member(s); stop its consumers first"));
  }
  if (r.group->offsets.empty()) return unknown;
  google::protobuf::RepeatedPtrField<fjord::v1::Record> records;
  *records.Add() = GroupRecord(req.group_id(), nullptr);
  for (const auto& [key, v] : r.group->offsets) {
    *records.Add() = OffsetRecord(req.group_id(), key.first, key.second, nullptr);
  }
  RETURN_IF_ERROR(Write(*r.shard, records));
  r.group->gone = true;
  absl::MutexLock shard_lock(&mu_);
  auto it = r.shard->groups.find(req.group_id());
  if (it != r.shard->groups.end() && it->second == r.group) r.shard->groups.erase(it);
  return absl::OkStatus();
}

}  // namespace fjord::broker
