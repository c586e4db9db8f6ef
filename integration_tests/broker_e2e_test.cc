// End-to-end tests of a single fjord-broker process on 127.0.0.1: the CLI round
// trip across a crash, bad input over raw gRPC, fetch long-polling, clean
// shutdown, and start-up topic creation.
//
// Every wait is bounded by a deadline (RPC deadlines, Process::Wait, health
// polling); nothing sleeps in place of a condition.
#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fjord/v1/admin.grpc.pb.h"
#include "fjord/v1/fetch.grpc.pb.h"
#include "fjord/v1/produce.grpc.pb.h"
#include "fjord/v1/record.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "integration_tests/broker_fixture.h"
#include "integration_tests/grpc_assertions.h"
#include "integration_tests/process.h"

namespace fjord::testing {
namespace {

using ::fjord::v1::ErrorInfo;
using ::fjord::v1::ListOffsetsRequest;

// ---------------------------------------------------------------------------
// Raw gRPC access to one broker.

class Api {
 public:
  explicit Api(std::shared_ptr<grpc::Channel> channel)
      : admin_(fjord::v1::AdminService::NewStub(channel)),
        produce_(fjord::v1::ProduceService::NewStub(channel)),
        fetch_(fjord::v1::FetchService::NewStub(channel)),
        health_(grpc::health::v1::Health::NewStub(channel)) {}

  grpc::Status CreateTopics(const fjord::v1::CreateTopicsRequest& req,
                            fjord::v1::CreateTopicsResponse* resp = nullptr) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kRpcTimeout);
    fjord::v1::CreateTopicsResponse ignored;
    return admin_->CreateTopics(&ctx, req, resp != nullptr ? resp : &ignored);
  }

  grpc::Status CreateTopic(
      const std::string& name, int partitions, int replication_factor,
      const std::map<std::string, std::string>& configs = {}) {
    fjord::v1::CreateTopicsRequest req;
    fjord::v1::NewTopic* t = req.add_topics();
    t->set_name(name);
    t->set_partitions(partitions);
    t->set_replication_factor(replication_factor);
    for (const auto& [k, v] : configs) (*t->mutable_configs())[k] = v;
    return CreateTopics(req);
  }

  grpc::Status DeleteTopic(const std::string& name) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kRpcTimeout);
    fjord::v1::DeleteTopicsRequest req;
    req.add_topics(name);
    fjord::v1::DeleteTopicsResponse resp;
    return admin_->DeleteTopics(&ctx, req, &resp);
  }

  grpc::Status ListTopics(std::vector<std::string>* names) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kRpcTimeout);
    fjord::v1::ListTopicsRequest req;
    fjord::v1::ListTopicsResponse resp;
    grpc::Status s = admin_->ListTopics(&ctx, req, &resp);
    names->assign(resp.topics().begin(), resp.topics().end());
    std::sort(names->begin(), names->end());
    return s;
  }

  grpc::Status Describe(const std::string& name,
                        fjord::v1::TopicDescription* out) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kRpcTimeout);
    fjord::v1::DescribeTopicsRequest req;
    req.add_topics(name);
    fjord::v1::DescribeTopicsResponse resp;
    grpc::Status s = admin_->DescribeTopics(&ctx, req, &resp);
    if (s.ok() && resp.topics_size() != 1) {
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          absl::StrCat("DescribeTopics returned ",
                                       resp.topics_size(), " topics for one"));
    }
    if (s.ok()) *out = resp.topics(0);
    return s;
  }

  grpc::Status Produce(const fjord::v1::ProduceRequest& req,
                       fjord::v1::ProduceResponse* resp = nullptr) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kRpcTimeout);
    fjord::v1::ProduceResponse ignored;
    return produce_->Produce(&ctx, req, resp != nullptr ? resp : &ignored);
  }

  // Produces `values` (with `key` when set) to one partition at acks=all.
  grpc::Status ProduceValues(const std::string& topic, int partition,
                             const std::vector<std::string>& values,
                             std::optional<std::string> key = std::nullopt,
                             fjord::v1::ProduceResponse* resp = nullptr) {
    fjord::v1::ProduceRequest req;
    req.set_topic(topic);
    req.set_partition(partition);
    req.set_acks(fjord::v1::ACKS_ALL);
    for (const std::string& v : values) {
      fjord::v1::Record* r = req.add_records();
      if (key.has_value()) r->set_key(*key);
      r->set_value(v);
    }
    return Produce(req, resp);
  }

  grpc::Status ListOffsets(const std::string& topic, int partition,
                           ListOffsetsRequest::Spec spec, int64_t* offset) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kRpcTimeout);
    ListOffsetsRequest req;
    req.set_topic(topic);
    req.set_partition(partition);
    req.set_spec(spec);
    fjord::v1::ListOffsetsResponse resp;
    grpc::Status s = fetch_->ListOffsets(&ctx, req, &resp);
    if (offset != nullptr) *offset = resp.offset();
    return s;
  }

  // Opens a Fetch stream and returns its first response, or the stream's status
  // when it ends without one.
  grpc::Status FetchFirst(const fjord::v1::FetchRequest& req,
                          fjord::v1::FetchResponse* first = nullptr) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kRpcTimeout);
    std::unique_ptr<grpc::ClientReader<fjord::v1::FetchResponse>> reader =
        fetch_->Fetch(&ctx, req);
    fjord::v1::FetchResponse resp;
    if (reader->Read(&resp)) {
      if (first != nullptr) *first = resp;
      ctx.TryCancel();
      while (reader->Read(&resp)) {
      }  // ends promptly after the cancel
      (void)reader->Finish();
      return grpc::Status::OK;
    }
    return reader->Finish();
  }

  grpc::Status FetchFirst(const std::string& topic, int partition,
                          int64_t offset,
                          fjord::v1::FetchResponse* first = nullptr) {
    fjord::v1::FetchRequest req;
    req.set_topic(topic);
    req.set_partition(partition);
    req.set_offset(offset);
    req.set_max_wait_ms(100);
    return FetchFirst(req, first);
  }

  // Reads offsets [from, to) of a partition through a Fetch stream.
  absl::StatusOr<std::vector<fjord::v1::ConsumedRecord>> Read(
      const std::string& topic, int partition, int64_t from, int64_t to) {
    std::vector<fjord::v1::ConsumedRecord> out;
    if (from >= to) return out;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(20));
    fjord::v1::FetchRequest req;
    req.set_topic(topic);
    req.set_partition(partition);
    req.set_offset(from);
    req.set_max_wait_ms(100);
    auto reader = fetch_->Fetch(&ctx, req);
    fjord::v1::FetchResponse resp;
    while (static_cast<int64_t>(out.size()) < to - from &&
           reader->Read(&resp)) {
      for (const auto& r : resp.records()) {
        if (r.offset() < to) out.push_back(r);
      }
    }
    const bool complete = static_cast<int64_t>(out.size()) == to - from;
    ctx.TryCancel();
    while (reader->Read(&resp)) {
    }
    grpc::Status s = reader->Finish();
    if (!complete) {
      return absl::InternalError(
          absl::StrCat("read ", out.size(), " of ", to - from, " records of ",
                       topic, "-", partition, " from offset ", from,
                       "; stream ended with ", GrpcToString(s)));
    }
    return out;
  }

  // Whether health answers SERVING.
  bool Serving() {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(5));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    return health_->Check(&ctx, req, &resp).ok() &&
           resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  }

  fjord::v1::FetchService::Stub* fetch_stub() { return fetch_.get(); }

 private:
  std::unique_ptr<fjord::v1::AdminService::Stub> admin_;
  std::unique_ptr<fjord::v1::ProduceService::Stub> produce_;
  std::unique_ptr<fjord::v1::FetchService::Stub> fetch_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// `bytes` for a snapshot line: short values verbatim, long ones summarised.
