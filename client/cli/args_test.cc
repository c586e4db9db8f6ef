#include "client/cli/args.h"

#include "gtest/gtest.h"

namespace fjord::cli {
namespace {

absl::StatusOr<Invocation> Parse(std::vector<std::string> args,
                                 absl::string_view env = "") {
  return ParseCommandLine(args, env);
}

TEST(ParseCommandLineTest, BootstrapDefaultsToEnvThenLoopback) {
  auto inv = Parse({"topic", "list"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->bootstrap, "127.0.0.1:9092");
  EXPECT_EQ(inv->command, "topic list");
  EXPECT_FALSE(inv->json);

  inv = Parse({"topic", "list"}, "10.0.0.1:1,10.0.0.2:2");
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->bootstrap, "10.0.0.1:1,10.0.0.2:2");

  inv = Parse({"--bootstrap", "h:1", "topic", "list"}, "env:2");
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->bootstrap, "h:1");
}

TEST(ParseCommandLineTest, GlobalFlagsAnywhere) {
  auto inv = Parse({"-o", "json", "cluster", "describe"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->json);
  EXPECT_EQ(inv->command, "cluster describe");

  inv = Parse(
      {"topic", "describe", "orders", "--output=json", "--bootstrap=a:1"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->json);
  EXPECT_EQ(inv->bootstrap, "a:1");
  EXPECT_EQ(inv->args, std::vector<std::string>{"orders"});

  EXPECT_FALSE(Parse({"-o", "yaml", "topic", "list"}).ok());
}

TEST(ParseCommandLineTest, TopicCreateWithRepeatedConfig) {
  auto inv =
      Parse({"topic", "create", "orders", "--partitions", "3",
             "--replication-factor=1", "--config", "a=1", "--config", "b=2"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, "topic create");
  EXPECT_EQ(inv->args, std::vector<std::string>{"orders"});
  EXPECT_EQ(inv->Get("partitions"), "3");
  EXPECT_EQ(inv->Get("replication-factor"), "1");
  EXPECT_EQ(inv->GetAll("config"), (std::vector<std::string>{"a=1", "b=2"}));
}

TEST(ParseCommandLineTest, ErrorsNameTheOffender) {
  auto inv = Parse({"topic", "create"});
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.status().message().find("NAME"), absl::string_view::npos);

  inv = Parse({"topic", "create", "t", "--partitions"});
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.status().message().find("--partitions needs a value"),
            absl::string_view::npos);

  inv = Parse({"topic", "create", "t", "--bogus", "1"});
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.status().message().find("--bogus"), absl::string_view::npos);

  inv = Parse({"topic", "frobnicate"});
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.status().message().find("create"), absl::string_view::npos);

  EXPECT_FALSE(Parse({"nope"}).ok());
  EXPECT_FALSE(Parse({}).ok());
  EXPECT_FALSE(Parse({"topic"}).ok());
  EXPECT_FALSE(Parse({"topic", "delete", "a", "b"}).ok());
  EXPECT_FALSE(Parse({"produce", "t", "--acks", "1", "--acks", "all"}).ok());
  // Command flags belong after the command words.
  EXPECT_FALSE(Parse({"--partitions", "3", "topic", "create", "t"}).ok());
}

TEST(ParseCommandLineTest, Help) {
  auto inv = Parse({"--help"});
  ASSERT_TRUE(inv.ok());
  EXPECT_TRUE(inv->help);
  EXPECT_EQ(inv->command, "");

  inv = Parse({"consume", "--help"});
  ASSERT_TRUE(inv.ok());
  EXPECT_TRUE(inv->help);
  EXPECT_EQ(inv->command, "consume");

  inv = Parse({"topic", "-h"});
  ASSERT_TRUE(inv.ok());
  EXPECT_TRUE(inv->help);
  EXPECT_EQ(inv->command, "topic");

  // Help wins even over a missing positional.
  inv = Parse({"topic", "create", "--help"});
  ASSERT_TRUE(inv.ok());
  EXPECT_TRUE(inv->help);

  EXPECT_NE(Usage().find("topic create NAME"), std::string::npos);
  EXPECT_NE(Usage("consume").find("--from-beginning"), std::string::npos);
  EXPECT_NE(Usage("topic").find("fjord topic delete NAME"), std::string::npos);
}

TEST(ParseCommandLineTest, ProduceFlags) {
  auto inv = Parse({"produce", "t", "--key-separator", ":", "--acks", "0",
                    "--partition", "2"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, "produce");
  EXPECT_EQ(inv->Get("key-separator"), ":");
  EXPECT_EQ(inv->Get("acks"), "0");
  EXPECT_EQ(inv->Get("partition"), "2");
  EXPECT_FALSE(Parse({"produce", "t", "--key-separator="}).ok());
}

TEST(ParseCommandLineTest, ConsumeBooleansAndRules) {
  auto inv = Parse({"consume", "t", "--from-beginning", "--max-messages", "10",
                    "--timeout-ms", "500", "--print-key"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->Has("from-beginning"));
  EXPECT_TRUE(inv->Has("print-key"));
  EXPECT_FALSE(inv->Has("partition"));
  EXPECT_EQ(inv->Get("key-separator", "\t"), "\t");
  EXPECT_EQ(inv->args, std::vector<std::string>{"t"});

  EXPECT_FALSE(Parse({"consume", "t", "--from-beginning=yes"}).ok());
  EXPECT_FALSE(Parse({"consume", "t", "--offset", "5"}).ok());
  EXPECT_TRUE(
      Parse({"consume", "t", "--partition", "1", "--offset", "5"}).ok());
  EXPECT_FALSE(Parse({"consume", "t", "--partition", "1", "--offset", "5",
                      "--from-beginning"})
                   .ok());
  inv = Parse({"consume", "t", "--group", "g"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->Get("group"), "g");
}

TEST(ParseCommandLineTest, DoubleDashEndsFlags) {
  auto inv = Parse({"topic", "delete", "--", "-weird"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->args, std::vector<std::string>{"-weird"});
}

TEST(ParseIntFlagTest, Bounds) {
  EXPECT_EQ(*ParseIntFlag("n", "42", 0, 100), 42);
  EXPECT_FALSE(ParseIntFlag("n", "-1", 0, 100).ok());
  EXPECT_FALSE(ParseIntFlag("n", "101", 0, 100).ok());
  EXPECT_FALSE(ParseIntFlag("n", "4x", 0, 100).ok());
  EXPECT_FALSE(ParseIntFlag("n", "", 0, 100).ok());
}

}  // namespace
}  // namespace fjord::cli
