#include "broker/cluster_metadata.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/errors.h"
#include "common/clock.h"
#include "common/network_faults.h"
#include "common/random_id.h"
#include "glog/logging.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace fjord::broker {
namespace {

namespace fiv1 = fjord::internal::v1;
using fjord::v1::ErrorInfo;

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  absl::Status status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  google::rpc::Status details;
  if (!s.error_details().empty() && details.ParseFromString(s.error_details())) {
    for (const auto& any : details.details()) {
      ErrorInfo info;
      if (any.UnpackTo(&info)) status = WithErrorInfo(std::move(status), info);
    }
  }
  return status;
}

bool Retriable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kDeadlineExceeded;
}

absl::Status NotLeader(const std::string& topic, int32_t partition, int32_t leader,
                       const std::optional<fjord::v1::BrokerInfo>& leader_info) {
  absl::Status status(
      absl::StatusCode::kUnavailable,
      leader < 0 ? absl::StrCat("partition ", topic, "-", partition,
                                " has no leader right now (its in-sync replicas are "
                                "down); retry")
                 : absl::StrCat("this broker does not lead partition ", topic, "-",
                                partition, "; broker ", leader, " does"));
  ErrorInfo info;
  info.set_reason(ErrorInfo::NOT_LEADER);
  info.set_leader_id(leader);
  if (leader_info.has_value()) {
    info.set_leader_address(absl::StrCat(leader_info->host(), ":", leader_info->port()));
  }
  return WithErrorInfo(std::move(status), info);
}

}  // namespace

// ---------------------------------------------------------------------------
// ControllerClient

ControllerClient::ControllerClient(std::map<int32_t, std::string> voters) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Reconnect quickly after a controller restarts.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  for (const auto& [id, address] : voters) {
    auto channel = NewPeerChannel(address, args);
    Stubs stubs;
    stubs.controller = fiv1::ControllerService::NewStub(channel);
    stubs.admin = fjord::v1::AdminService::NewStub(channel);
    stubs_.emplace(id, std::move(stubs));
    ids_.push_back(id);
  }
}

ControllerClient::Stubs& ControllerClient::Current() {
  absl::MutexLock lock(&mu_);
  return stubs_.at(ids_[current_]);
}

void ControllerClient::Rotate(int32_t hint) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < ids_.size(); ++i) {
    if (ids_[i] == hint) {
      current_ = i;
      return;
    }
  }
  current_ = (current_ + 1) % ids_.size();
}