std::string Summarize(const std::string& bytes) {
  if (bytes.size() <= 40) return absl::StrCat("\"", bytes, "\"");
  return absl::StrCat("\"", bytes.substr(0, 16), "...\"(", bytes.size(),
                      " bytes, hash ", std::hash<std::string>()(bytes), ")");
}

// A printable picture of a topic's stored data: per partition the earliest and
// latest offsets, then every record. Equal snapshots mean unchanged data.
absl::StatusOr<std::vector<std::string>> Snapshot(Api& api,
                                                  const std::string& topic,
                                                  int partitions) {
  std::vector<std::string> lines;
  for (int p = 0; p < partitions; ++p) {
    int64_t earliest = -1, latest = -1;
    grpc::Status s =
        api.ListOffsets(topic, p, ListOffsetsRequest::EARLIEST, &earliest);
    if (s.ok()) {
      s = api.ListOffsets(topic, p, ListOffsetsRequest::LATEST, &latest);
    }
    if (!s.ok()) {
      return absl::InternalError(
          absl::StrCat("ListOffsets ", topic, "-", p, ": ", GrpcToString(s)));
    }
    lines.push_back(absl::StrCat(topic, "-", p, " earliest=", earliest,
                                 " latest=", latest));
    absl::StatusOr<std::vector<fjord::v1::ConsumedRecord>> records =
        api.Read(topic, p, earliest, latest);
    if (!records.ok()) return records.status();
    for (const auto& r : *records) {
      std::string headers;
      for (const auto& h : r.headers()) {
        absl::StrAppend(&headers, " ", h.key(), ":", Summarize(h.value()));
      }
      lines.push_back(
          absl::StrCat(topic, "-", p, "@", r.offset(),
                       " key=", r.has_key() ? Summarize(r.key()) : "null",
                       " value=", Summarize(r.value()), " headers=[", headers,
                       " ] ts=", r.timestamp_ms()));
    }
  }
  return lines;
}

// Equal snapshots; otherwise the first few differing lines, not the whole dump.
::testing::AssertionResult SameSnapshot(const std::vector<std::string>& before,
                                        const std::vector<std::string>& after) {
  if (before == after) return ::testing::AssertionSuccess();
  ::testing::AssertionResult failure = ::testing::AssertionFailure();
  failure << "stored data changed (" << before.size() << " lines before, "
          << after.size() << " after); first differences:";
  int shown = 0;
  for (size_t i = 0; i < std::max(before.size(), after.size()) && shown < 5;
       ++i) {
    const std::string b = i < before.size() ? before[i] : "(none)";
    const std::string a = i < after.size() ? after[i] : "(none)";
    if (a == b) continue;
    failure << "\n  line " << i << " before: " << b << "\n  line " << i
            << " after:  " << a;
    ++shown;
  }
  return failure;
}

// ---------------------------------------------------------------------------
// Minimal JSON: one flat object per line, as the CLI's `-o json` prints
// records.

// Parses a flat JSON object of strings, numbers, booleans and null into
// key -> raw value (strings unescaped, others as written). nullopt when `line`
// is not such an object.
std::optional<std::map<std::string, std::string>> ParseFlatJsonObject(
    absl::string_view line) {
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i])))
      ++i;
  };
  auto parse_string = [&](std::string* out) -> bool {
    if (i >= line.size() || line[i] != '"') return false;
    ++i;
    while (i < line.size() && line[i] != '"') {
      char c = line[i++];
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i >= line.size()) return false;
      char e = line[i++];
      switch (e) {
        case 'n':
          out->push_back('\n');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'u': {
          if (i + 4 > line.size()) return false;
          int cp = 0;
          if (!absl::SimpleHexAtoi(line.substr(i, 4), &cp)) return false;
          i += 4;
          if (cp < 0x80) {
            out->push_back(static_cast<char>(cp));
          } else {
            out->append("\xEF\xBF\xBD");  // tests only use ASCII
          }
          break;
        }
        default:
          out->push_back(e);
      }
    }
    if (i >= line.size()) return false;
    ++i;
    return true;
  };
  std::map<std::string, std::string> obj;
  skip_ws();
  if (i >= line.size() || line[i] != '{') return std::nullopt;
  ++i;
  skip_ws();
  if (i < line.size() && line[i] == '}') return obj;
  while (true) {
    skip_ws();
    std::string key;
    if (!parse_string(&key)) return std::nullopt;
    skip_ws();
    if (i >= line.size() || line[i] != ':') return std::nullopt;
    ++i;
    skip_ws();
    std::string value;
    if (i < line.size() && line[i] == '"') {
      if (!parse_string(&value)) return std::nullopt;
    } else {
      size_t start = i;
      while (i < line.size() && line[i] != ',' && line[i] != '}') ++i;
      value = std::string(
          absl::StripTrailingAsciiWhitespace(line.substr(start, i - start)));
      // Nested values are not parsed; only empty ones ("headers":[]) pass.
      if (value.empty() || ((value[0] == '{' || value[0] == '[') &&
                            value != "[]" && value != "{}")) {
        return std::nullopt;
      }
    }
    obj[key] = value;
    skip_ws();
    if (i < line.size() && line[i] == ',') {
      ++i;
      continue;
    }
    if (i < line.size() && line[i] == '}') return obj;
    return std::nullopt;
  }
}

