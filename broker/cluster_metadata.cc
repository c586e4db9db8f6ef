#include "broker/cluster_metadata.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/errors.h"
#include "common/clock.h"
#include "common/network_faults.h"
#include "common/random_id.h"
#include "glog/logging.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/completion_queue.h"
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

namespace {

// The pause once every voter worth trying in a round was tried.
constexpr absl::Duration kRoundBackoff = absl::Milliseconds(100);
// How long a voter that did not answer is tried only as a last resort.
constexpr absl::Duration kSuspectFor = absl::Seconds(5);

}  // namespace

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

int32_t ControllerClient::leader() const {
  absl::MutexLock lock(&mu_);
  return leader_;
}

int32_t ControllerClient::Next(Round* round) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = MonotonicNow();
  auto untried = [&](int32_t id) { return round->tried_.count(id) == 0; };
  auto suspect = [&](int32_t id) {
    auto it = suspect_since_.find(id);
    return it != suspect_since_.end() && now - it->second < kSuspectFor;
  };
  int32_t pick = -1;
  if (leader_ > 0 && untried(leader_)) {
    pick = leader_;
  } else {
    for (size_t i = 0; i < ids_.size() && pick < 0; ++i) {
      const int32_t id = ids_[(start_ + i) % ids_.size()];
      if (untried(id) && !suspect(id)) pick = id;
    }
    start_ = (start_ + 1) % ids_.size();
    // A voter that did not answer is worth an attempt only when nobody points
    // elsewhere: no active controller is known and no voter answered.
    if (pick < 0 && leader_ < 0 && !round->answered_) {
      absl::Time oldest = absl::InfiniteFuture();
      for (const auto& [id, since] : suspect_since_) {
        if (untried(id) && since < oldest) {
          pick = id;
          oldest = since;
        }
      }
    }
  }
  if (pick > 0) round->tried_.insert(pick);
  return pick;
}

void ControllerClient::Observe(int32_t id, const absl::Status& status, Round* round,
                               Answerer answerer) {
  const ErrorInfo info = ErrorInfoOf(status);
  const bool not_leader = status.code() == absl::StatusCode::kUnavailable &&
                          info.reason() == ErrorInfo::NOT_LEADER;
  absl::MutexLock lock(&mu_);
  auto believe = [&](int32_t leader) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    leader_ = leader;
    if (leader != logged_leader_) {
      LOG(INFO) << "the active controller is " << leader
                << (logged_leader_ >= 0 ? absl::StrCat(" (was ", logged_leader_, ")") : "");
      logged_leader_ = leader;
    }
  };
  if (Retriable(status.code()) && !not_leader) {
    // No answer. Only this voter loses the belief: another call may meanwhile
    // have found the active controller elsewhere.
    auto [it, first] = suspect_since_.insert_or_assign(id, MonotonicNow());
    if (first) {
      LOG(WARNING) << "controller " << id << " did not answer (" << status
                   << "); trying the other voters first until it does";
    }
    if (leader_ == id) leader_ = -1;
    return;
  }
  if (round != nullptr) round->answered_ = true;
  if (suspect_since_.erase(id) > 0) LOG(INFO) << "controller " << id << " answers again";
  if (status.ok()) {
    if (answerer == Answerer::kActive) believe(id);
  } else if (not_leader) {
    if (leader_ == id) leader_ = -1;
    // Voter ids are >= 1: 0 and -1 mean that `id` knows no active controller
    // (an election, or it was just elected and is catching up).
    const int32_t hint = info.leader_id();
    if (hint > 0 && hint != id && stubs_.count(hint) > 0) believe(hint);
  }
}

