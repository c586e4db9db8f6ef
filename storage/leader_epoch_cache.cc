#include "storage/leader_epoch_cache.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace fjord::storage {
namespace {

constexpr uint8_t kFormat = 1;
constexpr size_t kEntrySize = 12;

void PutBigEndian(uint64_t v, int bytes, std::string* out) {
  for (int i = bytes - 1; i >= 0; --i)
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t GetBigEndian(absl::string_view in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

absl::Status CheckEntries(const std::vector<EpochEntry>& entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].epoch < 0 || entries[i].start_offset < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("negative epoch or offset in entry ", i));
    }
    if (i > 0 && (entries[i].epoch <= entries[i - 1].epoch ||
                  entries[i].start_offset <= entries[i - 1].start_offset)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "entries ", i - 1, " and ", i, " are not increasing: (",
          entries[i - 1].epoch, ", ", entries[i - 1].start_offset, ") then (",
          entries[i].epoch, ", ", entries[i].start_offset, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LeaderEpochCache> LeaderEpochCache::FromEntries(
    std::vector<EpochEntry> entries) {
  if (absl::Status s = CheckEntries(entries); !s.ok()) return s;
  LeaderEpochCache cache;
  cache.entries_ = std::move(entries);
  return cache;
}

absl::StatusOr<bool> LeaderEpochCache::Append(int32_t epoch,
                                              int64_t base_offset) {
  absl::StatusOr<bool> added = CheckAppend(epoch, base_offset);
  if (added.ok() && *added) entries_.push_back({epoch, base_offset});
  return added;
}

absl::StatusOr<bool> LeaderEpochCache::CheckAppend(int32_t epoch,
                                                   int64_t base_offset) const {
  if (epoch < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch has a negative leader epoch ", epoch));
  }
  const int32_t latest = LatestEpoch();
  if (epoch == latest) return false;
  if (epoch < latest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "batch leader epoch ", epoch, " is below the latest epoch ", latest,
        " in the log (which started at offset ", entries_.back().start_offset,
        "): its leader was fenced"));
  }
  if (!entries_.empty() && base_offset <= entries_.back().start_offset) {
    return absl::FailedPreconditionError(
        absl::StrCat("epoch ", epoch, " cannot start at offset ", base_offset,
                     ", at or below the start ", entries_.back().start_offset,
                     " of the latest epoch ", latest));
  }
  return true;
}

bool LeaderEpochCache::TruncateFromEnd(int64_t end_offset) {
  const size_t before = entries_.size();
  while (!entries_.empty() && entries_.back().start_offset >= end_offset)
    entries_.pop_back();
  return entries_.size() != before;
}

EpochEndOffset LeaderEpochCache::EndOffsetFor(int32_t requested,
                                              int64_t log_end_offset) const {
  if (entries_.empty() || requested < entries_.front().epoch) return {};
  if (requested >= entries_.back().epoch)
    return {entries_.back().epoch, log_end_offset};
  // Some entry has an epoch > requested (the last one) and some <= it (the
  // first one).
  auto higher = std::upper_bound(
      entries_.begin(), entries_.end(), requested,
      [](int32_t epoch, const EpochEntry& e) { return epoch < e.epoch; });
  return {std::prev(higher)->epoch, higher->start_offset};
}

std::string LeaderEpochCache::Encode() const {
  std::string out;
  out.reserve(1 + kEntrySize * entries_.size());
  out.push_back(static_cast<char>(kFormat));
  for (const EpochEntry& e : entries_) {
    PutBigEndian(static_cast<uint32_t>(e.epoch), 4, &out);
    PutBigEndian(static_cast<uint64_t>(e.start_offset), 8, &out);
  }
  return out;
}

absl::StatusOr<LeaderEpochCache> LeaderEpochCache::Decode(
    absl::string_view encoded) {
  if (encoded.empty() || static_cast<uint8_t>(encoded[0]) != kFormat ||
      (encoded.size() - 1) % kEntrySize != 0) {
    return absl::DataLossError(absl::StrCat("malformed leader epoch cache (",
                                            encoded.size(), " bytes)"));
  }
  std::vector<EpochEntry> entries;
  for (size_t pos = 1; pos < encoded.size(); pos += kEntrySize) {
    const absl::string_view entry = encoded.substr(pos, kEntrySize);
    entries.push_back(
        {static_cast<int32_t>(static_cast<uint32_t>(GetBigEndian(entry, 4))),
         static_cast<int64_t>(GetBigEndian(entry.substr(4), 8))});
  }
  absl::StatusOr<LeaderEpochCache> cache = FromEntries(std::move(entries));
  if (!cache.ok()) {
    return absl::DataLossError(
        absl::StrCat("corrupt leader epoch cache: ", cache.status().message()));
  }
  return cache;
}

}  // namespace fjord::storage
