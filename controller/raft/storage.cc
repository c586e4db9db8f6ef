#include "controller/raft/storage.h"

#include "absl/strings/match.h"

namespace fjord::raft {
namespace {
constexpr char kCompacted[] = "raft: requested index is compacted";
constexpr char kUnavailable[] = "raft: requested index is past the last entry";
}  // namespace

absl::Status CompactedError() { return absl::OutOfRangeError(kCompacted); }

bool IsCompacted(const absl::Status& status) {
  return status.code() == absl::StatusCode::kOutOfRange &&
         status.message() == kCompacted;
}

absl::Status UnavailableEntryError() {
  return absl::OutOfRangeError(kUnavailable);
}

bool IsUnavailableEntry(const absl::Status& status) {
  return status.code() == absl::StatusCode::kOutOfRange &&
         status.message() == kUnavailable;
}

absl::Status SnapshotTemporarilyUnavailableError() {
  return absl::UnavailableError("raft: snapshot temporarily unavailable");
}

}  // namespace fjord::raft
