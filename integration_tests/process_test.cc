// Tests of the process helpers against ordinary system binaries.
#include "integration_tests/process.h"

#include <signal.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fjord::testing {
namespace {

TEST(RunCommandTest, FeedsStdinAndCapturesBothStreamsAndExitCode) {
  // More stdin than a pipe buffer holds, to exercise interleaved I/O.
  std::string input;
  for (int i = 0; i < 100000; ++i) absl::StrAppend(&input, "line ", i, "\n");
  absl::StatusOr<CommandResult> r =
      RunCommand("/bin/sh", {"-c", "cat; echo oops >&2; exit 3"}, input,
                 absl::Seconds(30));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->exit.ExitedWith(3)) << r->exit.ToString();
  EXPECT_EQ(r->out, input);
  EXPECT_EQ(r->err, "oops\n");
}

TEST(RunCommandTest, ChildThatIgnoresStdinDoesNotHang) {
  std::string input(1 << 20, 'x');
  absl::StatusOr<CommandResult> r =
      RunCommand("/bin/true", {}, input, absl::Seconds(30));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->exit.ExitedWith(0));
}

TEST(RunCommandTest, TimeoutKillsTheChild) {
  absl::StatusOr<CommandResult> r =
      RunCommand("/bin/sleep", {"30"}, "", absl::Milliseconds(200));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(RunCommandTest, PassesEnvironment) {
  absl::StatusOr<CommandResult> r =
      RunCommand("/bin/sh", {"-c", "printf %s \"$FJORD_X\""}, "",
                 absl::Seconds(10), {{"FJORD_X", "hello"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "hello");
}

TEST(RunCommandTest, MissingBinaryIsAnError) {
  EXPECT_FALSE(
      RunCommand("/nonexistent/binary", {}, "", absl::Seconds(5)).ok());
}

TEST(ProcessTest, TerminateAndKillAreReapedWithExitInfo) {
  const std::string log =
      absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp",
                   "/process_test.log");
  absl::StatusOr<std::unique_ptr<Process>> p = Process::Spawn(
      {.binary = "/bin/sh",
       .args = {"-c", "echo started; echo \"$FJORD_Y\"; exec sleep 30"},
       .env = {{"FJORD_Y", "env-ok"}},
       .log_path = log});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((*p)->Running());
  EXPECT_EQ((*p)->Wait(absl::Milliseconds(100)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE((*p)->Signal(SIGTERM).ok());
  absl::StatusOr<ExitInfo> exit = (*p)->Wait(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->signal, SIGTERM);
  EXPECT_FALSE((*p)->Running());
  // A reaped process is never signalled again.
  EXPECT_EQ((*p)->Signal(SIGKILL).code(),
            absl::StatusCode::kFailedPrecondition);
  const std::string out = ReadFileOrEmpty(log);
  EXPECT_NE(out.find("started\nenv-ok\n"), std::string::npos) << out;

  p = Process::Spawn({.binary = "/bin/sleep", .args = {"30"}, .log_path = log});
  ASSERT_TRUE(p.ok()) << p.status();
  exit = (*p)->Kill();
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->signal, SIGKILL);
}

TEST(PickFreePortTest, ReturnsAUsablePort) {
  absl::StatusOr<int> port = PickFreePort();
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_GT(*port, 0);
  EXPECT_LT(*port, 65536);
}

TEST(TailLinesTest, KeepsTheLastLines) {
  EXPECT_EQ(TailLines("a\nb\nc\n", 2), "b\nc");
  EXPECT_EQ(TailLines("a\nb\nc", 2), "b\nc");
  EXPECT_EQ(TailLines("a\nb\nc\n", 5), "a\nb\nc");
  EXPECT_EQ(TailLines("", 3), "");
  EXPECT_EQ(TailLines("one", 1), "one");
}

}  // namespace
}  // namespace fjord::testing
