#include "client/partitioner.h"

namespace fjord::client {

int32_t Murmur2(absl::string_view data) {
  // Unsigned arithmetic gives Java's wrapping int multiplication, and `>>` on
  // uint32_t is Java's `>>>`.
  constexpr uint32_t kSeed = 0x9747b28c;
  constexpr uint32_t kM = 0x5bd1e995;
  constexpr int kR = 24;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t length = data.size();

  uint32_t h = kSeed ^ static_cast<uint32_t>(length);
  const size_t blocks = length / 4;
  for (size_t i = 0; i < blocks; ++i) {
    const unsigned char* p = bytes + i * 4;
    uint32_t k = static_cast<uint32_t>(p[0]) |
                 (static_cast<uint32_t>(p[1]) << 8) |
                 (static_cast<uint32_t>(p[2]) << 16) |
                 (static_cast<uint32_t>(p[3]) << 24);
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  const unsigned char* tail = bytes + (length & ~static_cast<size_t>(3));
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(tail[0]);
      h *= kM;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

int32_t PartitionForKey(absl::string_view key, int32_t num_partitions) {
  return ToPositive(Murmur2(key)) % num_partitions;
}

int32_t Partitioner::Partition(const std::string& topic,
                               const std::optional<std::string>& key,
                               int32_t num_partitions) {
  if (key.has_value()) return PartitionForKey(*key, num_partitions);
  uint32_t next;
  {
    absl::MutexLock lock(&mu_);
    next = counters_[topic]++;
  }
  return ToPositive(static_cast<int32_t>(next)) % num_partitions;
}

}  // namespace fjord::client
