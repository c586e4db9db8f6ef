// controller_bench: metadata commit latency and throughput of topic creation
// on a 3-voter fjord-controller quorum, beside etcd 3.4 doing the same number
// of small writes on a 3-member cluster, on this machine, in one run.
//
// For each system in --order (default "fjord,etcd"), one after the other so
// the two never compete for the CPU:
//
//   1. start three server processes on 127.0.0.1 (ports chosen by the kernel),
//      each with a fresh data directory under a temporary root, and wait for a
//      leader;
//   2. Fjord only: register --replication-factor fake brokers through
//      ControllerService.RegisterBroker and heartbeat them from a thread for as
//      long as the quorum runs (the controller refuses a replication factor
//      above the number of unfenced brokers); nothing follows the metadata log;
//   3. warm-up: --warmup-ops writes, not measured;
//   4. sequential: --ops writes, one at a time from one client;
//   5. concurrent: --ops writes from --clients threads, each with its own gRPC
//      channel and TCP connection, closed loop, one write in flight each;
//   6. stop the three processes (SIGTERM, then SIGKILL after 10 s, by PID).
//
// A write is, for Fjord, AdminService.CreateTopics of one topic with one
// partition, sent to the active controller (following NOT_LEADER details);
// it answers once its Raft entry is committed (fsync on a majority) and
// applied. For etcd it is KV.Put sent to the leader, answered once committed
// (etcd fsyncs its WAL on every Raft Ready) and applied; key
// "/fjord-bench/topics/<topic>", value the bytes Fjord proposes for the same
// topic (a MetadataBatch holding one CreateTopicRecord), so both replicate
// payloads of the same size. Latency is measured by the client around the
// blocking call, retries included.
//
// Everything is bounded: every RPC has a deadline (--rpc-timeout-ms), every
// write a retry budget (--op-timeout-ms), every phase a wall-clock limit
// (--max-phase-s), every wait for a server a limit; Ctrl-C stops the run and
// still stops the servers and deletes the temporary directories. Only
// 127.0.0.1 is used. A default run takes about 35 s.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/machine_stats.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "etcd/etcdserverpb/kv.grpc.pb.h"
#include "fjord/internal/v1/controller.grpc.pb.h"
#include "fjord/internal/v1/controller_records.pb.h"
#include "fjord/v1/admin.grpc.pb.h"
#include "fjord/v1/record.pb.h"
#include "glog/logging.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"

namespace fjord::bench {
namespace {

namespace fs = std::filesystem;
namespace fv1 = fjord::v1;
namespace fiv1 = fjord::internal::v1;
using Clock = std::chrono::steady_clock;

// Set by SIGINT/SIGTERM; every loop and wait checks it.
std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }

struct Config {
  std::string controller_bin = "bazel-bin/controller/fjord-controller";
  std::string etcd_bin = "/usr/bin/etcd";
  std::string order = "fjord,etcd";
  int64_t ops = 3000;
  int64_t warmup_ops = 100;
  int64_t clients = 16;
  int64_t replication_factor = 3;
  int64_t rpc_timeout_ms = 5000;
  int64_t op_timeout_ms = 15000;
  int64_t max_phase_s = 300;
  int64_t startup_timeout_s = 60;
  std::string dir;
  bool keep_logs = false;
};

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::chrono::system_clock::time_point DeadlineAfter(int64_t ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

// Sleeps up to `d`, waking early on Ctrl-C.
void InterruptibleSleep(absl::Duration d) {
  const absl::Time until = absl::Now() + d;
  while (!g_interrupted.load() && absl::Now() < until) {
    absl::SleepFor(std::min(d, absl::Milliseconds(20)));
  }
}

// ---------------------------------------------------------------------------
// Machine and process facts.

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}


std::string FilesystemType(const std::string& path) {
  struct statfs st;
  if (statfs(path.c_str(), &st) != 0) return "unknown";
  switch (static_cast<uint64_t>(st.f_type)) {
    case 0xEF53:
      return "ext2/3/4";
    case 0x01021994:
      return "tmpfs";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794C7630:
      return "overlayfs";
    default:
      return absl::StrFormat("fs magic 0x%x", st.f_type);
  }
}


// CPU seconds used so far by the servers, by this process (the clients) and
// by the whole machine.
struct CpuSample {
  double servers = 0;
  double self = 0;
  double machine = 0;
};

CpuSample SampleCpu(const std::vector<pid_t>& servers) {
  CpuSample s;
  for (pid_t pid : servers) s.servers += bench::ProcessCpuSeconds(pid);
  s.self = bench::SelfCpuSeconds();
  s.machine = bench::MachineCpuSeconds();
  return s;
}

// `n` distinct TCP ports on 127.0.0.1 that were free a moment ago: all are
// bound at once (so they differ) and released before returning. Another
// process could take one in between; the server start would then fail
// visibly.
absl::StatusOr<std::vector<int>> FreePorts(int n) {
  std::vector<int> fds;
  std::vector<int> ports;
  absl::Status status;
  for (int i = 0; i < n && status.ok(); ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = absl::InternalError(std::strerror(errno));
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = absl::InternalError(
          absl::StrCat("cannot bind 127.0.0.1:0: ", std::strerror(errno)));
      break;
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  if (!status.ok()) return status;
  return ports;
}

// ---------------------------------------------------------------------------
// Child processes.

// A server process this benchmark started. Stop() (or the destructor) ends it
// by its PID and reaps it; nothing else is ever signalled.
class Child {
 public:
  Child(std::string name, std::string log_path)
      : name_(std::move(name)), log_path_(std::move(log_path)) {}
  ~Child() { Stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Starts argv[0] (a path) with stdin from /dev/null and stdout and stderr
  // to the log file. The child gets its own process group (Ctrl-C reaches
  // only this program, which then stops the child cleanly) and is killed by
  // the kernel if this program dies first.
  absl::Status Start(const std::vector<std::string>& argv) {
    int log_fd =
        open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      return absl::InternalError(
          absl::StrCat("cannot open ", log_path_, ": ", std::strerror(errno)));
    }
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
      // Only async-signal-safe calls between fork and exec.
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      if (null_fd >= 0) dup2(null_fd, 0);
      dup2(log_fd, 1);
      dup2(log_fd, 2);
      execv(args[0], args.data());
      _exit(127);
    }
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    if (pid < 0) {
      return absl::InternalError(
          absl::StrCat("fork failed: ", std::strerror(errno)));
    }
    pid_ = pid;
    return absl::OkStatus();
  }

  // Whether the process is still running (reaps it when it has exited).
  bool Running() {
    if (pid_ <= 0) return false;
    int wstatus = 0;
    pid_t r = waitpid(pid_, &wstatus, WNOHANG);
    if (r == pid_) {
      exit_status_ = wstatus;
      pid_ = -1;
      return false;
    }
    return true;
  }

  // SIGTERM, then SIGKILL if it has not exited within `grace`; reaps it.
  void Stop(absl::Duration grace = absl::Seconds(10)) {
    if (!Running()) return;
    kill(pid_, SIGTERM);
    const absl::Time until = absl::Now() + grace;
    while (absl::Now() < until) {
      if (!Running()) return;
      absl::SleepFor(absl::Milliseconds(20));
    }
    LOG(WARNING) << name_ << " (pid " << pid_
                 << ") ignored SIGTERM; sending SIGKILL";
    kill(pid_, SIGKILL);
    int wstatus = 0;
    waitpid(pid_, &wstatus, 0);
    pid_ = -1;
  }

  // The last lines of the log, for error messages.
  std::string LogTail(int lines = 15) const {
    std::ifstream in(log_path_);
    std::vector<std::string> all;
    std::string line;
    while (std::getline(in, line)) all.push_back(line);
    size_t from =
        all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
    std::string out;
    for (size_t i = from; i < all.size(); ++i)
      absl::StrAppend(&out, "  ", all[i], "\n");
    return out;
  }

  std::string Describe() const {
    return absl::StrCat(name_, " exited (status ", exit_status_, "); log ",
                        log_path_, ":\n", LogTail());
  }

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }

