#include "controller/metadata/replica_placement.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"

namespace fjord::controller {
namespace {

// The rack-alternated order of step 1.
std::vector<PlacementBroker> RackAlternated(
    std::vector<PlacementBroker> brokers) {
  std::map<std::string, std::vector<PlacementBroker>> by_rack;
  std::sort(brokers.begin(), brokers.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  for (PlacementBroker& b : brokers) by_rack[b.rack].push_back(b);
  std::vector<PlacementBroker> out;
  for (size_t round = 0; out.size() < brokers.size(); ++round) {
    for (const auto& [rack, members] : by_rack) {
      if (round < members.size()) out.push_back(members[round]);
    }
  }
  return out;
}

}  // namespace

uint64_t StableHash(absl::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

absl::StatusOr<std::vector<std::vector<int32_t>>> PlaceReplicas(
    std::vector<PlacementBroker> brokers, int32_t partitions,
    int32_t replication_factor, uint64_t seed) {
  if (partitions < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition count ", partitions, " is below 1"));
  }
  if (replication_factor < 1 || replication_factor > brokers.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("replication factor ", replication_factor, " needs 1 to ",
                     brokers.size(), " brokers"));
  }
  const std::vector<PlacementBroker> order = RackAlternated(std::move(brokers));
  const size_t n = order.size();
  std::set<std::string> all_racks;
  for (const auto& b : order) all_racks.insert(b.rack);
  const size_t num_racks = all_racks.size();

  const size_t start = seed % n;
  size_t shift = (seed / n) % n;
  std::vector<std::vector<int32_t>> out;
  out.reserve(partitions);
  for (int32_t p = 0; p < partitions; ++p) {
    if (p > 0 && p % n == 0) ++shift;
    const size_t first = (p + start) % n;
    std::vector<int32_t> replicas = {order[first].id};
    std::set<std::string> racks = {order[first].rack};
    std::set<int32_t> used = {order[first].id};
    // Every candidate distance 1..n-1 comes up once per n-1 steps, and there
    // is always an unused broker in an unused rack while racks remain, so
    // each replica is found within n-1 steps.
    for (size_t k = 0; replicas.size() < replication_factor; ++k) {
      const size_t distance = 1 + (shift * num_racks + k) % (n - 1);
      const PlacementBroker& b = order[(first + distance) % n];
      const bool rack_ok = racks.size() == num_racks || !racks.contains(b.rack);
      if (rack_ok && !used.contains(b.id)) {
        replicas.push_back(b.id);
        racks.insert(b.rack);
        used.insert(b.id);
      }
    }
    out.push_back(std::move(replicas));
  }
  return out;
}

}  // namespace fjord::controller
