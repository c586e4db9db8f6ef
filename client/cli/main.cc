// fjord: the command-line client (see `fjord --help` and DESIGN.md, "The
// contract users see"). Output goes to stdout; on failure, exactly one line
// "fjord: <reason>" goes to stderr and the exit code is non-zero (2 for a bad
// command line, 1 otherwise).
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/admin.h"
#include "client/cli/args.h"
#include "client/cli/json.h"
#include "client/cluster.h"
#include "client/consumer.h"
#include "client/producer.h"
#include "glog/logging.h"
#include "grpc/support/log.h"

namespace fjord::cli {
namespace {

using client::Admin;
using client::Cluster;

// Thrown-free error plumbing: a command returns a Status; main prints it.
absl::Status UsageError(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

void Print(const std::string& s) { fwrite(s.data(), 1, s.size(), stdout); }

void PrintLine(const std::string& s) {
  Print(s);
  fputc('\n', stdout);
}

std::string Ints(const google::protobuf::RepeatedField<int32_t>& xs) {
  return absl::StrJoin(xs, ",");
}

void WriteInts(JsonWriter& w,
               const google::protobuf::RepeatedField<int32_t>& xs) {
  w.BeginArray();
  for (int32_t x : xs) w.Int(x);
  w.EndArray();
}

absl::Status ClusterDescribe(const Invocation& inv, Admin& admin) {
  auto cluster = admin.DescribeCluster();
  if (!cluster.ok()) return cluster.status();
  if (inv.json) {
    JsonWriter w;
    w.BeginObject()
        .Key("cluster_id")
        .String(cluster->cluster_id())
        .Key("controller_id")
        .Int(cluster->controller_id())
        .Key("controller_term")
        .Int(cluster->controller_term())
        .Key("voters");
    WriteInts(w, cluster->voters());
    w.Key("brokers").BeginArray();
    for (const auto& b : cluster->brokers()) {
      w.BeginObject()
          .Key("id")
          .Int(b.id())
          .Key("host")
          .String(b.host())
          .Key("port")
          .Int(b.port())
          .Key("rack")
          .String(b.rack())
          .Key("epoch")
          .Int(b.epoch())
          .Key("fenced")
          .Bool(b.fenced())
          .EndObject();
    }
    w.EndArray().EndObject();
    PrintLine(w.str());
    return absl::OkStatus();
  }
  PrintLine(absl::StrCat("Cluster id: ", cluster->cluster_id()));
  PrintLine(absl::StrCat("Controller: ", cluster->controller_id(), " (term ",
                         cluster->controller_term(), ")"));
  PrintLine(absl::StrCat("Voters: ", Ints(cluster->voters())));
  PrintLine(absl::StrCat("Brokers: ", cluster->brokers_size()));
  for (const auto& b : cluster->brokers()) {
    PrintLine(absl::StrCat(
        "  Broker: ", b.id(), "\tAddress: ", b.host(), ":", b.port(),
        "\tRack: ", b.rack().empty() ? "-" : b.rack(), "\tEpoch: ", b.epoch(),
        "\tFenced: ", b.fenced() ? "yes" : "no"));
  }
  return absl::OkStatus();
}

void WriteTopicInfo(JsonWriter& w, const fjord::v1::TopicInfo& t,
                    const fjord::v1::TopicDescription* description) {
  std::map<int32_t, const fjord::v1::PartitionOffsets*> offsets;
  if (description != nullptr) {
    for (const auto& o : description->offsets()) offsets[o.partition()] = &o;
  }
  std::map<std::string, std::string> configs(t.configs().begin(),
                                             t.configs().end());
  w.BeginObject()
      .Key("name")
      .String(t.name())
      .Key("topic_id")
      .String(t.topic_id())
      .Key("partition_count")
      .Int(t.partitions_size())
      .Key("replication_factor")
      .Int(t.replication_factor())
      .Key("configs")
      .BeginObject();
  for (const auto& [k, v] : configs) w.Key(k).String(v);
  w.EndObject().Key("partitions").BeginArray();
  for (const auto& p : t.partitions()) {
    w.BeginObject()
        .Key("partition")
        .Int(p.partition())
        .Key("leader")
        .Int(p.leader_id())
        .Key("leader_epoch")
        .Int(p.leader_epoch())
        .Key("replicas");
    WriteInts(w, p.replicas());
    w.Key("isr");
    WriteInts(w, p.isr());
    if (description != nullptr) {
      auto it = offsets.find(p.partition());
      if (it != offsets.end()) {
        w.Key("log_start_offset")
            .Int(it->second->log_start_offset())
            .Key("log_end_offset")
            .Int(it->second->log_end_offset())
            .Key("high_watermark")
            .Int(it->second->high_watermark());
      } else {
        w.Key("log_start_offset").Null().Key("log_end_offset").Null();
        w.Key("high_watermark").Null();
      }
    }
    w.EndObject();
  }
  w.EndArray().EndObject();
}

absl::Status TopicCreate(const Invocation& inv, Admin& admin) {
  client::NewTopicSpec spec;
  spec.name = inv.args[0];
  if (inv.Has("partitions")) {
    auto n = ParseIntFlag("partitions", inv.Get("partitions"), 1, INT32_MAX);
    if (!n.ok()) return n.status();
    spec.partitions = static_cast<int32_t>(*n);
  }
  if (inv.Has("replication-factor")) {
    auto n = ParseIntFlag("replication-factor", inv.Get("replication-factor"),
                          1, INT32_MAX);
    if (!n.ok()) return n.status();
    spec.replication_factor = static_cast<int32_t>(*n);
  }
  for (const std::string& kv : inv.GetAll("config")) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return UsageError(
          absl::StrCat("--config: want KEY=VALUE, got '", kv, "'"));
    }
    spec.configs[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto topic = admin.CreateTopic(spec);
  if (!topic.ok()) return topic.status();
  if (inv.json) {
    JsonWriter w;
    WriteTopicInfo(w, *topic, nullptr);
    PrintLine(w.str());
  } else {
    PrintLine(absl::StrCat("Created topic ", topic->name(), "."));
  }
  return absl::OkStatus();
}

absl::Status TopicList(const Invocation& inv, Admin& admin) {
  auto topics = admin.ListTopics(inv.Has("include-internal"));
  if (!topics.ok()) return topics.status();
  if (inv.json) {
    JsonWriter w;
    w.BeginObject().Key("topics").BeginArray();
    for (const auto& t : *topics) w.String(t);
    w.EndArray().EndObject();
    PrintLine(w.str());
  } else {
    for (const auto& t : *topics) PrintLine(t);
  }
  return absl::OkStatus();
}

absl::Status TopicDescribe(const Invocation& inv, Admin& admin) {
  auto d = admin.DescribeTopic(inv.args[0]);
  if (!d.ok()) return d.status();
  const fjord::v1::TopicInfo& t = d->topic();
  if (inv.json) {
    JsonWriter w;
    WriteTopicInfo(w, t, &*d);
    PrintLine(w.str());
    return absl::OkStatus();
  }
  std::map<std::string, std::string> configs(t.configs().begin(),
                                             t.configs().end());
  std::vector<std::string> kvs;
  for (const auto& [k, v] : configs) kvs.push_back(absl::StrCat(k, "=", v));
  PrintLine(absl::StrCat("Topic: ", t.name(), "\tTopicId: ", t.topic_id(),
                         "\tPartitionCount: ", t.partitions_size(),
                         "\tReplicationFactor: ", t.replication_factor(),
                         "\tConfigs: ", absl::StrJoin(kvs, ",")));
  std::map<int32_t, const fjord::v1::PartitionOffsets*> offsets;
  for (const auto& o : d->offsets()) offsets[o.partition()] = &o;
  for (const auto& p : t.partitions()) {
    std::string line = absl::StrCat(
        "\tTopic: ", t.name(), "\tPartition: ", p.partition(),
        "\tLeader: ", p.leader_id() < 0 ? "none" : absl::StrCat(p.leader_id()),
        "\tReplicas: ", Ints(p.replicas()), "\tIsr: ", Ints(p.isr()));
    auto it = offsets.find(p.partition());
    if (it != offsets.end()) {
      absl::StrAppend(&line, "\tLogStart: ", it->second->log_start_offset(),
                      "\tLogEnd: ", it->second->log_end_offset(),
                      "\tHighWatermark: ", it->second->high_watermark());
    } else {
      absl::StrAppend(&line, "\tLogStart: ?\tLogEnd: ?\tHighWatermark: ?");
    }
    PrintLine(line);
  }
  return absl::OkStatus();
}

absl::Status TopicDelete(const Invocation& inv, Admin& admin) {
  auto id = admin.DeleteTopic(inv.args[0]);
  if (!id.ok()) return id.status();
  if (inv.json) {
    JsonWriter w;
    w.BeginObject()
        .Key("deleted")
        .String(inv.args[0])
        .Key("topic_id")
        .String(*id)
        .EndObject();
    PrintLine(w.str());
  } else {
    PrintLine(absl::StrCat("Deleted topic ", inv.args[0], "."));
  }
  return absl::OkStatus();
}

absl::Status Produce(const Invocation& inv,
                     const std::shared_ptr<Cluster>& cluster) {
  const std::string topic = inv.args[0];
  client::ProducerOptions options;
  auto acks = client::ParseAcks(inv.Get("acks", "all"));
  if (!acks.ok()) return acks.status();
  options.acks = *acks;
  // Ride out a broker restart, but do not hang a minute on a wrong address.
  options.max_block = absl::Seconds(30);
  std::optional<int32_t> partition;
  if (inv.Has("partition")) {
    auto p = ParseIntFlag("partition", inv.Get("partition"), 0, INT32_MAX);
    if (!p.ok()) return p.status();
    partition = static_cast<int32_t>(*p);
  }
  const std::string separator = inv.Get("key-separator");
  auto producer = client::Producer::Create(cluster, options);
  if (!producer.ok()) return producer.status();

  struct Outcome {
    absl::Mutex mu;
    int64_t acked = 0;
    int64_t failed = 0;
    absl::Status first_error;
  };
  auto outcome = std::make_shared<Outcome>();
  auto callback = [outcome](const absl::StatusOr<client::RecordMetadata>& r) {
    absl::MutexLock lock(&outcome->mu);
    if (r.ok()) {
      ++outcome->acked;
    } else {
      ++outcome->failed;
      if (outcome->first_error.ok()) outcome->first_error = r.status();
    }
  };

  absl::Status stop;  // Why reading stopped early.
  int64_t lines = 0;
  char* buf = nullptr;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&buf, &cap, stdin)) >= 0) {
    std::string_view line(buf, len);
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++lines;
    client::ProducerRecord record;
    record.topic = topic;
    record.partition = partition;
    if (!separator.empty()) {
      const size_t at = line.find(separator);
      if (at == std::string_view::npos) {
        stop = absl::InvalidArgumentError(absl::StrCat(
            "line ", lines, " has no key separator '", separator, "'"));
        break;
      }
      record.key = std::string(line.substr(0, at));
      record.value = std::string(line.substr(at + separator.size()));
    } else {
      record.value = std::string(line);
    }
    absl::Status s = (*producer)->Send(std::move(record), callback);
    if (!s.ok()) {
      stop = lines == 1
                 ? s
                 : absl::Status(s.code(), absl::StrCat("line ", lines, ": ",
                                                       s.message()));
      break;
    }
  }
  free(buf);
  if (stop.ok() && ferror(stdin))
    stop = absl::DataLossError("reading stdin failed");
  (*producer)->Close();  // Flushes: every callback has run.