absl::Status ControllerClient::Call(
    const std::function<grpc::Status(Stubs&, grpc::ClientContext*)>& call,
    absl::Duration timeout, absl::Duration attempt_timeout, Answerer answerer) {
  const absl::Time deadline = MonotonicNow() + timeout;
  absl::Status last = absl::UnavailableError("no controller answered in time");
  Round round;
  for (absl::Duration left = timeout; left > absl::ZeroDuration();
       left = deadline - MonotonicNow()) {
    const int32_t id = Next(&round);
    if (id < 0) {
      absl::SleepFor(std::min(kRoundBackoff, left));
      round.Reset();
      continue;
    }
    const absl::Duration allowed = std::min(left, attempt_timeout);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + allowed));
    absl::Status status = FromGrpc(call(stubs_.at(id), &context));
    if (status.code() == absl::StatusCode::kDeadlineExceeded && allowed < attempt_timeout) {
      // The call's budget ran out, not `id`'s time to answer: no verdict on it.
      return status;
    }
    Observe(id, status, &round, answerer);
    if (status.ok() || !Retriable(status.code())) return status;
    last = status;
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
      client_(options_.voters),
      heartbeat_interval_ms_(absl::ToInt64Milliseconds(options_.heartbeat_interval)) {}

absl::Duration ClusterMetadata::AttemptTimeout() const {
  return std::min(options_.rpc_timeout,
                  std::max(absl::Milliseconds(500),
                           2 * absl::Milliseconds(heartbeat_interval_ms_.load())));
}

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
      options_.rpc_timeout, AttemptTimeout());
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
              options_.rpc_timeout, AttemptTimeout(),
              ControllerClient::Answerer::kAnyVoter)
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
  // Failed registrations or heartbeats in a row, and since when: the first
  // failure, every 10th and the recovery are logged.
  int failures = 0;
  absl::Time failing_since;
  auto failed = [&](const char* what, const absl::Status& status) {
    if (failures++ == 0) failing_since = MonotonicNow();
    if (failures == 1 || failures % 10 == 0) {
      LOG(WARNING) << what << " failed (" << failures << " in a row, for "
                   << absl::Trunc(MonotonicNow() - failing_since, absl::Milliseconds(1))
                   << "): " << status;
    }
  };
  while (!Stopping()) {
    if (epoch_.load() < 0) {
      absl::Status s = Register();
      if (!s.ok()) {
        failed("registering with the controller", s);
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
        options_.rpc_timeout, AttemptTimeout());
    if (status.ok()) {
      if (failures > 0) {
        LOG(INFO) << "heartbeat reached the active controller (" << client_.leader()
                  << ") after " << failures << " failures in "
                  << absl::Trunc(MonotonicNow() - failing_since, absl::Milliseconds(1));
        failures = 0;
      }
      SetFenced(response.is_fenced());
      if (response.should_shutdown()) may_shutdown_.store(true);
      if (response.heartbeat_interval_ms() > 0) {
        heartbeat_interval_ms_.store(response.heartbeat_interval_ms());
      }
    } else if (status.code() == absl::StatusCode::kFailedPrecondition) {
      // Our epoch is stale (the controller forgot or replaced us): register anew.
      LOG(WARNING) << "heartbeat refused (" << status << "); registering again";
      SetFenced(true);
      epoch_.store(-1);
      continue;
    } else {
      // The call tried the voters worth trying for rpc_timeout: go on after a
      // short pause, not a whole interval (Kafka does not back heartbeats off
      // either, KAFKA-19294).
      failed("heartbeat", status);
      absl::SleepFor(kRoundBackoff);
      continue;
    }
    absl::SleepFor(want_shutdown_.load()
                       ? absl::Milliseconds(50)
                       : absl::Milliseconds(heartbeat_interval_ms_.load()));
  }
}

int64_t ClusterMetadata::next_offset() const {
  absl::ReaderMutexLock lock(&mu_);
  return next_offset_;
}

void ClusterMetadata::FollowLoop() {
  ControllerClient::Round round;
  while (!Stopping()) {
    const int32_t id = client_.Next(&round);
    if (id < 0) {
      absl::SleepFor(kRoundBackoff);
      round.Reset();
      continue;
    }
    bool got_any = false;
    const absl::Status status = FollowFrom(id, &got_any);
    if (Stopping()) break;
    // A planned end (OK) says nothing new: the first response already counted.
    if (!status.ok()) client_.Observe(id, status, &round);
    if (got_any) round.Reset();
    if (status.code() == absl::StatusCode::kDataLoss) {
      absl::SleepFor(kRoundBackoff);  // refetch from where the image is
    }
  }
}

