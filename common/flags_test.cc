#include "common/flags.h"

#include <cstdlib>

#include "gtest/gtest.h"

namespace fjord {
namespace {

struct Fixture {
  std::string listen = "0.0.0.0:9092";
  int64_t node_id = 1;
  bool verbose = false;
  FlagSet flags{"prog", "test"};
  Fixture() {
    flags.String("listen", &listen, "address");
    flags.Int("node-id", &node_id, "id");
    flags.Bool("verbose", &verbose, "chatty");
  }
};

TEST(FlagSetTest, ParsesBothFormsAndBooleans) {
  Fixture f;
  std::vector<std::string> pos;
  ASSERT_TRUE(f.flags
                  .Parse({"--listen=127.0.0.1:1", "--node-id", "7", "--verbose",
                          "extra"},
                         &pos)
                  .ok());
  EXPECT_EQ(f.listen, "127.0.0.1:1");
  EXPECT_EQ(f.node_id, 7);
  EXPECT_TRUE(f.verbose);
  EXPECT_EQ(pos, std::vector<std::string>{"extra"});
  ASSERT_TRUE(f.flags.Parse({"--noverbose"}).ok());
  EXPECT_FALSE(f.verbose);
}

TEST(FlagSetTest, EnvironmentIsOverriddenByCommandLine) {
  Fixture f;
  setenv("FJORD_NODE_ID", "5", 1);
  setenv("FJORD_LISTEN", "127.0.0.1:2", 1);
  ASSERT_TRUE(f.flags.Parse({"--listen", "127.0.0.1:3"}).ok());
  unsetenv("FJORD_NODE_ID");
  unsetenv("FJORD_LISTEN");
  EXPECT_EQ(f.node_id, 5);
  EXPECT_EQ(f.listen, "127.0.0.1:3");
  EXPECT_EQ(FlagSet::EnvName("controller-quorum-voters"),
            "FJORD_CONTROLLER_QUORUM_VOTERS");
}

TEST(FlagSetTest, RejectsBadInputWithReasons) {
  Fixture f;
  absl::Status s = f.flags.Parse({"--node-id=abc"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("node-id"), std::string::npos);
  EXPECT_EQ(f.flags.Parse({"--bogus=1"}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.flags.Parse({"stray"}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.flags.Parse({"--listen"}).code(),
            absl::StatusCode::kInvalidArgument);
  setenv("FJORD_NODE_ID", "x", 1);
  s = f.flags.Parse({});
  unsetenv("FJORD_NODE_ID");
  EXPECT_NE(s.message().find("FJORD_NODE_ID"), std::string::npos);
  EXPECT_EQ(f.flags.Parse({"--help"}).code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace fjord
