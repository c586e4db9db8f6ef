// Encoding and decoding of record batches; the byte layout is in
// record_batch.h.
#include "storage/record_batch.h"

#include <array>
#include <cstring>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace fjord::storage {
namespace {

// ---------------------------------------------------------------------------
// CRC-32C.
//
// The portable path is "slicing by 8": table[k][b] is the CRC contribution of
// byte b followed by k zero bytes, so eight input bytes are folded in per step
// with eight table lookups. The hardware path uses the SSE4.2 crc32
// instruction, which computes the same (reflected, 0x82F63B78) polynomial; both
// start and end with the usual ~0 pre- and post-conditioning.

constexpr uint32_t kCastagnoliReflected = 0x82F63B78u;

using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

constexpr CrcTables MakeCrcTables() {
  CrcTables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t crc = b;
    for (int i = 0; i < 8; ++i) {
      crc = (crc >> 1) ^ ((crc & 1) ? kCastagnoliReflected : 0);
    }
    t[0][b] = crc;
  }
  for (int k = 1; k < 8; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
    }
  }
  return t;
}

constexpr CrcTables kCrcTables = MakeCrcTables();

uint32_t LoadLE32(const unsigned char* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) |
         (uint32_t{p[3]} << 24);
}

uint64_t LoadLE64(const unsigned char* p) {
  return uint64_t{LoadLE32(p)} | (uint64_t{LoadLE32(p + 4)} << 32);
}

// Extends the raw (unconditioned) CRC state `crc` over [p, p + n).
uint32_t Crc32cPortableRaw(uint32_t crc, const unsigned char* p, size_t n) {
  while (n >= 8) {
    const uint32_t lo = LoadLE32(p) ^ crc;
    const uint32_t hi = LoadLE32(p + 4);
    crc = kCrcTables[7][lo & 0xFF] ^ kCrcTables[6][(lo >> 8) & 0xFF] ^
          kCrcTables[5][(lo >> 16) & 0xFF] ^ kCrcTables[4][lo >> 24] ^
          kCrcTables[3][hi & 0xFF] ^ kCrcTables[2][(hi >> 8) & 0xFF] ^
          kCrcTables[1][(hi >> 16) & 0xFF] ^ kCrcTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) {
    crc = (crc >> 8) ^ kCrcTables[0][(crc ^ *p++) & 0xFF];
  }
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Crc32cHardwareRaw(
    uint32_t crc, const unsigned char* p, size_t n) {
  uint64_t crc64 = crc;
  while (n >= 8) {
    crc64 = _mm_crc32_u64(crc64, LoadLE64(p));
    p += 8;
    n -= 8;
  }
  crc = static_cast<uint32_t>(crc64);
  while (n-- > 0) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}

bool CpuHasSse42() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

// ---------------------------------------------------------------------------
// Little-endian fixed-width integers and LEB128 varints.

void PutFixed16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xFF));
  out->push_back(static_cast<char>(v >> 8));
}

void PutFixed32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void EncodeFixed32At(std::string* out, size_t pos, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    (*out)[pos + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}

int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

void PutZigZag(std::string* out, int64_t v) { PutVarint(out, ZigZag(v)); }

void PutBytes(std::string* out, absl::string_view bytes) {
  PutVarint(out, bytes.size());
  out->append(bytes.data(), bytes.size());
}

// A bounds-checked cursor over untrusted bytes. Every read either succeeds
// entirely within the input or returns false and leaves the reader unusable.
class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}

  size_t remaining() const { return data_.size(); }

  bool ReadVarint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (data_.empty()) return false;
      const uint8_t byte = static_cast<uint8_t>(data_[0]);
      data_.remove_prefix(1);
      // The tenth byte may only carry the top bit of a 64-bit value.
      if (shift == 63 && byte > 1) return false;
      result |= uint64_t{byte & 0x7Fu} << shift;
      if ((byte & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }

  bool ReadZigZag(int64_t* v) {
    uint64_t u;
    if (!ReadVarint(&u)) return false;
    *v = UnZigZag(u);
    return true;
  }

  bool ReadBytes(uint64_t n, absl::string_view* out) {
    if (n > data_.size()) return false;
    *out = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }

  // A varint length followed by that many bytes.
  bool ReadLengthPrefixed(absl::string_view* out) {
    uint64_t n;
    return ReadVarint(&n) && ReadBytes(n, out);
  }

 private:
  absl::string_view data_;
};

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("corrupt record batch: ", what));
}

