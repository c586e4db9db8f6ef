// fjord: the command-line client (see `fjord --help` and DESIGN.md, "The
// contract users see"). Output goes to stdout; on failure, exactly one line
// "fjord: <reason>" goes to stderr and the exit code is non-zero (2 for a bad
// command line, 1 otherwise).
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
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
#include "client/group_admin.h"
#include "client/group_coordinator.h"
#include "client/producer.h"
#include "glog/logging.h"
#include "grpc/support/log.h"

namespace fjord::cli {
namespace {

using client::Admin;
using client::Cluster;
using client::GroupAdmin;

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
    w.Key("elr");
    WriteInts(w, p.elr());
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
    // Eligible leader replicas (KIP-966), only when there are some.
    if (p.elr_size() > 0) absl::StrAppend(&line, "\tElr: ", Ints(p.elr()));
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

// Set by SIGINT / SIGTERM while a group consumer runs: stop, commit, leave.
volatile sig_atomic_t g_stop = 0;

void OnStopSignal(int) { g_stop = 1; }

// SIGINT / SIGTERM end the consume loop; a second one kills at once.
void InstallStopHandlers() {
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

void AppendRecord(const Invocation& inv, const client::ConsumerRecord& r,
                  const std::string& separator, std::string* out) {
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
      w.BeginObject().Key("key").String(k).Key("value").String(v).EndObject();
    }
    w.EndArray().EndObject();
    absl::StrAppend(out, w.str(), "\n");
  } else if (inv.Has("print-key")) {
    absl::StrAppend(out, r.key.has_value() ? *r.key : "null", separator,
                    r.value, "\n");
  } else {
    absl::StrAppend(out, r.value, "\n");
  }
}

absl::Status Consume(const Invocation& inv,
                     const std::shared_ptr<Cluster>& cluster) {
  const std::string topic = inv.args[0];
  const bool group = inv.Has("group");
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
  const std::string separator = inv.Get("key-separator", "\t");

  client::ConsumerOptions options;
  options.auto_offset_reset = inv.Has("from-beginning")
                                  ? client::OffsetReset::kEarliest
                                  : client::OffsetReset::kLatest;
  if (group) {
    options.group_id = inv.Get("group");
    options.group_instance_id = inv.Get("group-instance-id");
    options.assignor = inv.Get("assignor", "uniform");
    options.enable_auto_commit = true;
    if (inv.Has("session-timeout-ms")) {
      auto ms = ParseIntFlag("session-timeout-ms",
                             inv.Get("session-timeout-ms"), 1, INT32_MAX);
      if (!ms.ok()) return ms.status();
      options.session_timeout = absl::Milliseconds(*ms);
    }
  }

  // Fail fast, with a clear message, on a topic that does not exist.
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

  auto consumer = client::Consumer::Create(cluster, options);
  if (!consumer.ok()) return consumer.status();
  if (group) {
    InstallStopHandlers();
    if (absl::Status s = (*consumer)->Subscribe({topic}); !s.ok()) return s;
  } else {
    if (absl::Status s = (*consumer)->Assign(partitions); !s.ok()) return s;
    if (offset.has_value()) {
      if (absl::Status s = (*consumer)->Seek(partitions[0], *offset); !s.ok()) {
        return s;
      }
    }
  }

  int64_t count = 0;
  absl::Time last_message = absl::Now();
  std::string out;
  while ((max_messages < 0 || count < max_messages) && !g_stop) {
    absl::Duration wait = absl::Milliseconds(group ? 250 : 500);
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
    // With --max-messages, the first record of each partition that is not
    // printed: the group's committed offset must not pass it.
    std::map<client::TopicPartition, int64_t> unprinted;
    for (const client::ConsumerRecord& r : *records) {
      if (max_messages >= 0 && count >= max_messages) {
        unprinted.emplace(client::TopicPartition{r.topic, r.partition},
                          r.offset);
        continue;
      }
      ++count;
      AppendRecord(inv, r, separator, &out);
    }
    Print(out);
    if (fflush(stdout) != 0) {
      return absl::DataLossError("writing stdout failed");
    }
    for (const auto& [tp, next] : unprinted) {
      if (absl::Status s = (*consumer)->Seek(tp, next); !s.ok()) return s;
    }
  }
  // In a group: commits the positions (the records printed) and leaves.
  if (absl::Status s = (*consumer)->Close(); !s.ok()) return s;
  return absl::OkStatus();
}

// Prints rows as columns separated by two spaces, each as wide as its widest
// cell (the last column unpadded).
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) {
        line.append(widths[i] - row[i].size() + 2, ' ');
      }
    }
    PrintLine(line);
  }
}