 private:
  const std::string name_;
  const std::string log_path_;
  pid_t pid_ = -1;
  int exit_status_ = 0;
};

// ---------------------------------------------------------------------------
// The two systems behind one interface.

// One client's connection to a system: writes one small record and returns
// when the system has committed it. One thread uses one Writer.
class Writer {
 public:
  virtual ~Writer() = default;
  // Writes the record named `name` (unique in the run). Retries UNAVAILABLE
  // until `deadline`, adding each retry to *retries.
  virtual absl::Status Write(const std::string& name, absl::Time deadline,
                             int64_t* retries) = 0;
};

class System {
 public:
  virtual ~System() = default;
  virtual std::string Name() const = 0;
  // Starts the three servers and waits until writes succeed.
  virtual absl::Status Start() = 0;
  // A new client with its own TCP connection.
  virtual std::unique_ptr<Writer> NewWriter() = 0;
  virtual std::vector<pid_t> ServerPids() const = 0;
  // Stops everything started (idempotent).
  virtual void Stop() = 0;
  // Free text for the report (versions, leader, payload sizes).
  virtual std::string Notes() const = 0;
};

// A channel with its own subchannel pool, hence its own TCP connection.
std::shared_ptr<grpc::Channel> OwnChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

bool Retriable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE ||
         code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

// The bytes Fjord's active controller proposes to Raft for creating `name`
// with one partition and `rf` replicas: a MetadataBatch holding one
// CreateTopicRecord (a 32-hex-digit topic id, replicas 1..rf, all in sync).
// Used as the etcd value, so that both systems replicate the same payload.
std::string TopicRecordBytes(const std::string& name, int rf) {
  static thread_local absl::BitGen gen;
  std::string id_bytes(16, '\0');
  for (char& c : id_bytes) c = static_cast<char>(absl::Uniform<uint8_t>(gen));
  fiv1::MetadataBatch batch;
  fiv1::CreateTopicRecord* ct = batch.add_records()->mutable_create_topic();
  ct->set_name(name);
  ct->set_topic_id(absl::BytesToHexString(id_bytes));
  fiv1::PartitionState* p = ct->add_partitions();
  p->set_partition(0);
  for (int b = 1; b <= rf; ++b) {
    p->add_replicas(100 + b);
    p->add_isr(100 + b);
  }
  p->set_leader(101);
  return batch.SerializeAsString();
}

// --- Fjord ----------------------------------------------------------------

// NOT_LEADER's leader id from a controller's status details, -1 if none.
int32_t LeaderHint(const grpc::Status& s) {
  google::rpc::Status details;
  if (s.error_details().empty() ||
      !details.ParseFromString(s.error_details())) {
    return -1;
  }
  for (const auto& any : details.details()) {
    fv1::ErrorInfo info;
    if (any.UnpackTo(&info) && info.reason() == fv1::ErrorInfo::NOT_LEADER) {
      return info.leader_id();
    }
  }
  return -1;
}

// A client of the controller quorum that follows NOT_LEADER to the active
// controller, as broker/cluster_metadata.cc's ControllerClient does.
class FjordClient {
 public:
  FjordClient(const std::map<int32_t, std::string>& voters, int32_t leader,
              int64_t rpc_timeout_ms)
      : rpc_timeout_ms_(rpc_timeout_ms), leader_(leader) {
    for (const auto& [id, address] : voters) {
      auto channel = OwnChannel(address);
      Stubs stubs;
      stubs.admin = fv1::AdminService::NewStub(channel);
      stubs.controller = fiv1::ControllerService::NewStub(channel);
      stubs_.emplace(id, std::move(stubs));
      ids_.push_back(id);
    }
    if (!stubs_.contains(leader_)) leader_ = ids_.front();
  }

