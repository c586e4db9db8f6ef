// The on-disk (and, later, replication wire) format of a record batch.
//
// A batch is the unit of append: the records of one ProduceRequest, stored as one
// RocksDB value under the key of its base offset (see log_store.h). Its offsets are
// not stored inside the value; the key gives the base offset and record i has offset
// base + i, so a batch never needs rewriting when a leader assigns offsets.
//
// Layout (all fixed-width integers little-endian; varints are unsigned LEB128, and
// "zvarint" is a zigzag-encoded signed varint):
//
//   offset size  field
//   0      1     magic            = 1
//   1      4     crc32c           CRC-32C (Castagnoli) of every byte after this field
//   5      2     attributes       reserved, 0 (compression codec will live here)
//   7      4     leader_epoch     epoch of the leader that appended the batch
//   11     4     record_count     >= 1
//   15     8     first_timestamp  timestamp of record 0, ms since the Unix epoch
//   23     8     max_timestamp    largest record timestamp in the batch
//   31     ...   records, record_count times:
//                  zvarint  timestamp_delta  (timestamp - first_timestamp)
//                  zvarint  key_length       (-1 for a null key)
//                  bytes    key
//                  varint   value_length
//                  bytes    value
//                  varint   header_count
//                  header_count times: varint key_length, key, varint value_length, value
//
// Nothing may follow the last record. A batch that fails the CRC or does not parse
// exactly is corrupt: readers answer DATA_LOSS and never return part of it.
#ifndef FJORD_STORAGE_RECORD_BATCH_H_
#define FJORD_STORAGE_RECORD_BATCH_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fjord/v1/record.pb.h"
#include "google/protobuf/repeated_field.h"

namespace fjord::storage {

inline constexpr uint8_t kBatchMagic = 1;
inline constexpr size_t kBatchHeaderSize = 31;

// The fixed-size header of a batch.
struct BatchHeader {
  int32_t leader_epoch = 0;
  int32_t record_count = 0;
  int64_t first_timestamp = 0;
  int64_t max_timestamp = 0;
};

// Encodes `records` as one batch. A record whose timestamp_ms is 0 gets
// `append_time_ms`. Fails with INVALID_ARGUMENT when `records` is empty.
absl::StatusOr<std::string> EncodeBatch(
    const google::protobuf::RepeatedPtrField<fjord::v1::Record>& records,
    int32_t leader_epoch, int64_t append_time_ms);

// Checks the CRC and that the batch parses exactly. DATA_LOSS when it does not.
absl::Status ValidateBatch(absl::string_view batch);

// Reads the header without checking the CRC. DATA_LOSS if `batch` is too short or
// has the wrong magic.
absl::StatusOr<BatchHeader> ParseBatchHeader(absl::string_view batch);

// Validates `batch` (stored at `base_offset`) and appends to `out` every record whose
// offset is >= `min_offset`. On DATA_LOSS `out` is left unchanged.
absl::Status DecodeBatch(
    absl::string_view batch, int64_t base_offset, int64_t min_offset,
    google::protobuf::RepeatedPtrField<fjord::v1::ConsumedRecord>* out);

// CRC-32C (Castagnoli polynomial), as used in the header. Uses the SSE4.2 crc32
// instruction when the CPU has it, else a table-driven implementation.
uint32_t Crc32c(absl::string_view data);

namespace internal {
// The table-driven CRC-32C that Crc32c falls back to on CPUs without SSE4.2;
// exposed so tests can check that both paths agree.
uint32_t Crc32cPortable(absl::string_view data);
}  // namespace internal

}  // namespace fjord::storage

#endif  // FJORD_STORAGE_RECORD_BATCH_H_
