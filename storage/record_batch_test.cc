#include "storage/record_batch.h"

#include <string>

#include "gtest/gtest.h"

namespace fjord::storage {
namespace {

using google::protobuf::RepeatedPtrField;

fjord::v1::Record MakeRecord(
    std::optional<std::string> key, std::string value, int64_t ts,
    std::vector<std::pair<std::string, std::string>> headers = {}) {
  fjord::v1::Record r;
  if (key.has_value()) r.set_key(*key);
  r.set_value(value);
  r.set_timestamp_ms(ts);
  for (auto& [k, v] : headers) {
    auto* h = r.add_headers();
    h->set_key(k);
    h->set_value(v);
  }
  return r;
}

// A batch exercising every field: null, empty and non-empty keys, headers
// (including empty ones and repeats), a defaulted timestamp and timestamps
// going backwards.
RepeatedPtrField<fjord::v1::Record> SampleRecords() {
  RepeatedPtrField<fjord::v1::Record> records;
  *records.Add() = MakeRecord(std::nullopt, "v0", 1000);
  *records.Add() = MakeRecord(std::string(), "v1", 0, {{"h", "x"}, {"h", ""}});
  *records.Add() = MakeRecord(std::string("key\0two", 7), "", 990);
  *records.Add() = MakeRecord("k3", std::string(300, 'z'), 5000, {{"", ""}});
  return records;
}

constexpr int64_t kAppendTime = 4242;

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(internal::Crc32cPortable("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  // 32 zero bytes and 32 0xFF bytes (RFC 3720, B.4).
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
}

TEST(Crc32cTest, HardwareAndPortableAgreeOnAllLengthsAndAlignments) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 131 + 7));
  for (size_t start = 0; start < 8; ++start) {
    for (size_t len = 0; start + len <= data.size(); len += 3) {
      absl::string_view piece = absl::string_view(data).substr(start, len);
      ASSERT_EQ(Crc32c(piece), internal::Crc32cPortable(piece))
          << "start=" << start << " len=" << len;
    }
  }
}

TEST(RecordBatchTest, RoundTripKeepsEveryField) {
  auto records = SampleRecords();
  absl::StatusOr<std::string> batch =
      EncodeBatch(records, /*leader_epoch=*/7, kAppendTime);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_TRUE(ValidateBatch(*batch).ok());

  absl::StatusOr<BatchHeader> header = ParseBatchHeader(*batch);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->leader_epoch, 7);
  EXPECT_EQ(header->record_count, 4);
  EXPECT_EQ(header->first_timestamp, 1000);
  EXPECT_EQ(header->max_timestamp, 5000);

  RepeatedPtrField<fjord::v1::ConsumedRecord> out;
  ASSERT_TRUE(
      DecodeBatch(*batch, /*base_offset=*/100, /*min_offset=*/0, &out).ok());
  ASSERT_EQ(out.size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out[i].offset(), 100 + i);
    EXPECT_EQ(out[i].leader_epoch(), 7);
    EXPECT_EQ(out[i].value(), records[i].value());
    EXPECT_EQ(out[i].has_key(), records[i].has_key()) << i;
    EXPECT_EQ(out[i].key(), records[i].key());
    ASSERT_EQ(out[i].headers_size(), records[i].headers_size());
    for (int h = 0; h < out[i].headers_size(); ++h) {
      EXPECT_EQ(out[i].headers(h).key(), records[i].headers(h).key());
      EXPECT_EQ(out[i].headers(h).value(), records[i].headers(h).value());
    }
  }
  EXPECT_FALSE(out[0].has_key());
  EXPECT_TRUE(out[1].has_key());
  EXPECT_EQ(out[1].key(), "");
  EXPECT_EQ(out[2].key(), std::string("key\0two", 7));
  EXPECT_EQ(out[0].timestamp_ms(), 1000);
  EXPECT_EQ(out[1].timestamp_ms(),
            kAppendTime);  // 0 means "stamp with append time"
  EXPECT_EQ(out[2].timestamp_ms(),
            990);  // earlier than the first: negative delta
  EXPECT_EQ(out[3].timestamp_ms(), 5000);
}

