// produce_bench: single-broker produce and consume throughput and produce
// latency, next to raw RocksDB doing the same writes and reads, in one run.
//
// For each --fsync policy (default "always,never") it runs four phases, each in
// a fresh directory under a temporary root that is deleted at the end:
//
//   1. broker produce: Broker::Start on 127.0.0.1:<free port> in this process;
//   C
//      producer threads, each with its own gRPC channel (own TCP connection),
//      send closed-loop ProduceService.Produce requests of N records of
//      --record-bytes random bytes (null key, no headers, acks=ACKS_LEADER)
//      through the raw generated stubs (no client-library batching), producer i
//      sending its k-th request to partition (i + k) % P. Latency is per
//      request, measured by the client around the blocking call.
//   2. broker consume: one FetchService.Fetch stream per partition, all at
//   once,
//      from offset 0 up to the end offset ListOffsets(LATEST) reports.
//   3. RocksDB write: the same Debian librocksdb opened directly, one column
//   family
//      per partition, C threads each writing one WriteBatch holding one Put per
//      "request": key = 8-byte big-endian base offset, value = a batch encoded
//      by storage::EncodeBatch from the same records (so the bytes match what
//      the broker stores), WriteOptions.sync = (fsync == always).
//   4. RocksDB read: one iterator per column family, all at once, over
//   everything.
//
// Throughput counts record values only (records x --record-bytes); MiB = 2^20
// bytes. CPU is the whole process (client and broker/RocksDB share it), in
// cores busy.
//
// Everything is bounded: each produce phase stops after --duration-s (plus
// --warmup-s, not measured) or --max-mib of record bytes, every RPC has a
// deadline, and Ctrl-C stops the run and still deletes the temporary
// directories.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/vfs.h>
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
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/machine_stats.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "common/flags.h"
#include "fjord/v1/fetch.grpc.pb.h"
#include "fjord/v1/produce.grpc.pb.h"
#include "fjord/v1/record.pb.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "storage/log_store.h"
#include "storage/record_batch.h"

namespace fjord::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Set by SIGINT/SIGTERM; every loop checks it.
std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }

struct Config {
  int64_t duration_s = 15;
  int64_t warmup_s = 1;
  int64_t batch_records = 64;
  int64_t record_bytes = 1024;
  int64_t producers = 8;
  int64_t partitions = 8;
  int64_t max_mib = 8192;
  int64_t fetch_max_bytes = 1 << 20;
  std::string fsync = "always,never";
  std::string dir;
  std::string rocksdb_tuning = "fjord";
  bool verbose = false;
};

// What one phase measured.
struct PhaseResult {
  bool ran = false;
  std::string error;  // non-empty when the phase failed
  int64_t records = 0;
  double seconds = 0;      // measured window
  double cpu_seconds = 0;  // process CPU (user + system) in the window
  // CPU every other process on the machine used in the window (from
  // /proc/stat): well above 0 means the figures were taken on a busy machine.
  double other_cpu_seconds = 0;
  std::vector<int64_t> latencies_ns;  // produce phases only, one per request

  double RecordsPerSecond() const {
    return seconds > 0 ? records / seconds : 0;
  }
  double MiBPerSecond(int64_t record_bytes) const {
    return RecordsPerSecond() * record_bytes / (1024.0 * 1024.0);
  }
  double Cores() const { return seconds > 0 ? cpu_seconds / seconds : 0; }
  double OtherCores() const {
    return seconds > 0 ? std::max(0.0, other_cpu_seconds / seconds) : 0;
  }
  // Latency quantile in milliseconds; latencies_ns must be sorted.
  double QuantileMs(double q) const {
    if (latencies_ns.empty()) return 0;
    size_t i = std::min(latencies_ns.size() - 1,
                        static_cast<size_t>(q * latencies_ns.size()));
    return latencies_ns[i] / 1e6;
  }
};

