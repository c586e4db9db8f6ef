#include "client/group_admin.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/group_coordinator.h"
#include "common/status_macros.h"
#include "fjord/v1/fetch.grpc.pb.h"
#include "fjord/v1/group.grpc.pb.h"
#include "glog/logging.h"

namespace fjord::client {
namespace {

absl::Status WithContext(const grpc::Status& status, absl::string_view doing) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(doing, ": ", status.error_message()));
}

}  // namespace

std::string GroupStateName(fjord::v1::GroupState state) {
  switch (state) {
    case fjord::v1::EMPTY:
      return "EMPTY";
    case fjord::v1::ASSIGNING:
      return "ASSIGNING";
    case fjord::v1::RECONCILING:
      return "RECONCILING";
    case fjord::v1::STABLE:
      return "STABLE";
    default:
      return "UNKNOWN";
  }
}

GroupAdmin::GroupAdmin(std::shared_ptr<Cluster> cluster, absl::Duration timeout)
    : cluster_(std::move(cluster)), timeout_(timeout) {}

absl::StatusOr<GroupList> GroupAdmin::ListGroups() {
  ASSIGN_OR_RETURN(fjord::v1::MetadataResponse metadata,
                   cluster_->FetchMetadata({}));
  std::vector<int32_t> ids;
  for (const auto& b : metadata.brokers()) ids.push_back(b.id());
  std::sort(ids.begin(), ids.end());
  GroupList out;
  std::map<std::string, GroupListing> groups;
  int answered = 0;
  absl::Status last;
  for (int32_t id : ids) {
    auto channel = cluster_->BrokerChannel(id);
    if (!channel.ok()) {
      out.failed[id] = channel.status();
      last = channel.status();
      continue;
    }
    grpc::ClientContext context;
    SetDeadline(&context, cluster_->options().rpc_timeout);
    fjord::v1::ListGroupsResponse response;
    const grpc::Status status =
        fjord::v1::GroupService::NewStub(*channel)->ListGroups(
            &context, fjord::v1::ListGroupsRequest(), &response);
    if (!status.ok()) {
      out.failed[id] = WithContext(status, absl::StrCat("broker ", id));
      last = out.failed[id];
      continue;
    }
    ++answered;
    for (const auto& g : response.groups()) {
      GroupListing listing;
      listing.group_id = g.group_id();
      listing.state = g.state();
      listing.members = g.members();
      // The broker we asked, should it leave coordinator_id unset.
      listing.coordinator_id =
          response.coordinator_id() != 0 ? response.coordinator_id() : id;
      groups.emplace(g.group_id(), std::move(listing));  // First one wins.
    }
  }
  if (answered == 0 && !ids.empty()) {
    return absl::Status(
        last.code(),
        absl::StrCat("no broker answered ListGroups; last: ", last.message()));
  }
  for (auto& [id, g] : groups) out.groups.push_back(std::move(g));
  return out;
}

absl::StatusOr<fjord::v1::DescribeGroupResponse> GroupAdmin::DescribeGroup(
    const std::string& group_id) {
  RETURN_IF_ERROR(ValidateGroupId(group_id));
  GroupCoordinator coordinator(cluster_, group_id);
  fjord::v1::DescribeGroupRequest request;
  request.set_group_id(group_id);
  fjord::v1::DescribeGroupResponse response;
  const grpc::Status status = coordinator.Call(
      [&](fjord::v1::GroupService::Stub& stub, grpc::ClientContext& context) {
        response.Clear();
        return stub.DescribeGroup(&context, request, &response);
      },
      absl::Now() + timeout_);
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
      return absl::NotFoundError(
          absl::StrCat("group '", group_id, "' does not exist"));
    }
    return WithContext(status,
                       absl::StrCat("describing group '", group_id, "'"));
  }
  return response;
}

absl::Status GroupAdmin::DeleteGroup(const std::string& group_id) {
  RETURN_IF_ERROR(ValidateGroupId(group_id));
  GroupCoordinator coordinator(cluster_, group_id);
  fjord::v1::DeleteGroupRequest request;
  request.set_group_id(group_id);
  fjord::v1::DeleteGroupResponse response;
  const grpc::Status status = coordinator.Call(
      [&](fjord::v1::GroupService::Stub& stub, grpc::ClientContext& context) {
        return stub.DeleteGroup(&context, request, &response);
      },
      absl::Now() + timeout_);
  if (status.ok()) return absl::OkStatus();
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    return absl::NotFoundError(
        absl::StrCat("group '", group_id, "' does not exist"));
  }
  return WithContext(status, absl::StrCat("deleting group '", group_id, "'"));
}

