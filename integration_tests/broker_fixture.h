// A real fjord-broker process for integration tests: its own data directory and
// log file under $TEST_TMPDIR, a free port on 127.0.0.1, start-up awaited
// through gRPC health, and SIGKILL / SIGTERM / restart on the same directory
// and port.
//
//   BrokerProcess broker;
//   ASSERT_OK(broker.Start());
//   auto stub = fjord::v1::AdminService::NewStub(broker.channel());
//   ASSERT_OK(broker.Kill());
//   ASSERT_OK(broker.Start());  // same data dir and port
//
// When the test has failed by the time the BrokerProcess is destroyed, the data
// directory and log are kept and their paths and the log's tail are printed.
#ifndef FJORD_INTEGRATION_TESTS_BROKER_FIXTURE_H_
#define FJORD_INTEGRATION_TESTS_BROKER_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "integration_tests/process.h"

namespace fjord::testing {

// Absolute path of a file in the Bazel runfiles tree, e.g.
// "broker/fjord-broker": $TEST_SRCDIR/$TEST_WORKSPACE/<path>, else <path>
// relative to the working directory. NOT_FOUND when neither exists.
absl::StatusOr<std::string> FindRunfile(const std::string& workspace_path);

// A fresh directory for this test under $TEST_TMPDIR (or /tmp), named after the
// running GoogleTest test and `name`.
absl::StatusOr<std::string> MakeTestDir(const std::string& name);

class BrokerProcess {
 public:
  struct Options {
    // Names the directory; distinct per broker within a test.
    std::string name = "broker";
    int node_id = 1;
    std::string fsync = "always";
    // Appended to the command line, e.g. {"--create-topics=t:3:1"}.
    std::vector<std::string> extra_args;
    // Added to the environment, e.g. {{"FJORD_CREATE_TOPICS", "t:5:1"}}.
    EnvVars env;
    // The broker's --data-dir; empty means "data" in the test's directory.
    std::string data_dir;
  };

  BrokerProcess() : BrokerProcess(Options{}) {}
  explicit BrokerProcess(Options options);
  // SIGKILLs the process if it is still running; see the file comment.
  ~BrokerProcess();
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  // Starts the broker (the first call picks the directory and port; later calls
  // reuse them) and waits until health answers SERVING. Fails with the log's
  // tail when the process exits first or `timeout` passes. FAILED_PRECONDITION
  // when it is already running.
  absl::Status Start(absl::Duration timeout = absl::Seconds(30));

  // Starts the process without waiting for it to serve (for start-up failures).
  absl::Status Spawn();

  // Polls health until SERVING, at most `timeout`.
  absl::Status WaitServing(absl::Duration timeout);

  // SIGKILL, then reap.
  absl::StatusOr<ExitInfo> Kill();
  // SIGTERM, then reap within `timeout` (DEADLINE_EXCEEDED leaves it running;
  // the destructor SIGKILLs it).
  absl::StatusOr<ExitInfo> Terminate(
      absl::Duration timeout = absl::Seconds(10));
  // Waits for the process to exit by itself.
  absl::StatusOr<ExitInfo> WaitExit(absl::Duration timeout);
  // Kill() then Start(): a crash and restart on the same data dir and port.
  absl::Status Restart(absl::Duration timeout = absl::Seconds(30));

  bool Running();
  Options& mutable_options() { return options_; }

  int port() const { return port_; }
  // "127.0.0.1:PORT".
  std::string address() const;
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }
  // Everything the broker has written to stdout and stderr, over all its runs.
  std::string Log() const { return ReadFileOrEmpty(log_path_); }

  // A channel to the broker, made fresh on every start so that no reconnect
  // back-off from an earlier run delays the test.
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

  // Runs the `fjord` CLI with `--bootstrap address()` and `args`.
  absl::StatusOr<CommandResult> RunCli(
      const std::vector<std::string>& args, const std::string& stdin_text = "",
      absl::Duration timeout = absl::Seconds(60)) const;

 private:
  absl::Status Prepare();

  Options options_;
  std::string broker_binary_;
  std::string cli_binary_;
  std::string dir_;
  std::string data_dir_;
  std::string log_path_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
  std::shared_ptr<grpc::Channel> channel_;
};

// A gRPC channel to `address` with a short reconnect back-off.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address);

}  // namespace fjord::testing

#endif  // FJORD_INTEGRATION_TESTS_BROKER_FIXTURE_H_
