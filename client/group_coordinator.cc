#include "client/group_coordinator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

namespace fjord::client {
namespace {

bool IsWildcardHost(const std::string& address) {
  const size_t colon = address.rfind(':');
  const std::string host =
      colon == std::string::npos ? address : address.substr(0, colon);
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

}  // namespace

void CallCanceller::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

bool CallCanceller::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool CallCanceller::Sleep(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&cancelled_), d);
  return !cancelled_;
}

void CallCanceller::Begin(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  context_ = context;
  if (cancelled_) context->TryCancel();
}

void CallCanceller::End() {
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
}

absl::Status ValidateGroupId(absl::string_view group_id) {
  if (group_id.empty() || group_id.size() > 249) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad group id '", group_id, "': want 1 to 249 characters"));
  }
  for (char c : group_id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("bad group id '", group_id,
                       "': use only ASCII letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

bool HasReason(const grpc::Status& status,
               fjord::v1::ErrorInfo::Reason reason) {
  auto info = ErrorInfoOf(status);
  return info.has_value() && info->reason() == reason;
}

bool IsRetriableGroupError(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

GroupCoordinator::GroupCoordinator(std::shared_ptr<Cluster> cluster,
                                   std::string group_id, Options options)
    : cluster_(std::move(cluster)),
      group_id_(std::move(group_id)),
      options_(options) {}

int32_t GroupCoordinator::coordinator_id() const {
  absl::MutexLock lock(&mu_);
  return channel_ == nullptr ? -1 : coordinator_id_;
}

void GroupCoordinator::Forget() {
  absl::MutexLock lock(&mu_);
  coordinator_id_ = -1;
  channel_ = nullptr;
}

bool GroupCoordinator::SetCoordinator(int32_t id, const std::string& address) {
  std::shared_ptr<grpc::Channel> channel;
  if (!address.empty() && !IsWildcardHost(address)) {
    channel = cluster_->ChannelFor(address);
  } else if (id >= 0) {
    // A broker advertising a wildcard address: the metadata's address for it
    // has the host substituted.
    auto by_id = cluster_->BrokerChannel(id);
    if (by_id.ok()) channel = *by_id;
  }
  absl::MutexLock lock(&mu_);
  coordinator_id_ = id;
  channel_ = channel;
  return channel != nullptr;
}

grpc::Status GroupCoordinator::Channel(
    absl::Time deadline, std::shared_ptr<grpc::Channel>* channel) {
  {
    absl::MutexLock lock(&mu_);
    if (channel_ != nullptr) {
      *channel = channel_;
      return grpc::Status::OK;
    }
  }
  fjord::v1::FindCoordinatorRequest request;
  request.set_group_id(group_id_);
  fjord::v1::FindCoordinatorResponse response;
  const grpc::Status status =
      cluster_->CallAnyBroker([&](const std::shared_ptr<grpc::Channel>& c) {
        response.Clear();
        grpc::ClientContext context;
        SetDeadline(&context, std::max(absl::Milliseconds(1),
                                       std::min(cluster_->options().rpc_timeout,
                                                deadline - absl::Now())));
        return fjord::v1::GroupService::NewStub(c)->FindCoordinator(
            &context, request, &response);
      });
  if (!status.ok()) {
    return grpc::Status(status.error_code(),
                        absl::StrCat("finding the coordinator of group '",
                                     group_id_, "': ", status.error_message()),
                        status.error_details());
  }
  VLOG(1) << "[group=" << group_id_ << "] coordinator is broker "
          << response.coordinator_id() << " at " << response.address();
  if (!SetCoordinator(response.coordinator_id(), response.address())) {
    return grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        absl::StrCat("the coordinator of group '", group_id_, "' (broker ",
                     response.coordinator_id(), ") has no known address"));
  }
  absl::MutexLock lock(&mu_);
  *channel = channel_;
  return grpc::Status::OK;
}

grpc::Status GroupCoordinator::Call(const Attempt& attempt, absl::Time deadline,
                                    CallCanceller* canceller) {
  absl::Duration backoff = options_.retry_backoff;
  bool redirected = false;  // The last failure was a followed redirect.
  grpc::Status last(grpc::StatusCode::DEADLINE_EXCEEDED,
                    absl::StrCat("no time left to reach the coordinator of "
                                 "group '",
                                 group_id_, "'"));
  while (true) {
    if (canceller != nullptr && canceller->cancelled()) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    }
    if (absl::Now() >= deadline) return last;
    std::shared_ptr<grpc::Channel> channel;
    grpc::Status status = Channel(deadline, &channel);
    if (status.ok()) {
      grpc::ClientContext context;
      SetDeadline(&context, std::max(absl::Milliseconds(1),
                                     std::min(cluster_->options().rpc_timeout,
                                              deadline - absl::Now())));
      if (canceller != nullptr) canceller->Begin(&context);
      auto stub = fjord::v1::GroupService::NewStub(channel);
      status = attempt(*stub, context);
      if (canceller != nullptr) canceller->End();
      if (status.ok()) return status;
      if (canceller != nullptr && canceller->cancelled()) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      }
    }
    if (!IsRetriableGroupError(status)) return status;
    last = status;

    const auto info = ErrorInfoOf(status);
    const auto reason = info.has_value()
                            ? info->reason()
                            : fjord::v1::ErrorInfo::REASON_UNSPECIFIED;
    bool sleep = true;
    if (reason == fjord::v1::ErrorInfo::NOT_COORDINATOR) {
      const bool known =
          SetCoordinator(info->leader_id(), info->leader_address());
      VLOG(1) << "[group=" << group_id_ << "] not the coordinator; "
              << (known ? absl::StrCat("moving to broker ", info->leader_id(),
                                       " ", info->leader_address())
                        : std::string("finding it again"));
      if (!known) Forget();
      // Follow a named coordinator at once, but not twice in a row (two
      // brokers that disagree while leadership moves).
      sleep = redirected || !known;
      redirected = known;
    } else {
      redirected = false;
      if (reason != fjord::v1::ErrorInfo::COORDINATOR_LOADING &&
          reason != fjord::v1::ErrorInfo::NOT_ENOUGH_REPLICAS) {
        // A dead, unreachable or departing broker, or no coordinator yet.
        Forget();
      }
      VLOG(1) << "[group=" << group_id_ << "] " << status.error_message()
              << "; retrying";
    }
    if (sleep) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return last;
      const absl::Duration d = std::min(backoff, left);
      if (canceller != nullptr) {
        if (!canceller->Sleep(d)) {
          return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
        }
      } else {
        absl::SleepFor(d);
      }
      backoff = std::min(backoff * 2, options_.retry_backoff_max);
    }
  }
}

}  // namespace fjord::client
