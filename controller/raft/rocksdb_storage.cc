#include "controller/raft/rocksdb_storage.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace fjord::raft {
namespace {

constexpr char kVersionKey[] = "v";
constexpr char kHardStateKey[] = "h";
constexpr char kOffsetKey[] = "o";
constexpr char kSnapshotKey[] = "s";
constexpr char kEntryPrefix = 'e';
constexpr char kFormatVersion = '\x01';

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    out->push_back(static_cast<char>((v >> (56 - 8 * i)) & 0xFF));
  }
}

// Reads a big-endian u64 at `*pos` and advances it; false if too short.
bool GetU64(absl::string_view in, size_t* pos, uint64_t* v) {
  if (in.size() < *pos + 8) return false;
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i) {
    r = (r << 8) | static_cast<unsigned char>(in[*pos + i]);
  }
  *pos += 8;
  *v = r;
  return true;
}

absl::string_view View(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

std::string EntryKey(LogIndex index) {
  std::string key(1, kEntryPrefix);
  PutU64(&key, index.value());
  return key;
}

bool DecodeEntryKey(absl::string_view key, LogIndex* index) {
  if (key.size() != 9 || key[0] != kEntryPrefix) return false;
  size_t pos = 1;
  uint64_t v = 0;
  if (!GetU64(key, &pos, &v)) return false;
  *index = LogIndex(v);
  return true;
}

std::string EncodeEntry(const Entry& e) {
  std::string out;
  out.reserve(9 + e.data.size());
  PutU64(&out, e.term.value());
  out.push_back(static_cast<char>(e.type));
  out.append(e.data);
  return out;
}

bool DecodeEntry(absl::string_view in, LogIndex index, Entry* e) {
  size_t pos = 0;
  uint64_t term = 0;
  if (!GetU64(in, &pos, &term) || in.size() < pos + 1) return false;
  const uint8_t type = static_cast<uint8_t>(in[pos++]);
  if (type > static_cast<uint8_t>(EntryType::kNoOp)) return false;
  e->term = Term(term);
  e->index = index;
  e->type = static_cast<EntryType>(type);
  e->data = std::string(in.substr(pos));
  return true;
}

std::string EncodeHardState(const HardState& hs) {
  std::string out;
  PutU64(&out, hs.term.value());
  PutU64(&out, hs.vote.value());
  PutU64(&out, hs.commit.value());
  return out;
}

bool DecodeHardState(absl::string_view in, HardState* hs) {
  size_t pos = 0;
  uint64_t term = 0, vote = 0, commit = 0;
  if (!GetU64(in, &pos, &term) || !GetU64(in, &pos, &vote) ||
      !GetU64(in, &pos, &commit) || pos != in.size()) {
    return false;
  }
  *hs = HardState{Term(term), NodeId(vote), LogIndex(commit)};
  return true;
}

std::string EncodeOffset(LogIndex index, Term term) {
  std::string out;
  PutU64(&out, index.value());
  PutU64(&out, term.value());
  return out;
}

std::string EncodeSnapshot(const Snapshot& s) {
  std::string out;
  out.reserve(24 + 8 * s.metadata.voters.size() + s.data.size());
  PutU64(&out, s.metadata.index.value());
  PutU64(&out, s.metadata.term.value());
  PutU64(&out, s.metadata.voters.size());
  for (NodeId v : s.metadata.voters) PutU64(&out, v.value());
  out.append(s.data);
  return out;
}

bool DecodeSnapshot(absl::string_view in, Snapshot* s) {
  size_t pos = 0;
  uint64_t index = 0, term = 0, n = 0;
  if (!GetU64(in, &pos, &index) || !GetU64(in, &pos, &term) ||
      !GetU64(in, &pos, &n) || n > (in.size() - pos) / 8) {
    return false;
  }
  s->metadata.index = LogIndex(index);
  s->metadata.term = Term(term);
  s->metadata.voters.clear();
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t v = 0;
    if (!GetU64(in, &pos, &v)) return false;
    s->metadata.voters.push_back(NodeId(v));
  }
  s->data = std::string(in.substr(pos));
  return true;
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg =
      absl::StrCat("raft storage: ", what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut()) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

absl::Status WriteSynced(rocksdb::DB* db, rocksdb::WriteBatch* batch) {
  rocksdb::WriteOptions options;
  options.sync = true;
  return FromRocks(db->Write(options, batch), "write");
}

}  // namespace

RocksDbRaftStorage::RocksDbRaftStorage(std::unique_ptr<rocksdb::DB> db)
    : db_(std::move(db)) {}

RocksDbRaftStorage::~RocksDbRaftStorage() {
  if (db_ != nullptr) {
    // Everything was written with sync; Close only releases resources.
    db_->Close().PermitUncheckedError();
  }
}

