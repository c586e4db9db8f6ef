#include "client/testing/fake_broker.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fjord/v1/admin.grpc.pb.h"
#include "fjord/v1/fetch.grpc.pb.h"
#include "fjord/v1/group.grpc.pb.h"
#include "fjord/v1/metadata.grpc.pb.h"
#include "fjord/v1/produce.grpc.pb.h"
#include "google/protobuf/unknown_field_set.h"

namespace fjord::client::testing {

grpc::Status StatusWithErrorInfo(grpc::StatusCode code,
                                 const std::string& message,
                                 const fjord::v1::ErrorInfo& info) {
  google::protobuf::UnknownFieldSet any;
  any.AddLengthDelimited(1, "type.googleapis.com/fjord.v1.ErrorInfo");
  any.AddLengthDelimited(2, info.SerializeAsString());
  google::protobuf::UnknownFieldSet status;
  status.AddVarint(1, static_cast<int>(code));
  status.AddLengthDelimited(2, message);
  std::string any_bytes;
  any.SerializeToString(&any_bytes);
  status.AddLengthDelimited(3, any_bytes);
  std::string details;
  status.SerializeToString(&details);
  return grpc::Status(code, message, details);
}

class FakeBroker::Service : public fjord::v1::MetadataService::Service {
 public:
  explicit Service(FakeBroker* b) : b_(b) {}

  grpc::Status Metadata(grpc::ServerContext*,
                        const fjord::v1::MetadataRequest* request,
                        fjord::v1::MetadataResponse* response) override {
    absl::MutexLock lock(&b_->mu_);
    auto* broker = response->add_brokers();
    broker->set_id(b_->id_);
    broker->set_host("0.0.0.0");  // Wildcard: the client must substitute.
    broker->set_port(b_->port_);
    for (const auto& [id, address] : b_->peers_) {
      auto* peer = response->add_brokers();
      peer->set_id(id);
      const size_t colon = address.rfind(':');
      peer->set_host(address.substr(0, colon));
      peer->set_port(std::stoi(address.substr(colon + 1)));
    }
    response->set_controller_id(b_->id_);
    response->set_cluster_id("fake");
    std::vector<std::string> names(request->topics().begin(),
                                   request->topics().end());
    if (names.empty()) {
      for (const auto& [name, parts] : b_->topics_) names.push_back(name);
    }
    for (const auto& name : names) {
      auto it = b_->topics_.find(name);
      if (it == b_->topics_.end()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND,
                            absl::StrCat("unknown topic '", name, "'"));
      }
      auto* t = response->add_topics();
      t->set_name(name);
      t->set_replication_factor(1);
      for (size_t p = 0; p < it->second.size(); ++p) {
        auto* pi = t->add_partitions();
        pi->set_partition(p);
        const int32_t leader = b_->LeaderOf(name, p);
        pi->set_leader_id(leader);
        pi->add_replicas(leader < 0 ? b_->id_ : leader);
        if (leader >= 0) pi->add_isr(leader);
      }
    }
    return grpc::Status::OK;
  }

 private:
  FakeBroker* b_;
};

namespace {

class ProduceImpl : public fjord::v1::ProduceService::Service {
 public:
  using Fn = std::function<grpc::Status(const fjord::v1::ProduceRequest*,
                                        fjord::v1::ProduceResponse*)>;
  explicit ProduceImpl(Fn fn) : fn_(std::move(fn)) {}
  grpc::Status Produce(grpc::ServerContext*,
                       const fjord::v1::ProduceRequest* request,
                       fjord::v1::ProduceResponse* response) override {
    return fn_(request, response);
  }

 private:
  Fn fn_;
};

class AdminImpl : public fjord::v1::AdminService::Service {
 public:
  using Fn = std::function<grpc::Status(const fjord::v1::DescribeTopicsRequest*,
                                        fjord::v1::DescribeTopicsResponse*)>;
  explicit AdminImpl(Fn fn) : fn_(std::move(fn)) {}
  grpc::Status DescribeTopics(
      grpc::ServerContext*, const fjord::v1::DescribeTopicsRequest* request,
      fjord::v1::DescribeTopicsResponse* response) override {
    return fn_(request, response);
  }

