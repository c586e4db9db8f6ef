// Errors of the metadata controller.
//
// A controller error is an absl::Status whose code is the gRPC code the
// broker or client will see, carrying two payloads: the public
// fjord.v1.ErrorInfo (through broker/errors.h's MakeError, so that the API
// edge's ToGrpcStatus keeps working) and a fjord.internal.v1.
// ControllerErrorInfo naming the exact controller-side cause (stale broker
// epoch, fenced leader epoch, ...), which brokers use to decide whether to
// re-register, refresh metadata or retry.
//
// Code conventions (DESIGN.md "Errors and bad input"):
//   INVALID_ARGUMENT     malformed request (bad name, config, ISR shape).
//   NOT_FOUND            unknown topic or partition.
//   ALREADY_EXISTS       topic exists; another live incarnation holds the id.
//   FAILED_PRECONDITION  the sender's identity is stale or not allowed: broker
//                        not registered, stale broker epoch, not the leader,
//                        ineligible ISR member. Retrying the same request can
//                        never succeed; the broker must re-register or wait.
//   ABORTED              a concurrency conflict on a partition: the leader
//                        epoch or partition epoch moved on. The sender learns
//                        the new state from the metadata log and may retry.
#ifndef FJORD_CONTROLLER_METADATA_ERRORS_H_
#define FJORD_CONTROLLER_METADATA_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "fjord/internal/v1/controller_records.pb.h"
#include "fjord/v1/record.pb.h"

namespace fjord::controller {

using ControllerReason = fjord::internal::v1::ControllerErrorInfo::Reason;

// A status with `code` and `message`, the public `reason` and the controller
// reason `controller_reason`.
absl::Status ControllerError(absl::StatusCode code,
                             ControllerReason controller_reason,
                             fjord::v1::ErrorInfo::Reason reason,
                             std::string message);

// The controller reason attached to `status`, REASON_UNSPECIFIED if none.
ControllerReason ControllerReasonOf(const absl::Status& status);

}  // namespace fjord::controller

#endif  // FJORD_CONTROLLER_METADATA_ERRORS_H_