// CPU seconds used so far by this process and by the whole machine.
struct CpuTimes {
  double process = 0;
  double machine = 0;
};

CpuTimes SampleCpu() {
  CpuTimes t;
  t.process = bench::SelfCpuSeconds();
  t.machine = bench::MachineCpuSeconds();
  return t;
}

// Fills the CPU fields of `result` from samples at the start and end of its
// window.
void SetCpu(const CpuTimes& start, const CpuTimes& end, PhaseResult* result) {
  result->cpu_seconds = end.process - start.process;
  result->other_cpu_seconds =
      (end.machine - start.machine) - (end.process - start.process);
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// The records one producer sends in every request: N distinct random values, so
// that neither side can compress a batch.
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
    fjord::v1::Record* record = records.Add();
    record->set_value(std::move(value));
  }
  return records;
}

// The measured window of a closed-loop produce phase: requests that start
// before `window_start` are warm-up; no request starts after `stop_at`.
struct Window {
  Clock::time_point window_start;
  Clock::time_point stop_at;
  int64_t max_records;  // bound on the records sent in the whole phase
};

Window MakeWindow(const Config& config) {
  Window w;
  Clock::time_point now = Clock::now();
  w.window_start = now + std::chrono::seconds(config.warmup_s);
  w.stop_at = w.window_start + std::chrono::seconds(config.duration_s);
  w.max_records = config.max_mib * (1 << 20) / config.record_bytes;
  return w;
}

// Per-thread tallies of a produce phase, merged at the end.
struct ProducerTally {
  int64_t records = 0;
  Clock::time_point last_done{};
  std::vector<int64_t> latencies_ns;
  std::string error;
};

// Merges producer tallies into a PhaseResult.
PhaseResult Merge(std::vector<ProducerTally>& tallies, const Window& window,
                  const CpuTimes& cpu_at_window_start,
                  const CpuTimes& cpu_at_end) {
  PhaseResult result;
  result.ran = true;
  Clock::time_point last = window.window_start;
  for (ProducerTally& t : tallies) {
    if (!t.error.empty() && result.error.empty()) result.error = t.error;
    result.records += t.records;
    last = std::max(last, t.last_done);
    result.latencies_ns.insert(result.latencies_ns.end(),
                               t.latencies_ns.begin(), t.latencies_ns.end());
  }
  std::sort(result.latencies_ns.begin(), result.latencies_ns.end());
  result.seconds = Seconds(last - window.window_start);
  SetCpu(cpu_at_window_start, cpu_at_end, &result);
  return result;
}

// Samples the process CPU time once the window opens, from a helper thread, so
// the warm-up's CPU is not counted.
class CpuSampler {
 public:
  explicit CpuSampler(Clock::time_point at)
      : thread_([this, at] {
          while (Clock::now() < at && !g_interrupted.load()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
          }
          at_start_ = SampleCpu();
        }) {}
  // Joins the helper; the value at the window start.
  CpuTimes Get() {
    if (thread_.joinable()) thread_.join();
    return at_start_;
  }
  ~CpuSampler() { Get(); }

