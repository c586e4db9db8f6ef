#include "integration_tests/chaos/run_support.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace fjord::testing::chaos {
namespace {

std::string Clock(absl::Time t) {
  return absl::FormatTime("%H:%M:%E3S", t, absl::UTCTimeZone());
}

}  // namespace

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || workspace == nullptr) return path;
  return absl::StrCat(srcdir, "/", workspace, "/", path);
}

ClusterOptions ChaosClusterOptions(const std::string& name, const std::string& topics) {
  ClusterOptions o;
  const char* base = std::getenv("FJORD_CHAOS_DIR");
  o.base_dir = absl::StrCat(base != nullptr ? base : std::getenv("TEST_TMPDIR"), "/", name);
  std::filesystem::remove_all(o.base_dir);
  o.controllers = 3;
  o.brokers = 3;
  o.broker_binary = Runfile("broker/fjord-broker");
  o.controller_binary = Runfile("controller/fjord-controller");
  o.cli_binary = Runfile("client/fjord");
  o.controller_args = {"--session-timeout-ms=3000"};
  o.broker_args = {"--replica-lag-time-max-ms=3000"};
  o.create_topics = topics;
  o.start_timeout = absl::Seconds(30);
  return o;
}

std::map<int, std::string> BrokerAddresses(const Cluster& cluster) {
  std::map<int, std::string> brokers;
  for (int id = 1; id <= cluster.brokers(); ++id) {
    brokers[id] = cluster.Find(absl::StrCat("broker-", id))->address();
  }
  return brokers;
}

int StartProducersAndReader(Workload& workload, const std::string& topic,
                            const std::string& keyed_topic, int partitions) {
  int process = 0;
  for (int p = 0; p < partitions; ++p) workload.StartUniqueProducer(process++, topic, p);
  for (int i = 0; i < 2; ++i) {
    workload.StartKeyedProducer(process++, keyed_topic, partitions,
                                {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"});
  }
  workload.StartReader(process++, {topic, keyed_topic}, partitions, absl::Milliseconds(500));
  return process;
}

bool WaitForLeaders(ChaosClient& client, const std::vector<std::string>& topics, int partitions,
                    bool full_isr, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    bool ready = true;
    for (const std::string& topic : topics) {
      absl::StatusOr<fjord::v1::TopicInfo> info = client.Describe(topic);
      ready &= info.ok() && info->partitions_size() == partitions;
      if (!ready) break;
      for (const auto& p : info->partitions()) {
        ready &= p.leader_id() > 0 && (!full_isr || p.isr_size() == 3);
      }
    }
    if (ready) return true;
    absl::SleepFor(absl::Milliseconds(200));  // poll interval
  }
  return false;
}

absl::StatusOr<FinalRead> ReadUntilStable(ChaosClient& client, const std::string& topic, int p) {
  auto read_once = [&](int* leader) {
    absl::StatusOr<std::vector<ReadRecord>> records = absl::UnavailableError("not read");
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      client.ForgetAll();
      records = client.Read(topic, p, 0, absl::Seconds(20), leader);
      if (records.ok()) break;
      absl::SleepFor(absl::Milliseconds(200));  // back-off between attempts
    }
    return records;
  };
  FinalRead out;
  absl::StatusOr<std::vector<ReadRecord>> records = read_once(&out.leader);
  if (!records.ok()) return records.status();
  out.records = *std::move(records);
  out.first_end = static_cast<int64_t>(out.records.size());
  out.first_leader = out.leader;
  for (int i = 0; i < 10; ++i) {
    absl::SleepFor(absl::Seconds(1));  // the end must stay put for a second
    int leader = 0;
    records = read_once(&leader);
    if (!records.ok()) return records.status();
    const bool stable = records->size() == out.records.size();
    out.records = *std::move(records);
    out.leader = leader;
    if (stable) break;
  }
  return out;
}

bool ReadAll(ChaosClient& client, const std::vector<std::string>& topics, int partitions,
             const std::string& log_prefix, FinalReads* out) {
  for (const std::string& topic : topics) {
    for (int p = 0; p < partitions; ++p) {
      absl::StatusOr<FinalRead> read = ReadUntilStable(client, topic, p);
      EXPECT_TRUE(read.ok()) << topic << "/" << p << ": " << read.status();
      if (!read.ok()) return false;
      std::cerr << log_prefix << ": final read " << topic << "/" << p << ": "
                << read->records.size() << " records from broker " << read->leader;
      if (read->first_end != static_cast<int64_t>(read->records.size())) {
        std::cerr << " (LATE: the first read, from broker " << read->first_leader
                  << ", ended at " << read->first_end << ")";
      }
      std::cerr << "\n";
      (*out)[{topic, p}] = std::move(read->records);
    }
  }
  return true;
}

void DumpHistory(const History& history, const std::string& name) {
  const char* dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  const std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name, "-history.txt");
  std::ofstream out(path);
  for (const Op& op : history.ops()) {
    out << op.id << " p" << op.process << " "
        << (op.type == OpType::kProduce ? "produce" : "read") << " " << op.topic << "/"
        << op.partition << " " << OutcomeName(op.outcome) << " invoked=" << Clock(op.invoked)
        << " completed=" << Clock(op.completed) << " broker=" << op.broker
        << " offset=" << op.offset << " value=" << op.value;
    if (op.type == OpType::kRead && !op.records.empty()) {
      out << " read=[" << op.records.front().offset << ".." << op.records.back().offset << "]";
    }
    if (!op.error.empty()) out << " error=" << op.error;
    out << "\n";
  }
  for (const FaultRecord& f : history.faults()) {
    out << "fault #" << f.index << " " << f.kind << " " << f.target
        << " started=" << Clock(f.started) << " healed=" << Clock(f.healed) << " " << f.note
        << "\n";
  }
  std::cerr << "chaos: history written to " << path << "\n";
}

}  // namespace fjord::testing::chaos
