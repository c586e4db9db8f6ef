// replication_bench: what replication costs. In one run it starts, on
// 127.0.0.1 through //integration_tests:cluster, first a single-node broker
// (no controllers, topic with replication factor 1) and then a cluster of 3
// controllers and 3 brokers (topic with replication factor 3, leaders spread
// over the brokers), and measures on each, with the same load:
//
//   1. produce acks=1: C producer threads, each with its own gRPC channel per
//      broker (own TCP connection), send closed-loop ProduceService.Produce
//      requests of N records of --record-bytes random bytes through the raw
//      generated stubs to each partition's leader (from MetadataService),
//      producer i sending its k-th request to partition (i + k) % P.
//      Throughput over the measured window; latency per request.
//   2. produce acks=all: the same.
//   3. end to end: one Fetch stream per partition already open on its leader
//      at the log end; C producer threads send acks=all requests at a fixed
//      total rate (--e2e-rate requests/s, open loop), the first record of each
//      carrying the steady-clock send time in a header. Latency is from that
//      send time to the Read() that delivers the record on the stream.
//
// Before each phase every partition must have its full ISR and a one-record
// acks=all produce to each partition must succeed (so followers have caught up
// with the previous phase). Throughput counts record values only; MiB = 2^20
// bytes. CPU is read from /proc for the benchmark and for every server process.
//
// Bounded: each phase stops after --duration-s (+ --warmup-s) or
// --max-mib; every RPC has a deadline; SIGINT/SIGTERM stop the run, and the
// Cluster objects end their own processes; the temporary directory is deleted.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/machine_stats.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "fjord/v1/admin.grpc.pb.h"
#include "fjord/v1/fetch.grpc.pb.h"
#include "fjord/v1/metadata.grpc.pb.h"
#include "fjord/v1/produce.grpc.pb.h"
#include "fjord/v1/record.pb.h"
#include "grpcpp/grpcpp.h"
#include "integration_tests/cluster.h"

namespace fjord::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kTopic[] = "bench";
// Header carrying the producer's steady-clock send time, in ns, as decimal.
constexpr char kSendHeader[] = "bench-send-ns";

std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }

struct Config {
  int64_t duration_s = 10;
  int64_t warmup_s = 1;
  int64_t e2e_duration_s = 10;
  int64_t e2e_rate = 50;  // requests per second, all producers together
  int64_t batch_records = 16;
  int64_t record_bytes = 1024;
  int64_t producers = 6;
  int64_t partitions = 6;
  int64_t max_mib = 4096;
  std::string broker_binary = "bazel-bin/broker/fjord-broker";
  std::string controller_binary = "bazel-bin/controller/fjord-controller";
  std::string cli_binary = "bazel-bin/client/fjord";
  std::string dir;
  std::string only;  // "", "single" or "replicated"
  std::string fsync = "always";
};

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             Clock::now().time_since_epoch())
      .count();
}

std::chrono::system_clock::time_point DeadlineIn(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

// Latency samples in ns, sorted before QuantileMs.
double QuantileMs(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i =
      std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()));
  return sorted[i] / 1e6;
}

// ---------------------------------------------------------------------------
// CPU accounting: this process, and every server process of a cluster.

struct CpuSample {
  double bench = 0;
  double brokers = 0;
  double controllers = 0;
  double machine = 0;
};

CpuSample SampleCpu(const testing::Cluster& cluster) {
  CpuSample s;
  s.bench = bench::ProcessCpuSeconds(getpid());
  for (const testing::NodeInfo& node : cluster.nodes()) {
    double cpu = node.pid > 0 ? bench::ProcessCpuSeconds(node.pid) : 0;
    (node.role == testing::NodeRole::kBroker ? s.brokers : s.controllers) +=
        cpu;
  }
  s.machine = bench::MachineCpuSeconds();
  return s;
}

// ---------------------------------------------------------------------------
// Talking to the cluster.