 private:
  CpuTimes at_start_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------
// Broker phases.

constexpr char kTopic[] = "bench";

std::shared_ptr<grpc::Channel> NewChannel(int port, int index) {
  grpc::ChannelArguments args;
  // Distinct arguments give each producer its own subchannel, hence its own TCP
  // connection, as separate producer processes would have.
  args.SetInt("fjord.bench.channel_index", index);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

PhaseResult BrokerProduce(const Config& config, int port) {
  std::vector<ProducerTally> tallies(config.producers);
  std::atomic<bool> failed{false};
  std::atomic<int64_t> sent{0};
  Window window = MakeWindow(config);
  CpuSampler cpu(window.window_start);
  std::vector<std::thread> threads;
  for (int64_t i = 0; i < config.producers; ++i) {
    threads.emplace_back([&, i] {
      ProducerTally& tally = tallies[i];
      auto stub = fjord::v1::ProduceService::NewStub(NewChannel(port, i));
      fjord::v1::ProduceRequest request;
      request.set_topic(kTopic);
      request.set_acks(fjord::v1::ACKS_LEADER);
      *request.mutable_records() = MakeRecords(config, 1000 + i);
      for (int64_t k = 0;; ++k) {
        Clock::time_point start = Clock::now();
        if (start >= window.stop_at || failed.load() || g_interrupted.load() ||
            sent.fetch_add(config.batch_records) >= window.max_records) {
          break;
        }
        request.set_partition(
            static_cast<int32_t>((i + k) % config.partitions));
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(30));
        fjord::v1::ProduceResponse response;
        grpc::Status status = stub->Produce(&context, request, &response);
        Clock::time_point done = Clock::now();
        if (!status.ok()) {
          tally.error = absl::StrCat("Produce: ", status.error_code(), " ",
                                     status.error_message());
          failed.store(true);
          break;
        }
        if (start >= window.window_start) {
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
  CpuTimes cpu_end = SampleCpu();
  return Merge(tallies, window, cpu.Get(), cpu_end);
}

// Reads every partition from offset 0 to its end, one stream per partition.
PhaseResult BrokerConsume(const Config& config, int port) {
  PhaseResult result;
  result.ran = true;
  auto channel = NewChannel(port, -1);
  auto stub = fjord::v1::FetchService::NewStub(channel);
  // End offsets first, so the phase reads a fixed amount.
  std::vector<int64_t> end(config.partitions);
  for (int64_t p = 0; p < config.partitions; ++p) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    fjord::v1::ListOffsetsRequest request;
    request.set_topic(kTopic);
    request.set_partition(static_cast<int32_t>(p));
    request.set_spec(fjord::v1::ListOffsetsRequest::LATEST);
    fjord::v1::ListOffsetsResponse response;
    grpc::Status status = stub->ListOffsets(&context, request, &response);
    if (!status.ok()) {
      result.error = absl::StrCat("ListOffsets: ", status.error_code(), " ",
                                  status.error_message());
      return result;
    }
    end[p] = response.offset();
  }

  absl::Mutex mu;
  std::string error;
  std::atomic<int64_t> records{0};
  CpuTimes cpu_start = SampleCpu();
  Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int64_t p = 0; p < config.partitions; ++p) {
    threads.emplace_back([&, p] {
      auto fail = [&](std::string why) {
        absl::MutexLock lock(&mu);
        if (error.empty()) error = std::move(why);
      };
      int64_t next = 0;
      if (end[p] == 0) return;
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(300));
      fjord::v1::FetchRequest request;
      request.set_topic(kTopic);
      request.set_partition(static_cast<int32_t>(p));
      request.set_offset(0);
      request.set_max_bytes(static_cast<int32_t>(config.fetch_max_bytes));
      request.set_max_wait_ms(100);
      std::unique_ptr<grpc::ClientReader<fjord::v1::FetchResponse>> reader =
          stub->Fetch(&context, request);
      fjord::v1::FetchResponse response;
      while (next < end[p] && !g_interrupted.load() &&
             reader->Read(&response)) {
        for (const fjord::v1::ConsumedRecord& record : response.records()) {
          if (record.offset() != next) {
            fail(absl::StrCat("partition ", p, ": expected offset ", next,
                              ", got ", record.offset()));
            next = end[p];
            break;
          }
          if (static_cast<int64_t>(record.value().size()) !=
              config.record_bytes) {
            fail(absl::StrCat("partition ", p, " offset ", next, ": value of ",
                              record.value().size(), " bytes"));
          }
          ++next;
        }
      }
      records.fetch_add(std::min(next, end[p]));
      context.TryCancel();
      grpc::Status status = reader->Finish();
      if (next < end[p] && !g_interrupted.load()) {
        fail(absl::StrCat("partition ", p, ": stream ended at offset ", next,
                          " of ", end[p], ": ", status.error_code(), " ",
                          status.error_message()));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  result.seconds = Seconds(Clock::now() - start);
  SetCpu(cpu_start, SampleCpu(), &result);
  result.records = records.load();
  result.error = error;
  return result;
}

// ---------------------------------------------------------------------------
// RocksDB reference phases.

std::string BigEndian64(uint64_t v) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i) {
    key[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return key;
}

// A RocksDB instance with one column family per partition. With `fjord_tuning`
// it is opened as storage/log_store.cc opens the broker's store (copied from
// StoreCore::OpenDb and PartitionCfOptions: keep in step), so that the
// comparison isolates what the broker adds on top of RocksDB; without it,
// RocksDB's defaults (plus create_if_missing).
class ReferenceDb {
 public:
  static absl::StatusOr<std::unique_ptr<ReferenceDb>> Open(
      const std::string& dir, int64_t partitions, bool fjord_tuning) {
    auto db = std::unique_ptr<ReferenceDb>(new ReferenceDb());
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    rocksdb::ColumnFamilyOptions cf;
    if (fjord_tuning) {
      const storage::StoreOptions defaults;
      options.write_buffer_manager =
          std::make_shared<rocksdb::WriteBufferManager>(
              defaults.write_buffer_budget_bytes);
      options.max_total_wal_size = std::max<uint64_t>(
          uint64_t{64} << 20, defaults.write_buffer_budget_bytes / 2);
      options.avoid_flush_during_recovery = true;
      options.max_background_jobs = 2;
      options.max_open_files = 4096;
      options.keep_log_file_num = 4;
      options.max_log_file_size = size_t{16} << 20;
      cf.write_buffer_size = size_t{4} << 20;
      cf.arena_block_size = size_t{64} << 10;
      cf.max_write_buffer_number = 3;
      cf.level_compaction_dynamic_level_bytes = true;
      cf.target_file_size_base = size_t{32} << 20;
      rocksdb::BlockBasedTableOptions table;
      table.block_cache = rocksdb::NewLRUCache(defaults.block_cache_bytes);
      table.block_size = 32 << 10;
      cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    families.emplace_back(rocksdb::kDefaultColumnFamilyName, cf);
    for (int64_t p = 0; p < partitions; ++p) {
      families.emplace_back(absl::StrCat("p.bench.", p), cf);
    }
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s =
        rocksdb::DB::Open(options, dir, families, &db->handles_, &raw);
    if (!s.ok()) return absl::InternalError(s.ToString());
    db->db_.reset(raw);
    return db;
  }

  ~ReferenceDb() {
    if (db_ == nullptr) return;
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      db_->DestroyColumnFamilyHandle(h);
    }
    db_->Close();
  }

  rocksdb::DB* db() { return db_.get(); }
  // Partition p's column family.
  rocksdb::ColumnFamilyHandle* cf(int64_t p) { return handles_[p + 1]; }

 private:
  ReferenceDb() = default;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

PhaseResult RocksWrite(const Config& config, ReferenceDb& db, bool sync) {
  std::vector<ProducerTally> tallies(config.producers);
  std::vector<std::atomic<int64_t>> next_offset(config.partitions);
  for (auto& o : next_offset) o.store(0);
  std::atomic<bool> failed{false};
  std::atomic<int64_t> sent{0};
  // Encode before the window opens: the reference does no per-request encoding.
  std::vector<std::string> values(config.producers);
  for (int64_t i = 0; i < config.producers; ++i) {
    absl::StatusOr<std::string> encoded =
        storage::EncodeBatch(MakeRecords(config, 1000 + i), /*leader_epoch=*/0,
                             absl::ToUnixMillis(absl::Now()));
    if (!encoded.ok()) {
      PhaseResult r;
      r.ran = true;
      r.error = absl::StrCat("EncodeBatch: ", encoded.status().ToString());
      return r;
    }
    values[i] = *std::move(encoded);
  }
  Window window = MakeWindow(config);
  CpuSampler cpu(window.window_start);
  std::vector<std::thread> threads;
  for (int64_t i = 0; i < config.producers; ++i) {
    threads.emplace_back([&, i] {
      ProducerTally& tally = tallies[i];
      rocksdb::WriteOptions options;
      options.sync = sync;
      for (int64_t k = 0;; ++k) {
        Clock::time_point start = Clock::now();
        if (start >= window.stop_at || failed.load() || g_interrupted.load() ||
            sent.fetch_add(config.batch_records) >= window.max_records) {
          break;
        }
        int64_t p = (i + k) % config.partitions;
        rocksdb::WriteBatch batch;
        batch.Put(db.cf(p),
                  BigEndian64(next_offset[p].fetch_add(config.batch_records)),
                  values[i]);
        rocksdb::Status s = db.db()->Write(options, &batch);
        Clock::time_point done = Clock::now();
        if (!s.ok()) {
          tally.error = absl::StrCat("rocksdb Write: ", s.ToString());
          failed.store(true);
          break;
        }
        if (start >= window.window_start) {
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
  CpuTimes cpu_end = SampleCpu();
  return Merge(tallies, window, cpu.Get(), cpu_end);
}

// Iterates every column family, one thread each. With `decode`, also runs
// storage::DecodeBatch (CRC check and conversion to ConsumedRecord protos) on
// each value: what the broker does before gRPC sends it.
PhaseResult RocksRead(const Config& config, ReferenceDb& db, bool decode) {
  PhaseResult result;
  result.ran = true;
  absl::Mutex mu;
  std::string error;
  std::atomic<int64_t> records{0};
  CpuTimes cpu_start = SampleCpu();
  Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int64_t p = 0; p < config.partitions; ++p) {
    threads.emplace_back([&, p] {
      int64_t count = 0;
      int64_t bytes = 0;
      std::unique_ptr<rocksdb::Iterator> it(
          db.db()->NewIterator(rocksdb::ReadOptions(), db.cf(p)));
      google::protobuf::RepeatedPtrField<fjord::v1::ConsumedRecord> decoded;
      for (it->SeekToFirst(); it->Valid() && !g_interrupted.load();
           it->Next()) {
        rocksdb::Slice value = it->value();
        absl::string_view batch(value.data(), value.size());
        absl::StatusOr<storage::BatchHeader> header =
            storage::ParseBatchHeader(batch);
        if (!header.ok()) {
          absl::MutexLock lock(&mu);
          error = header.status().ToString();
          return;
        }
        if (decode) {
          decoded.Clear();
          absl::Status s = storage::DecodeBatch(batch, count, count, &decoded);
          if (!s.ok()) {
            absl::MutexLock lock(&mu);
            error = s.ToString();
            return;
          }
        }
        count += header->record_count;
        bytes += value.size();
      }
      if (!it->status().ok()) {
        absl::MutexLock lock(&mu);
        error = it->status().ToString();
      }
      records.fetch_add(count);
    });
  }
  for (std::thread& t : threads) t.join();
  result.seconds = Seconds(Clock::now() - start);
  SetCpu(cpu_start, SampleCpu(), &result);
  result.records = records.load();
  result.error = error;
  return result;
}

// ---------------------------------------------------------------------------
// Driver and report.

struct PolicyResults {
  std::string policy;
  PhaseResult broker_produce, broker_consume, rocks_write, rocks_read,
      rocks_read_decode;
};



std::string FilesystemType(const std::string& path) {
  struct statfs fs;
  if (statfs(path.c_str(), &fs) != 0) return "unknown";
  switch (fs.f_type) {
    case 0xEF53:
      return "ext2/3/4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs (fsync is free: figures are not disk figures)";
    case 0x794C7630:
      return "overlayfs";
    default:
      return absl::StrFormat("0x%x", static_cast<uint64_t>(fs.f_type));
  }
}

std::string Ratio(double broker, double rocks) {
  if (rocks <= 0 || broker <= 0) return "-";
  return absl::StrFormat("%.2f", broker / rocks);
}

void PrintTable(const Config& config, const PolicyResults& r) {
  const int64_t rb = config.record_bytes;
  std::cout << "\n### fsync=" << r.policy << "\n\n";
  std::cout << "| figure | broker | RocksDB | broker / RocksDB |\n";
  std::cout << "|---|---:|---:|---:|\n";
  auto row = [](absl::string_view name, double b, double k, int decimals,
                bool ratio = true) {
    std::cout << absl::StrFormat("| %s | %.*f | %.*f | %s |\n", name, decimals,
                                 b, decimals, k, ratio ? Ratio(b, k) : "-");
  };
  const PhaseResult& bp = r.broker_produce;
  const PhaseResult& kw = r.rocks_write;
  const PhaseResult& bc = r.broker_consume;
  const PhaseResult& kr = r.rocks_read;
  row("produce records/s", bp.RecordsPerSecond(), kw.RecordsPerSecond(), 0);
  row("produce MiB/s", bp.MiBPerSecond(rb), kw.MiBPerSecond(rb), 1);
  row("produce latency p50 (ms)", bp.QuantileMs(0.5), kw.QuantileMs(0.5), 3);
  row("produce latency p99 (ms)", bp.QuantileMs(0.99), kw.QuantileMs(0.99), 3);
  row("produce latency p99.9 (ms)", bp.QuantileMs(0.999), kw.QuantileMs(0.999),
      3);
  row("produce CPU (cores busy)", bp.Cores(), kw.Cores(), 2);
  row("consume records/s", bc.RecordsPerSecond(), kr.RecordsPerSecond(), 0);
  row("consume MiB/s", bc.MiBPerSecond(rb), kr.MiBPerSecond(rb), 1);
  row("consume CPU (cores busy)", bc.Cores(), kr.Cores(), 2);
  row("CPU outside this process, produce (cores)", bp.OtherCores(),
      kw.OtherCores(), 2, false);
  row("CPU outside this process, consume (cores)", bc.OtherCores(),
      kr.OtherCores(), 2, false);
  std::cout << "\n";
  std::cout << absl::StrFormat(
      "produce requests measured: broker %d, RocksDB %d; records read back: "
      "broker %d in %.2f s, RocksDB %d in %.2f s\n",
      bp.latencies_ns.size(), kw.latencies_ns.size(), bc.records, bc.seconds,
      kr.records, kr.seconds);
  const PhaseResult& kd = r.rocks_read_decode;
  if (kd.ran && kd.error.empty()) {
    std::cout << absl::StrFormat(
        "RocksDB iterate + storage::DecodeBatch (CRC + protos, no gRPC): %.0f "
        "records/s, %.1f MiB/s, %.2f cores\n",
        kd.RecordsPerSecond(), kd.MiBPerSecond(rb), kd.Cores());
  }
  for (const PhaseResult* p : {&bp, &bc, &kw, &kr, &kd}) {
    if (!p->error.empty()) std::cout << "ERROR: " << p->error << "\n";
  }
}

// Runs the four phases for one policy. Each phase gets a fresh directory,
// deleted as soon as the phase pair is done, so disk use stays bounded to one
// phase's data.
absl::StatusOr<PolicyResults> RunPolicy(const Config& config,
                                        const std::string& root,
                                        storage::FsyncPolicy policy) {
  namespace fs = std::filesystem;
  PolicyResults results;
  results.policy = std::string(storage::FsyncPolicyName(policy));
  const std::string broker_dir = root + "/broker-" + results.policy;
  const std::string rocks_dir = root + "/rocksdb-" + results.policy;

  {
    broker::BrokerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = broker_dir;
    options.fsync = policy;
    options.create_topics = absl::StrCat(kTopic, ":", config.partitions, ":1");
    absl::StatusOr<std::unique_ptr<broker::Broker>> b =
        broker::Broker::Start(options);
    if (!b.ok()) return b.status();
    std::cerr << "fsync=" << results.policy << ": broker produce ("
              << config.warmup_s << " s warm-up + " << config.duration_s
              << " s) on 127.0.0.1:" << (*b)->port() << "\n";
    results.broker_produce = BrokerProduce(config, (*b)->port());
    if (results.broker_produce.error.empty() && !g_interrupted.load()) {
      std::cerr << "fsync=" << results.policy << ": broker consume\n";
      results.broker_consume = BrokerConsume(config, (*b)->port());
    }
    (*b)->Shutdown();
  }
  std::error_code ec;
  fs::remove_all(broker_dir, ec);
  if (g_interrupted.load()) return results;

  {
    absl::StatusOr<std::unique_ptr<ReferenceDb>> db = ReferenceDb::Open(
        rocks_dir, config.partitions, config.rocksdb_tuning == "fjord");
    if (!db.ok()) return db.status();
    std::cerr << "fsync=" << results.policy << ": RocksDB write\n";
    results.rocks_write =
        RocksWrite(config, **db, policy == storage::FsyncPolicy::kAlways);
    if (results.rocks_write.error.empty() && !g_interrupted.load()) {
      std::cerr << "fsync=" << results.policy << ": RocksDB read\n";
      results.rocks_read = RocksRead(config, **db, /*decode=*/false);
      results.rocks_read_decode = RocksRead(config, **db, /*decode=*/true);
    }
  }
  fs::remove_all(rocks_dir, ec);
  return results;
}

int Main(int argc, char** argv) {
  Config config;
  FlagSet flags(
      "produce_bench",
      "Single-broker produce/consume benchmark against raw RocksDB "
      "(bench/produce_bench.cc, docs/BENCHMARKS.md). Only uses 127.0.0.1.");
  flags.Int("duration-s", &config.duration_s,
            "measured seconds of each produce phase (after the warm-up)");
  flags.Int("warmup-s", &config.warmup_s,
            "unmeasured seconds at the start of each produce phase");
  flags.Int("batch-records", &config.batch_records,
            "records per produce request (and per RocksDB Put)");
  flags.Int("record-bytes", &config.record_bytes, "bytes per record value");
  flags.Int("producers", &config.producers,
            "concurrent producer threads (closed loop, one request in flight "
            "each)");
  flags.Int("partitions", &config.partitions, "partitions of the topic");
  flags.Int("max-mib", &config.max_mib,
            "bound on the record bytes one produce phase writes, in MiB");
  flags.Int("fetch-max-bytes", &config.fetch_max_bytes,
            "FetchRequest.max_bytes of the consume phase");
  flags.String("fsync", &config.fsync,
               "comma-separated fsync policies to run: always, interval, never "
               "(RocksDB's sync follows 'always')");
  flags.String("dir", &config.dir,
               "where to create the temporary data directories (default "
               "$TMPDIR or /tmp); must be on the disk you want to measure");
  flags.String("rocksdb-tuning", &config.rocksdb_tuning,
               "options of the reference RocksDB: fjord (as the broker's "
               "LogStore opens it) or default (RocksDB's defaults)");
  flags.Bool("verbose", &config.verbose, "keep the broker's INFO logs");
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::Status parsed = flags.Parse(args);
  if (parsed.code() == absl::StatusCode::kCancelled) {
    std::cout << parsed.message();
    return 0;
  }
  if (!parsed.ok()) {
    std::cerr << "produce_bench: " << parsed.message() << "\n";
    return 2;
  }
  auto bad = [](absl::string_view why) {
    std::cerr << "produce_bench: " << why << "\n";
    return 2;
  };
  if (config.duration_s < 1 || config.duration_s > 3600) {
    return bad("--duration-s must be 1..3600");
  }
  if (config.warmup_s < 0 || config.warmup_s > 600) {
    return bad("--warmup-s must be 0..600");
  }
  if (config.batch_records < 1 || config.batch_records > 100000) {
    return bad("--batch-records must be 1..100000");
  }
  if (config.record_bytes < 1 || config.record_bytes > (1 << 20)) {
    return bad("--record-bytes must be 1..1048576");
  }
  if (config.batch_records * config.record_bytes > (8 << 20) - (64 << 10)) {
    return bad("a request must stay under the broker's 8 MiB batch limit");
  }
  if (config.producers < 1 || config.producers > 256) {
    return bad("--producers must be 1..256");
  }
  if (config.partitions < 1 || config.partitions > 1024) {
    return bad("--partitions must be 1..1024");
  }
  if (config.rocksdb_tuning != "fjord" && config.rocksdb_tuning != "default") {
    return bad("--rocksdb-tuning must be fjord or default");
  }
  if (config.max_mib < 1) return bad("--max-mib must be positive");
  if (config.fetch_max_bytes < 1024 || config.fetch_max_bytes > (16 << 20)) {
    return bad("--fetch-max-bytes must be 1024..16777216");
  }
  std::vector<storage::FsyncPolicy> policies;
  for (absl::string_view name :
       absl::StrSplit(config.fsync, ',', absl::SkipEmpty())) {
    absl::StatusOr<storage::FsyncPolicy> p = storage::ParseFsyncPolicy(name);
    if (!p.ok()) return bad(absl::StrCat("--fsync: ", p.status().message()));
    policies.push_back(*p);
  }
  if (policies.empty()) return bad("--fsync names no policy");

  if (!config.verbose) FLAGS_minloglevel = 1;  // warnings and errors only

  absl::StatusOr<std::string> scratch = MakeScratchDir(config.dir, "fjord-produce-bench");
  if (!scratch.ok()) return bad(scratch.status().message());
  const std::string root = *scratch;

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  std::cout << "## produce_bench\n\n";
  std::cout << absl::StrFormat(
      "- date: %s\n- machine: %d cores (std::thread::hardware_concurrency), "
      "%s\n- data dir: %s (%s)\n- config: %d producers (one gRPC channel "
      "each, raw ProduceService stubs, acks=ACKS_LEADER), %d partitions, "
      "%d records x %d B per request (%d KiB), %d s measured after %d s "
      "warm-up per produce phase, fetch max_bytes %d, reference RocksDB "
      "tuning: %s\n",
      absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", absl::Now(),
                       absl::UTCTimeZone()),
      std::thread::hardware_concurrency(), bench::CpuModel(), root,
      FilesystemType(root), config.producers, config.partitions,
      config.batch_records, config.record_bytes,
      config.batch_records * config.record_bytes / 1024, config.duration_s,
      config.warmup_s, config.fetch_max_bytes, config.rocksdb_tuning);
  std::cout << "- load average at start: " << bench::LoadAverage() << "\n";
  std::cout.flush();

  int exit_code = 0;
  for (storage::FsyncPolicy policy : policies) {
    if (g_interrupted.load()) break;
    absl::StatusOr<PolicyResults> results = RunPolicy(config, root, policy);
    if (!results.ok()) {
      std::cerr << "produce_bench: fsync=" << storage::FsyncPolicyName(policy)
                << ": " << results.status() << "\n";
      exit_code = 1;
      continue;
    }
    if (g_interrupted.load()) break;  // partial figures would mislead
    PrintTable(config, *results);
    for (const PhaseResult* p :
         {&results->broker_produce, &results->broker_consume,
          &results->rocks_write, &results->rocks_read}) {
      if (!p->error.empty()) exit_code = 1;
    }
    std::cout.flush();
  }
  std::cout << "\nload average at end: " << bench::LoadAverage() << "\n";
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  if (ec) {
    std::cerr << "produce_bench: could not delete " << root << ": "
              << ec.message() << "\n";
  }
  if (g_interrupted.load()) {
    std::cerr << "produce_bench: interrupted\n";
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
