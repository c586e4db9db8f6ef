#include "client/testing/fake_broker.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fjord/v1/admin.grpc.pb.h"
#include "fjord/v1/fetch.grpc.pb.h"
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

FakeBroker::FakeBroker(int32_t id) : id_(id) {
  metadata_ = std::make_unique<Service>(this);
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