absl::Status GroupList(const Invocation& inv, GroupAdmin& admin) {
  auto list = admin.ListGroups();
  if (!list.ok()) return list.status();
  if (inv.json) {
    JsonWriter w;
    w.BeginObject().Key("groups").BeginArray();
    for (const auto& g : list->groups) {
      w.BeginObject()
          .Key("group_id")
          .String(g.group_id)
          .Key("state")
          .String(client::GroupStateName(g.state))
          .Key("members")
          .Int(g.members)
          .Key("coordinator_id")
          .Int(g.coordinator_id)
          .EndObject();
    }
    w.EndArray().Key("failed_brokers").BeginArray();
    for (const auto& [id, status] : list->failed) {
      w.BeginObject()
          .Key("id")
          .Int(id)
          .Key("error")
          .String(status.message())
          .EndObject();
    }
    w.EndArray().EndObject();
    PrintLine(w.str());
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"GROUP", "STATE", "MEMBERS", "COORDINATOR"}};
    for (const auto& g : list->groups) {
      rows.push_back({g.group_id, client::GroupStateName(g.state),
                      absl::StrCat(g.members), absl::StrCat(g.coordinator_id)});
    }
    PrintTable(rows);
  }
  if (!list->failed.empty()) {
    const auto& [id, status] = *list->failed.begin();
    return absl::Status(
        status.code(),
        absl::StrCat(list->failed.size(),
                     " broker(s) did not answer, so the "
                     "groups they coordinate are missing; broker ",
                     id, ": ", status.message()));
  }
  return absl::OkStatus();
}

void WriteTopicPartitions(
    JsonWriter& w,
    const google::protobuf::RepeatedPtrField<fjord::v1::TopicPartitions>& tps) {
  w.BeginArray();
  for (const auto& t : tps) {
    w.BeginObject().Key("topic").String(t.topic()).Key("partitions");
    WriteInts(w, t.partitions());
    w.EndObject();
  }
  w.EndArray();
}

