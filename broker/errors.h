// Errors inside the broker and their one mapping to gRPC statuses at the API edge.
//
// Inside the broker, failures are absl::Status values whose code already is the
// gRPC code the client will see (the codes are the same set). A status may carry a
// fjord.v1.ErrorInfo payload (see MakeError) naming the exact reason; ToGrpcStatus
// puts it into the google.rpc.Status details of the answer, and fills in a reason
// from the code when there is none.
#ifndef FJORD_BROKER_ERRORS_H_
#define FJORD_BROKER_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fjord/v1/record.pb.h"
#include "grpcpp/support/status.h"

namespace fjord::broker {

using Reason = fjord::v1::ErrorInfo::Reason;

// A status with `code`, `message` and an ErrorInfo{reason} payload.
absl::Status MakeError(absl::StatusCode code, Reason reason,
                       std::string message);

// `status` with `prefix` put before its message, keeping its code and payloads.
absl::Status WithPrefix(const absl::Status& status, absl::string_view prefix);

// `status` with `info` attached as its ErrorInfo payload.
absl::Status WithErrorInfo(absl::Status status, const fjord::v1::ErrorInfo& info);

// The ErrorInfo attached to `status`, or one derived from its code.
fjord::v1::ErrorInfo ErrorInfoOf(const absl::Status& status);

// The gRPC status a client sees for `status`: same code and message, with a
// google.rpc.Status carrying the ErrorInfo in the binary details.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace fjord::broker

#endif  // FJORD_BROKER_ERRORS_H_
