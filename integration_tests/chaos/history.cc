#include "integration_tests/chaos/history.h"

#include <utility>

#include "fjord/v1/record.pb.h"
#include "google/rpc/status.pb.h"

namespace fjord::testing::chaos {
namespace {

// The ErrorInfo a Fjord broker packs into google.rpc.Status details; nullopt
// when the status carries none (e.g. a transport error).
bool ErrorInfoOf(const grpc::Status& status, fjord::v1::ErrorInfo* info) {
  if (status.error_details().empty()) return false;
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return false;
  for (const auto& any : details.details()) {
    if (any.UnpackTo(info)) return true;
  }
  return false;
}

bool Contains(const std::string& haystack, const char* needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPending:
      return "pending";
    case Outcome::kOk:
      return "ok";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kIndeterminate:
      return "indeterminate";
  }
  return "?";
}

Outcome ClassifyProduceStatus(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return Outcome::kOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::UNIMPLEMENTED:
      return Outcome::kFailed;
    case grpc::StatusCode::UNAVAILABLE: {
      fjord::v1::ErrorInfo info;
      if (!ErrorInfoOf(status, &info)) return Outcome::kIndeterminate;
      const std::string& message = status.error_message();
      switch (info.reason()) {
        case fjord::v1::ErrorInfo::NOT_ENOUGH_REPLICAS:
        case fjord::v1::ErrorInfo::SHUTTING_DOWN:
          return Outcome::kFailed;
        case fjord::v1::ErrorInfo::NOT_LEADER:
          // The lookup refusal (before any append) versus the leader that lost
          // leadership while waiting for its followers (after the append).
          if (Contains(message, "may or may not"))
            return Outcome::kIndeterminate;
          if (Contains(message, "does not lead partition") ||
              Contains(message, "has no leader right now")) {
            return Outcome::kFailed;
          }
          return Outcome::kIndeterminate;
        default:
          return Outcome::kIndeterminate;
      }
    }
    default:
      return Outcome::kIndeterminate;
  }
}

int64_t History::Invoke(Op op) {
  absl::MutexLock lock(&mu_);
  op.id = static_cast<int64_t>(ops_.size());
  op.invoked = absl::Now();
  op.completed = absl::InfinitePast();
  op.outcome = Outcome::kPending;
  ops_.push_back(std::move(op));
  return ops_.back().id;
}

void History::Complete(int64_t id, Outcome outcome, int64_t offset,
                       std::string error, int broker) {
  absl::MutexLock lock(&mu_);
  Op& op = ops_.at(id);
  op.completed = absl::Now();
  op.outcome = outcome;
  op.offset = offset;
  op.error = std::move(error);
  op.broker = broker;
  if (outcome == Outcome::kOk && op.type == OpType::kProduce) ++acked_;
}

void History::CompleteRead(int64_t id, std::vector<ReadRecord> records) {
  absl::MutexLock lock(&mu_);
  Op& op = ops_.at(id);
  op.completed = absl::Now();
  op.outcome = Outcome::kOk;
  op.records = std::move(records);
}

void History::AddFault(FaultRecord fault) {
  absl::MutexLock lock(&mu_);
  faults_.push_back(std::move(fault));
}

std::vector<Op> History::ops() const {
  absl::MutexLock lock(&mu_);
  return ops_;
}

std::vector<FaultRecord> History::faults() const {
  absl::MutexLock lock(&mu_);
  return faults_;
}

int64_t History::acked() const {
  absl::MutexLock lock(&mu_);
  return acked_;
}

}  // namespace fjord::testing::chaos