absl::Status GroupDescribe(const Invocation& inv, GroupAdmin& admin) {
  const std::string group_id = inv.args[0];
  auto d = admin.DescribeGroup(group_id);
  if (!d.ok()) return d.status();

  // One row per partition with a committed offset or an owner.
  struct Row {
    const fjord::v1::CommittedOffset* committed = nullptr;
    const fjord::v1::GroupMember* owner = nullptr;
  };
  std::map<client::TopicPartition, Row> rows;
  for (const auto& o : d->offsets()) {
    if (o.offset() >= 0) rows[{o.topic(), o.partition()}].committed = &o;
  }
  std::vector<const fjord::v1::GroupMember*> idle_members;
  for (const auto& m : d->members()) {
    bool owns = false;
    for (const auto& t : m.assignment()) {
      for (int32_t p : t.partitions()) {
        rows[{t.topic(), p}].owner = &m;
        owns = true;
      }
    }
    if (!owns) idle_members.push_back(&m);
  }
  std::vector<client::TopicPartition> partitions;
  for (const auto& [tp, row] : rows) partitions.push_back(tp);
  const auto log_ends =
      admin.ListOffsets(partitions, fjord::v1::ListOffsetsRequest::LATEST);
  auto log_end =
      [&](const client::TopicPartition& tp) -> std::optional<int64_t> {
    auto it = log_ends.find(tp);
    if (it == log_ends.end() || !it->second.ok()) return std::nullopt;
    return *it->second;
  };

  if (inv.json) {
    JsonWriter w;
    w.BeginObject()
        .Key("group_id")
        .String(d->group_id())
        .Key("state")
        .String(client::GroupStateName(d->state()))
        .Key("group_epoch")
        .Int(d->group_epoch())
        .Key("assignor")
        .String(d->assignor())
        .Key("coordinator_id")
        .Int(d->coordinator_id())
        .Key("members")
        .BeginArray();
    for (const auto& m : d->members()) {
      w.BeginObject()
          .Key("member_id")
          .String(m.member_id())
          .Key("instance_id")
          .String(m.instance_id())
          .Key("member_epoch")
          .Int(m.member_epoch())
          .Key("subscribed_topics")
          .BeginArray();
      for (const auto& t : m.subscribed_topics()) w.String(t);
      w.EndArray().Key("assignment");
      WriteTopicPartitions(w, m.assignment());
      w.Key("target_assignment");
      WriteTopicPartitions(w, m.target_assignment());
      w.Key("session_timeout_ms")
          .Int(m.session_timeout_ms())
          .Key("departed")
          .Bool(m.departed())
          .EndObject();
    }
    w.EndArray().Key("partitions").BeginArray();
    for (const auto& [tp, row] : rows) {
      const std::optional<int64_t> end = log_end(tp);
      w.BeginObject()
          .Key("topic")
          .String(tp.topic)
          .Key("partition")
          .Int(tp.partition)
          .Key("current_offset");
      if (row.committed != nullptr) {
        w.Int(row.committed->offset());
      } else {
        w.Null();
      }
      w.Key("log_end_offset");
      if (end.has_value()) {
        w.Int(*end);
      } else {
        w.Null();
      }
      w.Key("lag");
      if (end.has_value() && row.committed != nullptr) {
        w.Int(*end - row.committed->offset());
      } else {
        w.Null();
      }
      w.Key("member_id");
      if (row.owner != nullptr) {
        w.String(row.owner->member_id());
      } else {
        w.Null();
      }
      w.Key("instance_id");
      if (row.owner != nullptr && !row.owner->instance_id().empty()) {
        w.String(row.owner->instance_id());
      } else {
        w.Null();
      }
      w.Key("metadata")
          .String(row.committed != nullptr ? row.committed->metadata() : "")
          .Key("commit_time_ms");
      if (row.committed != nullptr) {
        w.Int(row.committed->commit_time_ms());
      } else {
        w.Null();
      }
      w.EndObject();
    }
    w.EndArray().EndObject();
    PrintLine(w.str());
    return absl::OkStatus();
  }

  PrintLine(absl::StrCat(
      "Group: ", d->group_id(), "\tState: ", client::GroupStateName(d->state()),
      "\tEpoch: ", d->group_epoch(),
      "\tAssignor: ", d->assignor().empty() ? "-" : d->assignor(),
      "\tCoordinator: ", d->coordinator_id(),
      "\tMembers: ", d->members_size()));
  PrintLine("");
  std::vector<std::vector<std::string>> table = {
      {"GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
       "CONSUMER-ID", "INSTANCE-ID"}};
  auto or_dash = [](const std::string& s) { return s.empty() ? "-" : s; };
  for (const auto& [tp, row] : rows) {
    const std::optional<int64_t> end = log_end(tp);
    table.push_back(
        {d->group_id(), tp.topic, absl::StrCat(tp.partition),
         row.committed != nullptr ? absl::StrCat(row.committed->offset()) : "-",
         end.has_value() ? absl::StrCat(*end) : "-",
         end.has_value() && row.committed != nullptr
             ? absl::StrCat(*end - row.committed->offset())
             : "-",
         row.owner != nullptr ? row.owner->member_id() : "-",
         row.owner != nullptr ? or_dash(row.owner->instance_id()) : "-"});
  }
  for (const fjord::v1::GroupMember* m : idle_members) {
    table.push_back({d->group_id(), "-", "-", "-", "-", "-", m->member_id(),
                     or_dash(m->instance_id())});
  }
  PrintTable(table);
  return absl::OkStatus();
}