  struct Stubs {
    std::unique_ptr<fv1::AdminService::Stub> admin;
    std::unique_ptr<fiv1::ControllerService::Stub> controller;
  };

  // Runs `call` against the controller believed active; on UNAVAILABLE or a
  // deadline moves to the leader named in the details (or the next voter)
  // and retries until `deadline`.
  absl::Status Call(
      const std::function<grpc::Status(Stubs&, grpc::ClientContext*)>& call,
      absl::string_view what, absl::Time deadline, int64_t* retries) {
    grpc::Status last(grpc::StatusCode::DEADLINE_EXCEEDED, "no attempt made");
    for (int attempt = 0; attempt < 1000 && !g_interrupted.load(); ++attempt) {
      const absl::Time now = absl::Now();
      if (attempt > 0 && now >= deadline) break;
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(
          std::min(deadline, now + absl::Milliseconds(rpc_timeout_ms_))));
      last = call(stubs_.at(leader_), &context);
      if (last.ok() || !Retriable(last.error_code())) break;
      if (retries != nullptr) ++*retries;
      int32_t hint = LeaderHint(last);
      if (hint > 0 && stubs_.contains(hint) && hint != leader_) {
        leader_ = hint;
        continue;  // a known leader: retry at once
      }
      if (hint <= 0) {
        // No leader known (an election) or a dead server: next voter.
        auto it = std::find(ids_.begin(), ids_.end(), leader_);
        leader_ = ids_[(it - ids_.begin() + 1) % ids_.size()];
      }
      InterruptibleSleep(absl::Milliseconds(50));
    }
    return FromGrpc(last, what);
  }

  int32_t leader() const { return leader_; }

 private:
  const int64_t rpc_timeout_ms_;
  std::map<int32_t, Stubs> stubs_;
  std::vector<int32_t> ids_;
  int32_t leader_;
};

class FjordWriter final : public Writer {
 public:
  FjordWriter(const std::map<int32_t, std::string>& voters, int32_t leader,
              int64_t rpc_timeout_ms, int rf)
      : client_(voters, leader, rpc_timeout_ms), rf_(rf) {}

  absl::Status Write(const std::string& name, absl::Time deadline,
                     int64_t* retries) override {
    fv1::CreateTopicsRequest request;
    fv1::NewTopic* topic = request.add_topics();
    topic->set_name(name);
    topic->set_partitions(1);
    topic->set_replication_factor(rf_);
    int64_t my_retries = 0;
    absl::Status s = client_.Call(
        [&](FjordClient::Stubs& stubs, grpc::ClientContext* context) {
          fv1::CreateTopicsResponse response;
          return stubs.admin->CreateTopics(context, request, &response);
        },
        "CreateTopics", deadline, &my_retries);
    *retries += my_retries;
    // After a retry, ALREADY_EXISTS means an earlier attempt committed (its
    // answer was lost): the write happened.
    if (s.code() == absl::StatusCode::kAlreadyExists && my_retries > 0) {
      return absl::OkStatus();
    }
    return s;
  }

 private:
  FjordClient client_;
  const int rf_;
};

class FjordSystem final : public System {
 public:
  FjordSystem(const Config& config, std::string root)
      : config_(config), root_(std::move(root)) {}
  ~FjordSystem() override { Stop(); }

  std::string Name() const override { return "Fjord"; }

  absl::Status Start() override {
    absl::StatusOr<std::vector<int>> ports = FreePorts(3);
    if (!ports.ok()) return ports.status();
    std::vector<std::string> voter_list;
    for (int i = 0; i < 3; ++i) {
      voters_[i + 1] = absl::StrCat("127.0.0.1:", (*ports)[i]);
      voter_list.push_back(absl::StrCat(i + 1, "@", voters_[i + 1]));
    }
    const std::string voters_flag = absl::StrJoin(voter_list, ",");
    for (int id = 1; id <= 3; ++id) {
      const std::string dir = absl::StrCat(root_, "/controller-", id);
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) return absl::InternalError(absl::StrCat(dir, ": ", ec.message()));
      auto child = std::make_unique<Child>(
          absl::StrCat("fjord-controller ", id),
          absl::StrCat(root_, "/controller-", id, ".log"));
      absl::Status s = child->Start({
          config_.controller_bin,
          absl::StrCat("--node-id=", id),
          absl::StrCat("--listen=", voters_[id]),
          absl::StrCat("--data-dir=", dir, "/data"),
          absl::StrCat("--controller-quorum-voters=", voters_flag),
      });
      if (!s.ok()) return s;
      children_.push_back(std::move(child));
    }

    // Wait for a leader: DescribeQuorum on every voter until one names it.
    const absl::Time deadline =
        absl::Now() + absl::Seconds(config_.startup_timeout_s);
    int32_t leader = -1;
    while (leader <= 0 && absl::Now() < deadline && !g_interrupted.load()) {
      for (auto& c : children_) {
        if (!c->Running()) return absl::InternalError(c->Describe());
      }
      for (const auto& [id, address] : voters_) {
        auto stub = fiv1::ControllerService::NewStub(OwnChannel(address));
        grpc::ClientContext context;
        context.set_deadline(DeadlineAfter(1000));
        fiv1::DescribeQuorumResponse response;
        if (stub->DescribeQuorum(&context, fiv1::DescribeQuorumRequest(),
                                 &response)
                .ok() &&
            response.leader_id() > 0) {
          leader = response.leader_id();
          term_ = response.term();
          break;
        }
      }
      if (leader <= 0) InterruptibleSleep(absl::Milliseconds(100));
    }
    if (leader <= 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no controller leader within ", config_.startup_timeout_s, " s"));
    }
    const absl::Time elected = absl::Now();
    leader_ = leader;

