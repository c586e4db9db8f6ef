// Where the replicas of a new topic's partitions go.
//
// Kafka's assignment (AdminUtils.assignReplicasToBrokers, rack-aware form):
//
//   1. Order the brokers rack-alternated: racks sorted by name, brokers
//      within a rack by id, then take one broker from each rack in turn
//      (r1b1, r2b1, r3b1, r1b2, ...). Brokers without a rack form the rack "".
//   2. Partition p's first replica (its preferred leader) is broker
//      (start + p) mod n in that order, so leaderships rotate evenly.
//   3. The other replicas follow the first at a distance 1 + (shift + j)
//      mod (n - 1), skipping brokers whose rack already has a replica of p
//      until every rack has one, and never reusing a broker. `shift` grows by
//      one after every n partitions so that followers of consecutive rounds
//      do not always pair the same brokers.
//
// Properties (replica_placement_test.cc checks them):
//   - the replicas of a partition are distinct brokers;
//   - with replication factor <= number of racks, a partition's replicas are
//     on distinct racks;
//   - when the partition count is a multiple of n and racks are equally
//     sized, every broker is first replica of exactly P/n partitions and
//     holds exactly P*R/n replicas.
//
// Kafka randomises `start` and `shift` per topic so that the first
// partitions of many small topics do not all land on the same broker. Here
// they come from `seed` (the caller derives it from the new topic's random
// id), which keeps the function pure and repeatable.
#ifndef FJORD_CONTROLLER_METADATA_REPLICA_PLACEMENT_H_
#define FJORD_CONTROLLER_METADATA_REPLICA_PLACEMENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fjord::controller {

struct PlacementBroker {
  int32_t id = 0;
  // Empty when the broker has no rack.
  std::string rack;
};

// Replica lists for `partitions` partitions of `replication_factor` replicas
// each over `brokers` (any order, distinct ids). INVALID_ARGUMENT when
// partitions < 1, replication_factor < 1 or replication_factor > the number
// of brokers.
absl::StatusOr<std::vector<std::vector<int32_t>>> PlaceReplicas(
    std::vector<PlacementBroker> brokers, int32_t partitions,
    int32_t replication_factor, uint64_t seed);

// A stable 64-bit hash (FNV-1a) for placement seeds; unlike absl::Hash it is
// the same in every process and version.
uint64_t StableHash(absl::string_view s);

}  // namespace fjord::controller

#endif  // FJORD_CONTROLLER_METADATA_REPLICA_PLACEMENT_H_
