// An in-process, in-memory broker for client tests: serves Metadata, Produce,
// Fetch, ListOffsets, DescribeTopics and GroupService on 127.0.0.1 with an
// ephemeral port, and lets a test inject failures. Several fakes can pose as
// one cluster (AddBroker, SetLeader): each answers NOT_LEADER for the
// partitions it does not lead, as real brokers do; they share no data.
//
// The group coordinator is a small model of group.proto's protocol: members
// join with epoch 0 (ids "m1", "m2", ... in join order; a static member that
// joins again takes its old id), each partition of the subscribed (existing)
// topics targets the subscribed members round-robin in join order (or what
// SetMemberAssignment says), and a member's answer holds its target
// partitions that no other member reported owning in its last heartbeat. A
// member's epoch grows when its answer changes; commits need the member's
// current epoch (STALE_MEMBER_EPOCH otherwise) and a partition in its answer
// or owned set. There are no session timeouts (RemoveGroupMember instead).
#ifndef FJORD_CLIENT_TESTING_FAKE_BROKER_H_
#define FJORD_CLIENT_TESTING_FAKE_BROKER_H_

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "fjord/v1/group.pb.h"
#include "fjord/v1/record.pb.h"
#include "grpcpp/grpcpp.h"

namespace fjord::client::testing {

// A failed status carrying fjord.v1.ErrorInfo in its details, as brokers send.
grpc::Status StatusWithErrorInfo(grpc::StatusCode code,
                                 const std::string& message,
                                 const fjord::v1::ErrorInfo& info);

// Thread-safe.
class FakeBroker {
 public:
  // `id`: this broker's id in the metadata it reports.
  explicit FakeBroker(int32_t id = 1);
  ~FakeBroker();

  // "127.0.0.1:PORT".
  std::string address() const { return address_; }

  void CreateTopic(const std::string& name, int partitions);

  // Another broker of the cluster, listed in Metadata (at "127.0.0.1:PORT").
  void AddBroker(int32_t id, const std::string& address);

  // Which broker leads the partition (by default this one; -1: none). Only the
  // leader answers Produce, Fetch and ListOffsets, and reports the partition's
  // offsets in DescribeTopics; an open Fetch stream ends with NOT_LEADER.
  void SetLeader(const std::string& topic, int partition, int32_t leader_id);

  // Appends a record with `value` (and no key) directly, leader or not.
  void Append(const std::string& topic, int partition,
              const std::string& value);

  // The next Produce / Fetch / ListOffsets calls answer these statuses, in
  // order, without doing anything.
  void FailNextProduces(std::vector<grpc::Status> statuses);
  void FailNextFetches(std::vector<grpc::Status> statuses);
  void FailNextListOffsets(std::vector<grpc::Status> statuses);

  // --- Groups ---

  // FindCoordinator names broker `id` (default: this one, advertised as
  // 0.0.0.0:PORT so the client must map it through the metadata); every other
  // group call at this broker fails NOT_COORDINATOR naming `id` unless it is
  // this broker.
  void SetGroupCoordinator(int32_t id);
  void SetHeartbeatIntervalMs(int ms);
  // The next Heartbeat / CommitOffsets calls answer these statuses, in order,
  // without doing anything.
  void FailNextHeartbeats(std::vector<grpc::Status> statuses);
  void FailNextCommits(std::vector<grpc::Status> statuses);
  // Overrides a member's target assignment ("topic", partition pairs).
  void SetMemberAssignment(const std::string& group,
                           const std::string& member_id,
                           std::vector<std::pair<std::string, int>> target);
  // Removes a member, as a session timeout would.
  void RemoveGroupMember(const std::string& group,
                         const std::string& member_id);
  void SetCommittedOffset(const std::string& group, const std::string& topic,
                          int partition, int64_t offset);
  // Committed offsets by (topic, partition).
  std::map<std::pair<std::string, int>, int64_t> CommittedOffsets(
      const std::string& group);
  // Current members' ids, sorted.
  std::vector<std::string> GroupMembers(const std::string& group);

  // Every Heartbeat and CommitOffsets call received (including failed ones),
  // in arrival order.
  struct GroupCall {
    bool is_commit = false;
    fjord::v1::GroupHeartbeatRequest heartbeat;
    fjord::v1::CommitOffsetsRequest commit;
  };
  std::vector<GroupCall> GroupCalls();

  // An error status with ErrorInfo{reason}.
  static grpc::Status GroupError(grpc::StatusCode code,
                                 fjord::v1::ErrorInfo::Reason reason,
                                 const std::string& message);

  // Stored records of a partition, in offset order.
  std::vector<fjord::v1::Record> Log(const std::string& topic, int partition);

  int produce_calls();
  int fetch_calls();
  int list_offsets_calls();

 private:
  class Service;
  friend class Service;

  // NOT_LEADER (with the leader's id and address) unless this broker leads
  // the partition; OK for an unknown one (the caller reports it).
  grpc::Status CheckLeader(const std::string& topic, int partition)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int32_t LeaderOf(const std::string& topic, int partition)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  class GroupServiceImpl;
  friend class GroupServiceImpl;

  struct FakeMember {
    std::string id;
    int32_t epoch = 0;
    std::string instance_id;
    std::vector<std::string> topics;
    std::set<std::pair<std::string, int>> owned;
    std::set<std::pair<std::string, int>> answer;
    int join_order = 0;
    int32_t session_timeout_ms = 0;
  };
  struct FakeGroup {
    std::map<std::string, FakeMember> members;
    std::map<std::pair<std::string, int>, int64_t> offsets;
    std::map<std::string, std::vector<std::pair<std::string, int>>> overrides;
    std::string assignor;
    int32_t epoch = 0;
  };
  // Target partitions of every member of `g`.
  std::map<std::string, std::set<std::pair<std::string, int>>> Targets(
      const FakeGroup& g) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  grpc::Status CheckCoordinator() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int32_t id_;
  absl::Mutex mu_;
  absl::CondVar appended_;
  // topic -> partition -> records.
  std::map<std::string, std::vector<std::vector<fjord::v1::Record>>> topics_
      ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int>, int32_t> leaders_ ABSL_GUARDED_BY(mu_);
  std::map<int32_t, std::string> peers_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::Status> failures_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::Status> fetch_failures_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::Status> list_failures_ ABSL_GUARDED_BY(mu_);
  int produce_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int fetch_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int list_offsets_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, FakeGroup> groups_ ABSL_GUARDED_BY(mu_);
  int next_member_ ABSL_GUARDED_BY(mu_) = 1;
  int32_t coordinator_id_ ABSL_GUARDED_BY(mu_) = -1;  // -1: this broker.
  int heartbeat_interval_ms_ ABSL_GUARDED_BY(mu_) = 50;
  std::deque<grpc::Status> heartbeat_failures_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::Status> commit_failures_ ABSL_GUARDED_BY(mu_);
  std::vector<GroupCall> group_calls_ ABSL_GUARDED_BY(mu_);
  int port_ = 0;
  std::string address_;

  std::unique_ptr<Service> metadata_;
  std::unique_ptr<grpc::Service> produce_, fetch_, admin_, group_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace fjord::client::testing

#endif  // FJORD_CLIENT_TESTING_FAKE_BROKER_H_
