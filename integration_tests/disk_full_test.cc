// A broker whose disk fills up: writes are refused with RESOURCE_EXHAUSTED
// (ErrorInfo DISK_FULL) and a message that says so, reads keep working, nothing
// stored is damaged, and writes resume by themselves once space returns. The
// disk is a small tmpfs mounted for the test (root only; skipped otherwise) and
// grown with `mount -o remount,size=...` to give space back.
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "integration_tests/broker_fixture.h"
#include "integration_tests/grpc_assertions.h"
#include "integration_tests/process.h"

namespace fjord::testing {
namespace {

// A tmpfs of `mib` MiB at `dir`, unmounted when destroyed.
class Tmpfs {
 public:
  Tmpfs(std::string dir, int mib) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    mounted_ = mount("tmpfs", dir_.c_str(), "tmpfs", 0, absl::StrCat("size=", mib, "m").c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  bool Resize(int mib) {
    return mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT,
                 absl::StrCat("size=", mib, "m").c_str()) == 0;
  }

 private:
  std::string dir_;
  bool mounted_ = false;
};

int Lines(const std::string& text) {
  int n = 0;
  for (absl::string_view l : absl::StrSplit(text, '\n', absl::SkipEmpty())) n += l.empty() ? 0 : 1;
  return n;
}

TEST(DiskFullTest, WritesRefusedClearlyThenResumeWhenSpaceReturns) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/small-disk");
  Tmpfs disk(dir, 24);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here";
  BrokerProcess::Options o;
  o.data_dir = dir + "/data";
  o.extra_args = {"--create-topics=big:1:1"};
  BrokerProcess broker(o);
  ASSERT_OK(broker.Start());

  // 60 KB records until the disk is full.
  const std::string record(60000, 'x');
  std::string batch;
  for (int i = 0; i < 20; ++i) absl::StrAppend(&batch, record, "\n");
  int acked_batches = 0;
  std::string refusal;
  for (int round = 0; round < 40 && refusal.empty(); ++round) {
    absl::StatusOr<CommandResult> r = broker.RunCli({"produce", "big"}, batch);
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->exit.ExitedWith(0)) {
      ++acked_batches;
    } else {
      refusal = r->err;
    }
  }
  ASSERT_FALSE(refusal.empty()) << "the 24 MiB disk never filled up";
  EXPECT_NE(refusal.find("disk is full"), std::string::npos) << refusal;
  std::cout << "disk full after " << acked_batches << " batches of 20 x 60 KB: " << refusal;

  // Reads still work and return every acknowledged record, undamaged.
  absl::StatusOr<CommandResult> read =
      broker.RunCli({"consume", "big", "--from-beginning", "--timeout-ms", "1000"});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->exit.ExitedWith(0)) << read->Describe();
  const int stored = Lines(read->out);
  EXPECT_GE(stored, acked_batches * 20);
  EXPECT_TRUE(broker.Running());

  // Space returns: writes resume without a restart (RocksDB's own recovery,
  // helped by the store's Resume), within 30 s.
  ASSERT_TRUE(disk.Resize(128));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  bool resumed = false;
  while (!resumed && absl::Now() < deadline) {
    absl::StatusOr<CommandResult> r = broker.RunCli({"produce", "big"}, "after\n");
    resumed = r.ok() && r->exit.ExitedWith(0);
    if (!resumed) absl::SleepFor(absl::Milliseconds(500));  // back-off between attempts
  }
  EXPECT_TRUE(resumed) << "writes did not resume within 30 s of the disk growing";

  // After a restart everything is still there, and nothing is damaged.
  ASSERT_OK(broker.Restart());
  read = broker.RunCli({"consume", "big", "--from-beginning", "--timeout-ms", "1000"});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->exit.ExitedWith(0)) << read->Describe();
  EXPECT_EQ(Lines(read->out), stored + 1);
  EXPECT_NE(read->out.find("after"), std::string::npos);
}

}  // namespace
}  // namespace fjord::testing