 private:
  Fn fn_;
};

class FetchImpl : public fjord::v1::FetchService::Service {
 public:
  using FetchFn = std::function<grpc::Status(
      grpc::ServerContext*, const fjord::v1::FetchRequest*,
      grpc::ServerWriter<fjord::v1::FetchResponse>*)>;
  using ListFn = std::function<grpc::Status(
      const fjord::v1::ListOffsetsRequest*, fjord::v1::ListOffsetsResponse*)>;
  FetchImpl(FetchFn fetch, ListFn list)
      : fetch_(std::move(fetch)), list_(std::move(list)) {}
  grpc::Status Fetch(
      grpc::ServerContext* context, const fjord::v1::FetchRequest* request,
      grpc::ServerWriter<fjord::v1::FetchResponse>* writer) override {
    return fetch_(context, request, writer);
  }
  grpc::Status ListOffsets(grpc::ServerContext*,
                           const fjord::v1::ListOffsetsRequest* request,
                           fjord::v1::ListOffsetsResponse* response) override {
    return list_(request, response);
  }

 private:
  FetchFn fetch_;
  ListFn list_;
};

}  // namespace

class FakeBroker::GroupServiceImpl : public fjord::v1::GroupService::Service {
 public:
  explicit GroupServiceImpl(FakeBroker* b) : b_(b) {}

  grpc::Status FindCoordinator(
      grpc::ServerContext*, const fjord::v1::FindCoordinatorRequest* request,
      fjord::v1::FindCoordinatorResponse* response) override {
    absl::MutexLock lock(&b_->mu_);
    if (request->group_id().empty()) {
      return GroupError(grpc::StatusCode::INVALID_ARGUMENT,
                        fjord::v1::ErrorInfo::INVALID_GROUP_ID, "empty group");
    }
    const int32_t id = b_->coordinator_id_ < 0 ? b_->id_ : b_->coordinator_id_;
    response->set_coordinator_id(id);
    if (id == b_->id_) {
      response->set_address(absl::StrCat("0.0.0.0:", b_->port_));
    } else if (auto it = b_->peers_.find(id); it != b_->peers_.end()) {
      response->set_address(it->second);
    }
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*,
                         const fjord::v1::GroupHeartbeatRequest* request,
                         fjord::v1::GroupHeartbeatResponse* response) override {
    absl::MutexLock lock(&b_->mu_);
    GroupCall call;
    call.heartbeat = *request;
    b_->group_calls_.push_back(std::move(call));
    if (!b_->heartbeat_failures_.empty()) {
      grpc::Status s = b_->heartbeat_failures_.front();
      b_->heartbeat_failures_.pop_front();
      return s;
    }
    if (grpc::Status s = b_->CheckCoordinator(); !s.ok()) return s;
    FakeGroup& g = b_->groups_[request->group_id()];
    const int32_t epoch = request->member_epoch();
    if (epoch == -1 || epoch == -2) {
      g.members.erase(request->member_id());
      ++g.epoch;
      response->set_member_id(request->member_id());
      response->set_member_epoch(epoch);
      return grpc::Status::OK;
    }
    FakeMember* m = nullptr;
    if (epoch == 0) {
      if (g.members.empty()) g.assignor = request->assignor();
      std::string id;
      std::set<std::pair<std::string, int>> answer;
      if (!request->instance_id().empty()) {
        for (auto& [mid, other] : g.members) {
          if (other.instance_id == request->instance_id()) {
            id = mid;
            answer = other.answer;
          }
        }
      }
      if (id.empty()) id = absl::StrCat("m", b_->next_member_++);
      m = &g.members[id];
      m->id = id;
      m->epoch = 1;
      m->join_order = b_->next_member_++;
      m->instance_id = request->instance_id();
      m->owned.clear();
      m->answer = answer;
      ++g.epoch;
    } else {
      auto it = g.members.find(request->member_id());
      if (it == g.members.end()) {
        return GroupError(
            grpc::StatusCode::FAILED_PRECONDITION,
            fjord::v1::ErrorInfo::UNKNOWN_MEMBER_ID,
            absl::StrCat("unknown member ", request->member_id()));
      }
      m = &it->second;
      if (epoch != m->epoch) {
        return GroupError(grpc::StatusCode::FAILED_PRECONDITION,
                          fjord::v1::ErrorInfo::FENCED_MEMBER_EPOCH,
                          absl::StrCat("member ", m->id, " has epoch ",
                                       m->epoch, ", not ", epoch));
      }
      m->owned.clear();
      for (const auto& t : request->owned_partitions()) {
        for (int32_t p : t.partitions()) m->owned.insert({t.topic(), p});
      }
    }
    m->topics.assign(request->subscribed_topics().begin(),
                     request->subscribed_topics().end());
    m->session_timeout_ms = request->session_timeout_ms();
    const auto targets = b_->Targets(g);
    std::set<std::pair<std::string, int>> answer;
    const auto& target = targets.at(m->id);
    for (const auto& tp : target) {
      bool taken = false;
      for (const auto& [mid, other] : g.members) {
        if (mid != m->id && other.owned.count(tp) > 0) taken = true;
      }
      if (!taken) answer.insert(tp);
    }
    if (answer != m->answer) {
      ++m->epoch;
      m->answer = answer;
    }
    response->set_member_id(m->id);
    response->set_member_epoch(m->epoch);
    response->set_heartbeat_interval_ms(b_->heartbeat_interval_ms_);
    response->set_assignment_pending(answer != target);
    fjord::v1::TopicPartitions* current = nullptr;
    for (const auto& [topic, p] : answer) {
      if (current == nullptr || current->topic() != topic) {
        current = response->add_assignment();
        current->set_topic(topic);
      }
      current->add_partitions(p);
    }
    return grpc::Status::OK;
  }

