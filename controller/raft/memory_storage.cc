#include "controller/raft/memory_storage.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace fjord::raft {

MemoryStorage::MemoryStorage() { ents_.push_back(Entry{}); }

absl::StatusOr<InitialState> MemoryStorage::GetInitialState() const {
  return InitialState{hard_state_};
}

LogIndex MemoryStorage::FirstIndex() const { return ents_[0].index + 1; }

LogIndex MemoryStorage::LastIndex() const {
  return ents_[0].index + (ents_.size() - 1);
}

absl::StatusOr<std::vector<Entry>> MemoryStorage::Entries(
    LogIndex lo, LogIndex hi, uint64_t max_bytes) const {
  const LogIndex offset = ents_[0].index;
  if (lo <= offset) return CompactedError();
  if (hi > LastIndex() + 1) return UnavailableEntryError();
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (LogIndex i = lo; i < hi; ++i) {
    const Entry& e = ents_[(i - offset.value()).value()];
    bytes += e.data.size();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<Term> MemoryStorage::TermAt(LogIndex index) const {
  const LogIndex offset = ents_[0].index;
  if (index < offset) return CompactedError();
  if (index > LastIndex()) return UnavailableEntryError();
  return ents_[(index - offset.value()).value()].term;
}

absl::StatusOr<Snapshot> MemoryStorage::GetSnapshot() const {
  return snapshot_;
}

absl::Status MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return absl::OkStatus();
  const LogIndex first = FirstIndex();
  const LogIndex last_new = entries.back().index;
  if (last_new < first) return absl::OkStatus();  // All compacted already.
  size_t skip = 0;
  if (entries[0].index < first) {
    skip = (first - entries[0].index.value()).value();
  }
  const LogIndex start = entries[skip].index;
  if (start > LastIndex() + 1) {
    return absl::InternalError(
        absl::StrCat("raft: missing log entries [last: ", LastIndex().value(),
                     ", append at: ", start.value(), "]"));
  }
  ents_.resize((start - ents_[0].index.value()).value());
  ents_.insert(ents_.end(), entries.begin() + skip, entries.end());
  return absl::OkStatus();
}

absl::Status MemoryStorage::ApplySnapshot(const Snapshot& snapshot) {
  if (snapshot.metadata.index < snapshot_.metadata.index) {
    return CompactedError();
  }
  snapshot_ = snapshot;
  ents_.clear();
  ents_.push_back(Entry{snapshot.metadata.term, snapshot.metadata.index,
                        EntryType::kNormal, ""});
  return absl::OkStatus();
}

absl::StatusOr<Snapshot> MemoryStorage::CreateSnapshot(
    LogIndex index, std::vector<NodeId> voters, std::string data) {
  if (index <= snapshot_.metadata.index && !snapshot_.empty()) {
    return CompactedError();
  }
  if (index > LastIndex() || index < ents_[0].index) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raft: snapshot index ", index.value(), " outside the stored log"));
  }
  snapshot_.metadata.index = index;
  snapshot_.metadata.term =
      ents_[(index - ents_[0].index.value()).value()].term;
  snapshot_.metadata.voters = std::move(voters);
  snapshot_.data = std::move(data);
  return snapshot_;
}

absl::Status MemoryStorage::Compact(LogIndex compact_index) {
  const LogIndex offset = ents_[0].index;
  if (compact_index <= offset) return CompactedError();
  if (compact_index > LastIndex() || compact_index > snapshot_.metadata.index) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raft: compact index ", compact_index.value(),
        " is past the last index ", LastIndex().value(),
        " or the snapshot index ", snapshot_.metadata.index.value()));
  }
  const size_t k = (compact_index - offset.value()).value();
  ents_.erase(ents_.begin(), ents_.begin() + k);
  // ents_[0] is now the entry at compact_index; it becomes the dummy.
  ents_[0].data.clear();
  ents_[0].type = EntryType::kNormal;
  return absl::OkStatus();
}

}  // namespace fjord::raft