std::vector<std::string> NonEmptyLines(absl::string_view text) {
  std::vector<std::string> out;
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    if (!l.empty()) out.emplace_back(l);
  }
  return out;
}

// ---------------------------------------------------------------------------
// a. CLI round trip across a SIGKILL

// The sequence number in a value "seq=000123 ...", or -1.
int64_t SeqOf(absl::string_view value) {
  if (!absl::ConsumePrefix(&value, "seq=")) return -1;
  int64_t seq;
  if (!absl::SimpleAtoi(value.substr(0, value.find(' ')), &seq)) return -1;
  return seq;
}

TEST(CliRoundTripTest, TenThousandLinesSurviveSigkillInOrderPerPartition) {
  BrokerProcess broker;
  ASSERT_OK(broker.Start());

  absl::StatusOr<CommandResult> r =
      broker.RunCli({"topic", "create", "t", "--partitions", "3",
                     "--replication-factor", "1"});
  ASSERT_OK(r);
  ASSERT_TRUE(r->exit.ExitedWith(0)) << r->Describe();

  // Creating it again fails with a one-line reason.
  r = broker.RunCli({"topic", "create", "t", "--partitions", "3",
                     "--replication-factor", "1"});
  ASSERT_OK(r);
  EXPECT_FALSE(r->exit.ExitedWith(0)) << r->Describe();
  EXPECT_EQ(NonEmptyLines(r->err).size(), 1u) << r->Describe();
  EXPECT_TRUE(absl::StrContains(r->err, "exists")) << r->Describe();

  // 4,000 keyed lines (7 keys), then 6,000 without keys; the sequence number in
  // each value is its production order.
  constexpr int kKeyed = 4000;
  constexpr int kTotal = 10000;
  std::string keyed_input, plain_input;
  std::map<int64_t, std::string> key_of;  // seq -> key, for keyed lines
  for (int seq = 0; seq < kTotal; ++seq) {
    std::string value =
        absl::StrFormat("seq=%06d payload-%d", seq, seq * 7919 % 10007);
    if (seq < kKeyed) {
      std::string key = absl::StrCat("key-", seq % 7);
      key_of[seq] = key;
      absl::StrAppend(&keyed_input, key, "|", value, "\n");
    } else {
      absl::StrAppend(&plain_input, value, "\n");
    }
  }
  r = broker.RunCli({"produce", "t", "--key-separator", "|"}, keyed_input);
  ASSERT_OK(r);
  ASSERT_TRUE(r->exit.ExitedWith(0)) << r->Describe();
  r = broker.RunCli({"produce", "t"}, plain_input);
  ASSERT_OK(r);
  ASSERT_TRUE(r->exit.ExitedWith(0)) << r->Describe();

  // Every acknowledged record must survive a crash (fsync=always).
  ASSERT_OK(broker.Kill());
  ASSERT_OK(broker.Start());

  // Per partition, from offset 0: values in offset order, keys printed.
  std::map<int64_t, int> partition_of;  // seq -> partition
  int total = 0;
  for (int p = 0; p < 3; ++p) {
    r = broker.RunCli({"consume", "t", "--partition", absl::StrCat(p),
                       "--offset", "0", "--timeout-ms", "2000", "--print-key",
                       "--key-separator", "|"});
    ASSERT_OK(r);
    ASSERT_TRUE(r->exit.ExitedWith(0)) << r->Describe();
    int64_t last_seq = -1;
    for (const std::string& line : NonEmptyLines(r->out)) {
      ++total;
      std::vector<std::string> kv =
          absl::StrSplit(line, absl::MaxSplits('|', 1));
      ASSERT_EQ(kv.size(), 2u) << "partition " << p << " line: " << line;
      const int64_t seq = SeqOf(kv[1]);
      ASSERT_GE(seq, 0) << "partition " << p << " line: " << line;
      ASSERT_LT(seq, kTotal) << line;
      EXPECT_GT(seq, last_seq)
          << "partition " << p << " out of production order at: " << line;
      last_seq = seq;
      EXPECT_TRUE(partition_of.emplace(seq, p).second)
          << "seq " << seq << " read twice (partitions " << partition_of[seq]
          << " and " << p << ")";
      if (seq < kKeyed) {
        EXPECT_EQ(kv[0], key_of[seq]) << line;
      } else {
        EXPECT_EQ(kv[0], "null") << line;
      }
    }
  }
  EXPECT_EQ(total, kTotal);
  EXPECT_EQ(partition_of.size(), static_cast<size_t>(kTotal));

  // Keyed records of one key all landed in one partition.
  std::map<std::string, std::set<int>> partitions_of_key;
  for (const auto& [seq, key] : key_of) {
    if (partition_of.count(seq))
      partitions_of_key[key].insert(partition_of[seq]);
  }
  for (const auto& [key, parts] : partitions_of_key) {
    EXPECT_EQ(parts.size(), 1u)
        << key << " spread over " << parts.size() << " partitions";
  }

  // The whole topic as JSON, from the beginning: the same 10,000 records.
  r = broker.RunCli({"consume", "t", "--from-beginning", "--timeout-ms", "3000",
                     "-o", "json"});
  ASSERT_OK(r);
  ASSERT_TRUE(r->exit.ExitedWith(0)) << r->Describe();
  std::vector<std::string> json_lines = NonEmptyLines(r->out);
  EXPECT_EQ(json_lines.size(), static_cast<size_t>(kTotal));
  std::set<int64_t> seen;
  std::map<int, int64_t> last_seq_in;
  for (const std::string& line : json_lines) {
    std::optional<std::map<std::string, std::string>> obj =
        ParseFlatJsonObject(line);
    ASSERT_TRUE(obj.has_value()) << "not a flat JSON object: " << line;
    ASSERT_TRUE(obj->count("value") && obj->count("partition") &&
                obj->count("offset"))
        << "missing value/partition/offset: " << line;
    const int64_t seq = SeqOf((*obj)["value"]);
    int partition = -1;
    ASSERT_TRUE(absl::SimpleAtoi((*obj)["partition"], &partition)) << line;
    EXPECT_TRUE(seen.insert(seq).second) << "duplicate: " << line;
    EXPECT_EQ(partition_of[seq], partition) << line;
    auto it = last_seq_in.find(partition);
    if (it != last_seq_in.end()) {
      EXPECT_GT(seq, it->second)
          << "partition " << partition << " out of order at: " << line;
    }
    last_seq_in[partition] = seq;
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kTotal));

  // Metadata survived too.
  r = broker.RunCli({"topic", "list"});
  ASSERT_OK(r);
  ASSERT_TRUE(r->exit.ExitedWith(0)) << r->Describe();
  EXPECT_EQ(NonEmptyLines(r->out), std::vector<std::string>{"t"}) << r->out;

  r = broker.RunCli({"topic", "describe", "t"});
  ASSERT_OK(r);
  ASSERT_TRUE(r->exit.ExitedWith(0)) << r->Describe();
  EXPECT_TRUE(absl::StrContains(r->out, "Topic: t\t")) << r->out;
  EXPECT_TRUE(absl::StrContains(r->out, "PartitionCount: 3")) << r->out;
  EXPECT_TRUE(absl::StrContains(r->out, "ReplicationFactor: 1")) << r->out;

  // The broker's own description: 3 partitions holding 10,000 records, which
  // the CLI's JSON description repeats.
  Api api(broker.channel());
  fjord::v1::TopicDescription desc;
  ASSERT_GRPC_OK(api.Describe("t", &desc));
  EXPECT_EQ(desc.topic().partitions_size(), 3);
  int64_t sum = 0;
  for (const auto& o : desc.offsets()) {
    sum += o.high_watermark() - o.log_start_offset();
  }
  EXPECT_EQ(sum, kTotal);
  r = broker.RunCli({"topic", "describe", "t", "-o", "json"});
  ASSERT_OK(r);
  ASSERT_TRUE(r->exit.ExitedWith(0)) << r->Describe();
  EXPECT_TRUE(absl::StrContains(r->out, "\"partition_count\":3")) << r->out;
  for (const auto& o : desc.offsets()) {
    EXPECT_TRUE(absl::StrContains(
        r->out, absl::StrCat("\"high_watermark\":", o.high_watermark())))
        << "partition " << o.partition() << ": " << r->out;
  }
}

