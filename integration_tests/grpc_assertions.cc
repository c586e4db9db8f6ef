#include "integration_tests/grpc_assertions.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/rpc/status.pb.h"

namespace fjord::testing {

using ::fjord::v1::ErrorInfo;

std::string GrpcToString(const grpc::Status& s) {
  return absl::StrCat("code ", s.error_code(), " \"", s.error_message(), "\"");
}

void SetDeadline(grpc::ClientContext* ctx, absl::Duration d) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + d));
}

// The fjord.v1.ErrorInfo in a failed status's google.rpc.Status details.
std::optional<ErrorInfo> ErrorInfoOf(const grpc::Status& s) {
  google::rpc::Status details;
  if (s.error_details().empty() ||
      !details.ParseFromString(s.error_details())) {
    return std::nullopt;
  }
  for (const google::protobuf::Any& any : details.details()) {
    ErrorInfo info;
    if (any.Is<ErrorInfo>() && any.UnpackTo(&info)) return info;
  }
  return std::nullopt;
}

// Whether `s` is the rejection `want` describes, with a readable message.
::testing::AssertionResult IsRejected(const grpc::Status& s,
                                      const Rejection& want) {
  if (s.ok()) return ::testing::AssertionFailure() << "the call succeeded";
  if (s.error_code() != want.code) {
    return ::testing::AssertionFailure()
           << "code " << s.error_code() << ", want " << want.code << " ("
           << GrpcToString(s) << ")";
  }
  const std::string& m = s.error_message();
  if (m.size() < 10) {
    return ::testing::AssertionFailure()
           << "message too short: \"" << m << "\"";
  }
  for (unsigned char c : m) {
    if (c < 0x20 || c == 0x7f) {
      return ::testing::AssertionFailure()
             << "message has control characters: \"" << m << "\"";
    }
  }
  for (const std::string& mention : want.mentions) {
    if (!absl::StrContains(m, mention)) {
      return ::testing::AssertionFailure()
             << "message \"" << m << "\" does not mention \"" << mention
             << "\"";
    }
  }
  if (!want.reasons.empty()) {
    std::optional<ErrorInfo> info = ErrorInfoOf(s);
    if (!info.has_value()) {
      return ::testing::AssertionFailure()
             << "no fjord.v1.ErrorInfo in the status details ("
             << GrpcToString(s) << ")";
    }
    if (want.reasons.count(info->reason()) == 0) {
      return ::testing::AssertionFailure()
             << "ErrorInfo reason " << ErrorInfo::Reason_Name(info->reason())
             << " is not the expected one (" << GrpcToString(s) << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace fjord::testing
