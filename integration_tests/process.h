// Child processes for integration tests: spawning a long-running server with
// its output in a log file, signalling and reaping it with deadlines, and
// running a short-lived command with stdin text while capturing its output.
//
// Only ever signals the process it spawned (by PID, never by name or group),
// and only while that PID has not been reaped, so a recycled PID is never hit.
#ifndef FJORD_INTEGRATION_TESTS_PROCESS_H_
#define FJORD_INTEGRATION_TESTS_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fjord::testing {

// Extra environment entries, applied on top of the test's own environment.
using EnvVars = std::vector<std::pair<std::string, std::string>>;

// How a reaped process ended.
struct ExitInfo {
  // Exit code when the process exited normally, nullopt when a signal killed
  // it.
  std::optional<int> exit_code;
  // The terminating signal, 0 when it exited normally.
  int signal = 0;

  bool ExitedWith(int code) const { return exit_code == code; }
  // "exit code 3" or "killed by signal 9".
  std::string ToString() const;
};

// A spawned background process. Thread-compatible. The destructor SIGKILLs and
// reaps the process if it is still running, so no test leaves strays behind.
class Process {
 public:
  struct Options {
    std::string binary;
    std::vector<std::string> args;  // without argv[0]
    EnvVars env;
    // Environment variables removed from the inherited environment.
    std::vector<std::string> unset_env;
    // stdout and stderr are appended to this file (created if missing).
    std::string log_path;
    // Start the process in a session of its own (setsid), so that it survives
    // the spawner's exit and receives no signal meant for the spawner's
    // terminal or process group (Ctrl-C, hang-up). Used with Release().
    bool new_session = false;
  };

  // Starts the process. Fails when the binary cannot be executed.
  static absl::StatusOr<std::unique_ptr<Process>> Spawn(const Options& options);

  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }

  // Whether the process has not exited yet. Reaps it if it has.
  bool Running();

  // How the process ended, once it has been reaped (by Running or Wait).
  const std::optional<ExitInfo>& exit_info() const { return exit_; }

  // Sends `signal` to the process. FAILED_PRECONDITION if it was already
  // reaped.
  absl::Status Signal(int signal);

  // Waits until the process exits, at most `timeout`, polling waitpid.
  // DEADLINE_EXCEEDED (process left running) when it does not exit in time.
  absl::StatusOr<ExitInfo> Wait(absl::Duration timeout);

  // SIGKILL and reap (SIGKILL cannot be ignored, so this bounds itself at 10
  // s).
  absl::StatusOr<ExitInfo> Kill();

  // Gives up ownership: the destructor then leaves the process running, and
  // this object no longer signals or reaps it (every call fails or reports it
  // ended). For servers meant to outlive the spawner (see new_session); whoever
  // signals the PID later must check it still names the same process.
  void Release();

 private:
  explicit Process(pid_t pid) : pid_(pid) {}
  // Non-blocking waitpid; records exit_ when reaped.
  bool TryReap();

  pid_t pid_;
  std::optional<ExitInfo> exit_;
};

// The outcome of RunCommand.
struct CommandResult {
  ExitInfo exit;
  std::string out;
  std::string err;
  // A one-line summary for assertion messages, with stderr's tail.
  std::string Describe() const;
};

// Runs `binary args...` to completion, feeding `stdin_text` on its standard
// input (then closing it) and capturing stdout and stderr. DEADLINE_EXCEEDED
// (after SIGKILLing it) when it runs longer than `timeout`.
absl::StatusOr<CommandResult> RunCommand(const std::string& binary,
                                         const std::vector<std::string>& args,
                                         const std::string& stdin_text,
                                         absl::Duration timeout,
                                         const EnvVars& env = {});

// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the
// port, closes the socket. Another process may take it meanwhile (rare).
absl::StatusOr<int> PickFreePort();

// The whole content of `path` ("" when it cannot be read).
std::string ReadFileOrEmpty(const std::string& path);

// The last `lines` lines of `text`.
std::string TailLines(const std::string& text, int lines);

}  // namespace fjord::testing

#endif  // FJORD_INTEGRATION_TESTS_PROCESS_H_