// Every failing CLI command exits non-zero with exactly one line on stderr that
// names what was wrong, and leaves stdout empty.
TEST(CliErrorsTest, FailuresExitNonZeroWithOneLineReason) {
  BrokerProcess broker;
  ASSERT_OK(broker.Start());
  struct Case {
    std::vector<std::string> args;
    std::string stdin_text;
    std::string mention;
  };
  const std::vector<Case> cases = {
      {{"topic", "create", "bad/name", "--partitions", "1"}, "", "bad/name"},
      {{"topic", "create", "zero", "--partitions", "0"}, "", "partitions"},
      {{"topic", "create", "rf", "--replication-factor", "3"},
       "",
       "replication factor"},
      {{"topic", "describe", "missing"}, "", "missing"},
      {{"topic", "delete", "missing"}, "", "missing"},
      {{"consume", "missing", "--timeout-ms", "500"}, "", "missing"},
      {{"produce", "missing"}, "a\nb\n", "missing"},
      {{"topic", "frobnicate"}, "", "frobnicate"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    absl::StatusOr<CommandResult> r =
        broker.RunCli(c.args, c.stdin_text, absl::Seconds(30));
    ASSERT_OK(r);
    EXPECT_FALSE(r->exit.ExitedWith(0)) << r->Describe();
    EXPECT_FALSE(r->exit.exit_code == std::nullopt) << r->Describe();
    EXPECT_EQ(NonEmptyLines(r->err).size(), 1u) << r->Describe();
    EXPECT_TRUE(absl::StrContains(r->err, c.mention)) << r->Describe();
    EXPECT_EQ(r->out, "") << r->Describe();
  }
  // None of it created anything.
  absl::StatusOr<CommandResult> r = broker.RunCli({"topic", "list"});
  ASSERT_OK(r);
  EXPECT_TRUE(r->exit.ExitedWith(0)) << r->Describe();
  EXPECT_EQ(r->out, "");
  EXPECT_TRUE(broker.Running());
}

// ---------------------------------------------------------------------------
// b. Bad input: exact statuses, no harm done

constexpr char kData[] = "data";  // 3 partitions, records in each
constexpr int kDataPartitions = 3;
constexpr char kSmall[] = "small";  // max.message.bytes=1024
// The broker's --max-batch-bytes in these tests.
constexpr int kMaxBatchBytes = 64 << 10;

class BadInputTest : public ::testing::Test {
 protected:
  BadInputTest()
      : broker_(BrokerProcess::Options{
            .extra_args = {
                absl::StrCat("--max-batch-bytes=", kMaxBatchBytes)}}) {}

  void SetUp() override {
    ASSERT_OK(broker_.Start());
    api_ = std::make_unique<Api>(broker_.channel());
    ASSERT_GRPC_OK(api_->CreateTopic(kData, kDataPartitions, 1));
    ASSERT_GRPC_OK(
        api_->CreateTopic(kSmall, 1, 1, {{"max.message.bytes", "1024"}}));
    for (int p = 0; p < kDataPartitions; ++p) {
      for (int batch = 0; batch < 2; ++batch) {
        std::vector<std::string> values;
        for (int i = 0; i < 5; ++i)
          values.push_back(absl::StrCat("v", p, "-", batch, "-", i));
        ASSERT_GRPC_OK(api_->ProduceValues(
            kData, p, values,
            batch == 0 ? std::optional<std::string>("k") : std::nullopt));
      }
    }
    ASSERT_GRPC_OK(api_->ProduceValues(kSmall, 0, {std::string(1000, 's')}));
    ASSERT_GRPC_OK(api_->ListTopics(&topics_before_));
    ASSERT_EQ(topics_before_, (std::vector<std::string>{kData, kSmall}));
    ASSERT_OK(data_before_ = Snapshot());
  }

  // After every bad request: still serving, same topics, same data.
  void TearDown() override {
    if (api_ == nullptr) return;
    EXPECT_TRUE(broker_.Running()) << "the broker died";
    EXPECT_TRUE(api_->Serving()) << "health is not SERVING after bad input";
    std::vector<std::string> topics;
    EXPECT_GRPC_OK(api_->ListTopics(&topics));
    EXPECT_EQ(topics, topics_before_);
    absl::StatusOr<std::vector<std::string>> after = Snapshot();
    ASSERT_OK(after);
    EXPECT_TRUE(SameSnapshot(*data_before_, *after));
  }

  absl::StatusOr<std::vector<std::string>> Snapshot() {
    absl::StatusOr<std::vector<std::string>> a =
        ::fjord::testing::Snapshot(*api_, kData, kDataPartitions);
    if (!a.ok()) return a;
    absl::StatusOr<std::vector<std::string>> b =
        ::fjord::testing::Snapshot(*api_, kSmall, 1);
    if (!b.ok()) return b;
    a->insert(a->end(), b->begin(), b->end());
    return a;
  }

  fjord::v1::CreateTopicsRequest OneTopic(const std::string& name,
                                          int partitions, int rf) {
    fjord::v1::CreateTopicsRequest req;
    fjord::v1::NewTopic* t = req.add_topics();
    t->set_name(name);
    t->set_partitions(partitions);
    t->set_replication_factor(rf);
    return req;
  }

  BrokerProcess broker_;
  std::unique_ptr<Api> api_;
  std::vector<std::string> topics_before_;
  absl::StatusOr<std::vector<std::string>> data_before_;
};

TEST_F(BadInputTest, CreateTopicsRejectsInvalidNames) {
  for (const std::string& name :
       {std::string(""), std::string("."), std::string(".."),
        std::string(250, 'a'), std::string("a b"), std::string("a/b"),
        std::string("caf\xC3\xA9")}) {
    SCOPED_TRACE(absl::StrCat("name \"", name.substr(0, 20), "\" (",
                              name.size(), " chars)"));
    EXPECT_TRUE(IsRejected(api_->CreateTopic(name, 1, 1),
                           {grpc::StatusCode::INVALID_ARGUMENT,
                            {ErrorInfo::INVALID_TOPIC_NAME},
                            {"topic name"}}));
  }
  // The longest legal name is accepted (so 250 failed for its length).
  const std::string longest(249, 'b');
  EXPECT_GRPC_OK(api_->CreateTopic(longest, 1, 1));
  EXPECT_GRPC_OK(api_->DeleteTopic(longest));
}

TEST_F(BadInputTest, CreateTopicsRejectsPartitionCountBelowOne) {
  for (int partitions : {0, -1}) {
    SCOPED_TRACE(absl::StrCat("partitions ", partitions));
    EXPECT_TRUE(IsRejected(api_->CreateTopic("fresh", partitions, 1),
                           {grpc::StatusCode::INVALID_ARGUMENT,
                            {ErrorInfo::INVALID_PARTITION_COUNT},
                            {"fresh", "partitions"}}));
  }
}

TEST_F(BadInputTest, CreateTopicsRejectsReplicationFactorAboveBrokerCount) {
  EXPECT_TRUE(IsRejected(api_->CreateTopic("fresh", 1, 2),
                         {grpc::StatusCode::INVALID_ARGUMENT,
                          {ErrorInfo::INVALID_REPLICATION_FACTOR},
                          {"fresh", "replication factor"}}));
  EXPECT_TRUE(IsRejected(api_->CreateTopic("fresh", 1, -1),
                         {grpc::StatusCode::INVALID_ARGUMENT,
                          {ErrorInfo::INVALID_REPLICATION_FACTOR},
                          {"fresh"}}));
}

TEST_F(BadInputTest, CreateTopicsRejectsUnknownAndMalformedConfigs) {
  EXPECT_TRUE(
      IsRejected(api_->CreateTopic("fresh", 1, 1, {{"no.such.config", "1"}}),
                 {grpc::StatusCode::INVALID_ARGUMENT,
                  {ErrorInfo::INVALID_CONFIG},
                  {"fresh", "no.such.config"}}));
  EXPECT_TRUE(IsRejected(
      api_->CreateTopic("fresh", 1, 1, {{"max.message.bytes", "lots"}}),
      {grpc::StatusCode::INVALID_ARGUMENT,
       {ErrorInfo::INVALID_CONFIG},
       {"fresh", "max.message.bytes"}}));
}

TEST_F(BadInputTest, CreateTopicsRejectsExistingTopic) {
  EXPECT_TRUE(IsRejected(api_->CreateTopic(kData, kDataPartitions, 1),
                         {grpc::StatusCode::ALREADY_EXISTS,
                          {ErrorInfo::TOPIC_ALREADY_EXISTS},
                          {kData}}));
  // Also with a different shape: the existing topic is untouched (TearDown).
  EXPECT_TRUE(IsRejected(api_->CreateTopic(kData, 7, 1),
                         {grpc::StatusCode::ALREADY_EXISTS,
                          {ErrorInfo::TOPIC_ALREADY_EXISTS},
                          {kData}}));
}

TEST_F(BadInputTest, CreateTopicsIsAllOrNothing) {
  {
    fjord::v1::CreateTopicsRequest req = OneTopic("fresh-ok", 2, 1);
    fjord::v1::NewTopic* bad = req.add_topics();
    bad->set_name("bad name");
    bad->set_partitions(1);
    bad->set_replication_factor(1);
    EXPECT_TRUE(
        IsRejected(api_->CreateTopics(req), {grpc::StatusCode::INVALID_ARGUMENT,
                                             {ErrorInfo::INVALID_TOPIC_NAME},
                                             {"bad name"}}));
  }
  {
    // A valid topic next to an existing one.
    fjord::v1::CreateTopicsRequest req = OneTopic("fresh-ok", 2, 1);
    *req.add_topics() = OneTopic(kData, 1, 1).topics(0);
    EXPECT_TRUE(
        IsRejected(api_->CreateTopics(req), {grpc::StatusCode::ALREADY_EXISTS,
                                             {ErrorInfo::TOPIC_ALREADY_EXISTS},
                                             {kData}}));
  }
  {
    // The same new name twice.
    fjord::v1::CreateTopicsRequest req = OneTopic("fresh-ok", 2, 1);
    *req.add_topics() = OneTopic("fresh-ok", 2, 1).topics(0);
    grpc::Status s = api_->CreateTopics(req);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.error_code(), grpc::StatusCode::UNKNOWN) << GrpcToString(s);
  }
  fjord::v1::TopicDescription desc;
  EXPECT_TRUE(IsRejected(
      api_->Describe("fresh-ok", &desc),
      {grpc::StatusCode::NOT_FOUND, {ErrorInfo::UNKNOWN_TOPIC}, {"fresh-ok"}}));
  int64_t offset;
  EXPECT_TRUE(IsRejected(
      api_->ListOffsets("fresh-ok", 0, ListOffsetsRequest::LATEST, &offset),
      {grpc::StatusCode::NOT_FOUND, {ErrorInfo::UNKNOWN_TOPIC}, {"fresh-ok"}}));
  // The topic list is checked in TearDown.
}

