// Partition assignors for consumer groups: given the members of a group and what
// they subscribe to, which partitions each member should own (the group's target
// assignment). The coordinator runs them (server-side assignment, Kafka's KIP-848);
// they are pure functions, deterministic for the same input.
#ifndef FJORD_BROKER_GROUP_ASSIGNOR_H_
#define FJORD_BROKER_GROUP_ASSIGNOR_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fjord::broker::group {

// topic -> partition indexes.
using Assignment = std::map<std::string, std::set<int32_t>>;

// topic -> partition count. Topics that are missing (or have 0) do not exist.
using PartitionCounts = std::map<std::string, int32_t>;

struct AssignorMember {
  std::string member_id;
  // Static members are ordered by instance id, so a restart (new member id) does
  // not reshuffle a range assignment.
  std::string instance_id;
  // Sorted, unique.
  std::vector<std::string> subscribed;
  // The member's previous target, for sticky assignors.
  Assignment previous;
};

inline constexpr char kUniformAssignor[] = "uniform";
inline constexpr char kRangeAssignor[] = "range";

// Whether `name` is an assignor this broker has.
bool IsKnownAssignor(absl::string_view name);

// Per topic, sorts the topic's subscribers (by instance id, else member id) and
// gives each a run of consecutive partitions; the first (count mod subscribers)
// get one more. Kafka's RangeAssignor.
std::map<std::string, Assignment> RangeAssign(const std::vector<AssignorMember>& members,
                                              const PartitionCounts& counts);

// Spreads every subscribed partition so that members with the same subscription
// own counts differing by at most one, moving as few partitions away from their
// previous owner as that allows (sticky). Kafka's uniform assignor.
std::map<std::string, Assignment> UniformAssign(const std::vector<AssignorMember>& members,
                                                const PartitionCounts& counts);

// Runs the assignor called `name`. INVALID_ARGUMENT for an unknown name.
absl::StatusOr<std::map<std::string, Assignment>> Assign(
    absl::string_view name, const std::vector<AssignorMember>& members,
    const PartitionCounts& counts);

// Number of partitions in `a`.
int64_t Size(const Assignment& a);

}  // namespace fjord::broker::group

#endif  // FJORD_BROKER_GROUP_ASSIGNOR_H_
