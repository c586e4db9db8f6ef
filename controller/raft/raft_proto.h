// Conversion between the Raft core's value types (types.h) and their wire
// form in proto/fjord/internal/v1/raft.proto.
//
// Core -> proto never fails. Proto -> core validates what the core cannot
// represent or must never see: unknown or UNSPECIFIED enum values, a SNAPSHOT
// message without a snapshot. Semantic checks (is `to` this node?) belong to
// the receiver. Thread-compatible pure functions.
#ifndef FJORD_CONTROLLER_RAFT_RAFT_PROTO_H_
#define FJORD_CONTROLLER_RAFT_RAFT_PROTO_H_

#include "absl/status/statusor.h"
#include "controller/raft/types.h"
#include "fjord/internal/v1/raft.pb.h"

namespace fjord::raft {

void EntryToProto(const Entry& entry, internal::v1::RaftEntry* out);
// INVALID_ARGUMENT for an unknown or unspecified entry type.
absl::StatusOr<Entry> EntryFromProto(const internal::v1::RaftEntry& proto);

void SnapshotToProto(const Snapshot& snapshot, internal::v1::RaftSnapshot* out);
absl::StatusOr<Snapshot> SnapshotFromProto(
    const internal::v1::RaftSnapshot& proto);

void MessageToProto(const Message& message, internal::v1::RaftMessage* out);
// INVALID_ARGUMENT for an unknown or unspecified message or entry type, or a
// SNAPSHOT message without its snapshot. The snapshot field is carried only
// when present, so Message::snapshot round-trips as nullopt otherwise.
absl::StatusOr<Message> MessageFromProto(
    const internal::v1::RaftMessage& proto);

}  // namespace fjord::raft

#endif  // FJORD_CONTROLLER_RAFT_RAFT_PROTO_H_
