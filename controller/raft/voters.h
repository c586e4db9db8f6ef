// The static voter set of a Raft quorum, as given by
// --controller-quorum-voters "1@host:port,2@host:port,3@host:port".
#ifndef FJORD_CONTROLLER_RAFT_VOTERS_H_
#define FJORD_CONTROLLER_RAFT_VOTERS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "controller/raft/types.h"

namespace fjord::raft {

struct Voter {
  NodeId id;
  // "host:port" as written (IPv6 hosts in brackets: "[::1]:9093"), usable
  // as a gRPC target.
  std::string address;

  bool operator==(const Voter&) const = default;
};

// Parses a comma-separated list of ID@HOST:PORT. Whitespace around items is
// ignored. Returns the voters in the order given. INVALID_ARGUMENT, with a
// message naming the offending item, for: an empty list or item, a missing
// '@', an id that is not a positive integer, a missing host or port, a port
// outside 1..65535, or a duplicate id or address.
absl::StatusOr<std::vector<Voter>> ParseVoters(absl::string_view spec);

// The inverse: "1@a:1,2@b:2".
std::string FormatVoters(const std::vector<Voter>& voters);

}  // namespace fjord::raft

#endif  // FJORD_CONTROLLER_RAFT_VOTERS_H_
