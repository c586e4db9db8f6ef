#include "controller/raft/raft_log.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <limits>

namespace fjord::raft {
namespace {

[[noreturn]] void Fatal(const char* what, LogIndex a, LogIndex b) {
  std::cerr << "raft: fatal: " << what << " (" << a << ", " << b << ")\n";
  std::abort();
}

}  // namespace

RaftLog::RaftLog(const Storage* storage) : storage_(storage) {
  unstable_offset_ = storage_->LastIndex() + 1;
  committed_ = storage_->FirstIndex() - 1;
  applied_ = committed_;
}

void RaftLog::Init(LogIndex committed, LogIndex applied) {
  committed_ = std::max(committed, committed_);
  applied_ = std::max(applied, applied_);
  if (committed_ > LastIndex())
    Fatal("commit past last index", committed_, LastIndex());
  if (applied_ > committed_) Fatal("applied past commit", applied_, committed_);
}

LogIndex RaftLog::FirstIndex() const {
  if (unstable_snapshot_) return unstable_snapshot_->metadata.index + 1;
  return storage_->FirstIndex();
}

LogIndex RaftLog::LastIndex() const {
  if (!unstable_.empty()) return unstable_offset_ + (unstable_.size() - 1);
  if (unstable_snapshot_) return unstable_snapshot_->metadata.index;
  return storage_->LastIndex();
}

Term RaftLog::LastTerm() const { return TermOrZero(LastIndex()); }

absl::StatusOr<Term> RaftLog::TermAt(LogIndex index) const {
  const LogIndex dummy = FirstIndex() - 1;
  if (index < dummy) return CompactedError();
  if (index > LastIndex()) return Term(0);
  if (!unstable_.empty() && index >= unstable_offset_) {
    return unstable_[(index - unstable_offset_.value()).value()].term;
  }
  if (unstable_snapshot_ && index == unstable_snapshot_->metadata.index) {
    return unstable_snapshot_->metadata.term;
  }
  return storage_->TermAt(index);
}

Term RaftLog::TermOrZero(LogIndex index) const {
  absl::StatusOr<Term> t = TermAt(index);
  return t.ok() ? *t : Term(0);
}

bool RaftLog::MatchTerm(LogIndex index, Term term) const {
  absl::StatusOr<Term> t = TermAt(index);
  return t.ok() && *t == term;
}

absl::StatusOr<std::vector<Entry>> RaftLog::Slice(LogIndex lo, LogIndex hi,
                                                  uint64_t max_bytes) const {
  if (lo < FirstIndex()) return CompactedError();
  hi = std::min(hi, LastIndex() + 1);
  std::vector<Entry> out;
  if (lo >= hi) return out;
  if (lo < unstable_offset_) {
    absl::StatusOr<std::vector<Entry>> stored =
        storage_->Entries(lo, std::min(hi, unstable_offset_), max_bytes);
    if (!stored.ok()) return stored.status();
    out = std::move(*stored);
    // Storage stopped early on max_bytes: do not add unstable entries.
    if (out.back().index + 1 < std::min(hi, unstable_offset_)) return out;
  }
  uint64_t bytes = 0;
  for (const Entry& e : out) bytes += e.data.size();
  for (LogIndex i = std::max(lo, unstable_offset_); i < hi; ++i) {
    const Entry& e = unstable_[(i - unstable_offset_.value()).value()];
    bytes += e.data.size();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

bool RaftLog::IsUpToDate(LogIndex last_index, Term last_term) const {
  const Term my_term = LastTerm();
  return last_term > my_term ||
         (last_term == my_term && last_index >= LastIndex());
}

std::optional<LogIndex> RaftLog::MaybeAppend(
    LogIndex prev_index, Term prev_term, LogIndex leader_commit,
    const std::vector<Entry>& entries) {
  if (!MatchTerm(prev_index, prev_term)) return std::nullopt;
  const LogIndex last_new = prev_index + entries.size();
  // Find the first entry that is not already in the log.
  size_t k = 0;
  for (; k < entries.size(); ++k) {
    if (!MatchTerm(entries[k].index, entries[k].term)) break;
  }
  if (k < entries.size()) {
    if (entries[k].index <= committed_) {
      Fatal("conflict with a committed entry", entries[k].index, committed_);
    }
    Append(std::vector<Entry>(entries.begin() + k, entries.end()));
  }
  CommitTo(std::min(leader_commit, last_new));
  return last_new;
}

LogIndex RaftLog::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return LastIndex();
  const LogIndex after = entries[0].index;
  if (after <= committed_)
    Fatal("append over committed entry", after, committed_);
  if (after == unstable_offset_ + unstable_.size()) {
    unstable_.insert(unstable_.end(), entries.begin(), entries.end());
  } else if (after <= unstable_offset_) {
    // Replaces the whole unstable tail; the driver overwrites storage from
    // `after` on when it persists these.
    unstable_offset_ = after;
    unstable_ = entries;
  } else {
    unstable_.resize((after - unstable_offset_.value()).value());
    unstable_.insert(unstable_.end(), entries.begin(), entries.end());
  }
  return LastIndex();
}

bool RaftLog::MaybeCommit(LogIndex index, Term term) {
  if (index > committed_ && TermOrZero(index) == term) {
    CommitTo(index);
    return true;
  }
  return false;
}

bool RaftLog::ForceCommit(LogIndex index) {
  if (index > committed_) {
    CommitTo(index);
    return true;
  }
  return false;
}

void RaftLog::CommitTo(LogIndex index) {
  if (index <= committed_) return;  // Commit never moves back.
  if (index > LastIndex()) Fatal("commit past last index", index, LastIndex());
  committed_ = index;
}

void RaftLog::AppliedTo(LogIndex index) {
  if (index == LogIndex(0)) return;
  if (index > committed_ || index < applied_) {
    Fatal("applied index out of range", index, committed_);
  }
  applied_ = index;
}

void RaftLog::Restore(const Snapshot& snapshot) {
  committed_ = snapshot.metadata.index;
  unstable_offset_ = snapshot.metadata.index + 1;
  unstable_.clear();
  unstable_snapshot_ = snapshot;
}

LogIndex RaftLog::FirstIndexOfTermRun(LogIndex index, Term term) const {
  const LogIndex floor = std::max(committed_ + 1, FirstIndex());
  while (index > floor && TermOrZero(index - 1) == term) index = index - 1;
  return index;
}

bool RaftLog::HasNextCommittedEntries() const {
  const LogIndex from = std::max(applied_ + 1, FirstIndex());
  return committed_ >= from;
}

std::vector<Entry> RaftLog::NextCommittedEntries(uint64_t max_bytes) const {
  const LogIndex from = std::max(applied_ + 1, FirstIndex());
  if (committed_ < from) return {};
  absl::StatusOr<std::vector<Entry>> ents =
      Slice(from, committed_ + 1, max_bytes);
  if (!ents.ok()) Fatal("committed entries unavailable", from, committed_);
  return std::move(*ents);
}

void RaftLog::StableTo(LogIndex index, Term term) {
  if (unstable_.empty() || index < unstable_offset_) return;
  if (index > unstable_offset_ + (unstable_.size() - 1)) return;
  const size_t k = (index - unstable_offset_.value()).value();
  // Only if the entry was not overwritten since it was handed out.
  if (unstable_[k].term != term) return;
  unstable_.erase(unstable_.begin(), unstable_.begin() + k + 1);
  unstable_offset_ = index + 1;
}

void RaftLog::StableSnapshotTo(LogIndex index) {
  if (unstable_snapshot_ && unstable_snapshot_->metadata.index == index) {
    unstable_snapshot_.reset();
  }
}

absl::StatusOr<Snapshot> RaftLog::GetSnapshot() const {
  if (unstable_snapshot_) return *unstable_snapshot_;
  return storage_->GetSnapshot();
}

}  // namespace fjord::raft