    // Fake brokers: registered and unfenced, so that CreateTopics with
    // replication factor R finds R unfenced brokers. A broker is unfenced by
    // a heartbeat that reports it has applied the metadata log up to its own
    // registration (offset = its epoch).
    FjordClient client(voters_, leader_, config_.rpc_timeout_ms);
    for (int b = 0; b < config_.replication_factor; ++b) {
      FakeBroker fake;
      fake.id = 101 + b;
      fiv1::RegisterBrokerRequest request;
      request.set_broker_id(fake.id);
      request.set_incarnation_id(
          absl::StrCat("controller-bench-", getpid(), "-", fake.id));
      fiv1::BrokerEndpoint* e = request.add_endpoints();
      e->set_name("client");
      e->set_host("127.0.0.1");
      e->set_port(9);  // nothing connects to it: no broker code runs
      fiv1::RegisterBrokerResponse response;
      absl::Status s = client.Call(
          [&](FjordClient::Stubs& stubs, grpc::ClientContext* context) {
            return stubs.controller->RegisterBroker(context, request,
                                                    &response);
          },
          "RegisterBroker", deadline, nullptr);
      if (!s.ok()) return s;
      fake.epoch = response.broker_epoch();
      brokers_.push_back(fake);
    }
    for (const FakeBroker& fake : brokers_) {
      fiv1::BrokerHeartbeatResponse response;
      absl::Status s = Heartbeat(client, fake, deadline, &response);
      if (!s.ok()) return s;
      if (response.is_fenced()) {
        return absl::InternalError(
            absl::StrCat("fake broker ", fake.id, " is still fenced"));
      }
      heartbeat_interval_ =
          absl::Milliseconds(std::max(50, response.heartbeat_interval_ms()));
    }
    ready_after_election_ = absl::Now() - elected;
    leader_ = client.leader();
    for (const FakeBroker& fake : brokers_) {
      heartbeats_.emplace_back([this, fake] { HeartbeatLoop(fake); });
    }
    return absl::OkStatus();
  }

  std::unique_ptr<Writer> NewWriter() override {
    return std::make_unique<FjordWriter>(
        voters_, leader_, config_.rpc_timeout_ms,
        static_cast<int>(config_.replication_factor));
  }

  std::vector<pid_t> ServerPids() const override {
    std::vector<pid_t> pids;
    for (const auto& c : children_) {
      if (c->pid() > 0) pids.push_back(c->pid());
    }
    return pids;
  }

  void Stop() override {
    stop_heartbeats_.store(true);
    for (std::thread& t : heartbeats_) t.join();
    heartbeats_.clear();
    for (auto& c : children_) c->Stop();
    children_.clear();
  }

  std::string Notes() const override {
    return absl::StrFormat(
        "Fjord: fjord-controller %s, 3 voters on %s; leader %d in term %d; "
        "%d fake brokers registered and unfenced %.0f ms after the election, "
        "heartbeating every %d ms (%d heartbeats, %d failed, slowest %.0f ms)",
        config_.controller_bin,
        absl::StrJoin(voters_, ",",
                      [](std::string* out, const auto& v) {
                        absl::StrAppend(out, v.first, "@", v.second);
                      }),
        leader_, term_, brokers_.size(),
        absl::ToDoubleMilliseconds(ready_after_election_),
        absl::ToInt64Milliseconds(heartbeat_interval_), heartbeats_sent_.load(),
        heartbeats_failed_.load(), max_heartbeat_us_.load() / 1000.0);
  }

 private:
  struct FakeBroker {
    int32_t id = 0;
    int64_t epoch = 0;
  };

  absl::Status Heartbeat(FjordClient& client, const FakeBroker& fake,
                         absl::Time deadline,
                         fiv1::BrokerHeartbeatResponse* response) {
    fiv1::BrokerHeartbeatRequest request;
    request.set_broker_id(fake.id);
    request.set_broker_epoch(fake.epoch);
    request.set_metadata_offset(fake.epoch);
    return client.Call(
        [&](FjordClient::Stubs& stubs, grpc::ClientContext* context) {
          return stubs.controller->BrokerHeartbeat(context, request, response);
        },
        "BrokerHeartbeat", deadline, nullptr);
  }

  // Keeps one fake broker's session alive as a real broker's heartbeat
  // thread does (broker/cluster_metadata.cc): a heartbeat with an RPC
  // deadline of --rpc-timeout-ms, then the interval the controller asked
  // for, until Stop().
  void HeartbeatLoop(FakeBroker fake) {
    FjordClient client(voters_, leader_, config_.rpc_timeout_ms);
    while (!stop_heartbeats_.load() && !g_interrupted.load()) {
      fiv1::BrokerHeartbeatResponse response;
      const absl::Time start = absl::Now();
      absl::Status s = Heartbeat(
          client, fake, start + absl::Milliseconds(config_.rpc_timeout_ms),
          &response);
      const int64_t us = absl::ToInt64Microseconds(absl::Now() - start);
      int64_t seen = max_heartbeat_us_.load();
      while (us > seen && !max_heartbeat_us_.compare_exchange_weak(seen, us)) {
      }
      ++heartbeats_sent_;
      if (!s.ok() || response.is_fenced()) {
        ++heartbeats_failed_;
        LOG(WARNING) << "fake broker " << fake.id
                     << " heartbeat: " << (s.ok() ? "fenced" : s.ToString());
      }
      const absl::Time next = absl::Now() + heartbeat_interval_;
      while (!stop_heartbeats_.load() && !g_interrupted.load() &&
             absl::Now() < next) {
        absl::SleepFor(absl::Milliseconds(10));
      }
    }
  }

  const Config& config_;
  const std::string root_;
  std::map<int32_t, std::string> voters_;
  std::vector<std::unique_ptr<Child>> children_;
  int32_t leader_ = -1;
  int64_t term_ = 0;
  std::vector<FakeBroker> brokers_;
  absl::Duration heartbeat_interval_ = absl::Milliseconds(500);
  absl::Duration ready_after_election_;
  std::vector<std::thread> heartbeats_;  // one per fake broker
  std::atomic<bool> stop_heartbeats_{false};
  std::atomic<int64_t> heartbeats_sent_{0};
  std::atomic<int64_t> heartbeats_failed_{0};
  std::atomic<int64_t> max_heartbeat_us_{0};
};