absl::Status ControllerClient::Call(
    const std::function<grpc::Status(Stubs&, grpc::ClientContext*)>& call,
    absl::Duration timeout, absl::Duration attempt_timeout) {
  const absl::Time deadline = MonotonicNow() + timeout;
  absl::Status last = absl::UnavailableError("no controller answered");
  for (int attempt = 0; MonotonicNow() < deadline; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(
        absl::Now() + std::min(deadline - MonotonicNow(), attempt_timeout)));
    absl::Status status = FromGrpc(call(Current(), &context));
    if (status.ok() || !Retriable(status.code())) return status;
    last = status;
    ErrorInfo info = ErrorInfoOf(status);
    if (info.reason() == ErrorInfo::NOT_LEADER && info.leader_id() >= 0) {
      Rotate(info.leader_id());
    } else {
      Rotate();
    }
    // Back off a little once every voter has been tried.
    if (attempt % static_cast<int>(ids_.size()) == static_cast<int>(ids_.size()) - 1) {
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  return last;
}

// ---------------------------------------------------------------------------
// ClusterMetadata

ClusterMetadata::ClusterMetadata(storage::LogStore* store, ClusterOptions options,
                                 std::function<void(bool)> on_fence_change)
    : store_(store),
      options_(std::move(options)),
      incarnation_id_(options_.incarnation_id.empty() ? RandomHexId()
                                                      : options_.incarnation_id),
      on_fence_change_(std::move(on_fence_change)),
      client_(options_.voters) {}

absl::StatusOr<std::unique_ptr<ClusterMetadata>> ClusterMetadata::Create(
    storage::LogStore* store, ClusterOptions options,
    std::function<void(bool)> on_fence_change) {
  if (options.voters.empty()) {
    return absl::InvalidArgumentError("a cluster broker needs controller voters");
  }
  return std::unique_ptr<ClusterMetadata>(
      new ClusterMetadata(store, std::move(options), std::move(on_fence_change)));
}

void ClusterMetadata::Run(std::string advertised_host, int advertised_port) {
  options_.advertised_host = std::move(advertised_host);
  options_.advertised_port = advertised_port;
  follow_thread_ = std::thread([this] { FollowLoop(); });
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
}

bool ClusterMetadata::WaitUnfenced(absl::Duration timeout) const {
  const absl::Time deadline = MonotonicNow() + timeout;
  while (fenced_.load() && MonotonicNow() < deadline && !stopping_.load()) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  return !fenced_.load();
}

ClusterMetadata::~ClusterMetadata() {
  stopping_.store(true);
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  if (follow_thread_.joinable()) follow_thread_.join();
}

void ClusterMetadata::Shutdown(absl::Duration timeout) {
  if (epoch_.load() >= 0 && !fenced_.load()) {
    want_shutdown_.store(true);
    const absl::Time deadline = MonotonicNow() + timeout;
    while (!may_shutdown_.load() && MonotonicNow() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    LOG(INFO) << (may_shutdown_.load() ? "controlled shutdown complete"
                                       : "controlled shutdown timed out");
  }
  stopping_.store(true);
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  if (follow_thread_.joinable()) follow_thread_.join();
}

absl::Status ClusterMetadata::Register() {
  fiv1::RegisterBrokerRequest request;
  request.set_broker_id(options_.node_id);
  request.set_incarnation_id(incarnation_id_);
  request.set_rack(options_.rack);
  fiv1::BrokerEndpoint* endpoint = request.add_endpoints();
  endpoint->set_name("client");
  endpoint->set_host(options_.advertised_host);
  endpoint->set_port(options_.advertised_port);
  fiv1::RegisterBrokerResponse response;
  absl::Status status = client_.Call(
      [&](ControllerClient::Stubs& stubs, grpc::ClientContext* ctx) {
        return stubs.controller->RegisterBroker(ctx, request, &response);
      },
      options_.rpc_timeout, options_.rpc_timeout);
  if (!status.ok()) return status;
  epoch_.store(response.broker_epoch());
  SetFenced(true);
  {
    // The registration record may have been applied already, before its
    // epoch was known here (ReconcileLocked held replication back then).
    absl::MutexLock lock(&mu_);
    if (next_offset_ > response.broker_epoch()) ReconcileLocked();
  }
  fjord::v1::DescribeClusterResponse cluster;
  if (client_
          .Call(
              [&](ControllerClient::Stubs& stubs, grpc::ClientContext* ctx) {
                return stubs.admin->DescribeCluster(
                    ctx, fjord::v1::DescribeClusterRequest(), &cluster);
              },
              options_.rpc_timeout, options_.rpc_timeout)
          .ok()) {
    absl::MutexLock lock(&mu_);
    cluster_id_ = cluster.cluster_id();
  }
  LOG(INFO) << "registered as broker " << options_.node_id << " with epoch "
            << response.broker_epoch();
  return absl::OkStatus();
}

void ClusterMetadata::SetFenced(bool fenced) {
  if (fenced_.exchange(fenced) == fenced) return;
  if (fenced) {
    LOG(WARNING) << "fenced by the controller";
  } else {
    LOG(INFO) << "unfenced by the controller";
  }
  if (on_fence_change_) on_fence_change_(fenced);
}

void ClusterMetadata::HeartbeatLoop() {
  absl::Duration interval = options_.heartbeat_interval;
  while (!Stopping()) {
    if (epoch_.load() < 0) {
      absl::Status s = Register();
      if (!s.ok()) {
        LOG_EVERY_N(WARNING, 10) << "registering with the controller: " << s;
        absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
    }
    fiv1::BrokerHeartbeatRequest request;
    request.set_broker_id(options_.node_id);
    request.set_broker_epoch(epoch_.load());
    request.set_metadata_offset(next_offset() - 1);
    request.set_want_shutdown(want_shutdown_.load());
    fiv1::BrokerHeartbeatResponse response;
    absl::Status status = client_.Call(
        [&](ControllerClient::Stubs& stubs, grpc::ClientContext* ctx) {
          return stubs.controller->BrokerHeartbeat(ctx, request, &response);
        },
        options_.rpc_timeout, options_.rpc_timeout);
    if (status.ok()) {
      SetFenced(response.is_fenced());
      if (response.should_shutdown()) may_shutdown_.store(true);
      if (response.heartbeat_interval_ms() > 0) {
        interval = absl::Milliseconds(response.heartbeat_interval_ms());
      }
    } else if (status.code() == absl::StatusCode::kFailedPrecondition) {
      // Our epoch is stale (the controller forgot or replaced us): register anew.
      LOG(WARNING) << "heartbeat refused (" << status << "); registering again";
      SetFenced(true);
      epoch_.store(-1);
      continue;
    } else {
      LOG_EVERY_N(WARNING, 10) << "heartbeat failed: " << status;
    }
    absl::SleepFor(want_shutdown_.load() ? absl::Milliseconds(50) : interval);
  }
}

int64_t ClusterMetadata::next_offset() const {
  absl::ReaderMutexLock lock(&mu_);
  return next_offset_;
}

void ClusterMetadata::FollowLoop() {
  while (!Stopping()) {
    grpc::ClientContext context;
    // The controller sends an (empty) response at least every 200 ms, but a
    // paused controller keeps its TCP connection open and sends nothing. So each
    // stream lives a few seconds only and is then reopened from where it was.
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
    fiv1::FetchMetadataRequest request;
    request.set_from_offset(next_offset());
    auto reader = client_.Current().controller->FetchMetadata(&context, request);
    fiv1::FetchMetadataResponse response;
    bool got_any = false;
    while (!Stopping()) {
      if (!reader->Read(&response)) break;
      got_any = true;
      absl::MutexLock lock(&mu_);
      if (absl::Status s = ApplyLocked(response); !s.ok()) {
        LOG(ERROR) << "applying metadata: " << s << "; refetching";
        context.TryCancel();
        break;
      }
    }
    context.TryCancel();
    grpc::Status finish = reader->Finish();
    if (Stopping()) break;
    absl::Status status = FromGrpc(finish);
    ErrorInfo info = ErrorInfoOf(status);
    if (info.reason() == ErrorInfo::NOT_LEADER && info.leader_id() >= 0) {
      controller_id_.store(info.leader_id());
      client_.Rotate(info.leader_id());
    } else if (status.code() == absl::StatusCode::kDeadlineExceeded && got_any) {
      // The stream's planned end: reopen on the same controller.
    } else {
      client_.Rotate();
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
}

absl::Status ClusterMetadata::ApplyLocked(const fiv1::FetchMetadataResponse& response) {
  if (response.has_snapshot()) {
    controller::MetadataImage image;
    if (absl::Status s = image.Restore(response.snapshot()); !s.ok()) return s;
    image_ = std::move(image);
    next_offset_ = response.snapshot_offset();
  }
  if (response.records_size() > 0) {
    // Records we already have (a resent batch) are skipped.
    int64_t offset = response.base_offset();
    if (offset > next_offset_) {
      return absl::DataLossError(absl::StrCat("metadata gap: have up to ", next_offset_,
                                              ", got a batch at ", offset));
    }
    for (const auto& record : response.records()) {
      if (offset++ < next_offset_) continue;
      absl::Status s = image_.Apply(record);
      // The controllers skipped the same record; stay identical to them.
      if (!s.ok()) LOG(ERROR) << "metadata record " << offset - 1 << " rejected: " << s;
      next_offset_ = offset;
    }
  }
  if (response.has_snapshot() || response.records_size() > 0) ReconcileLocked();
  return absl::OkStatus();
}

void ClusterMetadata::ReconcileLocked() {
  // Which partition logs this broker should hold.
  std::set<std::string> wanted;
  std::vector<storage::PartitionId> missing;
  for (const auto& [id, topic] : image_.topics()) {
    for (size_t p = 0; p < topic.partitions.size(); ++p) {
      const auto& replicas = topic.partitions[p].replicas;
      if (std::find(replicas.begin(), replicas.end(), options_.node_id) == replicas.end()) {
        continue;
      }
      storage::PartitionId pid{topic.id, static_cast<int32_t>(p)};
      wanted.insert(pid.ColumnFamilyName());
      if (store_->GetPartition(pid) == nullptr) missing.push_back(pid);
    }
  }
  if (!missing.empty()) {
    absl::StatusOr<std::vector<std::shared_ptr<storage::PartitionLog>>> created =
        store_->CreatePartitions(missing);
    if (!created.ok()) LOG(ERROR) << "creating partition logs: " << created.status();
  }
  for (const storage::PartitionId& pid : store_->ListPartitions()) {
    if (wanted.count(pid.ColumnFamilyName()) == 0) {
      LOG(INFO) << "dropping partition log " << pid.ColumnFamilyName()
                << " (its topic was deleted or moved)";
      absl::Status s = store_->DropPartition(pid);
      if (!s.ok()) LOG(WARNING) << "dropping " << pid.ColumnFamilyName() << ": " << s;
    }
  }
  // Rebuild the lookup table.
  std::map<std::string, std::shared_ptr<const TopicState>, std::less<>> topics;
  for (fjord::v1::TopicInfo& info : image_.TopicInfos()) {
    auto state = std::make_shared<TopicState>();
    const controller::Topic* topic = image_.FindTopicByName(info.name());
    absl::StatusOr<TopicConfig> config = TopicConfig::Parse(topic->configs);
    state->config = config.ok() ? *config : TopicConfig();
    for (int p = 0; p < info.partitions_size(); ++p) {
      state->logs.push_back(store_->GetPartition({info.topic_id(), p}));
    }
    state->info = std::move(info);
    topics[state->info.name()] = std::move(state);
  }
  topics_ = std::move(topics);
  // Leading and following act on metadata only once this process is
  // registered and the metadata includes its registration. Before that the
  // image may still name this broker id as a partition's leader on behalf of
  // the previous process with this id, whose session has not yet expired; this
  // process (after a crash, or with an emptied or damaged-and-moved store,
  // KIP-903) must not take over those leader epochs: followers would truncate
  // to its log. The controller moves the old process's leaderships away
  // before it accepts the new registration.
  const int64_t epoch = epoch_.load();
  if (epoch < 0 || next_offset_ <= epoch) {
    VLOG(1) << "metadata up to " << next_offset_
            << " not yet given to replication: waiting for this broker's registration";
    return;
  }
  if (on_metadata_) {
    std::map<int32_t, std::string> addresses;
    for (const auto& b : image_.BrokerInfos()) {
      addresses[b.id()] = absl::StrCat(b.host(), ":", b.port());
    }
    on_metadata_(topics_, addresses, image_);
  }
}

absl::StatusOr<fiv1::AlterPartitionResponse> ClusterMetadata::AlterPartition(
    const fiv1::AlterPartitionRequest& request) {
  fiv1::AlterPartitionResponse response;
  absl::Status status = client_.Call(
      [&](ControllerClient::Stubs& stubs, grpc::ClientContext* ctx) {
        return stubs.controller->AlterPartition(ctx, request, &response);
      },
      options_.rpc_timeout, options_.rpc_timeout);
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<std::shared_ptr<const TopicState>> ClusterMetadata::GetTopic(
    absl::string_view name) const {
  if (absl::Status s = ValidateTopicName(name); !s.ok()) return s;
  absl::ReaderMutexLock lock(&mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    return MakeError(absl::StatusCode::kNotFound, ErrorInfo::UNKNOWN_TOPIC,
                     absl::StrCat("topic ", name, " does not exist"));
  }
  return it->second;
}

absl::StatusOr<PartitionHandle> ClusterMetadata::Lookup(absl::string_view topic,
                                                        int32_t partition) const {
  absl::StatusOr<std::shared_ptr<const TopicState>> state = GetTopic(topic);
  if (!state.ok()) return state.status();
  const int32_t count = (*state)->info.partitions_size();
  if (partition < 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::UNKNOWN_PARTITION,
                     absl::StrCat("partition ", partition, " is negative"));
  }
  if (partition >= count) {
    return MakeError(absl::StatusCode::kNotFound, ErrorInfo::UNKNOWN_PARTITION,
                     absl::StrCat("topic ", topic, " has no partition ", partition,
                                  " (it has ", count, ": 0 to ", count - 1, ")"));
  }
  const int32_t leader = (*state)->info.partitions(partition).leader_id();
  if (leader != options_.node_id || fenced_.load() ||
      (*state)->logs[partition] == nullptr) {
    std::optional<fjord::v1::BrokerInfo> info;
    {
      absl::ReaderMutexLock lock(&mu_);
      info = image_.BrokerInfoOf(leader);
    }
    return NotLeader(std::string(topic), partition,
                     leader == options_.node_id ? -1 : leader, info);
  }
  return PartitionHandle{*std::move(state), partition};
}

std::vector<std::shared_ptr<const TopicState>> ClusterMetadata::ListTopics() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::shared_ptr<const TopicState>> out;
  for (const auto& [name, topic] : topics_) out.push_back(topic);
  return out;
}

std::vector<fjord::v1::BrokerInfo> ClusterMetadata::Brokers() const {
  absl::ReaderMutexLock lock(&mu_);
  return image_.BrokerInfos();
}

int32_t ClusterMetadata::controller_id() const { return controller_id_.load(); }

std::string ClusterMetadata::cluster_id() const {
  absl::ReaderMutexLock lock(&mu_);
  return cluster_id_;
}

bool ClusterMetadata::AwaitImage(
    const std::function<bool(const controller::MetadataImage&)>& done,
    absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto cond = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return done(image_); };
  return mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
}

absl::StatusOr<std::vector<fjord::v1::TopicInfo>> ClusterMetadata::CreateTopics(
    const std::vector<fjord::v1::NewTopic>& topics, bool validate_only) {
  fjord::v1::CreateTopicsRequest request;
  for (const auto& t : topics) *request.add_topics() = t;
  request.set_validate_only(validate_only);
  fjord::v1::CreateTopicsResponse response;
  absl::Status status = client_.Call(
      [&](ControllerClient::Stubs& stubs, grpc::ClientContext* ctx) {
        return stubs.admin->CreateTopics(ctx, request, &response);
      },
      options_.rpc_timeout * 3, options_.rpc_timeout);
  if (!status.ok()) return status;
  std::vector<fjord::v1::TopicInfo> infos(response.topics().begin(),
                                          response.topics().end());
  if (!validate_only) {
    std::set<std::string> ids;
    for (const auto& info : infos) ids.insert(info.topic_id());
    AwaitImage(
        [&](const controller::MetadataImage& image) {
          for (const auto& id : ids) {
            if (image.FindTopicById(id) == nullptr) return false;
          }
          return true;
        },
        options_.rpc_timeout);
  }
  return infos;
}

absl::StatusOr<std::vector<std::string>> ClusterMetadata::DeleteTopics(
    const std::vector<std::string>& names) {
  fjord::v1::DeleteTopicsRequest request;
  for (const auto& n : names) request.add_topics(n);
  fjord::v1::DeleteTopicsResponse response;
  absl::Status status = client_.Call(
      [&](ControllerClient::Stubs& stubs, grpc::ClientContext* ctx) {
        return stubs.admin->DeleteTopics(ctx, request, &response);
      },
      options_.rpc_timeout * 3, options_.rpc_timeout);
  if (!status.ok()) return status;
  std::vector<std::string> ids(response.topic_ids().begin(), response.topic_ids().end());
  AwaitImage(
      [&](const controller::MetadataImage& image) {
        for (const auto& id : ids) {
          if (image.FindTopicById(id) != nullptr) return false;
        }
        return true;
      },
      options_.rpc_timeout);
  return ids;
}

absl::StatusOr<fjord::v1::DescribeClusterResponse> ClusterMetadata::DescribeCluster() {
  fjord::v1::DescribeClusterRequest request;
  fjord::v1::DescribeClusterResponse response;
  absl::Status status = client_.Call(
      [&](ControllerClient::Stubs& stubs, grpc::ClientContext* ctx) {
        return stubs.admin->DescribeCluster(ctx, request, &response);
      },
      options_.rpc_timeout, options_.rpc_timeout);
  if (!status.ok()) return status;
  return response;
}

}  // namespace fjord::broker
