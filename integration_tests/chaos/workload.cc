#include "integration_tests/chaos/workload.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "fjord/v1/fetch.grpc.pb.h"
#include "fjord/v1/metadata.grpc.pb.h"
#include "fjord/v1/produce.grpc.pb.h"
#include "fjord/v1/record.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace fjord::testing::chaos {
namespace {

constexpr char kNotSent[] = "not sent: ";

// The leader a NOT_LEADER answer names, or -1.
int NamedLeader(const grpc::Status& status) {
  if (status.error_details().empty()) return -1;
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return -1;
  for (const auto& any : details.details()) {
    fjord::v1::ErrorInfo info;
    if (any.UnpackTo(&info) &&
        info.reason() == fjord::v1::ErrorInfo::NOT_LEADER) {
      return info.leader_id() > 0 ? info.leader_id() : -1;
    }
  }
  return -1;
}

std::string StatusText(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), " ", status.error_message());
}

}  // namespace

std::shared_ptr<grpc::Channel> MakeChaosChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 300);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

bool SentNothing(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
         status.error_message().rfind(kNotSent, 0) == 0;
}

int32_t PartitionForKey(const std::string& key, int32_t partitions) {
  uint32_t hash = 2166136261u;
  for (unsigned char c : key) {
    hash ^= c;
    hash *= 16777619u;
  }
  return static_cast<int32_t>(hash % static_cast<uint32_t>(partitions));
}

ChaosClient::ChaosClient(std::map<int, std::string> brokers)
    : brokers_(std::move(brokers)) {}

std::shared_ptr<grpc::Channel> ChaosClient::Channel(int broker) {
  absl::MutexLock lock(&mu_);
  auto& channel = channels_[broker];
  if (channel == nullptr) channel = MakeChaosChannel(brokers_.at(broker));
  return channel;
}

absl::StatusOr<fjord::v1::TopicInfo> ChaosClient::Describe(
    const std::string& topic, absl::Duration per_broker) {
  std::vector<int> ids;
  for (const auto& [id, address] : brokers_) ids.push_back(id);
  const int start = rotate_.fetch_add(1);
  std::string last_error = "no brokers";
  for (size_t i = 0; i < ids.size(); ++i) {
    const int id = ids[(start + i) % ids.size()];
    auto stub = fjord::v1::MetadataService::NewStub(Channel(id));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + per_broker));
    fjord::v1::MetadataRequest req;
    req.add_topics(topic);
    fjord::v1::MetadataResponse resp;
    grpc::Status s = stub->Metadata(&ctx, req, &resp);
    if (s.ok() && resp.topics_size() == 1) return resp.topics(0);
    last_error = absl::StrCat("broker ", id, ": ", StatusText(s));
  }
  return absl::UnavailableError(last_error);
}

std::optional<int> ChaosClient::Leader(const std::string& topic,
                                       int32_t partition) {
  {
    absl::MutexLock lock(&mu_);
    auto it = leaders_.find({topic, partition});
    if (it != leaders_.end()) return it->second;
  }
  absl::StatusOr<fjord::v1::TopicInfo> info = Describe(topic);
  if (!info.ok()) return std::nullopt;
  std::optional<int> found;
  absl::MutexLock lock(&mu_);
  for (const auto& p : info->partitions()) {
    if (p.leader_id() > 0 && brokers_.count(p.leader_id())) {
      leaders_[{topic, p.partition()}] = p.leader_id();
      if (p.partition() == partition) found = p.leader_id();
    }
  }
  return found;
}

void ChaosClient::ForgetAll() {
  absl::MutexLock lock(&mu_);
  leaders_.clear();
}

void ChaosClient::Forget(const std::string& topic, int32_t partition) {
  absl::MutexLock lock(&mu_);
  leaders_.erase({topic, partition});
}

grpc::Status ChaosClient::Produce(const std::string& topic, int32_t partition,
                                  const std::string& key,
                                  const std::string& value,
                                  absl::Duration timeout, int64_t* offset,
                                  int* broker) {
  *broker = 0;
  std::optional<int> leader = Leader(topic, partition);
  if (!leader.has_value()) {
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat(kNotSent, "no leader known for ", topic, "/", partition));
  }
  *broker = *leader;
  auto stub = fjord::v1::ProduceService::NewStub(Channel(*leader));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  fjord::v1::ProduceRequest req;
  req.set_topic(topic);
  req.set_partition(partition);
  req.set_acks(fjord::v1::ACKS_ALL);
  fjord::v1::Record* record = req.add_records();
  if (!key.empty()) record->set_key(key);
  record->set_value(value);
  fjord::v1::ProduceResponse resp;
  grpc::Status s = stub->Produce(&ctx, req, &resp);
  if (s.ok()) {
    *offset = resp.base_offset();
    return s;
  }
  const int named = NamedLeader(s);
  absl::MutexLock lock(&mu_);
  if (named > 0 && brokers_.count(named)) {
    leaders_[{topic, partition}] = named;
  } else {
    leaders_.erase({topic, partition});
  }
  return s;
}