// --- etcd -----------------------------------------------------------------

class EtcdWriter final : public Writer {
 public:
  EtcdWriter(const std::string& address, int64_t rpc_timeout_ms, int rf)
      : stub_(etcdserverpb::KV::NewStub(OwnChannel(address))),
        rpc_timeout_ms_(rpc_timeout_ms),
        rf_(rf) {}

  absl::Status Write(const std::string& name, absl::Time deadline,
                     int64_t* retries) override {
    etcdserverpb::PutRequest request;
    request.set_key(absl::StrCat("/fjord-bench/topics/", name));
    request.set_value(TopicRecordBytes(name, rf_));
    grpc::Status last;
    for (int attempt = 0; attempt < 1000 && !g_interrupted.load(); ++attempt) {
      const absl::Time now = absl::Now();
      if (attempt > 0 && now >= deadline) break;
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(
          std::min(deadline, now + absl::Milliseconds(rpc_timeout_ms_))));
      etcdserverpb::PutResponse response;
      last = stub_->Put(&context, request, &response);
      if (last.ok() || !Retriable(last.error_code())) break;
      ++*retries;
      InterruptibleSleep(absl::Milliseconds(50));
    }
    return FromGrpc(last, "etcd Put");
  }

 private:
  std::unique_ptr<etcdserverpb::KV::Stub> stub_;
  const int64_t rpc_timeout_ms_;
  const int rf_;
};

class EtcdSystem final : public System {
 public:
  EtcdSystem(const Config& config, std::string root)
      : config_(config), root_(std::move(root)) {}
  ~EtcdSystem() override { Stop(); }

  std::string Name() const override { return "etcd"; }

  absl::Status Start() override {
    absl::StatusOr<std::vector<int>> ports = FreePorts(6);
    if (!ports.ok()) return ports.status();
    std::vector<std::string> peers;
    for (int i = 0; i < 3; ++i) {
      peer_urls_.push_back(absl::StrCat("http://127.0.0.1:", (*ports)[2 * i]));
      client_addresses_.push_back(
          absl::StrCat("127.0.0.1:", (*ports)[2 * i + 1]));
      peers.push_back(absl::StrCat("e", i + 1, "=", peer_urls_[i]));
    }
    const std::string initial_cluster = absl::StrJoin(peers, ",");
    const std::string token = absl::StrCat("fjord-bench-", getpid());
    for (int i = 0; i < 3; ++i) {
      auto child =
          std::make_unique<Child>(absl::StrCat("etcd e", i + 1),
                                  absl::StrCat(root_, "/etcd-", i + 1, ".log"));
      const std::string client_url = "http://" + client_addresses_[i];
      // Everything else at etcd's defaults: heartbeat 100 ms, election
      // 1000 ms, WAL fsync on every Raft Ready (not configurable).
      absl::Status s = child->Start({
          config_.etcd_bin,
          absl::StrCat("--name=e", i + 1),
          absl::StrCat("--data-dir=", root_, "/etcd-", i + 1),
          "--listen-peer-urls=" + peer_urls_[i],
          "--initial-advertise-peer-urls=" + peer_urls_[i],
          "--listen-client-urls=" + client_url,
          "--advertise-client-urls=" + client_url,
          "--initial-cluster=" + initial_cluster,
          "--initial-cluster-state=new",
          "--initial-cluster-token=" + token,
          "--logger=zap",
          "--log-outputs=stderr",
      });
      if (!s.ok()) return s;
      children_.push_back(std::move(child));
    }

    // Wait until every member answers Status and they agree on a leader;
    // the leader's member id maps to its client address through the header.
    const absl::Time deadline =
        absl::Now() + absl::Seconds(config_.startup_timeout_s);
    while (absl::Now() < deadline && !g_interrupted.load()) {
      for (auto& c : children_) {
        if (!c->Running()) return absl::InternalError(c->Describe());
      }
      std::map<uint64_t, int> member_index;
      std::set<uint64_t> leaders;
      for (int i = 0; i < 3; ++i) {
        auto stub = etcdserverpb::Maintenance::NewStub(
            OwnChannel(client_addresses_[i]));
        grpc::ClientContext context;
        context.set_deadline(DeadlineAfter(1000));
        etcdserverpb::StatusResponse response;
        if (!stub->Status(&context, etcdserverpb::StatusRequest(), &response)
                 .ok()) {
          break;
        }
        member_index[response.header().member_id()] = i;
        leaders.insert(response.leader());
        version_ = response.version();
        term_ = response.raftterm();
      }
      if (member_index.size() == 3 && leaders.size() == 1 &&
          member_index.contains(*leaders.begin())) {
        leader_index_ = member_index[*leaders.begin()];
        return absl::OkStatus();
      }
      InterruptibleSleep(absl::Milliseconds(100));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("etcd members did not agree on a leader within ",
                     config_.startup_timeout_s, " s; first log:\n",
                     children_.empty() ? "" : children_[0]->LogTail()));
  }

  std::unique_ptr<Writer> NewWriter() override {
    return std::make_unique<EtcdWriter>(
        client_addresses_[leader_index_], config_.rpc_timeout_ms,
        static_cast<int>(config_.replication_factor));
  }

  std::vector<pid_t> ServerPids() const override {
    std::vector<pid_t> pids;
    for (const auto& c : children_) {
      if (c->pid() > 0) pids.push_back(c->pid());
    }
    return pids;
  }

  void Stop() override {
    for (auto& c : children_) c->Stop();
    children_.clear();
  }

  std::string Notes() const override {
    return absl::StrFormat(
        "etcd: %s version %s, 3 members, clients on %s; writes go to the "
        "leader e%d (term %d)",
        config_.etcd_bin, version_, absl::StrJoin(client_addresses_, ","),
        leader_index_ + 1, term_);
  }

