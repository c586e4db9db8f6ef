// Assertions for tests that call Fjord's gRPC API directly: statuses as
// GoogleTest failures, the fjord.v1.ErrorInfo in a status's details, and what a
// well-formed rejection looks like.
#ifndef FJORD_INTEGRATION_TESTS_GRPC_ASSERTIONS_H_
#define FJORD_INTEGRATION_TESTS_GRPC_ASSERTIONS_H_

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fjord/v1/record.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace fjord::testing {

inline absl::Status StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

#define ASSERT_OK(expr)                                             \
  do {                                                              \
    const absl::Status fjord_s_ = ::fjord::testing::StatusOf(expr); \
    ASSERT_TRUE(fjord_s_.ok()) << #expr << ": " << fjord_s_;        \
  } while (false)

#define EXPECT_OK_STATUS(expr)                                      \
  do {                                                              \
    const absl::Status fjord_s_ = ::fjord::testing::StatusOf(expr); \
    EXPECT_TRUE(fjord_s_.ok()) << #expr << ": " << fjord_s_;        \
  } while (false)

// "code N \"message\"".
std::string GrpcToString(const grpc::Status& s);

#define ASSERT_GRPC_OK(expr)                                                                \
  do {                                                                                      \
    const grpc::Status fjord_g_ = (expr);                                                   \
    ASSERT_TRUE(fjord_g_.ok()) << #expr << ": " << ::fjord::testing::GrpcToString(fjord_g_); \
  } while (false)

#define EXPECT_GRPC_OK(expr)                                                                \
  do {                                                                                      \
    const grpc::Status fjord_g_ = (expr);                                                   \
    EXPECT_TRUE(fjord_g_.ok()) << #expr << ": " << ::fjord::testing::GrpcToString(fjord_g_); \
  } while (false)

// Deadline of every unary RPC the tests make.
inline constexpr absl::Duration kRpcTimeout = absl::Seconds(10);

void SetDeadline(grpc::ClientContext* ctx, absl::Duration d);

// The fjord.v1.ErrorInfo in a failed status's google.rpc.Status details.
std::optional<fjord::v1::ErrorInfo> ErrorInfoOf(const grpc::Status& s);

// What a rejection must look like.
struct Rejection {
  grpc::StatusCode code;
  // Acceptable ErrorInfo reasons; empty when the status need not carry one
  // (e.g. limits enforced by gRPC itself).
  std::set<fjord::v1::ErrorInfo::Reason> reasons;
  // Substrings the message must contain (topic name, offset, ...).
  std::vector<std::string> mentions;
};

// Whether `s` is the rejection `want` describes, with a readable message.
::testing::AssertionResult IsRejected(const grpc::Status& s, const Rejection& want);

}  // namespace fjord::testing

#endif  // FJORD_INTEGRATION_TESTS_GRPC_ASSERTIONS_H_
