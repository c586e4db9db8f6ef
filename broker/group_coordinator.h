// GroupCoordinator: the broker's consumer-group coordinator and GroupService.
//
// Groups live in the internal topic __consumer_offsets (created on the first
// FindCoordinator, replicated like any topic). Group g belongs to partition
// Fnv1a32(g) mod N; the broker leading that partition coordinates the group. When
// a broker becomes leader of such a partition it replays the partition's records
// (group membership snapshots and committed offsets, group_records.proto) into
// memory, answering COORDINATOR_LOADING meanwhile; when it stops leading, it
// forgets them. So committed offsets and memberships survive coordinator failover.
//
// Every change (a commit, a membership change) is appended to the partition and
// waits until the in-sync replicas hold it (acks=all, with min.insync.replicas)
// before it is applied in memory and answered. Changes to one group are
// serialized by the group's lock; different groups proceed in parallel.
//
// Thread-safe. One background thread loads partitions and expires sessions.
#ifndef FJORD_BROKER_GROUP_COORDINATOR_H_
#define FJORD_BROKER_GROUP_COORDINATOR_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "broker/group/membership.h"
#include "broker/services.h"
#include "fjord/internal/v1/group_records.pb.h"
#include "fjord/v1/fetch.grpc.pb.h"
#include "fjord/v1/group.grpc.pb.h"

namespace fjord::broker {

inline constexpr char kOffsetsTopic[] = "__consumer_offsets";

struct GroupCoordinatorOptions {
  // __consumer_offsets, when this broker creates it.
  int32_t offsets_topic_partitions = 16;
  // 0 means min(3, registered brokers).
  int32_t offsets_topic_replication_factor = 0;
  group::MembershipLimits limits;
  // How long a group change may wait for the in-sync replicas.
  absl::Duration write_timeout = absl::Seconds(10);
  // How often sessions are checked for expiry.
  absl::Duration tick = absl::Milliseconds(100);
};

// Which __consumer_offsets partition holds `group_id`.
int32_t OffsetsPartitionFor(absl::string_view group_id, int32_t partitions);

// INVALID_ARGUMENT (INVALID_GROUP_ID) unless `group_id` is 1 to 249 characters of
// ASCII letters, digits, '.', '_' and '-'.
absl::Status ValidateGroupId(absl::string_view group_id);

class GroupCoordinator final : public fjord::v1::GroupService::Service {
 public:
  GroupCoordinator(ServiceContext ctx, GroupCoordinatorOptions options);
  // Calls Stop().
  ~GroupCoordinator() override;

  // The metadata changed. Called under the metadata's lock: records which
  // __consumer_offsets partitions this broker leads and wakes the loader.
  void OnMetadata(const std::map<std::string, std::shared_ptr<const TopicState>, std::less<>>&
                      topics);

  // Stops the background thread. Idempotent.
  void Stop();

  grpc::Status FindCoordinator(grpc::ServerContext* context,
                               const fjord::v1::FindCoordinatorRequest* request,
                               fjord::v1::FindCoordinatorResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context,
                         const fjord::v1::GroupHeartbeatRequest* request,
                         fjord::v1::GroupHeartbeatResponse* response) override;
  grpc::Status CommitOffsets(grpc::ServerContext* context,
                             const fjord::v1::CommitOffsetsRequest* request,
                             fjord::v1::CommitOffsetsResponse* response) override;
  grpc::Status FetchOffsets(grpc::ServerContext* context,
                            const fjord::v1::FetchOffsetsRequest* request,
                            fjord::v1::FetchOffsetsResponse* response) override;
  grpc::Status ListGroups(grpc::ServerContext* context,
                          const fjord::v1::ListGroupsRequest* request,
                          fjord::v1::ListGroupsResponse* response) override;
  grpc::Status DescribeGroup(grpc::ServerContext* context,
                             const fjord::v1::DescribeGroupRequest* request,
                             fjord::v1::DescribeGroupResponse* response) override;
  grpc::Status DeleteGroup(grpc::ServerContext* context,
                           const fjord::v1::DeleteGroupRequest* request,
                           fjord::v1::DeleteGroupResponse* response) override;

 private:
  using TopicPartitionKey = std::pair<std::string, int32_t>;
  struct Group {
    explicit Group(std::string id) : membership(std::move(id)) {}
    absl::Mutex mu;
    group::GroupMembership membership ABSL_GUARDED_BY(mu);
    std::map<TopicPartitionKey, fjord::internal::v1::OffsetCommitValue> offsets
        ABSL_GUARDED_BY(mu);
    // Deleted, or its shard was dropped: handlers holding it must start over.
    bool gone ABSL_GUARDED_BY(mu) = false;
  };
  // One __consumer_offsets partition this broker leads.
  struct Shard {
    int32_t partition = 0;
    int32_t leader_epoch = 0;
    std::shared_ptr<const TopicState> topic;
    bool loaded = false;
    std::map<std::string, std::shared_ptr<Group>> groups;
  };
  struct Resolved {
    std::shared_ptr<Shard> shard;
    std::shared_ptr<Group> group;  // null when it does not exist and create was false
  };

  void Loop();
  // Replays a shard's partition into groups; applies them if the shard is still
  // current.
  void Load(std::shared_ptr<Shard> shard);
  void ExpireSessions();
  // The shard and group for `group_id`: NOT_COORDINATOR when another broker leads
  // its partition, COORDINATOR_LOADING while loading.
  absl::StatusOr<Resolved> Resolve(absl::string_view group_id, bool create);
  // Appends `records` to the shard's partition and waits until they are committed.
  absl::Status Write(const Shard& shard,
                     const google::protobuf::RepeatedPtrField<fjord::v1::Record>& records);
  // Partition counts of topics, for the assignor.
  int32_t PartitionCount(const std::string& topic) const;
  // The high watermark of a data partition, from the local log when this broker
  // leads it, else from its leader (ListOffsets LATEST).
  absl::StatusOr<int64_t> HighWatermark(const std::string& topic, int32_t partition);
  absl::StatusOr<fjord::v1::FindCoordinatorResponse> DoFindCoordinator(
      const fjord::v1::FindCoordinatorRequest& request);
  absl::Status DoHeartbeat(const fjord::v1::GroupHeartbeatRequest& request,
                           fjord::v1::GroupHeartbeatResponse* response);
  absl::Status DoCommit(const fjord::v1::CommitOffsetsRequest& request);
  absl::Status DoFetchOffsets(const fjord::v1::FetchOffsetsRequest& request,
                              fjord::v1::FetchOffsetsResponse* response);
  absl::Status DoDescribe(const fjord::v1::DescribeGroupRequest& request,
                          fjord::v1::DescribeGroupResponse* response);
  absl::Status DoDelete(const fjord::v1::DeleteGroupRequest& request);

  const ServiceContext ctx_;
  const GroupCoordinatorOptions options_;

  absl::Mutex mu_;
  absl::CondVar wake_;
  std::map<int32_t, std::shared_ptr<Shard>> shards_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;

  // Highest high watermark seen per data partition, so commits at or below it
  // need no round trip to the partition's leader.
  absl::Mutex hw_mu_;
  std::map<TopicPartitionKey, int64_t> hw_cache_ ABSL_GUARDED_BY(hw_mu_);
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(hw_mu_);
};

}  // namespace fjord::broker

#endif  // FJORD_BROKER_GROUP_COORDINATOR_H_
