#include "integration_tests/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

extern char** environ;

namespace fjord::testing {
namespace {

// How often waits poll waitpid. Short against every deadline used.
constexpr absl::Duration kPollInterval = absl::Milliseconds(10);

absl::Status ErrnoError(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

// A writer whose reader exited must see EPIPE, not die of SIGPIPE.
void IgnoreSigpipeOnce() {
  static std::once_flag once;
  std::call_once(once, [] { signal(SIGPIPE, SIG_IGN); });
}

// argv/envp storage for posix_spawn: the strings and the null-terminated
// arrays.
class CStringArray {
 public:
  explicit CStringArray(std::vector<std::string> strings)
      : strings_(std::move(strings)) {
    for (std::string& s : strings_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
  }
  char** get() { return pointers_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

std::vector<std::string> BuildEnv(const EnvVars& env,
                                  const std::vector<std::string>& unset) {
  std::set<std::string> drop(unset.begin(), unset.end());
  for (const auto& [key, value] : env) drop.insert(key);
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view entry(*e);
    absl::string_view key = entry.substr(0, entry.find('='));
    if (drop.count(std::string(key)) == 0) out.emplace_back(entry);
  }
  for (const auto& [key, value] : env)
    out.push_back(absl::StrCat(key, "=", value));
  return out;
}

std::vector<std::string> BuildArgv(const std::string& binary,
                                   const std::vector<std::string>& args) {
  std::vector<std::string> argv = {binary};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

ExitInfo FromWaitStatus(int status) {
  ExitInfo info;
  if (WIFEXITED(status)) {
    info.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    info.signal = WTERMSIG(status);
  }
  return info;
}

// Waits for `pid` until `deadline`, polling. nullopt on timeout.
std::optional<ExitInfo> WaitUntil(pid_t pid, absl::Time deadline) {
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return FromWaitStatus(status);
    if (r < 0 && errno != EINTR) return ExitInfo{std::nullopt, -1};
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(kPollInterval);
  }
}

}  // namespace

std::string ExitInfo::ToString() const {
  if (exit_code.has_value()) return absl::StrCat("exit code ", *exit_code);
  return absl::StrCat("killed by signal ", signal);
}

// ---------------------------------------------------------------------------
// Process

absl::StatusOr<std::unique_ptr<Process>> Process::Spawn(
    const Options& options) {
  CStringArray argv(BuildArgv(options.binary, options.args));
  CStringArray envp(BuildEnv(options.env, options.unset_env));

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, options.log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  if (options.new_session) posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  pid_t pid = 0;
  int err = posix_spawn(&pid, options.binary.c_str(), &actions, &attr,
                        argv.get(), envp.get());
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0)
    return ErrnoError(absl::StrCat("spawning ", options.binary), err);
  return std::unique_ptr<Process>(new Process(pid));
}

Process::~Process() {
  if (!exit_.has_value()) (void)Kill();
}

bool Process::TryReap() {
  if (exit_.has_value()) return true;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_ = FromWaitStatus(status);
    return true;
  }
  if (r < 0) {  // ECHILD: not ours any more; never signal it again
    exit_ = ExitInfo{std::nullopt, -1};
    return true;
  }
  return false;
}

bool Process::Running() { return !TryReap(); }

absl::Status Process::Signal(int signal) {
  if (TryReap()) {
    return absl::FailedPreconditionError(
        absl::StrCat("process ", pid_, " already ended: ", exit_->ToString()));
  }
  if (kill(pid_, signal) != 0) return ErrnoError("kill", errno);
  return absl::OkStatus();
}

absl::StatusOr<ExitInfo> Process::Wait(absl::Duration timeout) {
  if (exit_.has_value()) return *exit_;
  std::optional<ExitInfo> info = WaitUntil(pid_, absl::Now() + timeout);
  if (!info.has_value()) {
    return absl::DeadlineExceededError(
        absl::StrCat("process ", pid_, " still running after ",
                     absl::FormatDuration(timeout)));
  }
  exit_ = info;
  return *exit_;
}

absl::StatusOr<ExitInfo> Process::Kill() {
  if (TryReap()) return *exit_;
  if (kill(pid_, SIGKILL) != 0) return ErrnoError("kill", errno);
  return Wait(absl::Seconds(10));
}

void Process::Release() {
  if (!exit_.has_value()) exit_ = ExitInfo{std::nullopt, -1};
}

// ---------------------------------------------------------------------------
// RunCommand

std::string CommandResult::Describe() const {
  return absl::StrCat(
      exit.ToString(), "; stderr: ", TailLines(err, 20),
      out.size() < 2000 ? absl::StrCat("; stdout: ", out) : std::string());
}

absl::StatusOr<CommandResult> RunCommand(const std::string& binary,
                                         const std::vector<std::string>& args,
                                         const std::string& stdin_text,
                                         absl::Duration timeout,
                                         const EnvVars& env) {
  IgnoreSigpipeOnce();
  const absl::Time deadline = absl::Now() + timeout;
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  if (pipe2(out, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  if (pipe2(err, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);

  CStringArray argv(BuildArgv(binary, args));
  CStringArray envp(BuildEnv(env, {}));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  pid_t pid = 0;
  int spawn_err = posix_spawn(&pid, binary.c_str(), &actions, nullptr,
                              argv.get(), envp.get());
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (spawn_err != 0) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    return ErrnoError(absl::StrCat("spawning ", binary), spawn_err);
  }

  for (int fd : {in[1], out[0], err[0]}) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  int stdin_fd = in[1];
  size_t written = 0;
  if (stdin_text.empty()) {
    close(stdin_fd);
    stdin_fd = -1;
  }
  int out_fd = out[0], err_fd = err[0];
  CommandResult result;
  bool timed_out = false;
  char buf[64 << 10];
  while (out_fd >= 0 || err_fd >= 0) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      timed_out = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    if (stdin_fd >= 0) fds[n++] = {stdin_fd, POLLOUT, 0};
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    int ready = poll(fds, n,
                     static_cast<int>(std::min<int64_t>(
                         absl::ToInt64Milliseconds(left) + 1, 1000)));
    if (ready < 0 && errno != EINTR) return ErrnoError("poll", errno);
    if (ready <= 0) continue;
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == stdin_fd) {
        ssize_t w =
            write(stdin_fd, stdin_text.data() + written,
                  std::min<size_t>(stdin_text.size() - written, 1 << 16));
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
            written == stdin_text.size()) {
          close(stdin_fd);  // done, or the child stopped reading (EPIPE)
          stdin_fd = -1;
        }
        continue;
      }
      int& fd = fds[i].fd == out_fd ? out_fd : err_fd;
      std::string& sink = fds[i].fd == out_fd ? result.out : result.err;
      ssize_t r = read(fd, buf, sizeof(buf));
      if (r > 0) {
        sink.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(fd);
        fd = -1;
      }
    }
  }
  for (int fd : {stdin_fd, out_fd, err_fd}) {
    if (fd >= 0) close(fd);
  }
  std::optional<ExitInfo> exit;
  if (!timed_out) exit = WaitUntil(pid, deadline);
  if (!exit.has_value()) {
    kill(pid, SIGKILL);
    (void)WaitUntil(pid, absl::Now() + absl::Seconds(10));
    return absl::DeadlineExceededError(absl::StrCat(
        binary, " did not finish within ", absl::FormatDuration(timeout),
        "; stderr so far: ", TailLines(result.err, 10)));
  }
  result.exit = *exit;
  return result;
}

// ---------------------------------------------------------------------------
// Helpers

absl::StatusOr<int> PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int e = errno;
    close(fd);
    return ErrnoError("binding 127.0.0.1:0", e);
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TailLines(const std::string& text, int lines) {
  // Walk back over `lines` newlines (ignoring a trailing one).
  size_t end = text.size();
  if (end > 0 && text[end - 1] == '\n') --end;
  size_t start = end;
  for (int i = 0; i < lines; ++i) {
    size_t nl = start == 0 ? std::string::npos : text.rfind('\n', start - 1);
    if (nl == std::string::npos) return text.substr(0, end);
    start = nl;
  }
  return text.substr(start + 1, end - start - 1);
}

}  // namespace fjord::testing
