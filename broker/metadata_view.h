// MetadataView: what the broker's request handlers need to know about the
// cluster. ClusterMetadata implements it by following the controller quorum's
// metadata log (a single-node broker follows its own embedded controller); tests
// may implement it otherwise.
#ifndef FJORD_BROKER_METADATA_VIEW_H_
#define FJORD_BROKER_METADATA_VIEW_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/topic_config.h"
#include "fjord/v1/admin.pb.h"
#include "fjord/v1/metadata.pb.h"
#include "storage/log_store.h"

namespace fjord::broker {

// One topic as the broker holds it. Immutable once published: a change makes a
// new TopicState.
struct TopicState {
  fjord::v1::TopicInfo info;
  TopicConfig config;
  // logs[i] is partition i's log on this broker, or nullptr when this broker
  // holds no replica of partition i.
  std::vector<std::shared_ptr<storage::PartitionLog>> logs;
};

// A partition that a produce or fetch addresses, resolved to its local log.
struct PartitionHandle {
  std::shared_ptr<const TopicState> topic;
  int32_t partition = 0;

  storage::PartitionLog& log() const { return *topic->logs[partition]; }
  const TopicConfig& config() const { return topic->config; }
  const fjord::v1::PartitionInfo& info() const {
    return topic->info.partitions(partition);
  }
  // Offset below which records are committed and visible to consumers.
  int64_t high_watermark() const { return log().high_watermark(); }
};

class MetadataView {
 public:
  virtual ~MetadataView() = default;

  // The partition as led by this broker. INVALID_ARGUMENT for an invalid name
  // or a negative partition; NOT_FOUND for an unknown topic or partition;
  // UNAVAILABLE with ErrorInfo{NOT_LEADER, leader} when another broker leads
  // it (or none does).
  virtual absl::StatusOr<PartitionHandle> Lookup(absl::string_view topic,
                                                 int32_t partition) const = 0;
  // NOT_FOUND for an unknown topic.
  virtual absl::StatusOr<std::shared_ptr<const TopicState>> GetTopic(
      absl::string_view name) const = 0;
  // Every topic, sorted by name.
  virtual std::vector<std::shared_ptr<const TopicState>> ListTopics() const = 0;

  // Topic changes; see admin.proto for the errors.
  virtual absl::StatusOr<std::vector<fjord::v1::TopicInfo>> CreateTopics(
      const std::vector<fjord::v1::NewTopic>& topics, bool validate_only) = 0;
  virtual absl::StatusOr<std::vector<std::string>> DeleteTopics(
      const std::vector<std::string>& names) = 0;

  // Every registered broker.
  virtual std::vector<fjord::v1::BrokerInfo> Brokers() const = 0;
  // The cluster as DescribeCluster reports it.
  virtual absl::StatusOr<fjord::v1::DescribeClusterResponse> DescribeCluster() = 0;
  virtual int32_t controller_id() const = 0;
  virtual std::string cluster_id() const = 0;
  virtual int32_t node_id() const = 0;
};

}  // namespace fjord::broker

#endif  // FJORD_BROKER_METADATA_VIEW_H_