absl::StatusOr<std::unique_ptr<RocksDbRaftStorage>> RocksDbRaftStorage::Open(
    const std::string& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.max_background_jobs = 1;
  options.keep_log_file_num = 2;
  options.max_log_file_size = size_t{4} << 20;
  // The Raft log is small and short-lived: modest memtables.
  options.write_buffer_size = size_t{8} << 20;
  rocksdb::DB* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(options, dir, &raw),
                            absl::StrCat("open ", dir)));
  std::unique_ptr<RocksDbRaftStorage> storage(
      new RocksDbRaftStorage(std::unique_ptr<rocksdb::DB>(raw)));
  RETURN_IF_ERROR(storage->Load());
  return storage;
}

absl::Status RocksDbRaftStorage::Load() {
  const rocksdb::ReadOptions ro;
  std::string value;
  rocksdb::Status s = db_->Get(ro, kVersionKey, &value);
  if (s.IsNotFound()) {
    rocksdb::WriteBatch batch;
    batch.Put(kVersionKey, std::string(1, kFormatVersion));
    RETURN_IF_ERROR(WriteSynced(db_.get(), &batch));
  } else {
    RETURN_IF_ERROR(FromRocks(s, "read version"));
    if (value != std::string(1, kFormatVersion)) {
      return absl::FailedPreconditionError(
          "raft storage: unknown format version");
    }
  }

  s = db_->Get(ro, kHardStateKey, &value);
  if (!s.IsNotFound()) {
    RETURN_IF_ERROR(FromRocks(s, "read hard state"));
    if (!DecodeHardState(value, &hard_state_)) {
      return absl::DataLossError("raft storage: corrupt hard state");
    }
  }
  s = db_->Get(ro, kSnapshotKey, &value);
  if (!s.IsNotFound()) {
    RETURN_IF_ERROR(FromRocks(s, "read snapshot"));
    if (!DecodeSnapshot(value, &snapshot_)) {
      return absl::DataLossError("raft storage: corrupt snapshot");
    }
  }
  Term offset_term;
  s = db_->Get(ro, kOffsetKey, &value);
  if (!s.IsNotFound()) {
    RETURN_IF_ERROR(FromRocks(s, "read log offset"));
    size_t pos = 0;
    uint64_t index = 0, term = 0;
    if (!GetU64(value, &pos, &index) || !GetU64(value, &pos, &term)) {
      return absl::DataLossError("raft storage: corrupt log offset");
    }
    offset_ = LogIndex(index);
    offset_term = Term(term);
  }
  terms_.assign(1, offset_term);

  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(EntryKey(offset_ + 1)); it->Valid(); it->Next()) {
    LogIndex index;
    if (!DecodeEntryKey(View(it->key()), &index)) break;  // Past the entries.
    Entry e;
    if (index != LastIndex() + 1 ||
        !DecodeEntry(View(it->value()), index, &e)) {
      return absl::DataLossError(absl::StrCat(
          "raft storage: log entry ", index.value(),
          " is corrupt or follows a hole after ", LastIndex().value()));
    }
    terms_.push_back(e.term);
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan log"));
  if (!snapshot_.empty() && snapshot_.metadata.index < offset_) {
    return absl::DataLossError("raft storage: log starts after the snapshot");
  }
  return absl::OkStatus();
}

absl::StatusOr<InitialState> RocksDbRaftStorage::GetInitialState() const {
  return InitialState{hard_state_};
}

LogIndex RocksDbRaftStorage::FirstIndex() const { return offset_ + 1; }

LogIndex RocksDbRaftStorage::LastIndex() const {
  return offset_ + (terms_.size() - 1);
}

absl::StatusOr<Term> RocksDbRaftStorage::TermAt(LogIndex index) const {
  if (index < offset_) return CompactedError();
  if (index > LastIndex()) return UnavailableEntryError();
  return terms_[(index - offset_.value()).value()];
}

absl::StatusOr<Snapshot> RocksDbRaftStorage::GetSnapshot() const {
  return snapshot_;
}

absl::StatusOr<std::vector<Entry>> RocksDbRaftStorage::Entries(
    LogIndex lo, LogIndex hi, uint64_t max_bytes) const {
  if (lo <= offset_) return CompactedError();
  if (hi > LastIndex() + 1) return UnavailableEntryError();
  std::vector<Entry> out;
  if (lo >= hi) return out;
  const std::string upper = EntryKey(hi);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  uint64_t bytes = 0;
  LogIndex want = lo;
  for (it->Seek(EntryKey(lo)); it->Valid() && want < hi; it->Next(), ++want) {
    LogIndex index;
    Entry e;
    if (!DecodeEntryKey(View(it->key()), &index) || index != want ||
        !DecodeEntry(View(it->value()), index, &e)) {
      return absl::DataLossError(absl::StrCat(
          "raft storage: log entry ", want.value(), " missing or corrupt"));
    }
    bytes += e.data.size();
    if (!out.empty() && bytes > max_bytes) return out;
    out.push_back(std::move(e));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "read entries"));
  if (want != hi) {
    return absl::DataLossError(
        absl::StrCat("raft storage: log entry ", want.value(), " missing"));
  }
  return out;
}

