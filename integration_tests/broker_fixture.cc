#include "integration_tests/broker_fixture.h"

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <iostream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "gtest/gtest.h"

namespace fjord::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kBrokerBinary[] = "broker/fjord-broker";
constexpr char kCliBinary[] = "client/fjord";
// Lines of the broker log printed when a start fails or a test fails.
constexpr int kLogTailLines = 40;

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

}  // namespace

absl::StatusOr<std::string> FindRunfile(const std::string& workspace_path) {
  std::vector<fs::path> candidates;
  const std::string srcdir = EnvOr("TEST_SRCDIR", "");
  if (!srcdir.empty()) {
    candidates.push_back(fs::path(srcdir) / EnvOr("TEST_WORKSPACE", "fjord") /
                         workspace_path);
  }
  candidates.push_back(fs::current_path() / workspace_path);
  for (const fs::path& p : candidates) {
    std::error_code ec;
    if (fs::exists(p, ec)) return fs::absolute(p).string();
  }
  std::string tried;
  for (const fs::path& p : candidates) absl::StrAppend(&tried, " ", p.string());
  return absl::NotFoundError(
      absl::StrCat(workspace_path, " not found in the runfiles; tried", tried,
                   " (is it in the test's data?)"));
}

absl::StatusOr<std::string> MakeTestDir(const std::string& name) {
  std::string test = "no_test";
  if (const auto* info =
          ::testing::UnitTest::GetInstance()->current_test_info()) {
    test = absl::StrCat(info->test_suite_name(), ".", info->name());
    test = absl::StrReplaceAll(test, {{"/", "_"}});
  }
  fs::path base = EnvOr("TEST_TMPDIR", fs::temp_directory_path().string());
  fs::path dir = base / test / name;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("creating ", dir.string(), ": ", ec.message()));
  }
  return dir.string();
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  // gRPC also uses this as the connect timeout: too short a value makes every
  // handshake on a busy machine time out.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 250);
  // Channels made for the same address must not share a subchannel (and with it
  // the reconnect back-off of an earlier, failed channel).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Large enough for the oversize-batch test to reach the broker's own limit.
  args.SetMaxSendMessageSize(64 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(absl::StrCat("ipv4:", address),
                                   grpc::InsecureChannelCredentials(), args);
}

BrokerProcess::BrokerProcess(Options options) : options_(std::move(options)) {}

