// Topic and cluster administration.
#ifndef FJORD_CLIENT_ADMIN_H_
#define FJORD_CLIENT_ADMIN_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/cluster.h"
#include "fjord/v1/admin.pb.h"

namespace fjord::client {

struct NewTopicSpec {
  std::string name;
  int32_t partitions = 1;
  // 0 means the broker's default.
  int32_t replication_factor = 0;
  std::map<std::string, std::string> configs;
};

// Thin, synchronous wrapper over fjord.v1.AdminService. Each call is one RPC
// with the Cluster's rpc_timeout, sent to any broker that answers (moving on
// only on UNAVAILABLE / DEADLINE_EXCEEDED). Errors are the broker's gRPC
// status, code and message unchanged. Thread-safe.
class Admin {
 public:
  explicit Admin(std::shared_ptr<Cluster> cluster);

  // Creates a topic and returns its placement. Errors: INVALID_ARGUMENT (name,
  // partitions, replication factor, config), ALREADY_EXISTS.
  absl::StatusOr<fjord::v1::TopicInfo> CreateTopic(const NewTopicSpec& spec);

  // Deletes a topic and its data; returns the deleted topic's id. NOT_FOUND.
  absl::StatusOr<std::string> DeleteTopic(const std::string& name);

  // Topic names, sorted; internal ("__"-prefixed) ones only when asked.
  absl::StatusOr<std::vector<std::string>> ListTopics(
      bool include_internal = false);

  // Placement, leadership and per-partition offsets of a topic. A broker
  // knows the offsets of the partitions it leads only, so each partition's
  // leader is asked for them; `offsets` lacks the partitions whose leader did
  // not answer (or that have none). NOT_FOUND.
  absl::StatusOr<fjord::v1::TopicDescription> DescribeTopic(
      const std::string& name);

  // Cluster id, controller and brokers.
  absl::StatusOr<fjord::v1::DescribeClusterResponse> DescribeCluster();

 private:
  std::shared_ptr<Cluster> cluster_;
};

}  // namespace fjord::client

#endif  // FJORD_CLIENT_ADMIN_H_
