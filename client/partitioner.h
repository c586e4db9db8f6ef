// Choosing a partition for a record, compatible with Kafka's Java clients.
//
// A record with a key goes to toPositive(murmur2(key)) % partitions, exactly as
// Kafka's default partitioner computes it, so a key lands on the same partition
// index whether a Fjord or a Kafka client produced it. A record without a key
// (a null key; an empty key is a real key) goes to the next partition of a
// per-topic round-robin counter.
#ifndef FJORD_CLIENT_PARTITIONER_H_
#define FJORD_CLIENT_PARTITIONER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace fjord::client {

// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with seed 0x9747b28c over `data`,
// returned as the same signed value Java returns.
int32_t Murmur2(absl::string_view data);

// Kafka's `Utils.toPositive`: clears the sign bit (not abs(), which overflows).
inline int32_t ToPositive(int32_t n) { return n & 0x7fffffff; }

// The partition Kafka's default partitioner picks for `key` among
// `num_partitions` (> 0) partitions.
int32_t PartitionForKey(absl::string_view key, int32_t num_partitions);

// Picks partitions for records. Thread-safe.
class Partitioner {
 public:
  Partitioner() = default;
  Partitioner(const Partitioner&) = delete;
  Partitioner& operator=(const Partitioner&) = delete;

  // Returns the partition in [0, num_partitions) for a record of `topic`:
  // PartitionForKey(*key) when the key is present, else the topic's next
  // round-robin partition (the counter starts at 0 and advances by one per
  // keyless record). `num_partitions` must be > 0.
  int32_t Partition(const std::string& topic,
                    const std::optional<std::string>& key,
                    int32_t num_partitions);

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, uint32_t> counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fjord::client

#endif  // FJORD_CLIENT_PARTITIONER_H_
