#include "controller/raft/voters.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fjord::raft {
namespace {

using ::testing::HasSubstr;

TEST(ParseVotersTest, ParsesThreeVoters) {
  auto v = ParseVoters("1@127.0.0.1:9093, 2@host-b:9094 ,3@[::1]:9095");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, (std::vector<Voter>{{NodeId(1), "127.0.0.1:9093"},
                                    {NodeId(2), "host-b:9094"},
                                    {NodeId(3), "[::1]:9095"}}));
  EXPECT_EQ(FormatVoters(*v), "1@127.0.0.1:9093,2@host-b:9094,3@[::1]:9095");
}

TEST(ParseVotersTest, SingleVoter) {
  auto v = ParseVoters("7@localhost:1");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(v->size(), 1u);
  EXPECT_EQ((*v)[0].id, NodeId(7));
}

TEST(ParseVotersTest, BadInputGetsAClearError) {
  struct Case {
    const char* spec;
    const char* message;
  };
  const Case cases[] = {
      {"", "empty"},
      {"   ", "empty"},
      {"1@a:1,", "empty item"},
      {"1@a:1,,2@b:2", "empty item"},
      {"a:1", "missing '@'"},
      {"0@a:1", "positive integer"},
      {"-1@a:1", "positive integer"},
      {"x@a:1", "positive integer"},
      {"+1@a:1", "positive integer"},
      {"1@a", "missing ':PORT'"},
      {"1@:9093", "missing host"},
      {"1@a:0", "1..65535"},
      {"1@a:65536", "1..65535"},
      {"1@a:", "1..65535"},
      {"1@a:9x", "1..65535"},
      {"1@::1:9093", "malformed host"},
      {"1@[::1:9093", "malformed host"},
      {"1@a:1,1@b:2", "duplicate id"},
      {"1@a:1,2@a:1", "duplicate address"},
  };
  for (const Case& c : cases) {
    auto v = ParseVoters(c.spec);
    ASSERT_FALSE(v.ok()) << c.spec;
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(v.status().message()), HasSubstr(c.message))
        << c.spec;
    EXPECT_THAT(std::string(v.status().message()),
                HasSubstr("--controller-quorum-voters"));
  }
}

}  // namespace
}  // namespace fjord::raft