TEST_F(BadInputTest, UnknownTopicIsNotFoundEverywhere) {
  const Rejection want{
      grpc::StatusCode::NOT_FOUND, {ErrorInfo::UNKNOWN_TOPIC}, {"nope"}};
  EXPECT_TRUE(IsRejected(api_->ProduceValues("nope", 0, {"x"}), want));
  EXPECT_TRUE(IsRejected(api_->FetchFirst("nope", 0, 0), want));
  int64_t offset;
  EXPECT_TRUE(IsRejected(
      api_->ListOffsets("nope", 0, ListOffsetsRequest::EARLIEST, &offset),
      want));
  EXPECT_TRUE(IsRejected(api_->DeleteTopic("nope"), want));
  fjord::v1::TopicDescription desc;
  EXPECT_TRUE(IsRejected(api_->Describe("nope", &desc), want));
}

TEST_F(BadInputTest, UnknownPartitionIsNotFound) {
  const Rejection want{grpc::StatusCode::NOT_FOUND,
                       {ErrorInfo::UNKNOWN_PARTITION},
                       {kData, absl::StrCat(kDataPartitions)}};
  EXPECT_TRUE(
      IsRejected(api_->ProduceValues(kData, kDataPartitions, {"x"}), want));
  EXPECT_TRUE(IsRejected(api_->FetchFirst(kData, kDataPartitions, 0), want));
  int64_t offset;
  EXPECT_TRUE(IsRejected(api_->ListOffsets(kData, kDataPartitions,
                                           ListOffsetsRequest::LATEST, &offset),
                         want));
  EXPECT_TRUE(IsRejected(api_->ProduceValues(kData, 1000000, {"x"}),
                         {grpc::StatusCode::NOT_FOUND,
                          {ErrorInfo::UNKNOWN_PARTITION},
                          {kData, "1000000"}}));
}

