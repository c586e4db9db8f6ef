#include "controller/raft/raft_proto.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace fjord::raft {
namespace {

namespace pb = ::fjord::internal::v1;

// Wire enums are the core's values + 1 (0 is UNSPECIFIED).
constexpr int kMaxMessageType =
    static_cast<int>(MessageType::kReadIndexResponse);
constexpr int kMaxEntryType = static_cast<int>(EntryType::kNoOp);

}  // namespace

void EntryToProto(const Entry& entry, pb::RaftEntry* out) {
  out->set_term(entry.term.value());
  out->set_index(entry.index.value());
  out->set_type(
      static_cast<pb::RaftEntryType>(static_cast<int>(entry.type) + 1));
  out->set_data(entry.data);
}

absl::StatusOr<Entry> EntryFromProto(const pb::RaftEntry& proto) {
  const int type = static_cast<int>(proto.type()) - 1;
  if (type < 0 || type > kMaxEntryType) {
    return absl::InvalidArgumentError(
        absl::StrCat("raft: bad entry type ", static_cast<int>(proto.type()),
                     " at index ", proto.index()));
  }
  return Entry{Term(proto.term()), LogIndex(proto.index()),
               static_cast<EntryType>(type), proto.data()};
}

void SnapshotToProto(const Snapshot& snapshot, pb::RaftSnapshot* out) {
  pb::RaftSnapshotMetadata* md = out->mutable_metadata();
  md->set_index(snapshot.metadata.index.value());
  md->set_term(snapshot.metadata.term.value());
  for (NodeId v : snapshot.metadata.voters) md->add_voters(v.value());
  out->set_data(snapshot.data);
}

absl::StatusOr<Snapshot> SnapshotFromProto(const pb::RaftSnapshot& proto) {
  Snapshot s;
  s.metadata.index = LogIndex(proto.metadata().index());
  s.metadata.term = Term(proto.metadata().term());
  for (uint64_t v : proto.metadata().voters()) {
    s.metadata.voters.push_back(NodeId(v));
  }
  s.data = proto.data();
  return s;
}

void MessageToProto(const Message& m, pb::RaftMessage* out) {
  out->set_type(static_cast<pb::RaftMessageType>(static_cast<int>(m.type) + 1));
  out->set_from(m.from.value());
  out->set_to(m.to.value());
  out->set_term(m.term.value());
  out->set_log_index(m.log_index.value());
  out->set_log_term(m.log_term.value());
  for (const Entry& e : m.entries) EntryToProto(e, out->add_entries());
  out->set_commit(m.commit.value());
  out->set_reject(m.reject);
  out->set_conflict_index(m.conflict_index.value());
  out->set_conflict_term(m.conflict_term.value());
  if (m.snapshot.has_value())
    SnapshotToProto(*m.snapshot, out->mutable_snapshot());
  out->set_context(m.context);
}

absl::StatusOr<Message> MessageFromProto(const pb::RaftMessage& proto) {
  const int type = static_cast<int>(proto.type()) - 1;
  if (type < 0 || type > kMaxMessageType) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raft: bad message type ", static_cast<int>(proto.type())));
  }
  Message m;
  m.type = static_cast<MessageType>(type);
  m.from = NodeId(proto.from());
  m.to = NodeId(proto.to());
  m.term = Term(proto.term());
  m.log_index = LogIndex(proto.log_index());
  m.log_term = Term(proto.log_term());
  m.entries.reserve(proto.entries_size());
  for (const pb::RaftEntry& e : proto.entries()) {
    ASSIGN_OR_RETURN(Entry entry, EntryFromProto(e));
    m.entries.push_back(std::move(entry));
  }
  m.commit = LogIndex(proto.commit());
  m.reject = proto.reject();
  m.conflict_index = LogIndex(proto.conflict_index());
  m.conflict_term = Term(proto.conflict_term());
  if (proto.has_snapshot()) {
    ASSIGN_OR_RETURN(Snapshot s, SnapshotFromProto(proto.snapshot()));
    m.snapshot = std::move(s);
  } else if (m.type == MessageType::kSnapshot) {
    return absl::InvalidArgumentError(
        "raft: snapshot message without snapshot");
  }
  m.context = proto.context();
  return m;
}

}  // namespace fjord::raft