 private:
  const Config& config_;
  const std::string root_;
  std::vector<std::string> peer_urls_;
  std::vector<std::string> client_addresses_;
  std::vector<std::unique_ptr<Child>> children_;
  int leader_index_ = 0;
  std::string version_;
  uint64_t term_ = 0;
};

// ---------------------------------------------------------------------------
// Load.

// What one phase measured.
struct PhaseResult {
  bool ran = false;
  std::string error;  // the first failed write, if any
  int64_t clients = 0;
  int64_t ok = 0;
  int64_t failed = 0;
  int64_t retries = 0;
  bool cut_short = false;  // --max-phase-s or Ctrl-C ended it early
  double seconds = 0;
  CpuSample cpu;                      // used during the phase
  std::vector<int64_t> latencies_ns;  // successful writes, sorted

  double OpsPerSecond() const { return seconds > 0 ? ok / seconds : 0; }
  double QuantileMs(double q) const {
    if (latencies_ns.empty()) return 0;
    size_t i = std::min(latencies_ns.size() - 1,
                        static_cast<size_t>(q * latencies_ns.size()));
    return latencies_ns[i] / 1e6;
  }
  double ServerCores() const { return seconds > 0 ? cpu.servers / seconds : 0; }
  double ClientCores() const { return seconds > 0 ? cpu.self / seconds : 0; }
  double OtherCores() const {
    return seconds > 0
               ? std::max(0.0, (cpu.machine - cpu.servers - cpu.self) / seconds)
               : 0;
  }
  double ServerCpuPerOpUs() const {
    return ok > 0 ? cpu.servers / ok * 1e6 : 0;
  }
};

// Runs `ops` writes named "<prefix>-NNNNNN" from `clients` threads, each with
// its own Writer, closed loop.
PhaseResult RunPhase(const Config& config, System& system,
                     const std::string& prefix, int64_t ops, int64_t clients) {
  PhaseResult result;
  result.ran = true;
  result.clients = clients;
  std::vector<std::unique_ptr<Writer>> writers;
  for (int64_t i = 0; i < clients; ++i) writers.push_back(system.NewWriter());
  std::atomic<int64_t> next{0};
  const Clock::time_point stop_at =
      Clock::now() + std::chrono::seconds(config.max_phase_s);
  absl::Mutex mu;
  std::vector<int64_t> latencies;
  const std::vector<pid_t> pids = system.ServerPids();

  const CpuSample cpu_start = SampleCpu(pids);
  const Clock::time_point start = Clock::now();
  auto client = [&](int64_t index) {
    Writer& writer = *writers[index];
    std::vector<int64_t> mine;
    int64_t ok = 0, failed = 0, retries = 0;
    std::string first_error;
    bool cut = false;
    while (true) {
      if (g_interrupted.load() || Clock::now() >= stop_at) {
        cut = true;
        break;
      }
      int64_t n = next.fetch_add(1);
      if (n >= ops) break;
      const std::string name = absl::StrFormat("%s-%06d", prefix, n);
      const Clock::time_point t0 = Clock::now();
      absl::Status s = writer.Write(
          name, absl::Now() + absl::Milliseconds(config.op_timeout_ms),
          &retries);
      const Clock::time_point t1 = Clock::now();
      if (s.ok()) {
        ++ok;
        mine.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0)
                .count());
      } else {
        ++failed;
        if (first_error.empty()) first_error = s.ToString();
      }
    }
    absl::MutexLock lock(&mu);
    latencies.insert(latencies.end(), mine.begin(), mine.end());
    result.ok += ok;
    result.failed += failed;
    result.retries += retries;
    result.cut_short = result.cut_short || cut;
    if (result.error.empty()) result.error = first_error;
  };
  if (clients == 1) {
    client(0);
  } else {
    std::vector<std::thread> threads;
    for (int64_t i = 0; i < clients; ++i) threads.emplace_back(client, i);
    for (std::thread& t : threads) t.join();
  }
  const Clock::time_point end = Clock::now();
  const CpuSample cpu_end = SampleCpu(pids);
  result.seconds = Seconds(end - start);
  result.cpu.servers = cpu_end.servers - cpu_start.servers;
  result.cpu.self = cpu_end.self - cpu_start.self;
  result.cpu.machine = cpu_end.machine - cpu_start.machine;
  std::sort(latencies.begin(), latencies.end());
  result.latencies_ns = std::move(latencies);
  return result;
}

struct SystemResult {
  std::string name;
  std::string error;  // non-empty when the system could not be measured
  std::string notes;
  PhaseResult sequential;
  PhaseResult concurrent;
};

SystemResult Measure(const Config& config, System& system) {
  SystemResult r;
  r.name = system.Name();
  std::cerr << r.name << ": starting 3 servers\n";
  absl::Status started = system.Start();
  if (!started.ok()) {
    r.error = started.ToString();
    system.Stop();
    return r;
  }
  if (config.warmup_ops > 0) {
    std::cerr << r.name << ": warm-up, " << config.warmup_ops << " writes\n";
    PhaseResult warm =
        RunPhase(config, system, "bench-w", config.warmup_ops, 1);
    if (warm.failed > 0) {
      r.error = absl::StrCat("warm-up write failed: ", warm.error);
    }
  }
  if (r.error.empty() && !g_interrupted.load()) {
    std::cerr << r.name << ": sequential, " << config.ops << " writes\n";
    r.sequential = RunPhase(config, system, "bench-s", config.ops, 1);
  }
  if (r.error.empty() && !g_interrupted.load()) {
    std::cerr << r.name << ": concurrent, " << config.ops << " writes from "
              << config.clients << " clients\n";
    r.concurrent =
        RunPhase(config, system, "bench-c", config.ops, config.clients);
  }
  r.notes = system.Notes();
  std::cerr << r.name << ": stopping\n";
  system.Stop();
  return r;
}

// ---------------------------------------------------------------------------
// Report.

std::string Ratio(double a, double b) {
  if (a <= 0 || b <= 0) return "-";
  return absl::StrFormat("%.2f", a / b);
}

