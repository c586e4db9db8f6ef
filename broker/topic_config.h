// Rules for topic names and topic configs, shared by every path that creates topics
// (the Admin API and FJORD_CREATE_TOPICS).
#ifndef FJORD_BROKER_TOPIC_CONFIG_H_
#define FJORD_BROKER_TOPIC_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fjord::broker {

// Kafka's rules: 1 to 249 characters from [a-zA-Z0-9._-], and not "." or "..".
inline constexpr size_t kMaxTopicNameLength = 249;
// An upper bound on partitions per topic, so a typo cannot create a million column
// families.
inline constexpr int32_t kMaxPartitionsPerTopic = 10000;
// Default max.message.bytes: the largest record (key + value + headers) accepted.
inline constexpr int64_t kDefaultMaxMessageBytes = 1 << 20;
// The hard ceiling for max.message.bytes; a batch must fit in a gRPC message.
inline constexpr int64_t kMaxMaxMessageBytes = 8 << 20;

// INVALID_ARGUMENT (reason INVALID_TOPIC_NAME) with a message saying what is wrong.
absl::Status ValidateTopicName(absl::string_view name);

// The configs of one topic, parsed and checked. Only keys Fjord enforces are
// accepted; anything else is refused rather than silently ignored.
struct TopicConfig {
  // Largest record accepted (key + value + header keys and values), in bytes.
  int64_t max_message_bytes = kDefaultMaxMessageBytes;
  // acks=all needs at least this many in-sync replicas.
  int64_t min_insync_replicas = 1;
  // unclean.leader.election.enable: when every in-sync replica is gone, the
  // controller may make an out-of-sync replica leader (losing the records it
  // lacks) instead of leaving the partition without a leader. Off by default.
  bool unclean_leader_election_enable = false;

  // Parses `configs`; INVALID_ARGUMENT (reason INVALID_CONFIG) naming the key.
  static absl::StatusOr<TopicConfig> Parse(
      const std::map<std::string, std::string>& configs);
  // Every key with its effective value.
  std::map<std::string, std::string> ToMap() const;
};

// The config keys Parse accepts.
std::vector<std::string> SupportedTopicConfigs();

// One entry of FJORD_CREATE_TOPICS: "name:partitions:replicas".
struct TopicSpec {
  std::string name;
  int32_t partitions = 1;
  int32_t replication_factor = 1;
};

// Parses the seed's "name:partitions:replicas,..." form (replicas optional, default
// 1). INVALID_ARGUMENT naming the bad entry.
absl::StatusOr<std::vector<TopicSpec>> ParseCreateTopics(absl::string_view text);

}  // namespace fjord::broker

#endif  // FJORD_BROKER_TOPIC_CONFIG_H_