  grpc::Status CommitOffsets(grpc::ServerContext*,
                             const fjord::v1::CommitOffsetsRequest* request,
                             fjord::v1::CommitOffsetsResponse*) override {
    absl::MutexLock lock(&b_->mu_);
    GroupCall call;
    call.is_commit = true;
    call.commit = *request;
    b_->group_calls_.push_back(std::move(call));
    if (!b_->commit_failures_.empty()) {
      grpc::Status s = b_->commit_failures_.front();
      b_->commit_failures_.pop_front();
      return s;
    }
    if (grpc::Status s = b_->CheckCoordinator(); !s.ok()) return s;
    FakeGroup& g = b_->groups_[request->group_id()];
    if (request->member_id().empty()) {
      if (!g.members.empty()) {
        return GroupError(grpc::StatusCode::FAILED_PRECONDITION,
                          fjord::v1::ErrorInfo::GROUP_NOT_EMPTY,
                          "the group has members");
      }
    } else {
      auto it = g.members.find(request->member_id());
      if (it == g.members.end()) {
        return GroupError(grpc::StatusCode::FAILED_PRECONDITION,
                          fjord::v1::ErrorInfo::UNKNOWN_MEMBER_ID,
                          "unknown member");
      }
      if (it->second.epoch != request->member_epoch()) {
        return GroupError(grpc::StatusCode::FAILED_PRECONDITION,
                          fjord::v1::ErrorInfo::STALE_MEMBER_EPOCH,
                          "stale member epoch");
      }
      for (const auto& o : request->offsets()) {
        const std::pair<std::string, int> tp{o.topic(), o.partition()};
        if (it->second.owned.count(tp) == 0 &&
            it->second.answer.count(tp) == 0) {
          return GroupError(grpc::StatusCode::FAILED_PRECONDITION,
                            fjord::v1::ErrorInfo::PARTITION_NOT_ASSIGNED,
                            absl::StrCat(o.topic(), "-", o.partition(),
                                         " is not assigned to the member"));
        }
      }
    }
    for (const auto& o : request->offsets()) {
      auto t = b_->topics_.find(o.topic());
      if (t == b_->topics_.end() || o.partition() < 0 ||
          o.partition() >= static_cast<int>(t->second.size())) {
        return GroupError(grpc::StatusCode::NOT_FOUND,
                          fjord::v1::ErrorInfo::UNKNOWN_PARTITION,
                          "unknown partition");
      }
      if (o.offset() < 0 ||
          o.offset() > static_cast<int64_t>(t->second[o.partition()].size())) {
        return GroupError(grpc::StatusCode::OUT_OF_RANGE,
                          fjord::v1::ErrorInfo::OFFSET_OUT_OF_RANGE,
                          "offset beyond the high watermark");
      }
    }
    for (const auto& o : request->offsets()) {
      g.offsets[{o.topic(), o.partition()}] = o.offset();
    }
    return grpc::Status::OK;
  }