void PrintTable(const Config& config, const SystemResult& fjord,
                const SystemResult& etcd) {
  struct Row {
    std::string label;
    std::function<double(const SystemResult&)> value;
    int precision;
  };
  const std::string seq = "sequential (1 client)";
  const std::string conc =
      absl::StrCat("concurrent (", config.clients, " clients)");
  std::vector<Row> rows = {
      {seq + ": p50 latency (ms)",
       [](const SystemResult& r) { return r.sequential.QuantileMs(0.5); }, 3},
      {seq + ": p99 latency (ms)",
       [](const SystemResult& r) { return r.sequential.QuantileMs(0.99); }, 3},
      {seq + ": p99.9 latency (ms)",
       [](const SystemResult& r) { return r.sequential.QuantileMs(0.999); }, 3},
      {seq + ": writes/s",
       [](const SystemResult& r) { return r.sequential.OpsPerSecond(); }, 0},
      {conc + ": p50 latency (ms)",
       [](const SystemResult& r) { return r.concurrent.QuantileMs(0.5); }, 3},
      {conc + ": p99 latency (ms)",
       [](const SystemResult& r) { return r.concurrent.QuantileMs(0.99); }, 3},
      {conc + ": p99.9 latency (ms)",
       [](const SystemResult& r) { return r.concurrent.QuantileMs(0.999); }, 3},
      {conc + ": writes/s",
       [](const SystemResult& r) { return r.concurrent.OpsPerSecond(); }, 0},
      {"sequential: server CPU per write (us, 3 servers)",
       [](const SystemResult& r) { return r.sequential.ServerCpuPerOpUs(); },
       0},
      {"concurrent: server CPU per write (us, 3 servers)",
       [](const SystemResult& r) { return r.concurrent.ServerCpuPerOpUs(); },
       0},
      {"sequential: servers / client / other CPU (cores busy)", nullptr, 0},
      {"concurrent: servers / client / other CPU (cores busy)", nullptr, 0},
      {"failed writes / retries (both phases)", nullptr, 0},
  };
  std::cout
      << "\n| figure | Fjord | etcd | Fjord / etcd |\n|---|---:|---:|---:|\n";
  for (const Row& row : rows) {
    if (row.value) {
      double f = row.value(fjord), e = row.value(etcd);
      std::cout << "| " << row.label << " | "
                << absl::StrFormat("%.*f", row.precision, f) << " | "
                << absl::StrFormat("%.*f", row.precision, e) << " | "
                << Ratio(f, e) << " |\n";
      continue;
    }
    auto cores = [](const PhaseResult& p) {
      return absl::StrFormat("%.2f / %.2f / %.2f", p.ServerCores(),
                             p.ClientCores(), p.OtherCores());
    };
    auto errors = [](const SystemResult& r) {
      return absl::StrCat(r.sequential.failed + r.concurrent.failed, " / ",
                          r.sequential.retries + r.concurrent.retries);
    };
    std::string f, e;
    if (absl::StrContains(row.label, "failed")) {
      f = errors(fjord);
      e = errors(etcd);
    } else if (absl::StartsWith(row.label, "sequential")) {
      f = cores(fjord.sequential);
      e = cores(etcd.sequential);
    } else {
      f = cores(fjord.concurrent);
      e = cores(etcd.concurrent);
    }
    std::cout << "| " << row.label << " | " << f << " | " << e << " | - |\n";
  }
}

absl::StatusOr<std::string> ResolveBinary(const std::string& path,
                                          absl::string_view flag) {
  std::string resolved = path;
  // Under `bazel run` the working directory is the runfiles tree; relative
  // paths mean the workspace.
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (!resolved.empty() && resolved[0] != '/' && workspace != nullptr &&
      *workspace != '\0') {
    resolved = absl::StrCat(workspace, "/", resolved);
  }
  std::error_code ec;
  fs::path absolute = fs::absolute(resolved, ec);
  if (ec || access(absolute.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("--", flag, ": ", resolved, " is not an executable file"));
  }
  return absolute.string();
}