absl::StatusOr<std::map<TopicPartition, fjord::v1::CommittedOffset>>
GroupAdmin::FetchOffsets(const std::string& group_id,
                         const std::vector<TopicPartition>& partitions) {
  RETURN_IF_ERROR(ValidateGroupId(group_id));
  GroupCoordinator coordinator(cluster_, group_id);
  fjord::v1::FetchOffsetsRequest request;
  request.set_group_id(group_id);
  const std::set<TopicPartition> sorted(partitions.begin(), partitions.end());
  fjord::v1::TopicPartitions* current = nullptr;
  for (const TopicPartition& tp : sorted) {
    if (current == nullptr || current->topic() != tp.topic) {
      current = request.add_partitions();
      current->set_topic(tp.topic);
    }
    current->add_partitions(tp.partition);
  }
  fjord::v1::FetchOffsetsResponse response;
  const grpc::Status status = coordinator.Call(
      [&](fjord::v1::GroupService::Stub& stub, grpc::ClientContext& context) {
        response.Clear();
        return stub.FetchOffsets(&context, request, &response);
      },
      absl::Now() + timeout_);
  if (!status.ok()) {
    return WithContext(
        status, absl::StrCat("fetching offsets of group '", group_id, "'"));
  }
  std::map<TopicPartition, fjord::v1::CommittedOffset> out;
  for (auto& o : *response.mutable_offsets()) {
    if (o.offset() < 0) continue;
    TopicPartition tp{o.topic(), o.partition()};
    out[tp] = std::move(o);
  }
  return out;
}

absl::Status GroupAdmin::CommitOffsets(
    const std::string& group_id,
    const std::map<TopicPartition, int64_t>& offsets) {
  RETURN_IF_ERROR(ValidateGroupId(group_id));
  if (offsets.empty()) return absl::OkStatus();
  GroupCoordinator coordinator(cluster_, group_id);
  fjord::v1::CommitOffsetsRequest request;
  request.set_group_id(group_id);
  request.set_member_epoch(-1);
  for (const auto& [tp, offset] : offsets) {
    auto* o = request.add_offsets();
    o->set_topic(tp.topic);
    o->set_partition(tp.partition);
    o->set_offset(offset);
  }
  fjord::v1::CommitOffsetsResponse response;
  const grpc::Status status = coordinator.Call(
      [&](fjord::v1::GroupService::Stub& stub, grpc::ClientContext& context) {
        return stub.CommitOffsets(&context, request, &response);
      },
      absl::Now() + timeout_);
  if (status.ok()) return absl::OkStatus();
  if (HasReason(status, fjord::v1::ErrorInfo::GROUP_NOT_EMPTY)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot change the offsets of group '", group_id,
                     "' while it has members: ", status.error_message()));
  }
  return WithContext(
      status, absl::StrCat("committing offsets of group '", group_id, "'"));
}

std::map<TopicPartition, absl::StatusOr<int64_t>> GroupAdmin::ListOffsets(
    const std::vector<TopicPartition>& partitions,
    fjord::v1::ListOffsetsRequest::Spec spec, int64_t timestamp_ms) {
  std::map<TopicPartition, absl::StatusOr<int64_t>> out;
  for (const TopicPartition& tp : partitions) {
    fjord::v1::ListOffsetsRequest request;
    request.set_topic(tp.topic);
    request.set_partition(tp.partition);
    request.set_spec(spec);
    request.set_timestamp_ms(timestamp_ms);
    absl::StatusOr<int64_t> result = absl::UnknownError("not asked");
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto channel = cluster_->LeaderChannel(tp, /*refresh=*/attempt > 0);
      if (!channel.ok()) {
        result = channel.status();
        if (!IsRetriable(
                static_cast<grpc::StatusCode>(channel.status().code()))) {
          break;
        }
        continue;
      }
      grpc::ClientContext context;
      SetDeadline(&context, cluster_->options().rpc_timeout);
      fjord::v1::ListOffsetsResponse response;
      const grpc::Status status =
          fjord::v1::FetchService::NewStub(*channel)->ListOffsets(
              &context, request, &response);
      if (status.ok()) {
        result = response.offset();
        break;
      }
      result = WithContext(status, tp.ToString());
      if (!IsRetriable(status.error_code())) break;
    }
    out.emplace(tp, std::move(result));
  }
  return out;
}

}  // namespace fjord::client
