#include "broker/topic_config.h"

#include "broker/errors.h"
#include "gtest/gtest.h"

namespace fjord::broker {
namespace {

TEST(ValidateTopicNameTest, AcceptsKafkaLegalNames) {
  for (const char* name : {"test-topic", "items-list", "a", "A.b_c-9", "...",
                           "__consumer_offsets"}) {
    EXPECT_TRUE(ValidateTopicName(name).ok()) << name;
  }
  EXPECT_TRUE(ValidateTopicName(std::string(249, 'x')).ok());
}

TEST(ValidateTopicNameTest, RejectsIllegalNamesWithReason) {
  for (std::string name : {std::string(""), std::string("."), std::string(".."),
                           std::string(250, 'x'), std::string("a b"),
                           std::string("a/b"), std::string("caf\xc3\xa9"),
                           std::string("a\0b", 3), std::string("x:y")}) {
    absl::Status s = ValidateTopicName(name);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(ErrorInfoOf(s).reason(), fjord::v1::ErrorInfo::INVALID_TOPIC_NAME);
    EXPECT_NE(s.message().find("invalid topic name"), std::string::npos);
  }
}

TEST(TopicConfigTest, ParsesKnownKeysAndRefusesOthers) {
  auto config = TopicConfig::Parse({{"max.message.bytes", "2048"},
                                    {"min.insync.replicas", "2"}});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->max_message_bytes, 2048);
  EXPECT_EQ(config->min_insync_replicas, 2);
  EXPECT_EQ(config->ToMap().at("max.message.bytes"), "2048");

  for (auto bad : std::vector<std::map<std::string, std::string>>{
           {{"max.message.bytes", "0"}},
           {{"max.message.bytes", "lots"}},
           {{"max.message.bytes", "99999999999"}},
           {{"min.insync.replicas", "0"}},
           {{"unclean.leader.election.enable", "yes"}},
           {{"retention.ms", "1000"}}}) {
    absl::Status s = TopicConfig::Parse(bad).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorInfoOf(s).reason(), fjord::v1::ErrorInfo::INVALID_CONFIG);
    EXPECT_NE(s.message().find(bad.begin()->first), std::string::npos) << s;
  }
}

TEST(TopicConfigTest, UncleanLeaderElectionIsOffUnlessEnabled) {
  auto defaults = TopicConfig::Parse({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->unclean_leader_election_enable);
  EXPECT_EQ(defaults->ToMap().at("unclean.leader.election.enable"), "false");
  auto enabled =
      TopicConfig::Parse({{"unclean.leader.election.enable", "true"}});
  ASSERT_TRUE(enabled.ok());
  EXPECT_TRUE(enabled->unclean_leader_election_enable);
  EXPECT_EQ(enabled->ToMap().at("unclean.leader.election.enable"), "true");
}

TEST(ParseCreateTopicsTest, AcceptsTheSeedForm) {
  auto specs = ParseCreateTopics("test-topic:5:2, items-list:3 ,solo");
  ASSERT_TRUE(specs.ok()) << specs.status();
  ASSERT_EQ(specs->size(), 3u);
  EXPECT_EQ((*specs)[0].name, "test-topic");
  EXPECT_EQ((*specs)[0].partitions, 5);
  EXPECT_EQ((*specs)[0].replication_factor, 2);
  EXPECT_EQ((*specs)[1].partitions, 3);
  EXPECT_EQ((*specs)[1].replication_factor, 1);
  EXPECT_EQ((*specs)[2].partitions, 1);
  EXPECT_TRUE(ParseCreateTopics("")->empty());
  EXPECT_FALSE(ParseCreateTopics("t:x:1").ok());
  EXPECT_FALSE(ParseCreateTopics("t:1:1:1").ok());
}

TEST(ErrorsTest, GrpcStatusCarriesErrorInfo) {
  absl::Status s = MakeError(absl::StatusCode::kNotFound,
                             fjord::v1::ErrorInfo::UNKNOWN_PARTITION, "no such");
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(g.error_message(), "no such");
  EXPECT_FALSE(g.error_details().empty());
  EXPECT_EQ(ErrorInfoOf(absl::DataLossError("x")).reason(),
            fjord::v1::ErrorInfo::CORRUPT_DATA);
}

}  // namespace
}  // namespace fjord::broker