// One record of a batch, pointing into the batch bytes. `headers` is the
// encoded header list (already checked to parse), `header_count` entries long.
struct RecordView {
  int64_t timestamp = 0;
  std::optional<absl::string_view> key;
  absl::string_view value;
  uint64_t header_count = 0;
  absl::string_view headers;
};

BatchHeader ReadHeaderFields(const unsigned char* p) {
  BatchHeader h;
  h.leader_epoch = static_cast<int32_t>(LoadLE32(p + 7));
  h.record_count = static_cast<int32_t>(LoadLE32(p + 11));
  h.first_timestamp = static_cast<int64_t>(LoadLE64(p + 15));
  h.max_timestamp = static_cast<int64_t>(LoadLE64(p + 23));
  return h;
}

// Checks the CRC and parses the whole batch, calling visit(index, RecordView)
// for every record. Returns DATA_LOSS unless the batch parses exactly; `visit`
// may have been called for some records before a failure is found.
template <typename Visit>
absl::Status ParseBatch(absl::string_view batch, BatchHeader* header_out,
                        Visit&& visit) {
  if (batch.size() < kBatchHeaderSize)
    return Corrupt("shorter than its header");
  const auto* p = reinterpret_cast<const unsigned char*>(batch.data());
  if (p[0] != kBatchMagic) return Corrupt(absl::StrCat("bad magic ", p[0]));
  const uint32_t stored_crc = LoadLE32(p + 1);
  const uint32_t actual_crc = Crc32c(batch.substr(5));
  if (stored_crc != actual_crc) {
    return Corrupt(absl::StrCat("CRC mismatch (stored ", stored_crc,
                                ", computed ", actual_crc, ")"));
  }
  const uint16_t attributes = static_cast<uint16_t>(p[5] | (p[6] << 8));
  if (attributes != 0) return Corrupt("unknown attributes");
  const BatchHeader header = ReadHeaderFields(p);
  if (header.record_count < 1) return Corrupt("record_count < 1");
  // Every record takes at least four bytes (four one-byte varints), which
  // bounds the count before any loop trusts it.
  if (static_cast<uint64_t>(header.record_count) >
      (batch.size() - kBatchHeaderSize) / 4) {
    return Corrupt("record_count larger than the batch can hold");
  }

  Reader in(batch.substr(kBatchHeaderSize));
  int64_t max_ts = std::numeric_limits<int64_t>::min();
  for (int32_t i = 0; i < header.record_count; ++i) {
    RecordView r;
    int64_t delta, key_length;
    if (!in.ReadZigZag(&delta)) return Corrupt("truncated timestamp");
    if (__builtin_add_overflow(header.first_timestamp, delta, &r.timestamp)) {
      return Corrupt("timestamp overflow");
    }
    if (i == 0 && delta != 0) return Corrupt("first record's delta is not 0");
    if (!in.ReadZigZag(&key_length)) return Corrupt("truncated key length");
    if (key_length >= 0) {
      absl::string_view key;
      if (!in.ReadBytes(static_cast<uint64_t>(key_length), &key)) {
        return Corrupt("truncated key");
      }
      r.key = key;
    } else if (key_length != -1) {
      return Corrupt("negative key length");
    }
    if (!in.ReadLengthPrefixed(&r.value)) return Corrupt("truncated value");
    if (!in.ReadVarint(&r.header_count))
      return Corrupt("truncated header count");
    // Each header takes at least two bytes.
    if (r.header_count > in.remaining() / 2)
      return Corrupt("header count too large");
    const size_t headers_start = in.remaining();
    Reader headers_begin = in;
    for (uint64_t h = 0; h < r.header_count; ++h) {
      absl::string_view k, v;
      if (!in.ReadLengthPrefixed(&k) || !in.ReadLengthPrefixed(&v)) {
        return Corrupt("truncated header");
      }
    }
    absl::string_view headers_bytes;
    headers_begin.ReadBytes(headers_start - in.remaining(), &headers_bytes);
    r.headers = headers_bytes;
    max_ts = std::max(max_ts, r.timestamp);
    visit(i, r);
  }
  if (in.remaining() != 0) return Corrupt("bytes after the last record");
  if (max_ts != header.max_timestamp) {
    return Corrupt("max_timestamp does not match the records");
  }
  if (header_out != nullptr) *header_out = header;
  return absl::OkStatus();
}

}  // namespace

namespace internal {
uint32_t Crc32cPortable(absl::string_view data) {
  return ~Crc32cPortableRaw(
      ~0u, reinterpret_cast<const unsigned char*>(data.data()), data.size());
}
}  // namespace internal

