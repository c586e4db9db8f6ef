// Helpers for crash tests that re-execute their own test binary as a child
// process, kill it with SIGKILL and check what survived (crash_test.cc,
// replica_crash_test.cc).
//
// The child is this same binary, re-executed (not just forked: RocksDB's
// background threads do not survive fork) with --gtest_filter selecting the
// child test, and reports what it did through a pipe in fixed-size records,
// each written with one write(2) of at most PIPE_BUF bytes, so records from
// several threads never interleave.
#ifndef FJORD_STORAGE_CRASH_TEST_UTIL_H_
#define FJORD_STORAGE_CRASH_TEST_UTIL_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace fjord::storage::testing {

struct Child {
  pid_t pid = -1;
  int fd = -1;  // read end of the child's report pipe
};

// Starts this binary running only the tests matching `gtest_filter`, with our
// environment minus Bazel's test-result plumbing, plus `extra_env`
// ("NAME=value" entries) and `fd_env`=<the pipe's write end>. pid -1 on error.
Child StartChild(const std::string& gtest_filter, const std::string& fd_env,
                 const std::vector<std::string>& extra_env);

// Reads whole records of `record_size` bytes from `fd` into `records` until
// `deadline` (or EOF when `deadline` is infinite). A partial record stays in
// `buffer` for the next call.
void ReadRecords(int fd, size_t record_size, absl::Time deadline,
                 std::string* buffer, std::vector<std::string>* records);

// SIGKILLs the child, reaps it, drains its pipe to EOF and closes it. Returns
// false (with `error` set) if the child had ended on its own.
bool KillAndDrain(const Child& child, size_t record_size, std::string* buffer,
                  std::vector<std::string>* records, std::string* error);

}  // namespace fjord::storage::testing

#endif  // FJORD_STORAGE_CRASH_TEST_UTIL_H_