  absl::MutexLock lock(&outcome->mu);
  if (inv.json) {
    JsonWriter w;
    w.BeginObject()
        .Key("topic")
        .String(topic)
        .Key("acks")
        .String(client::AcksName(options.acks))
        .Key("records")
        .Int(outcome->acked + outcome->failed)
        .Key("acknowledged")
        .Int(outcome->acked)
        .Key("failed")
        .Int(outcome->failed)
        .EndObject();
    PrintLine(w.str());
  }
  if (!stop.ok()) {
    if (outcome->acked + outcome->failed == 0) return stop;
    return absl::Status(
        stop.code(),
        absl::StrCat(stop.message(), " (of the ",
                     outcome->acked + outcome->failed, " records before it, ",
                     outcome->acked, " were acknowledged)"));
  }
  if (outcome->failed > 0) {
    const absl::Status& e = outcome->first_error;
    return absl::Status(
        e.code(),
        absl::StrCat(
            outcome->failed, " of ", lines, " records not acknowledged",
            client::IsIndeterminate(e) ? " (outcome unknown for some)" : "",
            ": ", e.message()));
  }
  return absl::OkStatus();
}

absl::Status Consume(const Invocation& inv,
                     const std::shared_ptr<Cluster>& cluster) {
  if (inv.Has("group")) {
    return absl::UnimplementedError(
        "consumer groups are not available yet; consume without --group");
  }
  const std::string topic = inv.args[0];
  int64_t max_messages = -1, timeout_ms = -1;
  if (inv.Has("max-messages")) {
    auto n =
        ParseIntFlag("max-messages", inv.Get("max-messages"), 1, INT64_MAX);
    if (!n.ok()) return n.status();
    max_messages = *n;
  }
  if (inv.Has("timeout-ms")) {
    auto n = ParseIntFlag("timeout-ms", inv.Get("timeout-ms"), 0, INT64_MAX);
    if (!n.ok()) return n.status();
    timeout_ms = *n;
  }
  const bool print_key = inv.Has("print-key");
  const std::string separator = inv.Get("key-separator", "\t");

  auto info = cluster->Topic(topic, /*refresh=*/true);
  if (!info.ok()) return info.status();
  std::vector<client::TopicPartition> partitions;
  std::optional<int64_t> offset;
  if (inv.Has("partition")) {
    auto p = ParseIntFlag("partition", inv.Get("partition"), 0,
                          (*info)->partitions_size() - 1);
    if (!p.ok()) {
      return absl::NotFoundError(absl::StrCat(
          "topic '", topic, "' has no partition ", inv.Get("partition"),
          " (it has ", (*info)->partitions_size(), ")"));
    }
    partitions.push_back({topic, static_cast<int32_t>(*p)});
    if (inv.Has("offset")) {
      auto o = ParseIntFlag("offset", inv.Get("offset"), 0, INT64_MAX);
      if (!o.ok()) return o.status();
      offset = *o;
    }
  } else {
    for (const auto& p : (*info)->partitions()) {
      partitions.push_back({topic, p.partition()});
    }
  }

  client::ConsumerOptions options;
  options.auto_offset_reset = inv.Has("from-beginning")
                                  ? client::OffsetReset::kEarliest
                                  : client::OffsetReset::kLatest;
  auto consumer = client::Consumer::Create(cluster, options);
  if (!consumer.ok()) return consumer.status();
  if (absl::Status s = (*consumer)->Assign(partitions); !s.ok()) return s;
  if (offset.has_value()) {
    if (absl::Status s = (*consumer)->Seek(partitions[0], *offset); !s.ok()) {
      return s;
    }
  }

  int64_t count = 0;
  absl::Time last_message = absl::Now();
  std::string out;
  while (max_messages < 0 || count < max_messages) {
    absl::Duration wait = absl::Milliseconds(500);
    if (timeout_ms >= 0) {
      const absl::Duration left =
          last_message + absl::Milliseconds(timeout_ms) - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      wait = std::min(wait, left);
    }
    auto records = (*consumer)->Poll(wait);
    if (!records.ok()) return records.status();
    if (records->empty()) continue;
    last_message = absl::Now();
    out.clear();
    for (const client::ConsumerRecord& r : *records) {
      if (max_messages >= 0 && count >= max_messages) break;
      ++count;
      if (inv.json) {
        JsonWriter w;
        w.BeginObject()
            .Key("topic")
            .String(r.topic)
            .Key("partition")
            .Int(r.partition)
            .Key("offset")
            .Int(r.offset)
            .Key("key");
        if (r.key.has_value()) {
          w.String(*r.key);
        } else {
          w.Null();
        }
        w.Key("value").String(r.value).Key("timestamp").Int(r.timestamp_ms);
        w.Key("headers").BeginArray();
        for (const auto& [k, v] : r.headers) {
          w.BeginObject()
              .Key("key")
              .String(k)
              .Key("value")
              .String(v)
              .EndObject();
        }
        w.EndArray().EndObject();
        absl::StrAppend(&out, w.str(), "\n");
      } else if (print_key) {
        absl::StrAppend(&out, r.key.has_value() ? *r.key : "null", separator,
                        r.value, "\n");
      } else {
        absl::StrAppend(&out, r.value, "\n");
      }
    }
    Print(out);
    if (fflush(stdout) != 0) {
      return absl::DataLossError("writing stdout failed");
    }
  }
  (*consumer)->Close();
  return absl::OkStatus();
}