  grpc::Status FetchOffsets(
      grpc::ServerContext*, const fjord::v1::FetchOffsetsRequest* request,
      fjord::v1::FetchOffsetsResponse* response) override {
    absl::MutexLock lock(&b_->mu_);
    if (grpc::Status s = b_->CheckCoordinator(); !s.ok()) return s;
    const FakeGroup& g = b_->groups_[request->group_id()];
    if (request->partitions().empty()) {
      for (const auto& [tp, offset] : g.offsets) {
        auto* o = response->add_offsets();
        o->set_topic(tp.first);
        o->set_partition(tp.second);
        o->set_offset(offset);
      }
      return grpc::Status::OK;
    }
    for (const auto& t : request->partitions()) {
      for (int32_t p : t.partitions()) {
        auto* o = response->add_offsets();
        o->set_topic(t.topic());
        o->set_partition(p);
        auto it = g.offsets.find({t.topic(), p});
        o->set_offset(it == g.offsets.end() ? -1 : it->second);
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status ListGroups(grpc::ServerContext*,
                          const fjord::v1::ListGroupsRequest*,
                          fjord::v1::ListGroupsResponse* response) override {
    absl::MutexLock lock(&b_->mu_);
    response->set_coordinator_id(b_->id_);
    if (b_->coordinator_id_ >= 0 && b_->coordinator_id_ != b_->id_) {
      return grpc::Status::OK;
    }
    for (const auto& [id, g] : b_->groups_) {
      if (g.members.empty() && g.offsets.empty()) continue;
      auto* l = response->add_groups();
      l->set_group_id(id);
      l->set_state(g.members.empty() ? fjord::v1::EMPTY : fjord::v1::STABLE);
      l->set_members(g.members.size());
    }
    return grpc::Status::OK;
  }

  grpc::Status DescribeGroup(
      grpc::ServerContext*, const fjord::v1::DescribeGroupRequest* request,
      fjord::v1::DescribeGroupResponse* response) override {
    absl::MutexLock lock(&b_->mu_);
    if (grpc::Status s = b_->CheckCoordinator(); !s.ok()) return s;
    auto it = b_->groups_.find(request->group_id());
    if (it == b_->groups_.end() ||
        (it->second.members.empty() && it->second.offsets.empty())) {
      return GroupError(grpc::StatusCode::NOT_FOUND,
                        fjord::v1::ErrorInfo::UNKNOWN_GROUP, "unknown group");
    }
    const FakeGroup& g = it->second;
    response->set_group_id(request->group_id());
    response->set_state(g.members.empty() ? fjord::v1::EMPTY
                                          : fjord::v1::STABLE);
    response->set_group_epoch(g.epoch);
    response->set_assignor(g.assignor);
    response->set_coordinator_id(b_->id_);
    const auto targets = b_->Targets(g);
    auto add =
        [](const std::set<std::pair<std::string, int>>& tps,
           google::protobuf::RepeatedPtrField<fjord::v1::TopicPartitions>*
               out) {
          fjord::v1::TopicPartitions* current = nullptr;
          for (const auto& [topic, p] : tps) {
            if (current == nullptr || current->topic() != topic) {
              current = out->Add();
              current->set_topic(topic);
            }
            current->add_partitions(p);
          }
        };
    for (const auto& [id, m] : g.members) {
      auto* gm = response->add_members();
      gm->set_member_id(id);
      gm->set_instance_id(m.instance_id);
      gm->set_member_epoch(m.epoch);
      for (const auto& t : m.topics) gm->add_subscribed_topics(t);
      add(m.owned, gm->mutable_assignment());
      add(targets.at(id), gm->mutable_target_assignment());
      gm->set_session_timeout_ms(m.session_timeout_ms);
    }
    for (const auto& [tp, offset] : g.offsets) {
      auto* o = response->add_offsets();
      o->set_topic(tp.first);
      o->set_partition(tp.second);
      o->set_offset(offset);
      o->set_commit_time_ms(1);
    }
    return grpc::Status::OK;
  }

  grpc::Status DeleteGroup(grpc::ServerContext*,
                           const fjord::v1::DeleteGroupRequest* request,
                           fjord::v1::DeleteGroupResponse*) override {
    absl::MutexLock lock(&b_->mu_);
    if (grpc::Status s = b_->CheckCoordinator(); !s.ok()) return s;
    auto it = b_->groups_.find(request->group_id());
    if (it == b_->groups_.end() ||
        (it->second.members.empty() && it->second.offsets.empty())) {
      return GroupError(grpc::StatusCode::NOT_FOUND,
                        fjord::v1::ErrorInfo::UNKNOWN_GROUP, "unknown group");
    }
    if (!it->second.members.empty()) {
      return GroupError(grpc::StatusCode::FAILED_PRECONDITION,
                        fjord::v1::ErrorInfo::GROUP_NOT_EMPTY,
                        "the group has members");
    }
    b_->groups_.erase(it);
    return grpc::Status::OK;
  }

 private:
  static grpc::Status GroupError(grpc::StatusCode code,
                                 fjord::v1::ErrorInfo::Reason reason,
                                 const std::string& message) {
    return FakeBroker::GroupError(code, reason, message);
  }

  FakeBroker* b_;
};

FakeBroker::FakeBroker(int32_t id) : id_(id) {
  metadata_ = std::make_unique<Service>(this);
  group_ = std::make_unique<GroupServiceImpl>(this);
  admin_ = std::make_unique<AdminImpl>(
      [this](const fjord::v1::DescribeTopicsRequest* request,
             fjord::v1::DescribeTopicsResponse* response) {
        fjord::v1::MetadataRequest md_request;
        *md_request.mutable_topics() = request->topics();
        fjord::v1::MetadataResponse md;
        grpc::ServerContext context;
        grpc::Status status = metadata_->Metadata(&context, &md_request, &md);
        if (!status.ok()) return status;
        absl::MutexLock lock(&mu_);
        for (const auto& t : md.topics()) {
          auto* d = response->add_topics();
          *d->mutable_topic() = t;
          for (const auto& p : t.partitions()) {
            if (p.leader_id() != id_) continue;
            auto* o = d->add_offsets();
            o->set_partition(p.partition());
            o->set_log_start_offset(0);
            const int64_t end = topics_[t.name()][p.partition()].size();
            o->set_log_end_offset(end);
            o->set_high_watermark(end);
          }
        }
        return grpc::Status::OK;
      });
  produce_ = std::make_unique<ProduceImpl>(
      [this](const fjord::v1::ProduceRequest* request,
             fjord::v1::ProduceResponse* response) {
        absl::MutexLock lock(&mu_);
        ++produce_calls_;
        if (!failures_.empty()) {
          grpc::Status s = failures_.front();
          failures_.pop_front();
          return s;
        }
        if (grpc::Status s =
                CheckLeader(request->topic(), request->partition());
            !s.ok()) {
          return s;
        }
        auto it = topics_.find(request->topic());
        if (it == topics_.end() || request->partition() < 0 ||
            request->partition() >= static_cast<int>(it->second.size())) {
          return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown partition");
        }
        if (request->records_size() == 0) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "empty batch");
        }
        auto& log = it->second[request->partition()];
        const int64_t base = log.size();
        for (const auto& r : request->records()) log.push_back(r);
        response->set_base_offset(
            request->acks() == fjord::v1::ACKS_NONE ? -1 : base);
        response->set_last_offset(request->acks() == fjord::v1::ACKS_NONE
                                      ? -1
                                      : base + request->records_size() - 1);
        response->set_append_time_ms(absl::ToUnixMillis(absl::Now()));
        appended_.SignalAll();
        return grpc::Status::OK;
      });
  fetch_ = std::make_unique<FetchImpl>(
      [this](grpc::ServerContext* context,
             const fjord::v1::FetchRequest* request,
             grpc::ServerWriter<fjord::v1::FetchResponse>* writer) {
        int64_t next = request->offset();
        {
          absl::MutexLock lock(&mu_);
          ++fetch_calls_;
          if (!fetch_failures_.empty()) {
            grpc::Status s = fetch_failures_.front();
            fetch_failures_.pop_front();
            return s;
          }
        }
        while (!context->IsCancelled()) {
          fjord::v1::FetchResponse response;
          {
            absl::MutexLock lock(&mu_);
            if (grpc::Status s =
                    CheckLeader(request->topic(), request->partition());
                !s.ok()) {
              return s;
            }
            auto it = topics_.find(request->topic());
            if (it == topics_.end() || request->partition() < 0 ||
                request->partition() >= static_cast<int>(it->second.size())) {
              return grpc::Status(grpc::StatusCode::NOT_FOUND,
                                  "unknown partition");
            }
            const auto& log = it->second[request->partition()];
            if (next < 0 || next > static_cast<int64_t>(log.size())) {
              return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                                  absl::StrCat("offset ", next, " outside [0, ",
                                               log.size(), "]"));
            }
            if (next == static_cast<int64_t>(log.size())) {
              appended_.WaitWithTimeout(&mu_, absl::Milliseconds(100));
            }
            for (int n = 0; next < static_cast<int64_t>(log.size()) && n < 500;
                 ++n, ++next) {
              auto* r = response.add_records();
              const auto& in = log[next];
              r->set_offset(next);
              if (in.has_key()) r->set_key(in.key());
              r->set_value(in.value());
              *r->mutable_headers() = in.headers();
              r->set_timestamp_ms(in.timestamp_ms());
            }
            response.set_high_watermark(log.size());
          }
          if (!writer->Write(response)) break;
        }
        return grpc::Status::OK;
      },
      [this](const fjord::v1::ListOffsetsRequest* request,
             fjord::v1::ListOffsetsResponse* response) {
        absl::MutexLock lock(&mu_);
        ++list_offsets_calls_;
        if (!list_failures_.empty()) {
          grpc::Status s = list_failures_.front();
          list_failures_.pop_front();
          return s;
        }
        if (grpc::Status s =
                CheckLeader(request->topic(), request->partition());
            !s.ok()) {
          return s;
        }
        auto it = topics_.find(request->topic());
        if (it == topics_.end() || request->partition() < 0 ||
            request->partition() >= static_cast<int>(it->second.size())) {
          return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown partition");
        }
        response->set_offset(request->spec() ==
                                     fjord::v1::ListOffsetsRequest::EARLIEST
                                 ? 0
                                 : it->second[request->partition()].size());
        return grpc::Status::OK;
      });
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterService(metadata_.get());
  builder.RegisterService(produce_.get());
  builder.RegisterService(fetch_.get());
  builder.RegisterService(admin_.get());
  builder.RegisterService(group_.get());
  server_ = builder.BuildAndStart();
  address_ = absl::StrCat("127.0.0.1:", port_);
}

