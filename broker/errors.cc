#include "broker/errors.h"

#include "absl/strings/str_cat.h"
#include "google/rpc/status.pb.h"

namespace fjord::broker {
namespace {

constexpr char kErrorInfoUrl[] = "type.googleapis.com/fjord.v1.ErrorInfo";

Reason DefaultReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kNotFound:
      return fjord::v1::ErrorInfo::UNKNOWN_TOPIC;
    case absl::StatusCode::kAlreadyExists:
      return fjord::v1::ErrorInfo::TOPIC_ALREADY_EXISTS;
    case absl::StatusCode::kOutOfRange:
      return fjord::v1::ErrorInfo::OFFSET_OUT_OF_RANGE;
    case absl::StatusCode::kDataLoss:
      return fjord::v1::ErrorInfo::CORRUPT_DATA;
    case absl::StatusCode::kInvalidArgument:
      return fjord::v1::ErrorInfo::INVALID_REQUEST;
    case absl::StatusCode::kInternal:
      return fjord::v1::ErrorInfo::STORAGE_ERROR;
    case absl::StatusCode::kResourceExhausted:
      // Every limit a request can exceed is reported with its own reason
      // (MakeError); without one, it is the store's full disk.
      return fjord::v1::ErrorInfo::DISK_FULL;
    default:
      return fjord::v1::ErrorInfo::REASON_UNSPECIFIED;
  }
}

}  // namespace

absl::Status WithErrorInfo(absl::Status status, const fjord::v1::ErrorInfo& info) {
  status.SetPayload(kErrorInfoUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

absl::Status MakeError(absl::StatusCode code, Reason reason,
                       std::string message) {
  fjord::v1::ErrorInfo info;
  info.set_reason(reason);
  return WithErrorInfo(absl::Status(code, message), info);
}

absl::Status WithPrefix(const absl::Status& status, absl::string_view prefix) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(prefix, status.message()));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

fjord::v1::ErrorInfo ErrorInfoOf(const absl::Status& status) {
  fjord::v1::ErrorInfo info;
  if (auto payload = status.GetPayload(kErrorInfoUrl); payload.has_value()) {
    if (info.ParseFromString(std::string(*payload))) return info;
  }
  info.set_reason(DefaultReason(status.code()));
  return info;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status details;
  details.set_code(static_cast<int>(status.code()));
  details.set_message(std::string(status.message()));
  details.add_details()->PackFrom(ErrorInfoOf(status));
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()),
                      details.SerializeAsString());
}

}  // namespace fjord::broker