TEST_F(BadInputTest, NegativePartitionIsInvalidArgument) {
  const Rejection want{
      grpc::StatusCode::INVALID_ARGUMENT,
      {ErrorInfo::UNKNOWN_PARTITION, ErrorInfo::INVALID_REQUEST},
      {"-1"}};
  EXPECT_TRUE(IsRejected(api_->ProduceValues(kData, -1, {"x"}), want));
  EXPECT_TRUE(IsRejected(api_->FetchFirst(kData, -1, 0), want));
  int64_t offset;
  EXPECT_TRUE(IsRejected(
      api_->ListOffsets(kData, -1, ListOffsetsRequest::EARLIEST, &offset),
      want));
}

TEST_F(BadInputTest, EmptyProduceIsInvalidArgument) {
  fjord::v1::ProduceRequest req;
  req.set_topic(kData);
  req.set_partition(0);
  req.set_acks(fjord::v1::ACKS_ALL);
  EXPECT_TRUE(
      IsRejected(api_->Produce(req), {grpc::StatusCode::INVALID_ARGUMENT,
                                      {ErrorInfo::INVALID_REQUEST},
                                      {"record"}}));
}

TEST_F(BadInputTest, RecordAboveMaxMessageBytesIsResourceExhausted) {
  EXPECT_TRUE(
      IsRejected(api_->ProduceValues(kSmall, 0, {std::string(2000, 'x')}),
                 {grpc::StatusCode::RESOURCE_EXHAUSTED,
                  {ErrorInfo::RECORD_TOO_LARGE},
                  {kSmall, "1024", "max.message.bytes"}}));
  // One oversize record spoils the whole batch: the small ones are not stored.
  EXPECT_TRUE(IsRejected(
      api_->ProduceValues(kSmall, 0, {"ok", std::string(2000, 'x'), "ok"}),
      {grpc::StatusCode::RESOURCE_EXHAUSTED,
       {ErrorInfo::RECORD_TOO_LARGE},
       {kSmall}}));
  // Key and headers count too.
  fjord::v1::ProduceRequest req;
  req.set_topic(kSmall);
  req.set_acks(fjord::v1::ACKS_ALL);
  fjord::v1::Record* r = req.add_records();
  r->set_key(std::string(600, 'k'));
  r->set_value(std::string(600, 'v'));
  EXPECT_TRUE(
      IsRejected(api_->Produce(req), {grpc::StatusCode::RESOURCE_EXHAUSTED,
                                      {ErrorInfo::RECORD_TOO_LARGE},
                                      {kSmall}}));
}

TEST_F(BadInputTest, BatchAboveGrpcReceiveLimitIsResourceExhausted) {
  // Far beyond --max-batch-bytes: gRPC itself refuses the message.
  std::vector<std::string> values(300, std::string(1000, 'z'));
  EXPECT_TRUE(IsRejected(api_->ProduceValues(kData, 0, values),
                         {grpc::StatusCode::RESOURCE_EXHAUSTED, {}, {}}));
}

TEST_F(BadInputTest, BatchAboveMaxBatchBytesIsResourceExhausted) {
  // Just above --max-batch-bytes (every record well under max.message.bytes).
  std::vector<std::string> values(kMaxBatchBytes / 1000 + 8,
                                  std::string(1000, 'y'));
  fjord::v1::ProduceRequest req;
  req.set_topic(kData);
  req.set_acks(fjord::v1::ACKS_ALL);
  for (const std::string& v : values) req.add_records()->set_value(v);
  ASSERT_GT(req.ByteSizeLong(), static_cast<size_t>(kMaxBatchBytes));
  EXPECT_TRUE(
      IsRejected(api_->Produce(req), {grpc::StatusCode::RESOURCE_EXHAUSTED,
                                      {ErrorInfo::BATCH_TOO_LARGE},
                                      {}}));
}

TEST_F(BadInputTest, FetchOutsideTheLogIsOutOfRange) {
  int64_t latest = -1;
  ASSERT_GRPC_OK(
      api_->ListOffsets(kData, 1, ListOffsetsRequest::LATEST, &latest));
  ASSERT_EQ(latest, 10);
  for (int64_t offset :
       {int64_t{-1}, int64_t{-1000}, latest + 1, int64_t{1} << 40}) {
    SCOPED_TRACE(absl::StrCat("offset ", offset));
    EXPECT_TRUE(IsRejected(api_->FetchFirst(kData, 1, offset),
                           {grpc::StatusCode::OUT_OF_RANGE,
                            {ErrorInfo::OFFSET_OUT_OF_RANGE},
                            {absl::StrCat(offset), kData}}));
  }
  // Fetching exactly at the log end is legal: an empty long-poll answer.
  fjord::v1::FetchResponse first;
  EXPECT_GRPC_OK(api_->FetchFirst(kData, 1, latest, &first));
  EXPECT_EQ(first.records_size(), 0);
  EXPECT_EQ(first.high_watermark(), latest);
}

TEST_F(BadInputTest, NegativeFetchLimitsAreInvalidArgument) {
  fjord::v1::FetchRequest req;
  req.set_topic(kData);
  req.set_max_wait_ms(-5);
  EXPECT_TRUE(IsRejected(
      api_->FetchFirst(req),
      {grpc::StatusCode::INVALID_ARGUMENT, {ErrorInfo::INVALID_REQUEST}, {}}));
  req.set_max_wait_ms(100);
  req.set_max_bytes(-1);
  EXPECT_TRUE(IsRejected(
      api_->FetchFirst(req),
      {grpc::StatusCode::INVALID_ARGUMENT, {ErrorInfo::INVALID_REQUEST}, {}}));
}