TEST(RecordBatchTest, ExtremeTimestampsRoundTrip) {
  RepeatedPtrField<fjord::v1::Record> records;
  *records.Add() = MakeRecord("a", "x", std::numeric_limits<int64_t>::max());
  *records.Add() = MakeRecord("b", "y", 1);
  absl::StatusOr<std::string> batch = EncodeBatch(records, 0, kAppendTime);
  ASSERT_TRUE(batch.ok());
  RepeatedPtrField<fjord::v1::ConsumedRecord> out;
  ASSERT_TRUE(DecodeBatch(*batch, 0, 0, &out).ok());
  EXPECT_EQ(out[0].timestamp_ms(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(out[1].timestamp_ms(), 1);
}

TEST(RecordBatchTest, EmptyBatchIsInvalidArgument) {
  RepeatedPtrField<fjord::v1::Record> none;
  EXPECT_EQ(EncodeBatch(none, 0, kAppendTime).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RecordBatchTest, MinOffsetSkipsEarlierRecords) {
  absl::StatusOr<std::string> batch =
      EncodeBatch(SampleRecords(), 0, kAppendTime);
  ASSERT_TRUE(batch.ok());
  for (int64_t min = 0; min <= 106; ++min) {
    RepeatedPtrField<fjord::v1::ConsumedRecord> out;
    ASSERT_TRUE(DecodeBatch(*batch, 100, 100 + min - 2, &out).ok());
    const int64_t first = std::max<int64_t>(100, 100 + min - 2);
    const int expected = static_cast<int>(std::max<int64_t>(0, 104 - first));
    ASSERT_EQ(out.size(), expected) << min;
    if (expected > 0) {
      EXPECT_EQ(out[0].offset(), first);
    }
  }
}

TEST(RecordBatchTest, DecodeAppendsToExistingOutput) {
  absl::StatusOr<std::string> batch =
      EncodeBatch(SampleRecords(), 0, kAppendTime);
  ASSERT_TRUE(batch.ok());
  RepeatedPtrField<fjord::v1::ConsumedRecord> out;
  out.Add()->set_offset(99);
  ASSERT_TRUE(DecodeBatch(*batch, 100, 0, &out).ok());
  ASSERT_EQ(out.size(), 5);
  EXPECT_EQ(out[0].offset(), 99);
  EXPECT_EQ(out[1].offset(), 100);
}

// Every single-byte change anywhere in the batch must be caught (the CRC covers
// the body; magic and CRC bytes are checked directly), and must neither crash
// nor touch the output.
TEST(RecordBatchTest, EverySingleByteCorruptionIsDataLoss) {
  absl::StatusOr<std::string> batch =
      EncodeBatch(SampleRecords(), 3, kAppendTime);
  ASSERT_TRUE(batch.ok());
  for (size_t pos = 0; pos < batch->size(); ++pos) {
    for (int flip : {0x01, 0x80, 0xFF}) {
      std::string bad = *batch;
      bad[pos] = static_cast<char>(bad[pos] ^ flip);
      EXPECT_EQ(ValidateBatch(bad).code(), absl::StatusCode::kDataLoss)
          << "pos=" << pos << " flip=" << flip;
      RepeatedPtrField<fjord::v1::ConsumedRecord> out;
      EXPECT_EQ(DecodeBatch(bad, 0, 0, &out).code(),
                absl::StatusCode::kDataLoss);
      EXPECT_TRUE(out.empty());
    }
  }
}

TEST(RecordBatchTest, EveryTruncationAndExtensionIsDataLoss) {
  absl::StatusOr<std::string> batch =
      EncodeBatch(SampleRecords(), 3, kAppendTime);
  ASSERT_TRUE(batch.ok());
  for (size_t len = 0; len < batch->size(); ++len) {
    // Copy so that reading past `len` would be caught by sanitizers.
    std::string prefix = batch->substr(0, len);
    EXPECT_EQ(ValidateBatch(prefix).code(), absl::StatusCode::kDataLoss) << len;
    RepeatedPtrField<fjord::v1::ConsumedRecord> out;
    EXPECT_EQ(DecodeBatch(prefix, 0, 0, &out).code(),
              absl::StatusCode::kDataLoss);
    EXPECT_TRUE(out.empty());
    if (len < kBatchHeaderSize) {
      EXPECT_EQ(ParseBatchHeader(prefix).status().code(),
                absl::StatusCode::kDataLoss);
    }
  }
  EXPECT_EQ(ValidateBatch(*batch + "x").code(), absl::StatusCode::kDataLoss);
}

// Batches whose CRC is right but whose structure is wrong, which only a writer
// with a bug (or an attacker) produces: the parser must reject them without
// crashing.
std::string Reseal(std::string batch) {
  const uint32_t crc = Crc32c(absl::string_view(batch).substr(5));
  for (int i = 0; i < 4; ++i)
    batch[1 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  return batch;
}

TEST(RecordBatchTest, StructurallyBadBatchesWithValidCrcAreDataLoss) {
  absl::StatusOr<std::string> batch =
      EncodeBatch(SampleRecords(), 3, kAppendTime);
  ASSERT_TRUE(batch.ok());
  // Each single-byte change after the CRC, resealed: the structure checks alone
  // must reject it (or, where the change is benign, accept it) without reading
  // out of bounds. Changing record_count, a length or max_timestamp must be
  // rejected.
  int rejected = 0;
  for (size_t pos = 5; pos < batch->size(); ++pos) {
    for (int flip : {0x01, 0x40, 0x80}) {
      std::string bad = *batch;
      bad[pos] = static_cast<char>(bad[pos] ^ flip);
      bad = Reseal(bad);
      absl::Status s = ValidateBatch(bad);
      if (!s.ok()) {
        EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 0);
  // record_count 0, huge, and one too many.
  for (uint32_t count : {0u, 0x7FFFFFFFu, 5u, 0xFFFFFFFFu}) {
    std::string bad = *batch;
    for (int i = 0; i < 4; ++i)
      bad[11 + i] = static_cast<char>((count >> (8 * i)) & 0xFF);
    EXPECT_EQ(ValidateBatch(Reseal(bad)).code(), absl::StatusCode::kDataLoss)
        << count;
  }
  // A wrong max_timestamp.
  std::string bad = *batch;
  bad[23] = static_cast<char>(bad[23] + 1);
  EXPECT_EQ(ValidateBatch(Reseal(bad)).code(), absl::StatusCode::kDataLoss);
  // A ten-byte varint with bits beyond 64 as the first record's timestamp
  // delta.
  bad = batch->substr(0, kBatchHeaderSize) + std::string(9, '\xFF') + "\x7F" +
        batch->substr(kBatchHeaderSize + 1);
  EXPECT_EQ(ValidateBatch(Reseal(bad)).code(), absl::StatusCode::kDataLoss);
}

TEST(RecordBatchTest, ParseBatchHeaderRejectsWrongMagic) {
  absl::StatusOr<std::string> batch =
      EncodeBatch(SampleRecords(), 3, kAppendTime);
  ASSERT_TRUE(batch.ok());
  std::string bad = *batch;
  bad[0] = 2;
  EXPECT_EQ(ParseBatchHeader(bad).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace fjord::storage
