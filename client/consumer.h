// Consuming records from explicitly assigned partitions (no consumer groups
// yet).
#ifndef FJORD_CLIENT_CONSUMER_H_
#define FJORD_CLIENT_CONSUMER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/cluster.h"

namespace fjord::client {

struct ConsumerRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  // Absent for a null key.
  std::optional<std::string> key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  // Ms since the Unix epoch (producer's, or the broker's append time).
  int64_t timestamp_ms = 0;
  int32_t leader_epoch = 0;
};

// Where a partition without a position starts when it is assigned.
enum class OffsetReset { kEarliest, kLatest };

struct ConsumerOptions {
  OffsetReset auto_offset_reset = OffsetReset::kLatest;
  // Per Fetch response: byte budget (0: broker default) and how long the broker
  // holds an idle stream before an empty response.
  int32_t fetch_max_bytes = 0;
  int32_t fetch_max_wait_ms = 500;
  // Records buffered ahead of Poll(), over all partitions. Readers pause (and
  // the broker's stream with them, by flow control) while the buffer is full.
  size_t buffer_max_records = 20000;
  // Records returned by one Poll() at most.
  size_t max_poll_records = 1000;
  // Fetch streams are re-opened after this long (each stream carries a
  // deadline), and after an error with a backoff.
  absl::Duration stream_lifetime = absl::Minutes(5);
  absl::Duration reconnect_backoff = absl::Milliseconds(200);
  absl::Duration reconnect_backoff_max = absl::Seconds(2);
  // Like Kafka's default.api.timeout.ms: how long Position() waits for a
  // partition's offset reset (ListOffsets) to succeed, and how long a fetch
  // offset that the partition's leader already reported as valid may be
  // refused as OUT_OF_RANGE (a new leader whose high watermark is still
  // catching up) before the error reaches Poll().
  absl::Duration api_timeout = absl::Seconds(60);
};

// Reads assigned partitions through one long-lived Fetch stream per partition,
// each served by a reader thread that feeds a bounded buffer. A stream that
// fails with a transient error (UNAVAILABLE, NOT_LEADER, a dead broker,
// DEADLINE_EXCEEDED, ...) is opened again, after a metadata refresh and a
// backoff, against the partition's current leader, from the next offset not
// yet received, so no record is skipped or repeated; the other partitions keep
// flowing meanwhile. OUT_OF_RANGE, NOT_FOUND, INVALID_ARGUMENT and DATA_LOSS
// stop that partition's reader and are returned by Poll(); Seek() restarts it.
//
// Offset resets (Assign() of a new partition, SeekToBeginning(), SeekToEnd())
// ask the partition's leader with ListOffsets once, synchronously; when that
// fails with a transient error, the partition's reader keeps retrying it (with
// a metadata refresh and backoff) until it succeeds, like Kafka's lazy offset
// reset, and Position() waits for it.
//
// Not thread-safe: use one Consumer from one thread at a time (like Kafka's).
class Consumer {
 public:
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(
      std::shared_ptr<Cluster> cluster, ConsumerOptions options = {});
  // Close()s.
  ~Consumer();

  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Makes `partitions` the assignment, replacing the previous one. Partitions
  // kept keep their positions; new ones start at auto_offset_reset (resolved
  // now with ListOffsets, or in the background when the leader is unavailable:
  // see the class comment). Errors: NOT_FOUND for an unknown topic or
  // partition, or another definite ListOffsets error; the assignment is then
  // unchanged.
  absl::Status Assign(const std::vector<TopicPartition>& partitions);

  // The current assignment, sorted.
  std::vector<TopicPartition> Assignment() const;

  // Makes `offset` the next offset Poll() returns for `tp` (assigned), dropping
  // records buffered for it and restarting its reader. The offset is checked by
  // the broker: an offset outside the log comes back as OUT_OF_RANGE from
  // Poll().
  absl::Status Seek(const TopicPartition& tp, int64_t offset);

  // Seek() to the log start / to the high watermark (ListOffsets EARLIEST /
  // LATEST) for each of `partitions` (empty: every assigned partition),
  // retried in the background while the leader is unavailable.
  // FAILED_PRECONDITION for a partition not assigned (nothing moves then).
  absl::Status SeekToBeginning(const std::vector<TopicPartition>& partitions);
  absl::Status SeekToEnd(const std::vector<TopicPartition>& partitions);

  // The offset of the next record Poll() will return for `tp`. While the
  // partition's offset reset is still being retried, waits for it up to
  // api_timeout (then DEADLINE_EXCEEDED with the last error), or returns the
  // reset's fatal error. FAILED_PRECONDITION when `tp` is not assigned.
  absl::StatusOr<int64_t> Position(const TopicPartition& tp) const;

  // The high watermark the broker last reported for `tp`, -1 before any answer.
  int64_t HighWatermark(const TopicPartition& tp) const;

  // Waits up to `timeout` for records and returns those available (at most
  // max_poll_records, in offset order per partition; possibly none), advancing
  // positions past them. Returns a partition's fatal error (OUT_OF_RANGE,
  // NOT_FOUND, ...) once, with the partition in the message, before any
  // further records of that partition.
  absl::StatusOr<std::vector<ConsumerRecord>> Poll(absl::Duration timeout);

  // Stops every reader. Idempotent.
  void Close();

 private:
  class Reader;

  Consumer(std::shared_ptr<Cluster> cluster, ConsumerOptions options);

  // Starts `tp`'s reader at `offset`, or, without one, at the offset that
  // ListOffsets EARLIEST (`earliest`) or LATEST answers, retried by the reader.
  void StartReader(const TopicPartition& tp, std::optional<int64_t> offset,
                   bool earliest);
  // One synchronous reset attempt and, if it failed transiently, a reader
  // that retries it. Errors: the definite ListOffsets errors.
  absl::Status ResetOffset(const TopicPartition& tp, bool earliest);
  void StopReader(const TopicPartition& tp);

  const std::shared_ptr<Cluster> cluster_;
  const ConsumerOptions options_;

  // Readers by partition; touched only by the owning (caller's) thread.
  std::map<TopicPartition, std::unique_ptr<Reader>> readers_;

  // State shared with the reader threads.
  struct Shared {
    absl::Mutex mu;
    absl::CondVar cv;
    std::deque<ConsumerRecord> buffer ABSL_GUARDED_BY(mu);
    std::deque<std::pair<TopicPartition, absl::Status>> errors
        ABSL_GUARDED_BY(mu);
    std::map<TopicPartition, int64_t> positions ABSL_GUARDED_BY(mu);
    std::map<TopicPartition, int64_t> high_watermarks ABSL_GUARDED_BY(mu);
    // The last transient error of partitions being retried (for messages).
    std::map<TopicPartition, absl::Status> retrying ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<Shared> shared_;
};

}  // namespace fjord::client

#endif  // FJORD_CLIENT_CONSUMER_H_
