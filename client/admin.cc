#include "client/admin.h"

#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fjord/v1/admin.grpc.pb.h"
#include "glog/logging.h"

namespace fjord::client {
namespace {

// Sends one AdminService call through `cluster`; `method` is a pointer to the
// stub's blocking method.
template <typename Request, typename Response, typename Method>
absl::StatusOr<Response> Call(Cluster& cluster, const Request& request,
                              Method method) {
  Response response;
  grpc::Status status =
      cluster.CallAnyBroker([&](const std::shared_ptr<grpc::Channel>& channel) {
        response.Clear();
        grpc::ClientContext context;
        SetDeadline(&context, cluster.options().rpc_timeout);
        auto stub = fjord::v1::AdminService::NewStub(channel);
        return ((*stub).*method)(&context, request, &response);
      });
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

using Stub = fjord::v1::AdminService::Stub;

}  // namespace

Admin::Admin(std::shared_ptr<Cluster> cluster) : cluster_(std::move(cluster)) {}

absl::StatusOr<fjord::v1::TopicInfo> Admin::CreateTopic(
    const NewTopicSpec& spec) {
  fjord::v1::CreateTopicsRequest request;
  fjord::v1::NewTopic* topic = request.add_topics();
  topic->set_name(spec.name);
  topic->set_partitions(spec.partitions);
  topic->set_replication_factor(spec.replication_factor);
  for (const auto& [k, v] : spec.configs) (*topic->mutable_configs())[k] = v;
  auto response =
      Call<fjord::v1::CreateTopicsRequest, fjord::v1::CreateTopicsResponse>(
          *cluster_, request, &Stub::CreateTopics);
  if (!response.ok()) return response.status();
  if (response->topics_size() != 1) {
    return absl::InternalError(absl::StrCat(
        "CreateTopics answered ", response->topics_size(), " topics, want 1"));
  }
  return response->topics(0);
}

absl::StatusOr<std::string> Admin::DeleteTopic(const std::string& name) {
  fjord::v1::DeleteTopicsRequest request;
  request.add_topics(name);
  auto response =
      Call<fjord::v1::DeleteTopicsRequest, fjord::v1::DeleteTopicsResponse>(
          *cluster_, request, &Stub::DeleteTopics);
  if (!response.ok()) return response.status();
  cluster_->Invalidate(name);
  return response->topic_ids_size() > 0 ? response->topic_ids(0) : "";
}

absl::StatusOr<std::vector<std::string>> Admin::ListTopics(
    bool include_internal) {
  fjord::v1::ListTopicsRequest request;
  request.set_include_internal(include_internal);
  auto response =
      Call<fjord::v1::ListTopicsRequest, fjord::v1::ListTopicsResponse>(
          *cluster_, request, &Stub::ListTopics);
  if (!response.ok()) return response.status();
  return std::vector<std::string>(response->topics().begin(),
                                  response->topics().end());
}

absl::StatusOr<fjord::v1::TopicDescription> Admin::DescribeTopic(
    const std::string& name) {
  fjord::v1::DescribeTopicsRequest request;
  request.add_topics(name);
  auto response =
      Call<fjord::v1::DescribeTopicsRequest, fjord::v1::DescribeTopicsResponse>(
          *cluster_, request, &Stub::DescribeTopics);
  if (!response.ok()) return response.status();
  if (response->topics_size() != 1) {
    return absl::InternalError(absl::StrCat("DescribeTopics answered ",
                                            response->topics_size(),
                                            " topics, want 1"));
  }
  fjord::v1::TopicDescription description =
      std::move(*response->mutable_topics(0));

  // A broker reports the offsets of the partitions it leads only: ask each
  // other leader for its partitions' offsets.
  std::map<int32_t, fjord::v1::PartitionOffsets> offsets;
  for (auto& o : *description.mutable_offsets()) {
    offsets[o.partition()] = std::move(o);
  }
  std::map<int32_t, std::set<int32_t>> missing_by_leader;
  for (const auto& p : description.topic().partitions()) {
    if (offsets.count(p.partition()) == 0 && p.leader_id() >= 0) {
      missing_by_leader[p.leader_id()].insert(p.partition());
    }
  }
  if (!missing_by_leader.empty()) {
    // Learns the brokers' addresses (and caches the topic) if not known yet.
    (void)cluster_->Topic(name);
  }
  for (const auto& [leader, partitions] : missing_by_leader) {
    auto channel = cluster_->BrokerChannel(leader);
    if (!channel.ok()) channel = cluster_->BrokerChannel(leader, true);
    if (!channel.ok()) {
      VLOG(1) << "describe " << name << ": leader " << leader << ": "
              << channel.status();
      continue;
    }
    fjord::v1::DescribeTopicsResponse from_leader;
    grpc::ClientContext context;
    SetDeadline(&context, cluster_->options().rpc_timeout);
    grpc::Status status =
        fjord::v1::AdminService::NewStub(*channel)->DescribeTopics(
            &context, request, &from_leader);
    if (!status.ok()) {
      // The partition keeps unknown offsets (e.g. its leader just died).
      VLOG(1) << "describe " << name << ": leader " << leader << ": "
              << status.error_message();
      continue;
    }
    for (auto& t : *from_leader.mutable_topics()) {
      if (t.topic().name() != name) continue;
      for (auto& o : *t.mutable_offsets()) {
        if (partitions.count(o.partition()) > 0 &&
            offsets.count(o.partition()) == 0) {
          offsets[o.partition()] = std::move(o);
        }
      }
    }
  }
  description.clear_offsets();
  for (auto& [partition, o] : offsets) {
    *description.add_offsets() = std::move(o);
  }
  return description;
}

absl::StatusOr<fjord::v1::DescribeClusterResponse> Admin::DescribeCluster() {
  return Call<fjord::v1::DescribeClusterRequest,
              fjord::v1::DescribeClusterResponse>(
      *cluster_, fjord::v1::DescribeClusterRequest(), &Stub::DescribeCluster);
}

}  // namespace fjord::client
