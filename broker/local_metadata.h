// LocalMetadata: the cluster metadata of a single-node broker, kept in the broker's
// own store, and the table of partitions this broker hosts.
//
// A broker started without --controller-quorum-voters is a one-broker cluster and
// owns its metadata: topics (name, id, configs) and their partitions, all led by
// itself at leader epoch 0. Records are fjord.internal.v1.TopicRecord values under
// "topic/<name>" in the store's metadata key space. When the Raft controller lands,
// the same records arrive through the metadata log instead, and this class becomes
// the broker's metadata image.
//
// Crash safety: CreateTopics creates the partitions' column families before it
// writes the topic record; DeleteTopics deletes the record before it drops the column
// families. Open() drops column families no topic record names (the leftovers of a
// crash in between), so a half-created topic never appears and a half-deleted one
// never comes back.
//
// Thread-safe. Lookups (the produce/fetch hot path) take a shared lock only.
#ifndef FJORD_BROKER_LOCAL_METADATA_H_
#define FJORD_BROKER_LOCAL_METADATA_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "broker/metadata_view.h"
#include "broker/topic_config.h"
#include "fjord/v1/admin.pb.h"
#include "fjord/v1/metadata.pb.h"
#include "storage/log_store.h"

namespace fjord::broker {

class LocalMetadata final : public MetadataView {
 public:
  // Loads (or, on first start, creates) the cluster id and every topic from `store`,
  // which must outlive this object. `self` describes this broker.
  static absl::StatusOr<std::unique_ptr<LocalMetadata>> Open(
      storage::LogStore* store, fjord::v1::BrokerInfo self);

  // All-or-nothing: checks every topic (name, partitions, replication factor,
  // configs, duplicates, existence), then creates them all. See admin.proto for the
  // errors.
  absl::StatusOr<std::vector<fjord::v1::TopicInfo>> CreateTopics(
      const std::vector<fjord::v1::NewTopic>& topics, bool validate_only) override;

  // All-or-nothing: NOT_FOUND if any topic is missing. Returns the deleted ids.
  absl::StatusOr<std::vector<std::string>> DeleteTopics(
      const std::vector<std::string>& names) override;

  // INVALID_ARGUMENT for an invalid name or a negative partition, NOT_FOUND for an
  // unknown topic or partition.
  absl::StatusOr<PartitionHandle> Lookup(absl::string_view topic,
                                         int32_t partition) const override;

  // NOT_FOUND for an unknown topic.
  absl::StatusOr<std::shared_ptr<const TopicState>> GetTopic(
      absl::string_view name) const override;

  // Every topic, sorted by name.
  std::vector<std::shared_ptr<const TopicState>> ListTopics() const override;
  std::vector<fjord::v1::BrokerInfo> Brokers() const override { return {self()}; }
  absl::StatusOr<fjord::v1::DescribeClusterResponse> DescribeCluster() override;
  int32_t controller_id() const override { return node_id_; }

  std::string cluster_id() const override { return cluster_id_; }
  int32_t node_id() const override { return node_id_; }
  // This broker as clients see it.
  fjord::v1::BrokerInfo self() const;
  // Sets the advertised endpoint, once the listening port is known.
  void SetAdvertised(std::string host, int port);

 private:
  LocalMetadata(storage::LogStore* store, fjord::v1::BrokerInfo self)
      : store_(store), node_id_(self.id()), self_(std::move(self)) {}

  absl::Status Load();
  absl::StatusOr<std::shared_ptr<TopicState>> Validate(
      const fjord::v1::NewTopic& topic) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  storage::LogStore* const store_;
  const int32_t node_id_;
  std::string cluster_id_;

  // Serialises CreateTopics and DeleteTopics so that checks and changes are atomic.
  absl::Mutex admin_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const TopicState>, std::less<>> topics_
      ABSL_GUARDED_BY(mu_);
  fjord::v1::BrokerInfo self_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fjord::broker

#endif  // FJORD_BROKER_LOCAL_METADATA_H_