int Main(int argc, char** argv) {
  Config config;
  FlagSet flags(
      "controller_bench",
      "Topic-creation commit latency and throughput of a 3-voter "
      "fjord-controller quorum beside etcd 3.4 Puts on a 3-member cluster "
      "(bench/controller_bench.cc, docs/BENCHMARKS.md). Only uses "
      "127.0.0.1.");
  flags.String("controller-bin", &config.controller_bin,
               "the fjord-controller binary (relative paths: from the "
               "working directory, or the workspace under bazel run)");
  flags.String("etcd-bin", &config.etcd_bin,
               "the etcd 3.4 server binary (Debian's etcd-server)");
  flags.String("order", &config.order,
               "which systems to run, in this order: fjord,etcd or etcd,fjord "
               "(or just one)");
  flags.Int("ops", &config.ops,
            "writes in the sequential phase, and again in the concurrent one");
  flags.Int("warmup-ops", &config.warmup_ops,
            "unmeasured writes before the sequential phase");
  flags.Int("clients", &config.clients,
            "client threads of the concurrent phase (one connection and one "
            "write in flight each)");
  flags.Int("replication-factor", &config.replication_factor,
            "replicas of each created topic (Fjord registers this many fake "
            "brokers); also sizes the etcd value");
  flags.Int("rpc-timeout-ms", &config.rpc_timeout_ms, "deadline of each RPC");
  flags.Int("op-timeout-ms", &config.op_timeout_ms,
            "retry budget of one write (UNAVAILABLE and deadlines are "
            "retried)");
  flags.Int("max-phase-s", &config.max_phase_s,
            "wall-clock bound of each phase; a phase cut short is flagged");
  flags.Int("startup-timeout-s", &config.startup_timeout_s,
            "how long to wait for each cluster to elect a leader");
  flags.String("dir", &config.dir,
               "where to create the temporary data directories (default "
               "$TMPDIR or /tmp); must be on the disk you want to measure");
  flags.Bool("keep-logs", &config.keep_logs,
             "keep the temporary directory (server logs and data)");
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::Status parsed = flags.Parse(args);
  if (parsed.code() == absl::StatusCode::kCancelled) {
    std::cout << parsed.message();
    return 0;
  }
  auto bad = [](absl::string_view why) {
    std::cerr << "controller_bench: " << why << "\n";
    return 2;
  };
  if (!parsed.ok()) return bad(parsed.message());
  if (config.ops < 1 || config.ops > 1000000)
    return bad("--ops must be 1..1000000");
  if (config.warmup_ops < 0 || config.warmup_ops > 100000) {
    return bad("--warmup-ops must be 0..100000");
  }
  if (config.clients < 1 || config.clients > 256) {
    return bad("--clients must be 1..256");
  }
  if (config.replication_factor < 1 || config.replication_factor > 9) {
    return bad("--replication-factor must be 1..9");
  }
  if (config.rpc_timeout_ms < 100 ||
      config.op_timeout_ms < config.rpc_timeout_ms) {
    return bad("--rpc-timeout-ms must be >= 100 and <= --op-timeout-ms");
  }
  if (config.max_phase_s < 1 || config.startup_timeout_s < 1) {
    return bad("--max-phase-s and --startup-timeout-s must be positive");
  }
  std::vector<std::string> order =
      absl::StrSplit(config.order, ',', absl::SkipEmpty());
  if (order.empty() || order.size() > 2)
    return bad("--order names 1 or 2 systems");
  for (const std::string& name : order) {
    if (name != "fjord" && name != "etcd") {
      return bad(absl::StrCat("--order: unknown system \"", name, "\""));
    }
  }
  if (order.size() == 2 && order[0] == order[1])
    return bad("--order repeats a system");
  for (const std::string& name : order) {
    std::string* bin =
        name == "fjord" ? &config.controller_bin : &config.etcd_bin;
    absl::StatusOr<std::string> resolved =
        ResolveBinary(*bin, name == "fjord" ? "controller-bin" : "etcd-bin");
    if (!resolved.ok()) return bad(resolved.status().message());
    *bin = *resolved;
  }

  absl::StatusOr<std::string> scratch = MakeScratchDir(config.dir, "fjord-controller-bench");
  if (!scratch.ok()) return bad(scratch.status().message());
  const std::string root = *scratch;

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  const std::string sample_name = "bench-s-000000";
  const std::string sample_value = TopicRecordBytes(
      sample_name, static_cast<int>(config.replication_factor));
  const std::string sample_key = "/fjord-bench/topics/" + sample_name;
  std::cout << "## controller_bench\n\n";
  std::cout << absl::StrFormat(
      "- date: %s\n- machine: %d cores (std::thread::hardware_concurrency), "
      "%s\n- data dirs: under %s (%s)\n- load average at start: %s\n"
      "- write: Fjord CreateTopics of 1 topic x 1 partition x RF %d (Raft "
      "payload %d B); etcd Put of a %d B key + %d B value (the same payload "
      "bytes)\n- %d warm-up writes, then %d sequential writes from 1 client, "
      "then %d writes from %d concurrent clients; order %s\n",
      absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", absl::Now(),
                       absl::UTCTimeZone()),
      std::thread::hardware_concurrency(), bench::CpuModel(), root,
      FilesystemType(root), bench::LoadAverage(), config.replication_factor,
      sample_value.size(), sample_key.size(), sample_value.size(),
      config.warmup_ops, config.ops, config.ops, config.clients, config.order);
  std::cout.flush();

  std::map<std::string, SystemResult> results;
  for (const std::string& name : order) {
    if (g_interrupted.load()) break;
    const std::string dir = absl::StrCat(root, "/", name);
    std::error_code ec;
    fs::create_directories(dir, ec);
    std::unique_ptr<System> system;
    if (name == "fjord") {
      system = std::make_unique<FjordSystem>(config, dir);
    } else {
      system = std::make_unique<EtcdSystem>(config, dir);
    }
    results[name] = Measure(config, *system);
  }

  int exit_code = 0;
  for (const auto& [name, r] : results) {
    if (!r.notes.empty()) std::cout << "- " << r.notes << "\n";
    if (!r.error.empty()) {
      std::cout << "- ERROR: " << r.name << ": " << r.error << "\n";
      exit_code = 1;
    }
    for (const PhaseResult* p : {&r.sequential, &r.concurrent}) {
      if (p->failed > 0) {
        std::cout << "- " << r.name << ": " << p->failed
                  << " writes failed; first: " << p->error << "\n";
        exit_code = 1;
      }
      if (p->ran && p->cut_short) {
        std::cout << "- " << r.name << ": a phase was cut short after " << p->ok
                  << " writes (--max-phase-s or Ctrl-C)\n";
        exit_code = 1;
      }
    }
  }
  if (!g_interrupted.load()) {
    SystemResult empty_fjord, empty_etcd;
    PrintTable(config,
               results.contains("fjord") ? results["fjord"] : empty_fjord,
               results.contains("etcd") ? results["etcd"] : empty_etcd);
    std::cout << "\nRatios: Fjord / etcd, so above 1 means Fjord's latency is "
                 "higher or its throughput higher; below 1 the opposite.\n";
  }
  std::cout << "\nload average at end: " << bench::LoadAverage() << "\n";
  if (config.keep_logs) {
    std::cout << "logs and data kept in " << root << "\n";
  } else {
    std::error_code ec;
    fs::remove_all(root, ec);
    if (ec) {
      std::cerr << "controller_bench: could not delete " << root << ": "
                << ec.message() << "\n";
    }
  }
  if (g_interrupted.load()) {
    std::cerr << "controller_bench: interrupted\n";
    return 130;
  }
  return exit_code;
}

}  // namespace
}  // namespace fjord::bench

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  return fjord::bench::Main(argc, argv);
}