absl::StatusOr<std::vector<ReadRecord>> ChaosClient::Read(
    const std::string& topic, int32_t partition, int64_t from,
    absl::Duration timeout, int* leader_out) {
  const absl::Time deadline = absl::Now() + timeout;
  std::optional<int> leader = Leader(topic, partition);
  if (leader_out != nullptr) *leader_out = leader.value_or(0);
  if (!leader.has_value()) {
    return absl::UnavailableError(
        absl::StrCat("no leader known for ", topic, "/", partition));
  }
  auto fetch = fjord::v1::FetchService::NewStub(Channel(*leader));
  int64_t end = 0;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(
        absl::ToChronoTime(std::min(deadline, absl::Now() + absl::Seconds(2))));
    fjord::v1::ListOffsetsRequest req;
    req.set_topic(topic);
    req.set_partition(partition);
    req.set_spec(fjord::v1::ListOffsetsRequest::LATEST);
    fjord::v1::ListOffsetsResponse resp;
    grpc::Status s = fetch->ListOffsets(&ctx, req, &resp);
    if (!s.ok()) {
      Forget(topic, partition);
      return absl::UnavailableError(
          absl::StrCat("ListOffsets on broker ", *leader, ": ", StatusText(s)));
    }
    end = resp.offset();
  }
  std::vector<ReadRecord> out;
  from = std::max<int64_t>(0, std::min(from, end));
  if (from >= end) return out;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(deadline));
  fjord::v1::FetchRequest req;
  req.set_topic(topic);
  req.set_partition(partition);
  req.set_offset(from);
  req.set_max_wait_ms(200);
  auto reader = fetch->Fetch(&ctx, req);
  fjord::v1::FetchResponse resp;
  int64_t next = from;
  while (next < end && reader->Read(&resp)) {
    for (const auto& r : resp.records()) {
      if (r.offset() >= end) break;
      out.push_back({r.offset(), r.key(), r.value()});
      next = r.offset() + 1;
    }
  }
  if (next < end) {
    ctx.TryCancel();
    grpc::Status s = reader->Finish();
    Forget(topic, partition);
    return absl::UnavailableError(absl::StrCat(
        "fetch of ", topic, "/", partition, " from broker ", *leader,
        " stopped at ", next, " of ", end, ": ", StatusText(s)));
  }
  ctx.TryCancel();
  reader->Finish();
  return out;
}

void Workload::ProduceWithRetries(int process, const std::string& topic,
                                  int32_t partition, const std::string& key,
                                  const std::string& value) {
  for (int attempt = 0; attempt < options_.max_attempts && !stop_.load();
       ++attempt) {
    Op op;
    op.process = process;
    op.type = OpType::kProduce;
    op.topic = topic;
    op.partition = partition;
    op.key = key;
    op.value = value;
    const int64_t id = history_->Invoke(std::move(op));
    int64_t offset = -1;
    int broker = 0;
    grpc::Status s =
        client_->Produce(topic, partition, key, value, options_.produce_timeout,
                         &offset, &broker);
    if (s.ok()) {
      history_->Complete(id, Outcome::kOk, offset, "", broker);
      return;
    }
    const Outcome outcome =
        SentNothing(s) ? Outcome::kFailed : ClassifyProduceStatus(s);
    history_->Complete(id, outcome, -1, StatusText(s), broker);
    absl::SleepFor(options_.retry_backoff);
  }
}

void Workload::StartUniqueProducer(int process, const std::string& topic,
                                   int32_t partition) {
  threads_.emplace_back([this, process, topic, partition] {
    for (int64_t seq = 0; !stop_.load() && seq < 10'000'000; ++seq) {
      ProduceWithRetries(process, topic, partition, "",
                         absl::StrCat("p", process, "-", seq));
    }
  });
}

void Workload::StartKeyedProducer(int process, const std::string& topic,
                                  int32_t partitions,
                                  std::vector<std::string> keys) {
  threads_.emplace_back(
      [this, process, topic, partitions, keys = std::move(keys)] {
        for (int64_t seq = 0; !stop_.load() && seq < 10'000'000; ++seq) {
          const std::string& key = keys[seq % keys.size()];
          ProduceWithRetries(process, topic, PartitionForKey(key, partitions),
                             key, absl::StrCat(key, ":", process, ":", seq));
        }
      });
}

void Workload::StartReader(int process, std::vector<std::string> topics,
                           int32_t partitions, absl::Duration period) {
  threads_.emplace_back(
      [this, process, topics = std::move(topics), partitions, period] {
        std::map<std::pair<std::string, int32_t>, int64_t> seen_end;
        for (int64_t i = 0; !stop_.load() && i < 10'000'000; ++i) {
          absl::SleepFor(period);
          const std::string& topic = topics[(i / partitions) % topics.size()];
          const int32_t partition = static_cast<int32_t>(i % partitions);
          int64_t& end = seen_end[{topic, partition}];
          Op op;
          op.process = process;
          op.type = OpType::kRead;
          op.topic = topic;
          op.partition = partition;
          const int64_t id = history_->Invoke(std::move(op));
          // The tail of what the last read saw, and whatever came since.
          auto records =
              client_->Read(topic, partition, end - 200, absl::Seconds(3));
          if (!records.ok()) {
            history_->Complete(id, Outcome::kFailed, -1,
                               std::string(records.status().message()));
            continue;
          }
          if (!records->empty()) end = records->back().offset + 1;
          history_->CompleteRead(id, *std::move(records));
        }
      });
}

void Workload::Stop() {
  stop_.store(true);
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace fjord::testing::chaos
