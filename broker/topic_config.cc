#include "broker/topic_config.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "broker/errors.h"

namespace fjord::broker {
namespace {

constexpr char kMaxMessageBytes[] = "max.message.bytes";
constexpr char kMinInsyncReplicas[] = "min.insync.replicas";
constexpr char kUncleanLeaderElectionEnable[] =
    "unclean.leader.election.enable";

absl::Status ConfigError(std::string message) {
  return MakeError(absl::StatusCode::kInvalidArgument,
                   fjord::v1::ErrorInfo::INVALID_CONFIG, std::move(message));
}

}  // namespace

absl::Status ValidateTopicName(absl::string_view name) {
  auto error = [&](absl::string_view why) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     fjord::v1::ErrorInfo::INVALID_TOPIC_NAME,
                     absl::StrCat("invalid topic name \"", name.substr(0, 300),
                                  name.size() > 300 ? "...\"" : "\"", ": ",
                                  why));
  };
  if (name.empty()) return error("a topic name cannot be empty");
  if (name.size() > kMaxTopicNameLength) {
    return error(absl::StrCat("it is ", name.size(),
                              " characters long; the limit is ",
                              kMaxTopicNameLength));
  }
  if (name == "." || name == "..") return error("\".\" and \"..\" are reserved");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return error("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TopicConfig> TopicConfig::Parse(
    const std::map<std::string, std::string>& configs) {
  TopicConfig config;
  for (const auto& [key, value] : configs) {
    int64_t v;
    if (key == kMaxMessageBytes) {
      if (!absl::SimpleAtoi(value, &v) || v < 1 || v > kMaxMaxMessageBytes) {
        return ConfigError(absl::StrCat(kMaxMessageBytes, "=\"", value,
                                        "\": expected an integer from 1 to ",
                                        kMaxMaxMessageBytes));
      }
      config.max_message_bytes = v;
    } else if (key == kMinInsyncReplicas) {
      if (!absl::SimpleAtoi(value, &v) || v < 1 || v > 32) {
        return ConfigError(absl::StrCat(kMinInsyncReplicas, "=\"", value,
                                        "\": expected an integer from 1 to 32"));
      }
      config.min_insync_replicas = v;
    } else if (key == kUncleanLeaderElectionEnable) {
      if (value != "true" && value != "false") {
        return ConfigError(absl::StrCat(kUncleanLeaderElectionEnable, "=\"",
                                        value,
                                        "\": expected \"true\" or \"false\""));
      }
      config.unclean_leader_election_enable = value == "true";
    } else {
      return ConfigError(absl::StrCat("unknown topic config \"", key,
                                      "\"; supported: ",
                                      absl::StrJoin(SupportedTopicConfigs(), ", ")));
    }
  }
  return config;
}

std::map<std::string, std::string> TopicConfig::ToMap() const {
  return {{kMaxMessageBytes, absl::StrCat(max_message_bytes)},
          {kMinInsyncReplicas, absl::StrCat(min_insync_replicas)},
          {kUncleanLeaderElectionEnable,
           unclean_leader_election_enable ? "true" : "false"}};
}

std::vector<std::string> SupportedTopicConfigs() {
  return {kMaxMessageBytes, kMinInsyncReplicas, kUncleanLeaderElectionEnable};
}

absl::StatusOr<std::vector<TopicSpec>> ParseCreateTopics(absl::string_view text) {
  std::vector<TopicSpec> specs;
  for (absl::string_view entry :
       absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    std::vector<absl::string_view> parts = absl::StrSplit(entry, ':');
    TopicSpec spec;
    bool ok = parts.size() >= 1 && parts.size() <= 3;
    if (ok) spec.name = std::string(parts[0]);
    if (ok && parts.size() >= 2) ok = absl::SimpleAtoi(parts[1], &spec.partitions);
    if (ok && parts.size() == 3) {
      ok = absl::SimpleAtoi(parts[2], &spec.replication_factor);
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad topic entry \"", entry,
          "\": expected name:partitions:replicas, e.g. test-topic:5:1"));
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace fjord::broker