BrokerProcess::~BrokerProcess() {
  if (process_ != nullptr) (void)process_->Kill();
  if (dir_.empty()) return;
  if (::testing::Test::HasFailure()) {
    std::cerr << "\n=== broker " << options_.name << " (port " << port_
              << ") kept for inspection:\n    data dir: " << data_dir_
              << "\n    log:      " << log_path_ << "\n--- last "
              << kLogTailLines << " log lines ---\n"
              << TailLines(Log(), kLogTailLines) << "\n---\n";
  } else {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

absl::Status BrokerProcess::Prepare() {
  if (!dir_.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> broker = FindRunfile(kBrokerBinary);
  if (!broker.ok()) return broker.status();
  broker_binary_ = *broker;
  absl::StatusOr<std::string> cli = FindRunfile(kCliBinary);
  if (cli.ok()) cli_binary_ = *cli;  // RunCli reports its absence
  absl::StatusOr<int> port = PickFreePort();
  if (!port.ok()) return port.status();
  port_ = *port;
  absl::StatusOr<std::string> dir = MakeTestDir(options_.name);
  if (!dir.ok()) return dir.status();
  dir_ = *dir;
  data_dir_ = options_.data_dir.empty() ? (fs::path(dir_) / "data").string()
                                         : options_.data_dir;
  log_path_ = (fs::path(dir_) / "broker.log").string();
  return absl::OkStatus();
}

std::string BrokerProcess::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

absl::Status BrokerProcess::Spawn() {
  if (process_ != nullptr && process_->Running()) {
    return absl::FailedPreconditionError(
        absl::StrCat("broker ", options_.name, " is already running"));
  }
  if (absl::Status s = Prepare(); !s.ok()) return s;
  Process::Options p;
  p.binary = broker_binary_;
  p.args = {absl::StrCat("--node-id=", options_.node_id),
            absl::StrCat("--listen=", address()),
            absl::StrCat("--data-dir=", data_dir_),
            absl::StrCat("--fsync=", options_.fsync)};
  p.args.insert(p.args.end(), options_.extra_args.begin(),
                options_.extra_args.end());
  p.env = options_.env;
  // The test's own environment must not configure the broker behind its back.
  for (const char* name :
       {"FJORD_NODE_ID", "FJORD_LISTEN", "FJORD_ADVERTISED", "FJORD_DATA_DIR",
        "FJORD_FSYNC", "FJORD_CREATE_TOPICS", "FJORD_CONTROLLER_QUORUM_VOTERS",
        "FJORD_MAX_BATCH_BYTES", "FJORD_RACK"}) {
    bool overridden = false;
    for (const auto& [k, v] : options_.env) overridden |= (k == name);
    if (!overridden) p.unset_env.push_back(name);
  }
  p.log_path = log_path_;
  {
    // Mark each run in the log, so restarts are easy to tell apart.
    FILE* f = fopen(log_path_.c_str(), "a");
    if (f != nullptr) {
      fprintf(f, "=== fixture: starting %s on %s at %s\n",
              options_.name.c_str(), address().c_str(),
              absl::FormatTime(absl::Now(), absl::UTCTimeZone()).c_str());
      fclose(f);
    }
  }
  absl::StatusOr<std::unique_ptr<Process>> process = Process::Spawn(p);
  if (!process.ok()) return process.status();
  process_ = std::move(*process);
  channel_ = MakeChannel(address());
  return absl::OkStatus();
}

absl::Status BrokerProcess::WaitServing(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last = "no answer yet";
  while (true) {
    // A fresh channel per attempt: the first ones are refused, and a channel
    // that saw that backs off before trying again.
    channel_ = MakeChannel(address());
    auto stub = grpc::health::v1::Health::NewStub(channel_);
    if (process_ == nullptr || !process_->Running()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "broker ", options_.name, " exited before serving (",
          process_ == nullptr ? "never started"
                              : process_->exit_info()->ToString(),
          "); log ", log_path_, ":\n", TailLines(Log(), kLogTailLines)));
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(500));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, req, &resp);
    if (s.ok() &&
        resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return absl::OkStatus();
    }
    last = s.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                        resp.status())
                  : absl::StrCat("rpc error ", s.error_code(), ": ",
                                 s.error_message());
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "broker ", options_.name, " on ", address(), " not SERVING after ",
          absl::FormatDuration(timeout), " (last: ", last, "); log ", log_path_,
          ":\n", TailLines(Log(), kLogTailLines)));
    }
    absl::SleepFor(absl::Milliseconds(50));  // poll interval
  }
}

absl::Status BrokerProcess::Start(absl::Duration timeout) {
  if (absl::Status s = Spawn(); !s.ok()) return s;
  return WaitServing(timeout);
}

absl::StatusOr<ExitInfo> BrokerProcess::Kill() {
  if (process_ == nullptr) return absl::FailedPreconditionError("not started");
  return process_->Kill();
}

absl::StatusOr<ExitInfo> BrokerProcess::Terminate(absl::Duration timeout) {
  if (process_ == nullptr) return absl::FailedPreconditionError("not started");
  if (absl::Status s = process_->Signal(SIGTERM); !s.ok()) return s;
  return process_->Wait(timeout);
}

absl::StatusOr<ExitInfo> BrokerProcess::WaitExit(absl::Duration timeout) {
  if (process_ == nullptr) return absl::FailedPreconditionError("not started");
  return process_->Wait(timeout);
}

absl::Status BrokerProcess::Restart(absl::Duration timeout) {
  if (absl::StatusOr<ExitInfo> killed = Kill(); !killed.ok()) {
    return killed.status();
  }
  return Start(timeout);
}

bool BrokerProcess::Running() {
  return process_ != nullptr && process_->Running();
}

absl::StatusOr<CommandResult> BrokerProcess::RunCli(
    const std::vector<std::string>& args, const std::string& stdin_text,
    absl::Duration timeout) const {
  std::string binary = cli_binary_;
  if (binary.empty()) {
    absl::StatusOr<std::string> cli = FindRunfile(kCliBinary);
    if (!cli.ok()) return cli.status();
    binary = *cli;
  }
  std::vector<std::string> full = {"--bootstrap", address()};
  full.insert(full.end(), args.begin(), args.end());
  return RunCommand(binary, full, stdin_text, timeout);
}

}  // namespace fjord::testing
