// RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status, which Debian's Abseil
// (20220623) does not provide.
#ifndef FJORD_COMMON_STATUS_MACROS_H_
#define FJORD_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function when
// it is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status fjord_status_ = (expr);           \
    if (!fjord_status_.ok()) return fjord_status_;   \
  } while (false)

#define FJORD_STATUS_CONCAT_INNER_(a, b) a##b
#define FJORD_STATUS_CONCAT_(a, b) FJORD_STATUS_CONCAT_INNER_(a, b)

// `ASSIGN_OR_RETURN(T x, expr)` evaluates `expr` (an absl::StatusOr<T>), returns its
// status from the enclosing function when it is not OK, and otherwise moves its value
// into `x`.
#define ASSIGN_OR_RETURN(lhs, expr)                                          \
  FJORD_ASSIGN_OR_RETURN_IMPL_(                                              \
      FJORD_STATUS_CONCAT_(fjord_statusor_, __LINE__), lhs, expr)

#define FJORD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // FJORD_COMMON_STATUS_MACROS_H_