absl::Status GroupResetOffsets(const Invocation& inv,
                               const std::shared_ptr<Cluster>& cluster,
                               GroupAdmin& admin) {
  const std::string group_id = inv.args[0];
  if (absl::Status s = client::ValidateGroupId(group_id); !s.ok()) return s;

  // The partitions to reset.
  std::vector<client::TopicPartition> partitions;
  auto add_topic = [&](const std::string& topic,
                       const std::vector<int32_t>& only) -> absl::Status {
    auto info = cluster->Topic(topic, /*refresh=*/true);
    if (!info.ok()) return info.status();
    const int32_t count = (*info)->partitions_size();
    if (only.empty()) {
      for (int32_t p = 0; p < count; ++p) partitions.push_back({topic, p});
      return absl::OkStatus();
    }
    for (int32_t p : only) {
      if (p >= count) {
        return absl::NotFoundError(absl::StrCat("topic '", topic,
                                                "' has no partition ", p,
                                                " (it has ", count, ")"));
      }
      partitions.push_back({topic, p});
    }
    return absl::OkStatus();
  };
  if (inv.Has("all-topics")) {
    auto offsets = admin.FetchOffsets(group_id);
    if (!offsets.ok()) return offsets.status();
    std::set<std::string> topics;
    for (const auto& [tp, o] : *offsets) topics.insert(tp.topic);
    if (topics.empty()) {
      return absl::NotFoundError(absl::StrCat(
          "group '", group_id,
          "' has no committed offsets: name the topics with --topic"));
    }
    for (const std::string& t : topics) {
      if (absl::Status s = add_topic(t, {}); !s.ok()) return s;
    }
  } else {
    std::set<std::string> seen;
    for (const std::string& value : inv.GetAll("topic")) {
      auto spec = ParseTopicPartitions(value);
      if (!spec.ok()) return spec.status();
      if (!seen.insert(spec->topic).second) {
        return UsageError(
            absl::StrCat("--topic ", spec->topic, " given more than once"));
      }
      if (absl::Status s = add_topic(spec->topic, spec->partitions); !s.ok()) {
        return s;
      }
    }
  }

  // Where each one goes.
  auto all_ok =
      [](std::map<client::TopicPartition, absl::StatusOr<int64_t>> answers)
      -> absl::StatusOr<std::map<client::TopicPartition, int64_t>> {
    std::map<client::TopicPartition, int64_t> out;
    for (auto& [tp, a] : answers) {
      if (!a.ok()) return a.status();
      out[tp] = *a;
    }
    return out;
  };
  using Spec = fjord::v1::ListOffsetsRequest;
  std::map<client::TopicPartition, int64_t> target;
  if (inv.Has("to-earliest") || inv.Has("to-latest")) {
    auto offsets = all_ok(admin.ListOffsets(
        partitions, inv.Has("to-earliest") ? Spec::EARLIEST : Spec::LATEST));
    if (!offsets.ok()) return offsets.status();
    target = *std::move(offsets);
  } else if (inv.Has("to-datetime")) {
    auto ms = ParseDateTime(inv.Get("to-datetime"));
    if (!ms.ok()) return ms.status();
    auto offsets = all_ok(admin.ListOffsets(partitions, Spec::TIMESTAMP, *ms));
    if (!offsets.ok()) return offsets.status();
    target = *std::move(offsets);
  } else {
    // --to-offset / --shift-by: clamped to [log start, log end] as Kafka does.
    auto earliest = all_ok(admin.ListOffsets(partitions, Spec::EARLIEST));
    if (!earliest.ok()) return earliest.status();
    auto latest = all_ok(admin.ListOffsets(partitions, Spec::LATEST));
    if (!latest.ok()) return latest.status();
    std::map<client::TopicPartition, fjord::v1::CommittedOffset> committed;
    int64_t n = 0;
    if (inv.Has("to-offset")) {
      auto o = ParseIntFlag("to-offset", inv.Get("to-offset"), 0, INT64_MAX);
      if (!o.ok()) return o.status();
      n = *o;
    } else {
      auto o = ParseIntFlag("shift-by", inv.Get("shift-by"), INT64_MIN / 2,
                            INT64_MAX / 2);
      if (!o.ok()) return o.status();
      n = *o;
      auto c = admin.FetchOffsets(group_id, partitions);
      if (!c.ok()) return c.status();
      committed = *std::move(c);
    }
    for (const client::TopicPartition& tp : partitions) {
      int64_t offset = n;
      if (inv.Has("shift-by")) {
        auto it = committed.find(tp);
        if (it == committed.end()) {
          return absl::FailedPreconditionError(
              absl::StrCat("cannot shift ", tp.ToString(), ": group '",
                           group_id, "' has no committed offset for it"));
        }
        offset = it->second.offset() + n;
      }
      target[tp] = std::clamp(offset, (*earliest)[tp],
                              std::max((*earliest)[tp], (*latest)[tp]));
    }
  }

  const bool dry_run = inv.Has("dry-run");
  if (!dry_run) {
    if (absl::Status s = admin.CommitOffsets(group_id, target); !s.ok()) {
      return s;
    }
  }
  if (inv.json) {
    JsonWriter w;
    w.BeginObject()
        .Key("group_id")
        .String(group_id)
        .Key("dry_run")
        .Bool(dry_run)
        .Key("partitions")
        .BeginArray();
    for (const auto& [tp, offset] : target) {
      w.BeginObject()
          .Key("topic")
          .String(tp.topic)
          .Key("partition")
          .Int(tp.partition)
          .Key("new_offset")
          .Int(offset)
          .EndObject();
    }
    w.EndArray().EndObject();
    PrintLine(w.str());
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"}};
    for (const auto& [tp, offset] : target) {
      rows.push_back({group_id, tp.topic, absl::StrCat(tp.partition),
                      absl::StrCat(offset)});
    }
    PrintTable(rows);
  }
  return absl::OkStatus();
}