// One gRPC channel per (broker address, index): distinct arguments give each
// producer its own TCP connection, as separate producer processes would have.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& address,
                                          int index) {
  grpc::ChannelArguments args;
  args.SetInt("fjord.bench.channel_index", index);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

// Partition -> leader's "host:port", from MetadataService on any broker.
struct Placement {
  std::vector<std::string> leader_address;
  std::vector<int32_t> leader_id;
  std::vector<int32_t> isr_size;
  int32_t replication_factor = 0;
};

absl::StatusOr<Placement> Describe(const testing::Cluster& cluster) {
  grpc::Status last;
  for (const testing::NodeInfo& node : cluster.nodes()) {
    if (node.role != testing::NodeRole::kBroker) continue;
    auto stub = fjord::v1::MetadataService::NewStub(grpc::CreateChannel(
        node.address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(absl::Seconds(3)));
    fjord::v1::MetadataRequest request;
    request.add_topics(kTopic);
    fjord::v1::MetadataResponse response;
    last = stub->Metadata(&context, request, &response);
    if (!last.ok() || response.topics_size() != 1) continue;
    std::map<int32_t, std::string> addresses;
    for (const fjord::v1::BrokerInfo& b : response.brokers()) {
      addresses[b.id()] = absl::StrCat(b.host(), ":", b.port());
    }
    const fjord::v1::TopicInfo& topic = response.topics(0);
    Placement placement;
    placement.replication_factor = topic.replication_factor();
    for (const fjord::v1::PartitionInfo& p : topic.partitions()) {
      placement.leader_id.push_back(p.leader_id());
      placement.isr_size.push_back(p.isr_size());
      auto it = addresses.find(p.leader_id());
      // A single-node broker may list no brokers: it leads everything.
      placement.leader_address.push_back(
          it != addresses.end() ? it->second : node.address());
    }
    return placement;
  }
  return absl::UnavailableError(
      absl::StrCat("no broker answered Metadata: ", last.error_message()));
}

absl::Status CreateTopic(const testing::Cluster& cluster, int64_t partitions,
                         int32_t replication) {
  const testing::NodeInfo* broker = cluster.Find("broker-1");
  if (broker == nullptr) return absl::NotFoundError("no broker-1");
  auto stub = fjord::v1::AdminService::NewStub(grpc::CreateChannel(
      broker->address(), grpc::InsecureChannelCredentials()));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  grpc::Status status;
  while (absl::Now() < deadline && !g_interrupted.load()) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(absl::Seconds(10)));
    fjord::v1::CreateTopicsRequest request;
    fjord::v1::NewTopic* topic = request.add_topics();
    topic->set_name(kTopic);
    topic->set_partitions(static_cast<int32_t>(partitions));
    topic->set_replication_factor(replication);
    fjord::v1::CreateTopicsResponse response;
    status = stub->CreateTopics(&context, request, &response);
    if (status.ok() ||
        status.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
      return absl::OkStatus();
    }
    // The controllers may still be electing, or brokers registering.
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::UnavailableError(
      absl::StrCat("CreateTopics: ", status.error_message()));
}

// Waits until every partition has a leader and its full ISR, then produces
// one record with acks=all to each partition, so that followers have caught up
// with everything before. Returns the placement.
absl::StatusOr<Placement> Settle(const testing::Cluster& cluster) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  absl::Status last = absl::UnavailableError("not settled");
  while (absl::Now() < deadline && !g_interrupted.load()) {
    absl::StatusOr<Placement> placement = Describe(cluster);
    bool ready = placement.ok() && !placement->leader_id.empty();
    if (ready) {
      for (size_t p = 0; p < placement->leader_id.size(); ++p) {
        ready &= placement->leader_id[p] > 0 &&
                 placement->isr_size[p] >= placement->replication_factor;
      }
    }
    if (!ready) {
      last = placement.ok() ? absl::UnavailableError("ISR not full")
                            : placement.status();
      absl::SleepFor(absl::Milliseconds(100));
      continue;
    }
    bool all_ok = true;
    for (size_t p = 0; p < placement->leader_id.size() && all_ok; ++p) {
      auto stub = fjord::v1::ProduceService::NewStub(grpc::CreateChannel(
          placement->leader_address[p], grpc::InsecureChannelCredentials()));
      grpc::ClientContext context;
      context.set_deadline(DeadlineIn(absl::Seconds(20)));
      fjord::v1::ProduceRequest request;
      request.set_topic(kTopic);
      request.set_partition(static_cast<int32_t>(p));
      request.set_acks(fjord::v1::ACKS_ALL);
      request.add_records()->set_value("barrier");
      fjord::v1::ProduceResponse response;
      grpc::Status s = stub->Produce(&context, request, &response);
      if (!s.ok()) {
        last = absl::UnavailableError(absl::StrCat(
            "barrier produce to partition ", p, ": ", s.error_message()));
        all_ok = false;
      }
    }
    if (all_ok) return placement;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return last;
}

// ---------------------------------------------------------------------------
// Phases.

struct PhaseResult {
  std::string error;
  int64_t records = 0;
  int64_t requests_failed = 0;
  double seconds = 0;
  std::vector<int64_t> produce_ns;  // per request, sorted
  std::vector<int64_t> e2e_ns;      // per batch, sorted (end-to-end phase)
  int64_t e2e_sent = 0;
  CpuSample cpu;              // over the measured window
  int32_t min_isr_after = 0;  // smallest ISR right after the phase

  double RecordsPerSecond() const {
    return seconds > 0 ? records / seconds : 0;
  }
};

// The records one producer sends: N distinct random values, so nothing
// compresses.
google::protobuf::RepeatedPtrField<fjord::v1::Record> MakeRecords(
    const Config& config, uint64_t seed) {
  std::mt19937_64 rng(seed);
  google::protobuf::RepeatedPtrField<fjord::v1::Record> records;
  for (int64_t i = 0; i < config.batch_records; ++i) {
    std::string value(config.record_bytes, '\0');
    for (size_t j = 0; j < value.size(); j += 8) {
      uint64_t r = rng();
      std::memcpy(&value[j], &r, std::min<size_t>(8, value.size() - j));
    }
    records.Add()->set_value(std::move(value));
  }
  return records;
}

// One producer's stubs: one channel per distinct leader address.
class ProducerStubs {
 public:
  ProducerStubs(const Placement& placement, int index) {
    for (const std::string& address : placement.leader_address) {
      if (stubs_.count(address) == 0) {
        stubs_[address] =
            fjord::v1::ProduceService::NewStub(NewChannel(address, index));
      }
    }
    for (const std::string& address : placement.leader_address) {
      by_partition_.push_back(stubs_[address].get());
    }
  }
  fjord::v1::ProduceService::Stub* For(int64_t partition) {
    return by_partition_[partition];
  }

 private:
  std::map<std::string, std::unique_ptr<fjord::v1::ProduceService::Stub>>
      stubs_;
  std::vector<fjord::v1::ProduceService::Stub*> by_partition_;
};

struct Tally {
  int64_t records = 0;
  int64_t failed = 0;
  Clock::time_point last_done{};
  std::vector<int64_t> latencies_ns;
  std::string error;
};

// Closed-loop produce with `acks`, one request in flight per producer.
PhaseResult ProduceClosedLoop(const Config& config,
                              const testing::Cluster& cluster,
                              const Placement& placement,
                              fjord::v1::Acks acks) {
  std::vector<Tally> tallies(config.producers);
  std::atomic<bool> failed{false};
  std::atomic<int64_t> sent{0};
  const int64_t max_records = config.max_mib * (1 << 20) / config.record_bytes;
  const Clock::time_point window_start =
      Clock::now() + std::chrono::seconds(config.warmup_s);
  const Clock::time_point stop_at =
      window_start + std::chrono::seconds(config.duration_s);
  CpuSample cpu_start;
  std::thread sampler([&] {
    while (Clock::now() < window_start && !g_interrupted.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    cpu_start = SampleCpu(cluster);
  });
  std::vector<std::thread> threads;
  for (int64_t i = 0; i < config.producers; ++i) {
    threads.emplace_back([&, i] {
      Tally& tally = tallies[i];
      ProducerStubs stubs(placement, static_cast<int>(i));
      fjord::v1::ProduceRequest request;
      request.set_topic(kTopic);
      request.set_acks(acks);
      *request.mutable_records() = MakeRecords(config, 1000 + i);
      for (int64_t k = 0;; ++k) {
        const Clock::time_point start = Clock::now();
        if (start >= stop_at || failed.load() || g_interrupted.load() ||
            sent.fetch_add(config.batch_records) >= max_records) {
          break;
        }
        const int64_t partition = (i + k) % config.partitions;
        request.set_partition(static_cast<int32_t>(partition));
        grpc::ClientContext context;
        context.set_deadline(DeadlineIn(absl::Seconds(30)));
        fjord::v1::ProduceResponse response;
        grpc::Status status =
            stubs.For(partition)->Produce(&context, request, &response);
        const Clock::time_point done = Clock::now();
        if (!status.ok()) {
          // No faults are injected, so any failure is worth stopping for.
          ++tally.failed;
          tally.error =
              absl::StrCat("Produce to partition ", partition, ": ",
                           status.error_code(), " ", status.error_message());
          failed.store(true);
          break;
        }
        if (start >= window_start) {
          tally.records += config.batch_records;
          tally.latencies_ns.push_back(
              std::chrono::duration_cast<std::chrono::nanoseconds>(done - start)
                  .count());
          tally.last_done = done;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  sampler.join();
  const CpuSample cpu_end = SampleCpu(cluster);

  PhaseResult result;
  Clock::time_point last = window_start;
  for (Tally& t : tallies) {
    if (!t.error.empty() && result.error.empty()) result.error = t.error;
    result.records += t.records;
    result.requests_failed += t.failed;
    last = std::max(last, t.last_done);
    result.produce_ns.insert(result.produce_ns.end(), t.latencies_ns.begin(),
                             t.latencies_ns.end());
  }
  std::sort(result.produce_ns.begin(), result.produce_ns.end());
  result.seconds = Seconds(last - window_start);
  result.cpu = {cpu_end.bench - cpu_start.bench,
                cpu_end.brokers - cpu_start.brokers,
                cpu_end.controllers - cpu_start.controllers,
                cpu_end.machine - cpu_start.machine};
  return result;
}

// The log end of every partition, from its leader.
absl::StatusOr<std::vector<int64_t>> LogEnds(const Config& config,
                                             const Placement& placement) {
  std::vector<int64_t> ends;
  for (int64_t p = 0; p < config.partitions; ++p) {
    auto stub = fjord::v1::FetchService::NewStub(grpc::CreateChannel(
        placement.leader_address[p], grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(absl::Seconds(5)));
    fjord::v1::ListOffsetsRequest request;
    request.set_topic(kTopic);
    request.set_partition(static_cast<int32_t>(p));
    request.set_spec(fjord::v1::ListOffsetsRequest::LATEST);
    fjord::v1::ListOffsetsResponse response;
    grpc::Status s = stub->ListOffsets(&context, request, &response);
    if (!s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("ListOffsets ", p, ": ", s.error_message()));
    }
    ends.push_back(response.offset());
  }
  return ends;
}

// End to end: Fetch streams open at the log end, then acks=all produce at a
// fixed rate; latency from send to delivery on the stream.
PhaseResult EndToEnd(const Config& config, const testing::Cluster& cluster,
                     const Placement& placement) {
  PhaseResult result;
  absl::StatusOr<std::vector<int64_t>> ends = LogEnds(config, placement);
  if (!ends.ok()) {
    result.error = ends.status().ToString();
    return result;
  }

  absl::Mutex mu;
  std::vector<int64_t> e2e_ns;  // guarded by mu
  std::string consume_error;    // guarded by mu
  std::atomic<int64_t> delivered{0};
  std::atomic<bool> stop_consumers{false};
  std::atomic<int64_t> streams_open{0};
  const absl::Duration stream_life = absl::Seconds(config.e2e_duration_s + 60);

  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::thread> consumers;
  for (int64_t p = 0; p < config.partitions; ++p) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    grpc::ClientContext* context = contexts.back().get();
    context->set_deadline(DeadlineIn(stream_life));
    consumers.emplace_back([&, p, context] {
      auto stub = fjord::v1::FetchService::NewStub(
          NewChannel(placement.leader_address[p], 1000 + p));
      fjord::v1::FetchRequest request;
      request.set_topic(kTopic);
      request.set_partition(static_cast<int32_t>(p));
      request.set_offset((*ends)[p]);
      request.set_max_wait_ms(200);
      std::unique_ptr<grpc::ClientReader<fjord::v1::FetchResponse>> reader =
          stub->Fetch(context, request);
      fjord::v1::FetchResponse response;
      bool first = true;
      while (!stop_consumers.load() && reader->Read(&response)) {
        if (first) {
          streams_open.fetch_add(1);
          first = false;
        }
        const int64_t now = SteadyNs();
        for (const fjord::v1::ConsumedRecord& record : response.records()) {
          for (const fjord::v1::Header& h : record.headers()) {
            int64_t sent_ns = 0;
            if (h.key() == kSendHeader &&
                absl::SimpleAtoi(h.value(), &sent_ns)) {
              absl::MutexLock lock(&mu);
              e2e_ns.push_back(now - sent_ns);
              delivered.fetch_add(1);
            }
          }
        }
      }
      grpc::Status status = reader->Finish();
      if (!stop_consumers.load()) {
        absl::MutexLock lock(&mu);
        if (consume_error.empty()) {
          consume_error = absl::StrCat(
              "Fetch ", p, " ended early: ", status.error_message());
        }
      }
    });
  }
  // Every stream has answered once (an empty long-poll response at the
  // latest) before the first record is sent.
  const absl::Time open_deadline = absl::Now() + absl::Seconds(10);
  while (streams_open.load() < config.partitions &&
         absl::Now() < open_deadline && !g_interrupted.load()) {
    absl::SleepFor(absl::Milliseconds(10));
  }

  std::vector<Tally> tallies(config.producers);
  std::atomic<int64_t> sent{0};
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop_at =
      start + std::chrono::seconds(config.e2e_duration_s);
  const auto period = std::chrono::nanoseconds(
      static_cast<int64_t>(1e9 * config.producers / config.e2e_rate));
  const CpuSample cpu_start = SampleCpu(cluster);
  std::vector<std::thread> producers;
  for (int64_t i = 0; i < config.producers; ++i) {
    producers.emplace_back([&, i] {
      Tally& tally = tallies[i];
      ProducerStubs stubs(placement, static_cast<int>(i));
      fjord::v1::ProduceRequest request;
      request.set_topic(kTopic);
      request.set_acks(fjord::v1::ACKS_ALL);
      *request.mutable_records() = MakeRecords(config, 2000 + i);
      fjord::v1::Header* header = request.mutable_records(0)->add_headers();
      header->set_key(kSendHeader);
      // Producers start spread over one period, not all at once.
      Clock::time_point next = start + period * i / config.producers;
      for (int64_t k = 0; !g_interrupted.load(); ++k) {
        std::this_thread::sleep_until(next);
        next += period;
        if (Clock::now() >= stop_at) break;
        const int64_t partition = (i + k) % config.partitions;
        request.set_partition(static_cast<int32_t>(partition));
        const int64_t send_ns = SteadyNs();
        header->set_value(absl::StrCat(send_ns));
        grpc::ClientContext context;
        context.set_deadline(DeadlineIn(absl::Seconds(30)));
        fjord::v1::ProduceResponse response;
        sent.fetch_add(1);
        grpc::Status status =
            stubs.For(partition)->Produce(&context, request, &response);
        if (!status.ok()) {
          ++tally.failed;
          tally.error = absl::StrCat("Produce to partition ", partition, ": ",
                                     status.error_message());
          continue;
        }
        tally.records += config.batch_records;
        tally.latencies_ns.push_back(SteadyNs() - send_ns);
      }
    });
  }
  for (std::thread& t : producers) t.join();
  const CpuSample cpu_end = SampleCpu(cluster);
  result.seconds = Seconds(Clock::now() - start);
  // Let the last records arrive, then close the streams.
  const absl::Time drain_deadline = absl::Now() + absl::Seconds(10);
  int64_t acked = 0;
  for (const Tally& t : tallies) acked += t.latencies_ns.size();
  while (delivered.load() < acked && absl::Now() < drain_deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  stop_consumers.store(true);
  for (auto& context : contexts) context->TryCancel();
  for (std::thread& t : consumers) t.join();

  for (Tally& t : tallies) {
    if (!t.error.empty() && result.error.empty()) result.error = t.error;
    result.records += t.records;
    result.requests_failed += t.failed;
    result.produce_ns.insert(result.produce_ns.end(), t.latencies_ns.begin(),
                             t.latencies_ns.end());
  }
  std::sort(result.produce_ns.begin(), result.produce_ns.end());
  {
    absl::MutexLock lock(&mu);
    result.e2e_ns = std::move(e2e_ns);
    if (result.error.empty()) result.error = consume_error;
  }
  std::sort(result.e2e_ns.begin(), result.e2e_ns.end());
  result.e2e_sent = sent.load();
  if (result.error.empty() &&
      static_cast<int64_t>(result.e2e_ns.size()) < acked) {
    result.error = absl::StrCat("only ", result.e2e_ns.size(), " of ", acked,
                                " acknowledged batches were delivered");
  }
  result.cpu = {cpu_end.bench - cpu_start.bench,
                cpu_end.brokers - cpu_start.brokers,
                cpu_end.controllers - cpu_start.controllers,
                cpu_end.machine - cpu_start.machine};
  return result;
}

// ---------------------------------------------------------------------------
// One topology: start it, run the three phases, stop it.

struct TopologyResults {
  std::string name;
  std::string error;
  std::string placement;  // "p0->b1 ..." as measured
  double startup_s = 0;
  PhaseResult idle;  // CPU only: 3 s with no load, after the topic settled
  PhaseResult acks1, acks_all, e2e;
};

int32_t MinIsr(const testing::Cluster& cluster) {
  absl::StatusOr<Placement> placement = Describe(cluster);
  if (!placement.ok() || placement->isr_size.empty()) return 0;
  return *std::min_element(placement->isr_size.begin(),
                           placement->isr_size.end());
}

TopologyResults RunTopology(const Config& config, const std::string& root,
                            bool replicated) {
  TopologyResults out;
  out.name = replicated ? "replicated" : "single";
  testing::ClusterOptions options;
  options.base_dir = absl::StrCat(root, "/", out.name);
  options.controllers = replicated ? 3 : 0;
  options.brokers = replicated ? 3 : 1;
  options.broker_binary = config.broker_binary;
  options.controller_binary = config.controller_binary;
  options.cli_binary = config.cli_binary;
  options.create_topics = "";  // created below, through AdminService
  options.fsync = config.fsync;
  options.env = {{"GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "50"}};
  const Clock::time_point t0 = Clock::now();
  absl::StatusOr<std::unique_ptr<testing::Cluster>> cluster =
      testing::Cluster::Up(options);
  if (!cluster.ok()) {
    out.error = absl::StrCat("Cluster::Up: ", cluster.status().ToString());
    return out;
  }
  absl::Status created =
      CreateTopic(**cluster, config.partitions, replicated ? 3 : 1);
  absl::StatusOr<Placement> placement =
      created.ok() ? Settle(**cluster) : absl::StatusOr<Placement>(created);
  out.startup_s = Seconds(Clock::now() - t0);
  if (!placement.ok()) {
    out.error = placement.status().ToString();
    std::cerr << (*cluster)->DescribeForDebugging(10) << "\n";
    (*cluster)->Down().IgnoreError();
    return out;
  }
  for (size_t p = 0; p < placement->leader_id.size(); ++p) {
    absl::StrAppend(&out.placement, p == 0 ? "" : " ", "p", p, "->broker-",
                    placement->leader_id[p]);
  }
  std::cerr << out.name << ": up in " << out.startup_s
            << " s; leaders: " << out.placement << "\n";

  {
    // What the cluster burns with no load: Raft ticks, heartbeats, idle
    // follower fetches.
    const CpuSample before = SampleCpu(**cluster);
    const Clock::time_point idle_start = Clock::now();
    absl::SleepFor(absl::Seconds(3));
    const CpuSample after = SampleCpu(**cluster);
    out.idle.seconds = Seconds(Clock::now() - idle_start);
    out.idle.cpu = {after.bench - before.bench, after.brokers - before.brokers,
                    after.controllers - before.controllers,
                    after.machine - before.machine};
  }

  struct Step {
    const char* label;
    PhaseResult* result;
  };
  for (Step step : {Step{"acks=1", &out.acks1}, Step{"acks=all", &out.acks_all},
                    Step{"end-to-end", &out.e2e}}) {
    if (g_interrupted.load()) break;
    absl::StatusOr<Placement> settled = Settle(**cluster);
    if (!settled.ok()) {
      step.result->error = absl::StrCat("before ", step.label, ": ",
                                        settled.status().ToString());
      break;
    }
    std::cerr << out.name << ": " << step.label << "\n";
    if (step.result == &out.e2e) {
      *step.result = EndToEnd(config, **cluster, *settled);
    } else {
      *step.result =
          ProduceClosedLoop(config, **cluster, *settled,
                            step.result == &out.acks1 ? fjord::v1::ACKS_LEADER
                                                      : fjord::v1::ACKS_ALL);
    }
    step.result->min_isr_after = MinIsr(**cluster);
    if (!step.result->error.empty()) {
      std::cerr << out.name << ": " << step.label << ": " << step.result->error
                << "\n";
    }
  }
  absl::Status down = (*cluster)->Down();
  if (!down.ok()) std::cerr << out.name << ": Down: " << down << "\n";
  return out;
}

// ---------------------------------------------------------------------------
// Report.

std::string Ratio(double replicated, double single) {
  if (single <= 0 || replicated <= 0) return "-";
  return absl::StrFormat("%.2f", replicated / single);
}



void PrintTable(const Config& config, const TopologyResults& single,
                const TopologyResults& repl) {
  const double mib = config.record_bytes / (1024.0 * 1024.0);
  std::cout << "\n| figure | single broker (RF 1) | 3 brokers (RF 3) | "
               "replicated / single |\n|---|---:|---:|---:|\n";
  auto row = [](absl::string_view name, double s, double r, int decimals) {
    std::cout << absl::StrFormat("| %s | %.*f | %.*f | %s |\n", name, decimals,
                                 s, decimals, r, Ratio(r, s));
  };
  auto cores = [](const PhaseResult& p, double CpuSample::*field) {
    return p.seconds > 0 ? p.cpu.*field / p.seconds : 0;
  };
  for (auto [label, s, r] :
       {std::tuple{"acks=1", &single.acks1, &repl.acks1},
        std::tuple{"acks=all", &single.acks_all, &repl.acks_all}}) {
    row(absl::StrCat("produce ", label, " records/s"), s->RecordsPerSecond(),
        r->RecordsPerSecond(), 0);
    row(absl::StrCat("produce ", label, " MiB/s"), s->RecordsPerSecond() * mib,
        r->RecordsPerSecond() * mib, 1);
    for (auto [q, name] : {std::pair{0.5, "p50"}, std::pair{0.99, "p99"},
                           std::pair{0.999, "p99.9"}}) {
      row(absl::StrCat("produce ", label, " latency ", name, " (ms)"),
          QuantileMs(s->produce_ns, q), QuantileMs(r->produce_ns, q), 2);
    }
    row(absl::StrCat("produce ", label, " CPU: brokers (cores)"),
        cores(*s, &CpuSample::brokers), cores(*r, &CpuSample::brokers), 2);
  }
  const PhaseResult& se = single.e2e;
  const PhaseResult& re = repl.e2e;
  for (auto [q, name] : {std::pair{0.5, "p50"}, std::pair{0.99, "p99"},
                         std::pair{0.999, "p99.9"}}) {
    row(absl::StrCat("end-to-end latency ", name, " (ms)"),
        QuantileMs(se.e2e_ns, q), QuantileMs(re.e2e_ns, q), 2);
  }
  for (auto [q, name] : {std::pair{0.5, "p50"}, std::pair{0.99, "p99"}}) {
    row(absl::StrCat("acks=all latency at the end-to-end rate ", name, " (ms)"),
        QuantileMs(se.produce_ns, q), QuantileMs(re.produce_ns, q), 2);
  }
  std::cout << "\nCPU over each measured window, in cores busy (2 cores in "
               "all):\n\n| phase | topology | brokers | controllers | "
               "benchmark | rest of machine |\n|---|---|---:|---:|---:|---:|\n";
  for (const TopologyResults* t : {&single, &repl}) {
    for (auto [label, p] :
         {std::pair{"idle (no load)", &t->idle}, std::pair{"acks=1", &t->acks1},
          std::pair{"acks=all", &t->acks_all},
          std::pair{"end-to-end", &t->e2e}}) {
      if (p->seconds <= 0) continue;
      const CpuSample& c = p->cpu;
      std::cout << absl::StrFormat(
          "| %s | %s | %.2f | %.2f | %.2f | %.2f |\n", label, t->name,
          c.brokers / p->seconds, c.controllers / p->seconds,
          c.bench / p->seconds,
          std::max(0.0, (c.machine - c.brokers - c.controllers - c.bench) /
                            p->seconds));
    }
  }
  std::cout << "\n";
  for (const TopologyResults* t : {&single, &repl}) {
    std::cout << absl::StrFormat(
        "- %s: started and settled in %.1f s; leaders %s; requests measured "
        "acks=1 %d, acks=all %d; end-to-end: %d requests sent in %.1f s, %d "
        "delivered; smallest ISR after each phase: %d / %d / %d\n",
        t->name, t->startup_s, t->placement, t->acks1.produce_ns.size(),
        t->acks_all.produce_ns.size(), t->e2e.e2e_sent, t->e2e.seconds,
        t->e2e.e2e_ns.size(), t->acks1.min_isr_after, t->acks_all.min_isr_after,
        t->e2e.min_isr_after);
    for (const PhaseResult* p : {&t->acks1, &t->acks_all, &t->e2e}) {
      if (!p->error.empty()) std::cout << "  - ERROR: " << p->error << "\n";
    }
    if (!t->error.empty()) std::cout << "  - ERROR: " << t->error << "\n";
  }
}

// A relative default path is taken from the workspace when run by `bazel run`.
std::string Resolve(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (workspace != nullptr && *workspace != '\0') {
    return absl::StrCat(workspace, "/", path);
  }
  return path;
}

int Main(int argc, char** argv) {
  Config config;
  FlagSet flags("replication_bench",
                "Produce throughput/latency (acks=1, acks=all) and end-to-end "
                "latency on a 3-broker RF 3 cluster beside a single broker "
                "(bench/replication, docs/BENCHMARKS.md). Only uses "
                "127.0.0.1.");
  flags.Int("duration-s", &config.duration_s,
            "measured seconds of each closed-loop produce phase");
  flags.Int("warmup-s", &config.warmup_s,
            "unmeasured seconds at the start of each produce phase");
  flags.Int("e2e-duration-s", &config.e2e_duration_s,
            "seconds of the end-to-end phase");
  flags.Int("e2e-rate", &config.e2e_rate,
            "produce requests per second in the end-to-end phase (all "
            "producers together; each request is --batch-records records)");
  flags.Int("batch-records", &config.batch_records, "records per request");
  flags.Int("record-bytes", &config.record_bytes, "bytes per record value");
  flags.Int("producers", &config.producers,
            "producer threads (closed loop, one request in flight each)");
  flags.Int("partitions", &config.partitions, "partitions of the topic");
  flags.Int("max-mib", &config.max_mib,
            "bound on the record bytes of one produce phase, in MiB");
  flags.String("broker-binary", &config.broker_binary,
               "fjord-broker (relative: to the current directory, or to the "
               "workspace under bazel run)");
  flags.String("controller-binary", &config.controller_binary,
               "fjord-controller");
  flags.String("cli-binary", &config.cli_binary, "fjord CLI");
  flags.String("dir", &config.dir,
               "where to create the temporary cluster directories (default "
               "$TMPDIR or /tmp)");
  flags.String("fsync", &config.fsync,
               "the brokers' --fsync: always (the default, what the figures "
               "are for), interval or never (for diagnosis)");
  flags.String("only", &config.only,
               "run only 'single' or only 'replicated' (default: both)");
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::Status parsed = flags.Parse(args);
  if (parsed.code() == absl::StatusCode::kCancelled) {
    std::cout << parsed.message();
    return 0;
  }
  auto bad = [](absl::string_view why) {
    std::cerr << "replication_bench: " << why << "\n";
    return 2;
  };
  if (!parsed.ok()) return bad(parsed.message());
  if (config.duration_s < 1 || config.duration_s > 600) {
    return bad("--duration-s must be 1..600");
  }
  if (config.warmup_s < 0 || config.warmup_s > 60) {
    return bad("--warmup-s must be 0..60");
  }
  if (config.e2e_duration_s < 1 || config.e2e_duration_s > 600) {
    return bad("--e2e-duration-s must be 1..600");
  }
  if (config.batch_records < 1 || config.batch_records > 10000) {
    return bad("--batch-records must be 1..10000");
  }
  if (config.record_bytes < 1 || config.record_bytes > (1 << 20)) {
    return bad("--record-bytes must be 1..1048576");
  }
  if (config.batch_records * config.record_bytes > (4 << 20)) {
    return bad("a request must stay under 4 MiB");
  }
  if (config.producers < 1 || config.producers > 256) {
    return bad("--producers must be 1..256");
  }
  if (config.partitions < 1 || config.partitions > 1024) {
    return bad("--partitions must be 1..1024");
  }
  if (config.e2e_rate < 1 || config.e2e_rate > 100000) {
    return bad("--e2e-rate must be 1..100000");
  }
  if (config.max_mib < 1) return bad("--max-mib must be positive");
  if (!config.only.empty() && config.only != "single" &&
      config.only != "replicated") {
    return bad("--only must be single or replicated");
  }
  config.broker_binary = Resolve(config.broker_binary);
  config.controller_binary = Resolve(config.controller_binary);
  config.cli_binary = Resolve(config.cli_binary);
  for (const std::string* bin :
       {&config.broker_binary, &config.controller_binary, &config.cli_binary}) {
    if (access(bin->c_str(), X_OK) != 0) {
      return bad(absl::StrCat(*bin,
                              " is not an executable: build it, or pass its "
                              "path (--broker-binary, --controller-binary, "
                              "--cli-binary)"));
    }
  }

  absl::StatusOr<std::string> scratch = MakeScratchDir(config.dir, "fjord-replication-bench");
  if (!scratch.ok()) return bad(scratch.status().message());
  const std::string root = *scratch;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  std::cout << "## replication_bench\n\n";
  std::cout << absl::StrFormat(
      "- date: %s\n- machine: %d cores, %s; every server process and the "
      "benchmark share them\n- data dir: %s\n- config: %d producers (raw "
      "ProduceService stubs, one channel per producer and broker), %d "
      "partitions, %d records x %d B per request, %d s measured after %d s "
      "warm-up per produce phase; end-to-end at %d requests/s for %d s; "
      "fsync=%s\n- load average at start: %s\n",
      absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", absl::Now(),
                       absl::UTCTimeZone()),
      std::thread::hardware_concurrency(), bench::CpuModel(), root, config.producers,
      config.partitions, config.batch_records, config.record_bytes,
      config.duration_s, config.warmup_s, config.e2e_rate,
      config.e2e_duration_s, config.fsync, bench::LoadAverage());
  std::cout.flush();

  const Clock::time_point t0 = Clock::now();
  TopologyResults single, replicated;
  single.name = "single";
  replicated.name = "replicated";
  if (config.only != "replicated" && !g_interrupted.load()) {
    single = RunTopology(config, root, /*replicated=*/false);
  }
  if (config.only != "single" && !g_interrupted.load()) {
    replicated = RunTopology(config, root, /*replicated=*/true);
  }
  PrintTable(config, single, replicated);
  std::cout << absl::StrFormat("\nwhole run: %.0f s; load average at end: %s\n",
                               Seconds(Clock::now() - t0), bench::LoadAverage());
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  if (ec) {
    std::cerr << "replication_bench: could not delete " << root << ": "
              << ec.message() << "\n";
  }
  if (g_interrupted.load()) {
    std::cerr << "replication_bench: interrupted\n";
    return 130;
  }
  int exit_code = 0;
  for (const TopologyResults* t : {&single, &replicated}) {
    if (!t->error.empty()) exit_code = 1;
    for (const PhaseResult* p : {&t->acks1, &t->acks_all, &t->e2e}) {
      if (!p->error.empty()) exit_code = 1;
    }
  }
  return exit_code;
}

}  // namespace
}  // namespace fjord::bench

int main(int argc, char** argv) {
  // Idle channels answer a broker's GOAWAY quickly, so SIGTERM stays fast.
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "50", 0);
  return fjord::bench::Main(argc, argv);
}