absl::Status ClusterMetadata::FollowFrom(int32_t id, bool* got_any) {
  // A stream lasts this long at most, then is reopened from where it was on
  // whichever voter is then believed active.
  constexpr absl::Duration kStreamLifetime = absl::Seconds(10);
  const absl::Duration silence_limit = AttemptTimeout();
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kStreamLifetime));
  fiv1::FetchMetadataRequest request;
  request.set_from_offset(next_offset());
  std::unique_ptr<grpc::ClientAsyncReader<fiv1::FetchMetadataResponse>> reader =
      client_.stubs(id).controller->PrepareAsyncFetchMetadata(&context, request, &cq);
  // One operation is pending at a time, so the tag carries nothing.
  void* const kTag = &cq;
  enum class Outcome { kDone, kEnded, kSilent, kStopping };
  // Waits for the pending operation, up to silence_limit.
  auto wait = [&]() {
    const absl::Time silent_at = MonotonicNow() + silence_limit;
    for (;;) {
      void* tag;
      bool ok;
      // In slices, to notice Stop.
      const absl::Time until = std::min(silent_at, MonotonicNow() + absl::Milliseconds(100));
      if (cq.AsyncNext(&tag, &ok, absl::ToChronoTime(WallDeadline(until))) ==
          grpc::CompletionQueue::GOT_EVENT) {
        return ok ? Outcome::kDone : Outcome::kEnded;
      }
      if (Stopping()) return Outcome::kStopping;
      if (MonotonicNow() >= silent_at) return Outcome::kSilent;
    }
  };
  reader->StartCall(kTag);
  Outcome outcome = wait();
  absl::Status apply_error;
  fiv1::FetchMetadataResponse response;
  // Whether an operation is still pending (waited for in vain).
  bool pending = outcome == Outcome::kSilent || outcome == Outcome::kStopping;
  while (outcome == Outcome::kDone) {
    if (Stopping()) {
      outcome = Outcome::kStopping;
      break;
    }
    reader->Read(&response, kTag);
    outcome = wait();
    pending = outcome == Outcome::kSilent || outcome == Outcome::kStopping;
    if (outcome != Outcome::kDone) break;
    if (!*got_any) {
      *got_any = true;
      client_.Observe(id, absl::OkStatus());
    }
    absl::MutexLock lock(&mu_);
    apply_error = ApplyLocked(response);
    if (!apply_error.ok()) {
      LOG(ERROR) << "applying metadata from controller " << id << ": " << apply_error
                 << "; refetching";
      break;
    }
  }
  void* tag;
  bool ok;
  if (outcome != Outcome::kEnded) {
    context.TryCancel();
    // A cancelled operation completes promptly.
    if (pending) cq.Next(&tag, &ok);
  }
  grpc::Status finish;
  reader->Finish(&finish, kTag);
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (outcome == Outcome::kStopping) return absl::OkStatus();
  if (outcome == Outcome::kSilent) {
    return absl::DeadlineExceededError(
        absl::StrCat("controller ", id, " sent nothing on the metadata stream for ",
                     absl::FormatDuration(silence_limit),
                     *got_any ? " (it had been sending)" : ""));
  }
  if (!apply_error.ok()) return apply_error;
  absl::Status status = FromGrpc(finish);
  // The stream's planned end: the controller was there throughout.
  if (status.code() == absl::StatusCode::kDeadlineExceeded && *got_any) {
    return absl::OkStatus();
  }
  return status;
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
      options_.rpc_timeout, AttemptTimeout());
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

int32_t ClusterMetadata::controller_id() const { return client_.leader(); }

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
      options_.rpc_timeout, AttemptTimeout(), ControllerClient::Answerer::kAnyVoter);
  if (!status.ok()) return status;
  return response;
}

}  // namespace fjord::broker
