#include "client/cluster.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "fjord/v1/metadata.grpc.pb.h"
#include "glog/logging.h"
#include "google/protobuf/unknown_field_set.h"

namespace fjord::client {
namespace {

constexpr absl::string_view kErrorInfoType = "fjord.v1.ErrorInfo";

// A broker advertising a wildcard address cannot be dialled by that name; the
// host that told us about it can (single-node brokers listen on 0.0.0.0).
bool IsWildcardHost(absl::string_view host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

std::string HostOf(absl::string_view address) {
  const size_t colon = address.rfind(':');
  return std::string(
      colon == absl::string_view::npos ? address : address.substr(0, colon));
}

}  // namespace

std::string TopicPartition::ToString() const {
  return absl::StrCat(topic, "-", partition);
}

absl::StatusOr<std::vector<std::string>> ParseBootstrap(
    absl::string_view list) {
  std::vector<std::string> out;
  for (absl::string_view entry : absl::StrSplit(list, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) continue;
    const size_t colon = entry.rfind(':');
    int port = 0;
    if (colon == absl::string_view::npos || colon == 0 ||
        !absl::SimpleAtoi(entry.substr(colon + 1), &port) || port <= 0 ||
        port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad bootstrap address '", entry, "': want HOST:PORT"));
    }
    out.emplace_back(entry);
  }
  if (out.empty()) {
    return absl::InvalidArgumentError("empty bootstrap list");
  }
  return out;
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

std::optional<fjord::v1::ErrorInfo> ErrorInfoOf(const grpc::Status& status) {
  if (status.ok() || status.error_details().empty()) return std::nullopt;
  // google.rpc.Status: 1 code, 2 message, 3 repeated google.protobuf.Any
  // details (Any: 1 type_url, 2 value). Parsed field by field so the client
  // needs no copy of google/rpc/status.proto.
  google::protobuf::UnknownFieldSet rpc_status;
  if (!rpc_status.ParseFromString(status.error_details())) return std::nullopt;
  for (int i = 0; i < rpc_status.field_count(); ++i) {
    const auto& field = rpc_status.field(i);
    if (field.number() != 3 ||
        field.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) {
      continue;
    }
    google::protobuf::UnknownFieldSet any;
    if (!any.ParseFromString(field.length_delimited())) continue;
    std::string type_url, value;
    for (int j = 0; j < any.field_count(); ++j) {
      const auto& f = any.field(j);
      if (f.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) {
        continue;
      }
      if (f.number() == 1) type_url = f.length_delimited();
      if (f.number() == 2) value = f.length_delimited();
    }
    if (!absl::EndsWith(type_url, kErrorInfoType)) continue;
    fjord::v1::ErrorInfo info;
    if (info.ParseFromString(value)) return info;
  }
  return std::nullopt;
}

bool IsRetriable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE ||
         code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

void SetDeadline(grpc::ClientContext* context, absl::Duration timeout) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

absl::StatusOr<std::shared_ptr<Cluster>> Cluster::Create(
    const ClientOptions& options) {
  auto bootstrap = ParseBootstrap(options.bootstrap);
  if (!bootstrap.ok()) return bootstrap.status();
  return std::shared_ptr<Cluster>(new Cluster(options, *std::move(bootstrap)));
}

Cluster::Cluster(ClientOptions options, std::vector<std::string> bootstrap)
    : options_(std::move(options)), bootstrap_(std::move(bootstrap)) {}

std::shared_ptr<grpc::Channel> Cluster::ChannelFor(const std::string& address) {
  absl::MutexLock lock(&mu_);
  auto it = channels_.find(address);
  if (it != channels_.end()) return it->second;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              absl::ToInt64Milliseconds(options_.keepalive_time));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              absl::ToInt64Milliseconds(options_.keepalive_timeout));
  // Pings only while a call (e.g. a Fetch stream) is open, so idle channels do
  // not earn the server's "too many pings" GOAWAY.
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A fetch response holds at least one whole batch, whatever its size.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // Reconnect quickly after a broker restart.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  auto channel = grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), args);
  channels_.emplace(address, channel);
  return channel;
}

std::vector<std::string> Cluster::CandidateAddresses() {
  std::vector<std::string> out;
  auto add = [&out](const std::string& a) {
    if (a.empty()) return;
    for (const auto& b : out) {
      if (a == b) return;
    }
    out.push_back(a);
  };
  absl::MutexLock lock(&mu_);
  add(last_good_);
  for (const auto& [id, address] : brokers_) add(address);
  for (const auto& a : bootstrap_) add(a);
  return out;
}

grpc::Status Cluster::CallAnyBroker(
    const std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&)>&
        call) {
  grpc::Status last(grpc::StatusCode::UNAVAILABLE, "no broker to ask");
  for (const std::string& address : CandidateAddresses()) {
    last = call(ChannelFor(address));
    if (!IsRetriable(last.error_code())) {
      if (last.ok()) {
        absl::MutexLock lock(&mu_);
        last_good_ = address;
      }
      return last;
    }
    VLOG(1) << "broker " << address << ": " << last.error_message();
    last = grpc::Status(last.error_code(),
                        absl::StrCat(address, ": ", last.error_message()));
  }
  return last;
}