FakeBroker::~FakeBroker() {
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  server_->Wait();
}

void FakeBroker::CreateTopic(const std::string& name, int partitions) {
  absl::MutexLock lock(&mu_);
  topics_[name].resize(partitions);
}

void FakeBroker::AddBroker(int32_t id, const std::string& address) {
  absl::MutexLock lock(&mu_);
  peers_[id] = address;
}

void FakeBroker::SetLeader(const std::string& topic, int partition,
                           int32_t leader_id) {
  absl::MutexLock lock(&mu_);
  leaders_[{topic, partition}] = leader_id;
  appended_.SignalAll();  // Wakes idle Fetch streams to notice.
}

void FakeBroker::Append(const std::string& topic, int partition,
                        const std::string& value) {
  absl::MutexLock lock(&mu_);
  fjord::v1::Record r;
  r.set_value(value);
  topics_[topic].at(partition).push_back(std::move(r));
  appended_.SignalAll();
}

int32_t FakeBroker::LeaderOf(const std::string& topic, int partition) {
  auto it = leaders_.find({topic, partition});
  return it == leaders_.end() ? id_ : it->second;
}

grpc::Status FakeBroker::CheckLeader(const std::string& topic, int partition) {
  const int32_t leader = LeaderOf(topic, partition);
  if (leader == id_) return grpc::Status::OK;
  fjord::v1::ErrorInfo info;
  info.set_reason(fjord::v1::ErrorInfo::NOT_LEADER);
  info.set_leader_id(leader);
  if (auto it = peers_.find(leader); it != peers_.end()) {
    info.set_leader_address(it->second);
  }
  return StatusWithErrorInfo(
      grpc::StatusCode::UNAVAILABLE,
      absl::StrCat("this broker does not lead partition ", topic, "-",
                   partition, "; broker ", leader, " does"),
      info);
}