TEST_F(BadInputTest, InvalidAcksIsInvalidArgument) {
  for (int acks : {42, -3}) {
    SCOPED_TRACE(absl::StrCat("acks ", acks));
    fjord::v1::ProduceRequest req;
    req.set_topic(kData);
    req.set_acks(static_cast<fjord::v1::Acks>(acks));
    req.add_records()->set_value("x");
    EXPECT_TRUE(
        IsRejected(api_->Produce(req), {grpc::StatusCode::INVALID_ARGUMENT,
                                        {ErrorInfo::INVALID_REQUEST},
                                        {"acks"}}));
  }
}

TEST_F(BadInputTest, NegativeTimestampIsInvalidArgument) {
  fjord::v1::ProduceRequest req;
  req.set_topic(kData);
  req.set_acks(fjord::v1::ACKS_ALL);
  req.add_records()->set_value("x");
  req.add_records()->set_value("y");
  req.mutable_records(1)->set_timestamp_ms(-7);
  EXPECT_TRUE(
      IsRejected(api_->Produce(req), {grpc::StatusCode::INVALID_ARGUMENT,
                                      {ErrorInfo::INVALID_REQUEST},
                                      {"timestamp"}}));
}

TEST_F(BadInputTest, DeleteUnknownTopicIsNotFound) {
  EXPECT_TRUE(IsRejected(api_->DeleteTopic("missing-topic"),
                         {grpc::StatusCode::NOT_FOUND,
                          {ErrorInfo::UNKNOWN_TOPIC},
                          {"missing-topic"}}));
}

// ---------------------------------------------------------------------------
// c. Fetch long-poll

TEST(FetchLongPollTest,
     HeartbeatsAtLogEndThenDeliversNewRecordThenEndsOnDelete) {
  BrokerProcess broker;
  ASSERT_OK(broker.Start());
  Api api(broker.channel());
  ASSERT_GRPC_OK(api.CreateTopic("lp", 1, 1));
  ASSERT_GRPC_OK(api.ProduceValues("lp", 0, {"a", "b", "c"}));

  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(30));
  fjord::v1::FetchRequest req;
  req.set_topic("lp");
  req.set_offset(3);
  req.set_max_wait_ms(200);
  auto reader = api.fetch_stub()->Fetch(&ctx, req);

  // Nothing to read: an empty heartbeat carrying the high watermark.
  fjord::v1::FetchResponse resp;
  ASSERT_TRUE(reader->Read(&resp)) << GrpcToString(reader->Finish());
  EXPECT_EQ(resp.records_size(), 0);
  EXPECT_EQ(resp.high_watermark(), 3);

  // A record produced now reaches the open stream.
  ASSERT_GRPC_OK(api.ProduceValues("lp", 0, {"late"}, "k"));
  bool got = false;
  for (int i = 0; i < 100 && !got && reader->Read(&resp); ++i) {
    if (resp.records_size() == 0) {
      EXPECT_GE(resp.high_watermark(), 3);
      continue;
    }
    got = true;
    ASSERT_EQ(resp.records_size(), 1);
    EXPECT_EQ(resp.records(0).offset(), 3);
    EXPECT_EQ(resp.records(0).value(), "late");
    EXPECT_EQ(resp.records(0).key(), "k");
    EXPECT_EQ(resp.high_watermark(), 4);
  }
  ASSERT_TRUE(got) << "the produced record never arrived on the stream";

  // Deleting the topic ends the stream with NOT_FOUND.
  ASSERT_GRPC_OK(api.DeleteTopic("lp"));
  int extra = 0;
  while (reader->Read(&resp)) {
    EXPECT_EQ(resp.records_size(), 0);
    ASSERT_LT(++extra, 100) << "the stream keeps going after the delete";
  }
  grpc::Status end = reader->Finish();
  EXPECT_TRUE(IsRejected(end, {grpc::StatusCode::NOT_FOUND, {}, {}}))
      << "stream status after delete: " << GrpcToString(end);
  EXPECT_TRUE(api.Serving());

  // A topic re-created under the same name starts empty.
  ASSERT_GRPC_OK(api.CreateTopic("lp", 1, 1));
  int64_t latest = -1;
  ASSERT_GRPC_OK(api.ListOffsets("lp", 0, ListOffsetsRequest::LATEST, &latest));
  EXPECT_EQ(latest, 0);
}

// ---------------------------------------------------------------------------
// d. SIGTERM

TEST(ShutdownTest,
     SigtermWithOpenFetchStreamExitsZeroAndKeepsAcknowledgedData) {
  BrokerProcess broker;
  ASSERT_OK(broker.Start());
  auto api = std::make_unique<Api>(broker.channel());
  ASSERT_GRPC_OK(api->CreateTopic("st", 2, 1));
  for (int p = 0; p < 2; ++p) {
    for (int b = 0; b < 5; ++b) {
      std::vector<std::string> values;
      for (int i = 0; i < 20; ++i)
        values.push_back(absl::StrCat("p", p, "b", b, "i", i));
      ASSERT_GRPC_OK(api->ProduceValues("st", p, values));
    }
  }
  absl::StatusOr<std::vector<std::string>> before = Snapshot(*api, "st", 2);
  ASSERT_OK(before);
  ASSERT_EQ(before->size(), 2u + 200u);

  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(30));
  fjord::v1::FetchRequest req;
  req.set_topic("st");
  req.set_offset(100);
  req.set_max_wait_ms(200);
  auto reader = api->fetch_stub()->Fetch(&ctx, req);
  fjord::v1::FetchResponse resp;
  ASSERT_TRUE(reader->Read(&resp)) << GrpcToString(reader->Finish());  // open

  // "Within a few seconds": the broker's own drain deadline is 5 s, and an
  // open fetch stream must not hold it that long.
  absl::StatusOr<ExitInfo> exit = broker.Terminate(absl::Seconds(4));
  ASSERT_OK(exit);
  EXPECT_TRUE(exit->ExitedWith(0)) << exit->ToString();

  int extra = 0;
  while (reader->Read(&resp)) ASSERT_LT(++extra, 200);
  grpc::Status end = reader->Finish();
  EXPECT_FALSE(end.ok()) << "a stream cut by shutdown must not end OK";
  EXPECT_TRUE(end.error_code() == grpc::StatusCode::UNAVAILABLE ||
              end.error_code() == grpc::StatusCode::CANCELLED)
      << GrpcToString(end);

  ASSERT_OK(broker.Start());
  api = std::make_unique<Api>(broker.channel());
  absl::StatusOr<std::vector<std::string>> after = Snapshot(*api, "st", 2);
  ASSERT_OK(after);
  EXPECT_TRUE(SameSnapshot(*before, *after));
  EXPECT_TRUE(absl::StrContains(broker.Log(), "stopped"))
      << "no clean-stop line";
}

