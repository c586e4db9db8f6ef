#include "controller/metadata/errors.h"

#include <utility>

#include "broker/errors.h"

namespace fjord::controller {
namespace {

constexpr char kControllerErrorInfoUrl[] =
    "type.googleapis.com/fjord.internal.v1.ControllerErrorInfo";

}  // namespace

absl::Status ControllerError(absl::StatusCode code,
                             ControllerReason controller_reason,
                             fjord::v1::ErrorInfo::Reason reason,
                             std::string message) {
  absl::Status status = broker::MakeError(code, reason, std::move(message));
  fjord::internal::v1::ControllerErrorInfo info;
  info.set_reason(controller_reason);
  status.SetPayload(kControllerErrorInfoUrl,
                    absl::Cord(info.SerializeAsString()));
  return status;
}

ControllerReason ControllerReasonOf(const absl::Status& status) {
  fjord::internal::v1::ControllerErrorInfo info;
  if (auto payload = status.GetPayload(kControllerErrorInfoUrl);
      payload.has_value() && info.ParseFromString(std::string(*payload))) {
    return info.reason();
  }
  return fjord::internal::v1::ControllerErrorInfo::REASON_UNSPECIFIED;
}

}  // namespace fjord::controller
