#include "storage/crash_test_util.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

extern char** environ;

namespace fjord::storage::testing {

Child StartChild(const std::string& gtest_filter, const std::string& fd_env,
                 const std::vector<std::string>& extra_env) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view var(*e);
    if (absl::StartsWith(var, "XML_OUTPUT_FILE=") ||
        absl::StartsWith(var, "GTEST_") ||
        absl::StartsWith(var, "TEST_PREMATURE_EXIT_FILE=") ||
        absl::StartsWith(var, "TEST_SHARD") ||
        absl::StartsWith(var, "TEST_TOTAL_SHARDS=")) {
      continue;
    }
    env.emplace_back(var);
  }
  env.push_back(absl::StrCat(fd_env, "=", fds[1]));
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  env.push_back("GLOG_minloglevel=1");
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string filter = absl::StrCat("--gtest_filter=", gtest_filter);
  std::string self = "/proc/self/exe";
  char* argv[] = {self.data(), filter.data(), nullptr};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    execve(argv[0], argv, envp.data());
    _exit(127);
  }
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return {};
  }
  return {pid, fds[0]};
}

void ReadRecords(int fd, size_t record_size, absl::Time deadline,
                 std::string* buffer, std::vector<std::string>* records) {
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return;
    pollfd pfd{fd, POLLIN, 0};
    const int timeout_ms =
        deadline == absl::InfiniteFuture()
            ? -1
            : static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    const int ready = poll(&pfd, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return;
    char chunk[4096];
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EOF: every writer is gone
    buffer->append(chunk, n);
    const size_t whole = buffer->size() / record_size;
    for (size_t i = 0; i < whole; ++i)
      records->push_back(buffer->substr(i * record_size, record_size));
    buffer->erase(0, whole * record_size);
  }
}

bool KillAndDrain(const Child& child, size_t record_size, std::string* buffer,
                  std::vector<std::string>* records, std::string* error) {
  kill(child.pid, SIGKILL);
  int wstatus = 0;
  if (waitpid(child.pid, &wstatus, 0) != child.pid) {
    *error = "waitpid failed";
    close(child.fd);
    return false;
  }
  ReadRecords(child.fd, record_size, absl::InfiniteFuture(), buffer, records);
  close(child.fd);
  if (!(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)) {
    *error = absl::StrCat("child ended on its own (status ", wstatus, ")");
    return false;
  }
  return true;
}

}  // namespace fjord::storage::testing