// ---------------------------------------------------------------------------
// e. Start-up topics from FJORD_CREATE_TOPICS / --create-topics

TEST(CreateTopicsAtStartupTest, EnvCreatesTopicAndRestartKeepsData) {
  BrokerProcess broker(BrokerProcess::Options{
      .env = {{"FJORD_CREATE_TOPICS", "test-topic:5:1"}}});
  ASSERT_OK(broker.Start());
  auto api = std::make_unique<Api>(broker.channel());
  fjord::v1::TopicDescription desc;
  ASSERT_GRPC_OK(api->Describe("test-topic", &desc));
  EXPECT_EQ(desc.topic().partitions_size(), 5);
  EXPECT_EQ(desc.topic().replication_factor(), 1);
  for (int p = 0; p < 5; ++p) {
    ASSERT_GRPC_OK(
        api->ProduceValues("test-topic", p, {absl::StrCat("r", p), "x"}));
  }
  absl::StatusOr<std::vector<std::string>> before =
      Snapshot(*api, "test-topic", 5);
  ASSERT_OK(before);

  // Restarted (after a crash) with the same environment: the topic is left
  // alone.
  ASSERT_OK(broker.Restart());
  api = std::make_unique<Api>(broker.channel());
  ASSERT_GRPC_OK(api->Describe("test-topic", &desc));
  EXPECT_EQ(desc.topic().partitions_size(), 5);
  absl::StatusOr<std::vector<std::string>> after =
      Snapshot(*api, "test-topic", 5);
  ASSERT_OK(after);
  EXPECT_TRUE(SameSnapshot(*before, *after));
  std::vector<std::string> topics;
  ASSERT_GRPC_OK(api->ListTopics(&topics));
  EXPECT_EQ(topics, std::vector<std::string>{"test-topic"});

  // Appends after the restart continue at the old log end: no offset is
  // reused, and every record, old and new, reads back once.
  fjord::v1::ProduceResponse resp;
  ASSERT_GRPC_OK(api->ProduceValues("test-topic", 0, {"after-restart"},
                                    std::nullopt, &resp));
  EXPECT_EQ(resp.base_offset(), 2);
  absl::StatusOr<std::vector<fjord::v1::ConsumedRecord>> records =
      api->Read("test-topic", 0, 0, 3);
  ASSERT_OK(records);
  ASSERT_EQ(records->size(), 3u);
  EXPECT_EQ((*records)[0].value(), "r0");
  EXPECT_EQ((*records)[1].value(), "x");
  EXPECT_EQ((*records)[2].value(), "after-restart");
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*records)[i].offset(), i);
}

TEST(CreateTopicsAtStartupTest, FlagCreatesSeveralTopics) {
  BrokerProcess broker(BrokerProcess::Options{
      .extra_args = {"--create-topics=alpha:2:1,beta:1:1"}});
  ASSERT_OK(broker.Start());
  Api api(broker.channel());
  std::vector<std::string> topics;
  ASSERT_GRPC_OK(api.ListTopics(&topics));
  EXPECT_EQ(topics, (std::vector<std::string>{"alpha", "beta"}));
  fjord::v1::TopicDescription desc;
  ASSERT_GRPC_OK(api.Describe("alpha", &desc));
  EXPECT_EQ(desc.topic().partitions_size(), 2);
}

// A client that calls a broker while it is still starting is told so
// (UNAVAILABLE, BROKER_STARTING), never that a start-up topic does not exist.
TEST(CreateTopicsAtStartupTest, CallsDuringStartupAreUnavailableNotNotFound) {
  BrokerProcess broker(BrokerProcess::Options{.extra_args = {"--create-topics=early:3:1"}});
  ASSERT_OK(broker.Spawn());
  std::map<std::string, int> seen;  // outcome -> count
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  bool described = false;
  while (!described && absl::Now() < deadline) {
    Api api(MakeChannel(broker.address()));
    fjord::v1::TopicDescription desc;
    const grpc::Status s = api.Describe("early", &desc);
    if (s.ok()) {
      described = true;
      break;
    }
    std::string outcome = absl::StrCat("code ", s.error_code());
    if (std::optional<ErrorInfo> info = ErrorInfoOf(s); info.has_value()) {
      absl::StrAppend(&outcome, " ", ErrorInfo::Reason_Name(info->reason()));
    }
    ++seen[outcome];
    EXPECT_NE(s.error_code(), grpc::StatusCode::NOT_FOUND) << GrpcToString(s);
    absl::SleepFor(absl::Milliseconds(10));  // back-off between attempts
  }
  EXPECT_TRUE(described) << "the start-up topic never appeared";
  for (const auto& [outcome, n] : seen) std::cout << "before ready: " << outcome << " x" << n << "\n";
}

TEST(CreateTopicsAtStartupTest, ReplicationFactorAboveBrokerCountFailsStartup) {
  BrokerProcess broker(
      BrokerProcess::Options{.env = {{"FJORD_CREATE_TOPICS", "x:5:2"}}});
  ASSERT_OK(broker.Spawn());
  absl::StatusOr<ExitInfo> exit = broker.WaitExit(absl::Seconds(20));
  ASSERT_OK(exit);
  EXPECT_TRUE(exit->exit_code.has_value() && *exit->exit_code != 0)
      << exit->ToString();
  const std::string log = broker.Log();
  EXPECT_TRUE(absl::StrContains(log, "replication factor")) << log;
}

TEST(CreateTopicsAtStartupTest, MalformedSpecFailsStartup) {
  BrokerProcess broker(
      BrokerProcess::Options{.env = {{"FJORD_CREATE_TOPICS", "x:five:1"}}});
  ASSERT_OK(broker.Spawn());
  absl::StatusOr<ExitInfo> exit = broker.WaitExit(absl::Seconds(20));
  ASSERT_OK(exit);
  EXPECT_TRUE(exit->exit_code.has_value() && *exit->exit_code != 0)
      << exit->ToString();
  EXPECT_TRUE(absl::StrContains(broker.Log(), "x:five:1")) << broker.Log();
}

}  // namespace
}  // namespace fjord::testing