void FakeBroker::FailNextFetches(std::vector<grpc::Status> statuses) {
  absl::MutexLock lock(&mu_);
  for (auto& s : statuses) fetch_failures_.push_back(std::move(s));
}

void FakeBroker::FailNextListOffsets(std::vector<grpc::Status> statuses) {
  absl::MutexLock lock(&mu_);
  for (auto& s : statuses) list_failures_.push_back(std::move(s));
}

int FakeBroker::fetch_calls() {
  absl::MutexLock lock(&mu_);
  return fetch_calls_;
}

int FakeBroker::list_offsets_calls() {
  absl::MutexLock lock(&mu_);
  return list_offsets_calls_;
}

void FakeBroker::FailNextProduces(std::vector<grpc::Status> statuses) {
  absl::MutexLock lock(&mu_);
  for (auto& s : statuses) failures_.push_back(std::move(s));
}

std::vector<fjord::v1::Record> FakeBroker::Log(const std::string& topic,
                                               int partition) {
  absl::MutexLock lock(&mu_);
  return topics_[topic].at(partition);
}

int FakeBroker::produce_calls() {
  absl::MutexLock lock(&mu_);
  return produce_calls_;
}

}  // namespace fjord::client::testing

namespace fjord::client::testing {

grpc::Status FakeBroker::GroupError(grpc::StatusCode code,
                                    fjord::v1::ErrorInfo::Reason reason,
                                    const std::string& message) {
  fjord::v1::ErrorInfo info;
  info.set_reason(reason);
  return StatusWithErrorInfo(code, message, info);
}

grpc::Status FakeBroker::CheckCoordinator() {
  if (coordinator_id_ < 0 || coordinator_id_ == id_) return grpc::Status::OK;
  fjord::v1::ErrorInfo info;
  info.set_reason(fjord::v1::ErrorInfo::NOT_COORDINATOR);
  info.set_leader_id(coordinator_id_);
  if (auto it = peers_.find(coordinator_id_); it != peers_.end()) {
    info.set_leader_address(it->second);
  }
  return StatusWithErrorInfo(
      grpc::StatusCode::UNAVAILABLE,
      absl::StrCat("not the coordinator; broker ", coordinator_id_, " is"),
      info);
}

std::map<std::string, std::set<std::pair<std::string, int>>>
FakeBroker::Targets(const FakeGroup& g) {
  std::map<std::string, std::set<std::pair<std::string, int>>> out;
  std::vector<const FakeMember*> members;
  for (const auto& [id, m] : g.members) {
    out[id];
    members.push_back(&m);
  }
  std::sort(members.begin(), members.end(),
            [](const FakeMember* a, const FakeMember* b) {
              return a->join_order < b->join_order;
            });
  std::set<std::string> topics;
  for (const FakeMember* m : members) {
    topics.insert(m->topics.begin(), m->topics.end());
  }
  for (const std::string& topic : topics) {
    auto t = topics_.find(topic);
    if (t == topics_.end()) continue;
    std::vector<const FakeMember*> eligible;
    for (const FakeMember* m : members) {
      if (g.overrides.count(m->id) > 0) continue;
      if (std::find(m->topics.begin(), m->topics.end(), topic) !=
          m->topics.end()) {
        eligible.push_back(m);
      }
    }
    if (eligible.empty()) continue;
    for (size_t p = 0; p < t->second.size(); ++p) {
      out[eligible[p % eligible.size()]->id].insert(
          {topic, static_cast<int>(p)});
    }
  }
  for (const auto& [id, target] : g.overrides) {
    if (out.count(id) == 0) continue;
    out[id] =
        std::set<std::pair<std::string, int>>(target.begin(), target.end());
  }
  return out;
}

void FakeBroker::SetGroupCoordinator(int32_t id) {
  absl::MutexLock lock(&mu_);
  coordinator_id_ = id;
}

void FakeBroker::SetHeartbeatIntervalMs(int ms) {
  absl::MutexLock lock(&mu_);
  heartbeat_interval_ms_ = ms;
}

void FakeBroker::FailNextHeartbeats(std::vector<grpc::Status> statuses) {
  absl::MutexLock lock(&mu_);
  for (auto& s : statuses) heartbeat_failures_.push_back(std::move(s));
}

void FakeBroker::FailNextCommits(std::vector<grpc::Status> statuses) {
  absl::MutexLock lock(&mu_);
  for (auto& s : statuses) commit_failures_.push_back(std::move(s));
}

void FakeBroker::SetMemberAssignment(
    const std::string& group, const std::string& member_id,
    std::vector<std::pair<std::string, int>> target) {
  absl::MutexLock lock(&mu_);
  groups_[group].overrides[member_id] = std::move(target);
}

void FakeBroker::RemoveGroupMember(const std::string& group,
                                   const std::string& member_id) {
  absl::MutexLock lock(&mu_);
  groups_[group].members.erase(member_id);
}

void FakeBroker::SetCommittedOffset(const std::string& group,
                                    const std::string& topic, int partition,
                                    int64_t offset) {
  absl::MutexLock lock(&mu_);
  groups_[group].offsets[{topic, partition}] = offset;
}

std::map<std::pair<std::string, int>, int64_t> FakeBroker::CommittedOffsets(
    const std::string& group) {
  absl::MutexLock lock(&mu_);
  return groups_[group].offsets;
}

std::vector<std::string> FakeBroker::GroupMembers(const std::string& group) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [id, m] : groups_[group].members) out.push_back(id);
  return out;
}

std::vector<FakeBroker::GroupCall> FakeBroker::GroupCalls() {
  absl::MutexLock lock(&mu_);
  return group_calls_;
}

}  // namespace fjord::client::testing