absl::Status RocksDbRaftStorage::SaveReady(
    const std::optional<HardState>& hard_state,
    const std::vector<Entry>& entries,
    const std::optional<Snapshot>& snapshot) {
  rocksdb::WriteBatch batch;
  // The log as it will be after this write: (offset, last].
  LogIndex offset = offset_;
  LogIndex last = LastIndex();

  if (snapshot.has_value()) {
    const SnapshotMetadata& md = snapshot->metadata;
    if (md.index < snapshot_.metadata.index) return CompactedError();
    batch.Put(kSnapshotKey, EncodeSnapshot(*snapshot));
    batch.Put(kOffsetKey, EncodeOffset(md.index, md.term));
    for (LogIndex i = offset + 1; i <= last; ++i) batch.Delete(EntryKey(i));
    offset = md.index;
    last = md.index;
  }

  bool append = false;
  LogIndex start;
  size_t skip = 0;
  if (!entries.empty() && entries.back().index > offset) {
    for (size_t i = 1; i < entries.size(); ++i) {
      if (entries[i].index != entries[i - 1].index + 1) {
        return absl::InvalidArgumentError(
            "raft storage: entries to append are not contiguous");
      }
    }
    if (entries[0].index <= offset) {
      skip = (offset + 1 - entries[0].index.value()).value();
    }
    start = entries[skip].index;
    if (start > last + 1) {
      return absl::InternalError(absl::StrCat(
          "raft storage: missing log entries [last: ", last.value(),
          ", append at: ", start.value(), "]"));
    }
    const LogIndex new_last = entries.back().index;
    // Truncate the conflicting suffix the new entries do not overwrite.
    for (LogIndex i = new_last + 1; i <= last; ++i) batch.Delete(EntryKey(i));
    for (size_t k = skip; k < entries.size(); ++k) {
      batch.Put(EntryKey(entries[k].index), EncodeEntry(entries[k]));
    }
    append = true;
  }

  if (hard_state.has_value()) {
    batch.Put(kHardStateKey, EncodeHardState(*hard_state));
  }
  if (batch.Count() == 0) return absl::OkStatus();
  RETURN_IF_ERROR(WriteSynced(db_.get(), &batch));

  // Durable: update the in-memory view the same way.
  if (snapshot.has_value()) {
    snapshot_ = *snapshot;
    offset_ = snapshot->metadata.index;
    terms_.assign(1, snapshot->metadata.term);
  }
  if (append) {
    terms_.resize((start - offset_.value()).value());
    for (size_t k = skip; k < entries.size(); ++k) {
      terms_.push_back(entries[k].term);
    }
  }
  if (hard_state.has_value()) hard_state_ = *hard_state;
  return absl::OkStatus();
}

absl::Status RocksDbRaftStorage::SetHardState(const HardState& hs) {
  return SaveReady(hs, {}, std::nullopt);
}

absl::Status RocksDbRaftStorage::Append(const std::vector<Entry>& entries) {
  return SaveReady(std::nullopt, entries, std::nullopt);
}

absl::Status RocksDbRaftStorage::ApplySnapshot(const Snapshot& snapshot) {
  return SaveReady(std::nullopt, {}, snapshot);
}

absl::StatusOr<Snapshot> RocksDbRaftStorage::CreateSnapshot(
    LogIndex index, std::vector<NodeId> voters, std::string data) {
  if (index <= snapshot_.metadata.index && !snapshot_.empty()) {
    return CompactedError();
  }
  if (index > LastIndex() || index < offset_) {
    return absl::InvalidArgumentError(
        absl::StrCat("raft storage: snapshot index ", index.value(),
                     " outside the stored log"));
  }
  Snapshot snap;
  snap.metadata.index = index;
  snap.metadata.term = terms_[(index - offset_.value()).value()];
  snap.metadata.voters = std::move(voters);
  snap.data = std::move(data);
  rocksdb::WriteBatch batch;
  batch.Put(kSnapshotKey, EncodeSnapshot(snap));
  RETURN_IF_ERROR(WriteSynced(db_.get(), &batch));
  snapshot_ = std::move(snap);
  return snapshot_;
}

absl::Status RocksDbRaftStorage::Compact(LogIndex compact_index) {
  if (compact_index <= offset_) return CompactedError();
  if (compact_index > LastIndex() || compact_index > snapshot_.metadata.index) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raft storage: compact index ", compact_index.value(),
        " is past the last index ", LastIndex().value(),
        " or the snapshot index ", snapshot_.metadata.index.value()));
  }
  const size_t k = (compact_index - offset_.value()).value();
  const Term term = terms_[k];
  rocksdb::WriteBatch batch;
  batch.Put(kOffsetKey, EncodeOffset(compact_index, term));
  for (LogIndex i = offset_ + 1; i <= compact_index; ++i) {
    batch.Delete(EntryKey(i));
  }
  RETURN_IF_ERROR(WriteSynced(db_.get(), &batch));
  terms_.erase(terms_.begin(), terms_.begin() + k);
  offset_ = compact_index;
  return absl::OkStatus();
}

}  // namespace fjord::raft