absl::Status Run(const Invocation& inv) {
  if (absl::StartsWith(inv.command, "group ")) {
    return absl::UnimplementedError("consumer groups are not available yet");
  }
  client::ClientOptions options;
  options.bootstrap = inv.bootstrap;
  auto cluster = Cluster::Create(options);
  if (!cluster.ok()) return cluster.status();
  if (inv.command == "produce") return Produce(inv, *cluster);
  if (inv.command == "consume") return Consume(inv, *cluster);
  Admin admin(*cluster);
  if (inv.command == "cluster describe") return ClusterDescribe(inv, admin);
  if (inv.command == "topic create") return TopicCreate(inv, admin);
  if (inv.command == "topic list") return TopicList(inv, admin);
  if (inv.command == "topic describe") return TopicDescribe(inv, admin);
  if (inv.command == "topic delete") return TopicDelete(inv, admin);
  return absl::InternalError(absl::StrCat("no handler for ", inv.command));
}

// gRPC's own log lines would break the one-line error contract.
void QuietGrpcLog(gpr_log_func_args*) {}

}  // namespace
}  // namespace fjord::cli

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 2;  // Errors only: stderr is for the one-line reason.
  google::InitGoogleLogging(argv[0]);
  if (getenv("FJORD_CLI_DEBUG") == nullptr) {
    gpr_set_log_function(fjord::cli::QuietGrpcLog);
  } else {
    FLAGS_minloglevel = 0;
    FLAGS_v = 2;
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  const char* env = getenv("FJORD_BOOTSTRAP");
  auto inv = fjord::cli::ParseCommandLine(args, env == nullptr ? "" : env);
  if (!inv.ok()) {
    fprintf(stderr, "fjord: %s\n", std::string(inv.status().message()).c_str());
    return 2;
  }
  if (inv->help) {
    fjord::cli::Print(fjord::cli::Usage(inv->command));
    return 0;
  }
  absl::Status status = fjord::cli::Run(*inv);
  fflush(stdout);
  if (!status.ok()) {
    std::string message(status.message());
    for (char& c : message) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    if (message.empty()) message = absl::StatusCodeToString(status.code());
    fprintf(stderr, "fjord: %s\n", message.c_str());
    return 1;
  }
  return 0;
}
