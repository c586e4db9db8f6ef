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

TEST(ParseCommandLineTest, ConsumeGroupRules) {
  auto inv = Parse({"consume", "t", "--group", "g", "--from-beginning",
                    "--group-instance-id", "i-1", "--session-timeout-ms",
                    "10000", "--assignor", "range"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->Get("group-instance-id"), "i-1");
  EXPECT_EQ(inv->Get("session-timeout-ms"), "10000");
  EXPECT_EQ(inv->Get("assignor"), "range");

  // The group assigns partitions: --partition / --offset make no sense.
  inv = Parse({"consume", "t", "--group", "g", "--partition", "1"});
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.status().message().find("--group"), absl::string_view::npos);
  EXPECT_FALSE(Parse({"consume", "t", "--group", "g", "--partition", "1",
                      "--offset", "3"})
                   .ok());
  EXPECT_FALSE(Parse({"consume", "t", "--group="}).ok());
  EXPECT_FALSE(
      Parse({"consume", "t", "--group", "g", "--assignor", "sticky"}).ok());
  // Group-only flags without --group.
  for (const char* flag :
       {"--group-instance-id", "--session-timeout-ms", "--assignor"}) {
    inv = Parse({"consume", "t", flag, "range"});
    ASSERT_FALSE(inv.ok()) << flag;
    EXPECT_NE(inv.status().message().find("needs --group"),
              absl::string_view::npos);
  }
}

TEST(ParseCommandLineTest, GroupCommands) {
  auto inv = Parse({"group", "list", "-o", "json"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, "group list");
  EXPECT_TRUE(inv->json);

  inv = Parse({"group", "describe", "g"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->args, std::vector<std::string>{"g"});
  EXPECT_FALSE(Parse({"group", "describe"}).ok());

  inv = Parse({"group", "delete", "g"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, "group delete");

  inv = Parse({"group", "reset-offsets", "g", "--topic", "a:0,1", "--topic",
               "b", "--to-earliest", "--execute"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->GetAll("topic"), (std::vector<std::string>{"a:0,1", "b"}));
  EXPECT_TRUE(inv->Has("execute"));

  inv = Parse({"group", "reset-offsets", "g", "--all-topics", "--shift-by",
               "-5", "--dry-run"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->Get("shift-by"), "-5");

  inv = Parse({"group", "reset-offsets", "g", "--topic", "t", "--to-datetime",
               "2024-01-02T03:04:05.678Z"});
  ASSERT_TRUE(inv.ok()) << inv.status();

  // Exactly one scope and one spec.
  EXPECT_FALSE(Parse({"group", "reset-offsets", "g", "--to-latest"}).ok());
  EXPECT_FALSE(Parse({"group", "reset-offsets", "g", "--topic", "t",
                      "--all-topics", "--to-latest"})
                   .ok());
  EXPECT_FALSE(Parse({"group", "reset-offsets", "g", "--topic", "t"}).ok());
  EXPECT_FALSE(Parse({"group", "reset-offsets", "g", "--topic", "t",
                      "--to-latest", "--to-offset", "3"})
                   .ok());
  EXPECT_FALSE(Parse({"group", "reset-offsets", "g", "--topic", "t",
                      "--to-latest", "--dry-run", "--execute"})
                   .ok());

  EXPECT_NE(Usage("group").find("fjord group reset-offsets G"),
            std::string::npos);
  EXPECT_NE(Usage("consume").find("--group-instance-id"), std::string::npos);
}

TEST(ParseTopicPartitionsTest, TopicAndPartitions) {
  auto spec = ParseTopicPartitions("orders");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->topic, "orders");
  EXPECT_TRUE(spec->partitions.empty());

  spec = ParseTopicPartitions("orders:2,0,2");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->partitions, (std::vector<int32_t>{0, 2}));

  EXPECT_FALSE(ParseTopicPartitions(":1").ok());
  EXPECT_FALSE(ParseTopicPartitions("t:").ok());
  EXPECT_FALSE(ParseTopicPartitions("t:1,x").ok());
  EXPECT_FALSE(ParseTopicPartitions("t:-1").ok());
}

TEST(ParseDateTimeTest, UtcLocalAndMilliseconds) {
  // 2024-01-02T03:04:05Z.
  constexpr int64_t kBase = 1704164645000;
  EXPECT_EQ(*ParseDateTime("2024-01-02T03:04:05Z"), kBase);
  EXPECT_EQ(*ParseDateTime("2024-01-02T03:04:05.678Z"), kBase + 678);
  EXPECT_EQ(*ParseDateTime("2024-01-02T03:04:05.5Z"), kBase + 500);
  // Without Z: the local zone (here a fixed one, 2 hours east of UTC).
  EXPECT_EQ(
      *ParseDateTime("2024-01-02T05:04:05", absl::FixedTimeZone(2 * 3600)),
      kBase);
  EXPECT_FALSE(ParseDateTime("2024-01-02").ok());
  EXPECT_FALSE(ParseDateTime("2024-01-02 03:04:05").ok());
  EXPECT_FALSE(ParseDateTime("2024-01-02T03:04:05.1234Z").ok());
  EXPECT_FALSE(ParseDateTime("2024-01-02T03:04:05.Z").ok());
  EXPECT_FALSE(ParseDateTime("2024-13-02T03:04:05Z").ok());
  EXPECT_FALSE(ParseDateTime("2024-01-02T03:04:05+01:00").ok());
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