absl::Status GroupDelete(const Invocation& inv, GroupAdmin& admin) {
  const std::string group_id = inv.args[0];
  if (absl::Status s = admin.DeleteGroup(group_id); !s.ok()) return s;
  if (inv.json) {
    JsonWriter w;
    w.BeginObject().Key("deleted").String(group_id).EndObject();
    PrintLine(w.str());
  } else {
    PrintLine(absl::StrCat("Deleted group ", group_id, "."));
  }
  return absl::OkStatus();
}

absl::Status Run(const Invocation& inv) {
  client::ClientOptions options;
  options.bootstrap = inv.bootstrap;
  auto cluster = Cluster::Create(options);
  if (!cluster.ok()) return cluster.status();
  if (inv.command == "produce") return Produce(inv, *cluster);
  if (inv.command == "consume") return Consume(inv, *cluster);
  if (absl::StartsWith(inv.command, "group ")) {
    GroupAdmin groups(*cluster);
    if (inv.command == "group list") return GroupList(inv, groups);
    if (inv.command == "group describe") return GroupDescribe(inv, groups);
    if (inv.command == "group reset-offsets") {
      return GroupResetOffsets(inv, *cluster, groups);
    }
    if (inv.command == "group delete") return GroupDelete(inv, groups);
  }
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