absl::StatusOr<fjord::v1::MetadataResponse> Cluster::FetchMetadata(
    const std::vector<std::string>& topics) {
  fjord::v1::MetadataRequest request;
  for (const auto& t : topics) request.add_topics(t);
  fjord::v1::MetadataResponse response;
  grpc::Status status =
      CallAnyBroker([&](const std::shared_ptr<grpc::Channel>& channel) {
        response.Clear();
        grpc::ClientContext context;
        SetDeadline(&context, options_.rpc_timeout);
        return fjord::v1::MetadataService::NewStub(channel)->Metadata(
            &context, request, &response);
      });
  if (!status.ok()) return FromGrpcStatus(status);

  absl::MutexLock lock(&mu_);
  const std::string fallback_host = HostOf(last_good_);
  brokers_.clear();
  for (const auto& b : response.brokers()) {
    const std::string host =
        IsWildcardHost(b.host()) ? fallback_host : b.host();
    brokers_[b.id()] = absl::StrCat(host, ":", b.port());
  }
  const absl::Time now = absl::Now();
  for (const auto& t : response.topics()) {
    topics_[t.name()] =
        CachedTopic{std::make_shared<const fjord::v1::TopicInfo>(t), now};
  }
  return response;
}

absl::StatusOr<std::shared_ptr<const fjord::v1::TopicInfo>> Cluster::Topic(
    const std::string& topic, bool refresh) {
  if (!refresh) {
    absl::MutexLock lock(&mu_);
    auto it = topics_.find(topic);
    if (it != topics_.end() &&
        absl::Now() - it->second.fetched < options_.metadata_max_age) {
      return it->second.info;
    }
  }
  auto response = FetchMetadata({topic});
  if (!response.ok()) {
    if (response.status().code() == absl::StatusCode::kNotFound) {
      Invalidate(topic);
    }
    return response.status();
  }
  for (const auto& t : response->topics()) {
    if (t.name() == topic) {
      return std::make_shared<const fjord::v1::TopicInfo>(t);
    }
  }
  return absl::NotFoundError(absl::StrCat("unknown topic '", topic, "'"));
}

void Cluster::Invalidate(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  topics_.erase(topic);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Cluster::LeaderChannel(
    const TopicPartition& tp, bool refresh) {
  auto info = Topic(tp.topic, refresh);
  if (!info.ok()) return info.status();
  if (tp.partition < 0 || tp.partition >= (*info)->partitions_size()) {
    return absl::NotFoundError(
        absl::StrCat("unknown partition ", tp.ToString(), " (topic has ",
                     (*info)->partitions_size(), " partitions)"));
  }
  const int32_t leader = (*info)->partitions(tp.partition).leader_id();
  if (leader < 0) {
    return absl::UnavailableError(
        absl::StrCat("partition ", tp.ToString(), " has no leader"));
  }
  std::string address;
  {
    absl::MutexLock lock(&mu_);
    auto it = brokers_.find(leader);
    if (it != brokers_.end()) address = it->second;
  }
  if (address.empty()) {
    return absl::UnavailableError(
        absl::StrCat("leader ", leader, " of ", tp.ToString(), " is unknown"));
  }
  return ChannelFor(address);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Cluster::BrokerChannel(
    int32_t id, bool refresh) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (refresh || attempt > 0) {
      auto response = FetchMetadata({});
      if (!response.ok()) return response.status();
    }
    std::string address;
    {
      absl::MutexLock lock(&mu_);
      auto it = brokers_.find(id);
      if (it != brokers_.end()) address = it->second;
    }
    if (!address.empty()) return ChannelFor(address);
    if (refresh) break;
  }
  return absl::UnavailableError(absl::StrCat("broker ", id, " is unknown"));
}

}  // namespace fjord::client
