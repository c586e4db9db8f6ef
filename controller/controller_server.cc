#include "controller/controller_server.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/errors.h"
#include "common/clock.h"
#include "common/random_id.h"
#include "glog/logging.h"

namespace fjord::controller {
namespace {

namespace fiv1 = fjord::internal::v1;
using fjord::broker::MakeError;
using fjord::broker::ToGrpcStatus;
using fjord::v1::ErrorInfo;

}  // namespace

// ---------------------------------------------------------------------------
// Services

class ControllerServer::ControllerServiceImpl final
    : public fiv1::ControllerService::Service {
 public:
  explicit ControllerServiceImpl(ControllerServer* server) : server_(server) {}

  grpc::Status RegisterBroker(grpc::ServerContext*, const fiv1::RegisterBrokerRequest* req,
                              fiv1::RegisterBrokerResponse* resp) override {
    absl::StatusOr<int64_t> epoch = server_->RegisterBroker(*req);
    if (!epoch.ok()) return ToGrpcStatus(epoch.status());
    resp->set_broker_epoch(*epoch);
    return grpc::Status::OK;
  }

  grpc::Status BrokerHeartbeat(grpc::ServerContext*,
                               const fiv1::BrokerHeartbeatRequest* req,
                               fiv1::BrokerHeartbeatResponse* resp) override {
    absl::StatusOr<fiv1::BrokerHeartbeatResponse> result = server_->Heartbeat(*req);
    if (!result.ok()) return ToGrpcStatus(result.status());
    *resp = *result;
    return grpc::Status::OK;
  }

  grpc::Status AlterPartition(grpc::ServerContext*, const fiv1::AlterPartitionRequest* req,
                              fiv1::AlterPartitionResponse* resp) override {
    absl::StatusOr<fiv1::AlterPartitionResponse> result = server_->AlterPartition(*req);
    if (!result.ok()) return ToGrpcStatus(result.status());
    *resp = std::move(*result);
    return grpc::Status::OK;
  }

  grpc::Status FetchMetadata(grpc::ServerContext* context,
                             const fiv1::FetchMetadataRequest* req,
                             grpc::ServerWriter<fiv1::FetchMetadataResponse>* writer) override {
    if (req->from_offset() < 0) {
      return ToGrpcStatus(MakeError(absl::StatusCode::kInvalidArgument,
                                    ErrorInfo::INVALID_REQUEST,
                                    "from_offset must not be negative"));
    }
    // Brokers follow the active controller, whose log is the newest.
    if (!server_->consensus()->IsLeader()) return ToGrpcStatus(server_->NotLeader());
    int64_t next = req->from_offset();
    while (!context->IsCancelled() && !server_->stopping_.load()) {
      if (!server_->consensus()->IsLeader()) return ToGrpcStatus(server_->NotLeader());
      fiv1::FetchMetadataResponse response;
      if (server_->state()->ReadFrom(next, 1000, &response)) {
        next = response.next_offset();
        if (!writer->Write(response)) break;
        continue;
      }
      // Nothing new: wait briefly, so leadership loss and cancellation are
      // noticed, then loop.
      server_->state()->WaitForOffset(next, absl::Now() + absl::Milliseconds(200));
      if (server_->state()->next_offset() == next) {
        // An idle stream still proves liveness: send an empty response.
        fiv1::FetchMetadataResponse idle;
        idle.set_base_offset(next);
        idle.set_next_offset(next);
        if (!writer->Write(idle)) break;
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status DescribeQuorum(grpc::ServerContext*, const fiv1::DescribeQuorumRequest*,
                              fiv1::DescribeQuorumResponse* resp) override {
    for (const auto& [id, address] : server_->options().voters) {
      fiv1::QuorumVoter* v = resp->add_voters();
      v->set_id(id);
      v->set_address(address);
      v->set_match_index(-1);
    }
    resp->set_leader_id(server_->consensus()->LeaderId());
    resp->set_term(server_->consensus()->Term());
    resp->set_commit_index(server_->consensus()->CommitIndex());
    return grpc::Status::OK;
  }

 private:
  ControllerServer* const server_;
};

class ControllerServer::MetadataServiceImpl final
    : public fjord::v1::MetadataService::Service {
 public:
  explicit MetadataServiceImpl(ControllerServer* server) : server_(server) {}

  grpc::Status Metadata(grpc::ServerContext*, const fjord::v1::MetadataRequest* req,
                        fjord::v1::MetadataResponse* resp) override {
    absl::Status barrier =
        server_->consensus()->ReadBarrier(absl::Now() + absl::Seconds(5));
    if (!barrier.ok()) return ToGrpcStatus(barrier);
    absl::Status status;
    server_->state()->WithImage([&](const MetadataImage& image, int64_t) {
      for (auto& b : image.BrokerInfos()) *resp->add_brokers() = std::move(b);
      if (req->topics_size() == 0) {
        for (auto& t : image.TopicInfos()) *resp->add_topics() = std::move(t);
        return;
      }
      std::vector<std::string> names(req->topics().begin(), req->topics().end());
      std::sort(names.begin(), names.end());
      names.erase(std::unique(names.begin(), names.end()), names.end());
      for (const std::string& name : names) {
        absl::StatusOr<fjord::v1::TopicInfo> info = image.TopicInfoByName(name);
        if (!info.ok()) {
          status = info.status();
          return;
        }
        *resp->add_topics() = std::move(*info);
      }
    });
    if (!status.ok()) {
      resp->Clear();
      return ToGrpcStatus(status);
    }
    resp->set_controller_id(server_->consensus()->LeaderId());
    resp->set_cluster_id(server_->cluster_id());
    return grpc::Status::OK;
  }

 private:
  ControllerServer* const server_;
};

class ControllerServer::AdminServiceImpl final : public fjord::v1::AdminService::Service {
 public:
  explicit AdminServiceImpl(ControllerServer* server) : server_(server) {}

  grpc::Status CreateTopics(grpc::ServerContext*, const fjord::v1::CreateTopicsRequest* req,
                            fjord::v1::CreateTopicsResponse* resp) override {
    absl::StatusOr<std::vector<fjord::v1::TopicInfo>> created = server_->CreateTopics(*req);
    if (!created.ok()) return ToGrpcStatus(created.status());
    for (auto& t : *created) *resp->add_topics() = std::move(t);
    return grpc::Status::OK;
  }

  grpc::Status DeleteTopics(grpc::ServerContext*, const fjord::v1::DeleteTopicsRequest* req,
                            fjord::v1::DeleteTopicsResponse* resp) override {
    absl::StatusOr<std::vector<std::string>> ids = server_->DeleteTopics(*req);
    if (!ids.ok()) return ToGrpcStatus(ids.status());
    for (auto& id : *ids) resp->add_topic_ids(std::move(id));
    return grpc::Status::OK;
  }

  grpc::Status ListTopics(grpc::ServerContext*, const fjord::v1::ListTopicsRequest* req,
                          fjord::v1::ListTopicsResponse* resp) override {
    absl::Status barrier =
        server_->consensus()->ReadBarrier(absl::Now() + absl::Seconds(5));
    if (!barrier.ok()) return ToGrpcStatus(barrier);
    server_->state()->WithImage([&](const MetadataImage& image, int64_t) {
      std::vector<std::string> names;
      for (const auto& [id, topic] : image.topics()) {
        if (!req->include_internal() && topic.name.rfind("__", 0) == 0) continue;
        names.push_back(topic.name);
      }
      std::sort(names.begin(), names.end());
      for (auto& n : names) resp->add_topics(std::move(n));
    });
    return grpc::Status::OK;
  }

  grpc::Status DescribeTopics(grpc::ServerContext*,
                              const fjord::v1::DescribeTopicsRequest* req,
                              fjord::v1::DescribeTopicsResponse* resp) override {
    if (req->topics_size() == 0) {
      return ToGrpcStatus(MakeError(absl::StatusCode::kInvalidArgument,
                                    ErrorInfo::INVALID_REQUEST,
                                    "DescribeTopics needs at least one topic"));
    }
    absl::Status barrier =
        server_->consensus()->ReadBarrier(absl::Now() + absl::Seconds(5));
    if (!barrier.ok()) return ToGrpcStatus(barrier);
    absl::Status status;
    // Offsets live on the brokers; a controller describes placement only.
    server_->state()->WithImage([&](const MetadataImage& image, int64_t) {
      for (const std::string& name : req->topics()) {
        absl::StatusOr<fjord::v1::TopicInfo> info = image.TopicInfoByName(name);
        if (!info.ok()) {
          status = info.status();
          return;
        }
        *resp->add_topics()->mutable_topic() = std::move(*info);
      }
    });
    if (!status.ok()) {
      resp->Clear();
      return ToGrpcStatus(status);
    }
    return grpc::Status::OK;
  }

  grpc::Status DescribeCluster(grpc::ServerContext*,
                               const fjord::v1::DescribeClusterRequest*,
                               fjord::v1::DescribeClusterResponse* resp) override {
    resp->set_cluster_id(server_->cluster_id());
    resp->set_controller_id(server_->consensus()->LeaderId());
    resp->set_controller_term(server_->consensus()->Term());
    for (const auto& [id, address] : server_->options().voters) resp->add_voters(id);
    server_->state()->WithImage([&](const MetadataImage& image, int64_t) {
      for (auto& b : image.BrokerInfos()) *resp->add_brokers() = std::move(b);
    });
    return grpc::Status::OK;
  }

 private:
  ControllerServer* const server_;
};

// ---------------------------------------------------------------------------
// ControllerServer

namespace {
const MetadataImage* ImageOf(MetadataStateMachine* state) {
  const MetadataImage* image = nullptr;
  state->WithImage([&](const MetadataImage& i, int64_t) { image = &i; });
  return image;
}
}  // namespace

ControllerServer::ControllerServer(ControllerServerOptions options, Consensus* consensus,
                                   MetadataStateMachine* state)
    : options_(std::move(options)),
      consensus_(consensus),
      state_(state),
      logic_(ImageOf(state), options_.logic),
      controller_service_(std::make_unique<ControllerServiceImpl>(this)),
      admin_service_(std::make_unique<AdminServiceImpl>(this)),
      metadata_service_(std::make_unique<MetadataServiceImpl>(this)) {}

ControllerServer::~ControllerServer() { Stop(); }

grpc::Service* ControllerServer::controller_service() { return controller_service_.get(); }
grpc::Service* ControllerServer::admin_service() { return admin_service_.get(); }
grpc::Service* ControllerServer::metadata_service() { return metadata_service_.get(); }

void ControllerServer::Start() {
  loop_ = std::thread([this] { Loop(); });
}

void ControllerServer::Stop() {
  stopping_.store(true);
  if (loop_.joinable()) loop_.join();
}

std::string ControllerServer::cluster_id() const {
  std::string id;
  state_->WithImage([&](const MetadataImage& image, int64_t) { id = image.cluster_id(); });
  return id;
}

absl::Status ControllerServer::NotLeader() const {
  const int32_t leader = consensus_->LeaderId();
  absl::Status status = MakeError(
      absl::StatusCode::kUnavailable, ErrorInfo::NOT_LEADER,
      leader < 0 ? std::string("no active controller yet (an election is in progress); retry")
                 : absl::StrCat("controller ", options_.node_id,
                                " is not the active controller; controller ", leader, " is"));
  // Attach the leader's address for clients that re-route.
  fjord::v1::ErrorInfo info;
  info.set_reason(ErrorInfo::NOT_LEADER);
  info.set_leader_id(leader);
  if (auto it = options_.voters.find(leader); it != options_.voters.end()) {
    info.set_leader_address(it->second);
  }
  return broker::WithErrorInfo(std::move(status), info);
}

absl::Status ControllerServer::CheckActiveLocked() {
  if (!consensus_->IsLeader()) return NotLeader();
  if (!active_.load()) {
    return MakeError(absl::StatusCode::kUnavailable, ErrorInfo::NOT_LEADER,
                     "the controller was just elected and is catching up; retry");
  }
  return absl::OkStatus();
}

absl::Status ControllerServer::ProposeLocked(const RecordBatch& records) {
  if (records.empty()) return absl::OkStatus();
  fiv1::MetadataBatch batch;
  for (const auto& r : records) *batch.add_records() = r;
  absl::StatusOr<int64_t> index = consensus_->Propose(
      batch.SerializeAsString(), absl::Now() + options_.propose_timeout);
  if (!index.ok()) {
    // Whatever ControllerLogic decided did not (surely) happen: its soft state
    // may now be ahead of the image. Deactivate, so the next leader term starts
    // from the committed image with fresh sessions.
    active_.store(false);
    if (index.status().code() == absl::StatusCode::kUnavailable) return NotLeader();
    return index.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ControllerServer::RegisterBroker(
    const fiv1::RegisterBrokerRequest& req) {
  absl::MutexLock lock(&write_mu_);
  if (absl::Status s = CheckActiveLocked(); !s.ok()) return s;
  RegisterBrokerRequest request;
  request.broker_id = req.broker_id();
  request.incarnation_id = req.incarnation_id();
  request.rack = req.rack();
  for (const auto& e : req.endpoints()) {
    request.endpoints.push_back({e.name(), e.host(), e.port()});
  }
  absl::StatusOr<RegisterBrokerResult> result;
  state_->WithImage([&](const MetadataImage&, int64_t next_offset) {
    result = logic_.RegisterBroker(request, MonotonicNow(), next_offset);
  });
  if (!result.ok()) return result.status();
  if (absl::Status s = ProposeLocked(result->records); !s.ok()) return s;
  LOG(INFO) << "registered broker " << req.broker_id() << " epoch "
            << result->broker_epoch;
  return result->broker_epoch;
}

absl::StatusOr<fiv1::BrokerHeartbeatResponse> ControllerServer::Heartbeat(
    const fiv1::BrokerHeartbeatRequest& req) {
  absl::MutexLock lock(&write_mu_);
  if (absl::Status s = CheckActiveLocked(); !s.ok()) return s;
  HeartbeatRequest request;
  request.broker_id = req.broker_id();
  request.broker_epoch = req.broker_epoch();
  request.current_metadata_offset = req.metadata_offset();
  request.want_fence = req.want_fence();
  request.want_shutdown = req.want_shutdown();
  absl::StatusOr<HeartbeatResult> result;
  state_->WithImage([&](const MetadataImage&, int64_t next_offset) {
    result = logic_.Heartbeat(request, MonotonicNow(), next_offset);
  });
  if (!result.ok()) return result.status();
  if (absl::Status s = ProposeLocked(result->records); !s.ok()) return s;
  fiv1::BrokerHeartbeatResponse response;
  response.set_is_fenced(result->fenced);
  response.set_should_shutdown(result->should_shutdown);
  response.set_heartbeat_interval_ms(
      static_cast<int32_t>(absl::ToInt64Milliseconds(options_.heartbeat_interval)));
  return response;
}

absl::StatusOr<fiv1::AlterPartitionResponse> ControllerServer::AlterPartition(
    const fiv1::AlterPartitionRequest& req) {
  AlterPartitionRequest request;
  request.broker_id = req.broker_id();
  request.broker_epoch = req.broker_epoch();
  request.topic_id = req.topic_id();
  request.partition = req.partition();
  request.leader_epoch = req.leader_epoch();
  request.partition_epoch = req.partition_epoch();
  for (const auto& m : req.new_isr()) request.new_isr.push_back({m.broker_id(), m.broker_epoch()});
  absl::MutexLock lock(&write_mu_);
  if (absl::Status s = CheckActiveLocked(); !s.ok()) return s;
  absl::StatusOr<AlterPartitionResult> result;
  state_->WithImage([&](const MetadataImage&, int64_t) {
    result = logic_.AlterPartition(request);
  });
  if (!result.ok()) return result.status();
  if (absl::Status s = ProposeLocked(result->records); !s.ok()) return s;
  fiv1::AlterPartitionResponse response;
  fiv1::PartitionState* p = response.mutable_partition();
  p->set_partition(req.partition());
  for (int32_t r : result->partition.replicas) p->add_replicas(r);
  p->set_leader(result->partition.leader);
  p->set_leader_epoch(result->partition.leader_epoch);
  for (int32_t r : result->partition.isr) p->add_isr(r);
  p->set_partition_epoch(result->partition.partition_epoch);
  LOG(INFO) << "AlterPartition " << req.topic_id() << "-" << req.partition() << " from broker "
            << req.broker_id() << ": ISR now " << p->isr_size() << " replicas, partition epoch "
            << p->partition_epoch();
  return response;
}

absl::StatusOr<std::vector<fjord::v1::TopicInfo>> ControllerServer::CreateTopics(
    const fjord::v1::CreateTopicsRequest& req) {
  if (req.topics_size() == 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::INVALID_REQUEST,
                     "CreateTopics needs at least one topic");
  }
  std::vector<CreateTopicRequest> requests;
  for (const auto& t : req.topics()) {
    CreateTopicRequest r;
    r.name = t.name();
    r.partitions = t.partitions();
    r.replication_factor = t.replication_factor();
    r.configs = std::map<std::string, std::string>(t.configs().begin(), t.configs().end());
    requests.push_back(std::move(r));
  }
  absl::MutexLock lock(&write_mu_);
  if (absl::Status s = CheckActiveLocked(); !s.ok()) return s;
  absl::StatusOr<RecordBatch> records;
  state_->WithImage([&](const MetadataImage&, int64_t) {
    records = logic_.CreateTopics(requests, RandomHexId);
  });
  if (!records.ok()) return records.status();
  std::vector<std::string> ids;
  for (const auto& r : *records) {
    if (r.has_create_topic()) ids.push_back(r.create_topic().topic_id());
  }
  if (!req.validate_only()) {
    if (absl::Status s = ProposeLocked(*records); !s.ok()) return s;
  }
  std::vector<fjord::v1::TopicInfo> infos;
  if (req.validate_only()) {
    // Not applied: describe from the records themselves via a scratch image.
    MetadataImage scratch;
    state_->WithImage([&](const MetadataImage& image, int64_t) {
      (void)scratch.Restore(image.Snapshot());
    });
    for (const auto& r : *records) (void)scratch.Apply(r);
    for (const auto& t : req.topics()) {
      if (auto info = scratch.TopicInfoByName(t.name()); info.ok()) infos.push_back(*info);
    }
    return infos;
  }
  state_->WithImage([&](const MetadataImage& image, int64_t) {
    for (const auto& t : req.topics()) {
      if (auto info = image.TopicInfoByName(t.name()); info.ok()) infos.push_back(*info);
    }
  });
  return infos;
}

absl::StatusOr<std::vector<std::string>> ControllerServer::DeleteTopics(
    const fjord::v1::DeleteTopicsRequest& req) {
  if (req.topics_size() == 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorInfo::INVALID_REQUEST,
                     "DeleteTopics needs at least one topic");
  }
  std::vector<std::string> names(req.topics().begin(), req.topics().end());
  absl::MutexLock lock(&write_mu_);
  if (absl::Status s = CheckActiveLocked(); !s.ok()) return s;
  absl::StatusOr<RecordBatch> records;
  state_->WithImage([&](const MetadataImage&, int64_t) {
    records = logic_.DeleteTopics(names);
  });
  if (!records.ok()) return records.status();
  std::vector<std::string> ids;
  for (const auto& r : *records) {
    if (r.has_delete_topic()) ids.push_back(r.delete_topic().topic_id());
  }
  if (absl::Status s = ProposeLocked(*records); !s.ok()) return s;
  return ids;
}

void ControllerServer::ActivateIfLeader() {
  if (!consensus_->IsLeader()) {
    if (active_.exchange(false)) LOG(INFO) << "controller " << options_.node_id << " is no longer active";
    return;
  }
  const int64_t term = consensus_->Term();
  if (active_.load() && active_term_.load() == term) return;
  absl::MutexLock lock(&write_mu_);
  // The barrier: an empty batch, committed in this term, so that every entry of
  // earlier terms is committed and applied before the logic decides anything.
  absl::StatusOr<int64_t> index = consensus_->Propose(
      fiv1::MetadataBatch().SerializeAsString(), absl::Now() + options_.propose_timeout);
  if (!index.ok()) return;  // lost leadership meanwhile; try again next round
  // The very first active controller names the cluster.
  bool named = false;
  state_->WithImage([&](const MetadataImage& image, int64_t) {
    named = !image.cluster_id().empty();
  });
  if (!named) {
    fiv1::MetadataBatch batch;
    batch.add_records()->mutable_cluster_id()->set_cluster_id(RandomHexId());
    if (!consensus_->Propose(batch.SerializeAsString(),
                             absl::Now() + options_.propose_timeout)
             .ok()) {
      return;
    }
  }
  logic_.Activate(MonotonicNow());
  active_term_.store(term);
  active_.store(true);
  LOG(INFO) << "controller " << options_.node_id << " is active in term " << term;
}

void ControllerServer::Loop() {
  absl::Time next_preferred = MonotonicNow() + options_.preferred_leader_interval;
  while (!stopping_.load()) {
    absl::SleepFor(options_.session_check_interval);
    ActivateIfLeader();
    if (!active_.load()) continue;
    absl::MutexLock lock(&write_mu_);
    if (!consensus_->IsLeader()) continue;
    RecordBatch records;
    state_->WithImage([&](const MetadataImage&, int64_t) {
      records = logic_.TickSessions(MonotonicNow());
    });
    if (!records.empty()) {
      LOG(INFO) << "fencing brokers whose sessions expired (" << records.size()
                << " records)";
      (void)ProposeLocked(records);
      continue;
    }
    if (options_.preferred_leader_interval > absl::ZeroDuration() &&
        MonotonicNow() >= next_preferred) {
      next_preferred = MonotonicNow() + options_.preferred_leader_interval;
      state_->WithImage([&](const MetadataImage&, int64_t) {
        records = logic_.ElectPreferredLeaders();
      });
      if (!records.empty()) {
        LOG(INFO) << "moving " << records.size() << " leaderships to preferred replicas";
        (void)ProposeLocked(records);
      }
    }
  }
}

}  // namespace fjord::controller