uint32_t Crc32c(absl::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
#if defined(__x86_64__)
  if (CpuHasSse42()) return ~Crc32cHardwareRaw(~0u, p, data.size());
#endif
  return ~Crc32cPortableRaw(~0u, p, data.size());
}

absl::StatusOr<std::string> EncodeBatch(
    const google::protobuf::RepeatedPtrField<fjord::v1::Record>& records,
    int32_t leader_epoch, int64_t append_time_ms) {
  if (records.empty()) return absl::InvalidArgumentError("empty record batch");
  if (records.size() > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError("too many records in one batch");
  }
  auto timestamp_of = [&](const fjord::v1::Record& r) {
    return r.timestamp_ms() == 0 ? append_time_ms : r.timestamp_ms();
  };
  const int64_t first_ts = timestamp_of(records[0]);
  int64_t max_ts = first_ts;
  size_t estimate = kBatchHeaderSize;
  for (const auto& r : records) {
    max_ts = std::max(max_ts, timestamp_of(r));
    estimate += 32 + r.key().size() + r.value().size();
    for (const auto& h : r.headers())
      estimate += 20 + h.key().size() + h.value().size();
  }

  std::string out;
  out.reserve(estimate);
  out.push_back(static_cast<char>(kBatchMagic));
  PutFixed32(&out, 0);  // CRC, filled in below.
  PutFixed16(&out, 0);  // attributes
  PutFixed32(&out, static_cast<uint32_t>(leader_epoch));
  PutFixed32(&out, static_cast<uint32_t>(records.size()));
  PutFixed64(&out, static_cast<uint64_t>(first_ts));
  PutFixed64(&out, static_cast<uint64_t>(max_ts));
  for (const auto& r : records) {
    int64_t delta;
    if (__builtin_sub_overflow(timestamp_of(r), first_ts, &delta)) {
      return absl::InvalidArgumentError("record timestamps too far apart");
    }
    PutZigZag(&out, delta);
    if (r.has_key()) {
      PutZigZag(&out, static_cast<int64_t>(r.key().size()));
      out.append(r.key());
    } else {
      PutZigZag(&out, -1);
    }
    PutBytes(&out, r.value());
    PutVarint(&out, r.headers_size());
    for (const auto& h : r.headers()) {
      PutBytes(&out, h.key());
      PutBytes(&out, h.value());
    }
  }
  EncodeFixed32At(&out, 1, Crc32c(absl::string_view(out).substr(5)));
  return out;
}

absl::Status ValidateBatch(absl::string_view batch) {
  return ParseBatch(batch, nullptr, [](int32_t, const RecordView&) {});
}

absl::StatusOr<BatchHeader> ParseBatchHeader(absl::string_view batch) {
  if (batch.size() < kBatchHeaderSize)
    return Corrupt("shorter than its header");
  const auto* p = reinterpret_cast<const unsigned char*>(batch.data());
  if (p[0] != kBatchMagic) return Corrupt(absl::StrCat("bad magic ", p[0]));
  return ReadHeaderFields(p);
}

absl::Status DecodeBatch(
    absl::string_view batch, int64_t base_offset, int64_t min_offset,
    google::protobuf::RepeatedPtrField<fjord::v1::ConsumedRecord>* out) {
  // Validate first so that `out` is untouched on DATA_LOSS; the second pass
  // cannot fail.
  BatchHeader header;
  if (absl::Status s =
          ParseBatch(batch, &header, [](int32_t, const RecordView&) {});
      !s.ok()) {
    return s;
  }
  const int64_t first_wanted =
      min_offset > base_offset ? min_offset - base_offset : 0;
  if (first_wanted >= header.record_count) return absl::OkStatus();
  out->Reserve(out->size() +
               static_cast<int>(header.record_count - first_wanted));
  return ParseBatch(batch, nullptr, [&](int32_t i, const RecordView& r) {
    if (i < first_wanted) return;
    fjord::v1::ConsumedRecord* c = out->Add();
    c->set_offset(base_offset + i);
    if (r.key.has_value()) c->set_key(r.key->data(), r.key->size());
    c->set_value(r.value.data(), r.value.size());
    c->set_timestamp_ms(r.timestamp);
    c->set_leader_epoch(header.leader_epoch);
    Reader hr(r.headers);
    for (uint64_t h = 0; h < r.header_count; ++h) {
      absl::string_view k, v;
      hr.ReadLengthPrefixed(&k);
      hr.ReadLengthPrefixed(&v);
      fjord::v1::Header* header_out = c->add_headers();
      header_out->set_key(k.data(), k.size());
      header_out->set_value(v.data(), v.size());
    }
  });
}

}  // namespace fjord::storage
