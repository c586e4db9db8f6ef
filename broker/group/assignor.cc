#include "broker/group/assignor.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fjord::broker::group {
namespace {

bool Subscribes(const AssignorMember& m, const std::string& topic) {
  return std::binary_search(m.subscribed.begin(), m.subscribed.end(), topic);
}

// Topics someone subscribes to that exist, with their counts.
PartitionCounts SubscribedCounts(const std::vector<AssignorMember>& members,
                                 const PartitionCounts& counts) {
  PartitionCounts out;
  for (const AssignorMember& m : members) {
    for (const std::string& t : m.subscribed) {
      auto it = counts.find(t);
      if (it != counts.end() && it->second > 0) out[t] = it->second;
    }
  }
  return out;
}

std::map<std::string, Assignment> EmptyResult(const std::vector<AssignorMember>& members) {
  std::map<std::string, Assignment> result;
  for (const AssignorMember& m : members) result[m.member_id];
  return result;
}

}  // namespace

int64_t Size(const Assignment& a) {
  int64_t n = 0;
  for (const auto& [topic, partitions] : a) n += static_cast<int64_t>(partitions.size());
  return n;
}

bool IsKnownAssignor(absl::string_view name) {
  return name == kUniformAssignor || name == kRangeAssignor;
}

std::map<std::string, Assignment> RangeAssign(const std::vector<AssignorMember>& members,
                                              const PartitionCounts& counts) {
  std::map<std::string, Assignment> result = EmptyResult(members);
  for (const auto& [topic, count] : SubscribedCounts(members, counts)) {
    std::vector<const AssignorMember*> subs;
    for (const AssignorMember& m : members) {
      if (Subscribes(m, topic)) subs.push_back(&m);
    }
    std::sort(subs.begin(), subs.end(), [](const AssignorMember* a, const AssignorMember* b) {
      const std::string& ka = a->instance_id.empty() ? a->member_id : a->instance_id;
      const std::string& kb = b->instance_id.empty() ? b->member_id : b->instance_id;
      return std::tie(ka, a->member_id) < std::tie(kb, b->member_id);
    });
    const int32_t n = static_cast<int32_t>(subs.size());
    const int32_t per = count / n;
    const int32_t extra = count % n;
    for (int32_t i = 0; i < n; ++i) {
      const int32_t start = i * per + std::min(i, extra);
      const int32_t len = per + (i < extra ? 1 : 0);
      for (int32_t p = start; p < start + len; ++p) {
        result[subs[i]->member_id][topic].insert(p);
      }
    }
  }
  return result;
}

std::map<std::string, Assignment> UniformAssign(const std::vector<AssignorMember>& members,
                                                const PartitionCounts& counts) {
  std::map<std::string, Assignment> result = EmptyResult(members);
  const PartitionCounts topics = SubscribedCounts(members, counts);
  if (members.empty() || topics.empty()) return result;

  // Members in id order, and each one's load.
  std::vector<const AssignorMember*> order;
  for (const AssignorMember& m : members) order.push_back(&m);
  std::sort(order.begin(), order.end(), [](const AssignorMember* a, const AssignorMember* b) {
    return a->member_id < b->member_id;
  });
  std::map<std::string, int64_t> load;
  std::set<std::pair<std::string, int32_t>> taken;

  // 1. Stickiness: every member keeps what it had that is still valid.
  for (const AssignorMember* m : order) {
    load[m->member_id] = 0;
    for (const auto& [topic, partitions] : m->previous) {
      auto count = topics.find(topic);
      if (count == topics.end() || !Subscribes(*m, topic)) continue;
      for (int32_t p : partitions) {
        if (p < 0 || p >= count->second || !taken.insert({topic, p}).second) continue;
        result[m->member_id][topic].insert(p);
        ++load[m->member_id];
      }
    }
  }
  // 2. Partitions nobody kept go to the least loaded subscriber.
  for (const auto& [topic, count] : topics) {
    for (int32_t p = 0; p < count; ++p) {
      if (taken.contains({topic, p})) continue;
      const AssignorMember* best = nullptr;
      for (const AssignorMember* m : order) {
        if (!Subscribes(*m, topic)) continue;
        if (best == nullptr || load[m->member_id] < load[best->member_id]) best = m;
      }
      result[best->member_id][topic].insert(p);
      ++load[best->member_id];
      taken.insert({topic, p});
    }
  }
  // 3. Balance: while some member owns a partition that a subscriber with at least
  // two fewer partitions could take, move it there. Each move lowers the sum of
  // squared loads, so this ends; the bound is only a backstop.
  const int64_t total = static_cast<int64_t>(taken.size());
  for (int64_t moves = 0; moves <= total * static_cast<int64_t>(order.size()); ++moves) {
    bool moved = false;
    // The most loaded members first.
    std::vector<const AssignorMember*> by_load = order;
    std::stable_sort(by_load.begin(), by_load.end(),
                     [&](const AssignorMember* a, const AssignorMember* b) {
                       return load[a->member_id] > load[b->member_id];
                     });
    for (const AssignorMember* from : by_load) {
      Assignment& owned = result[from->member_id];
      for (auto topic_it = owned.rbegin(); topic_it != owned.rend() && !moved; ++topic_it) {
        const std::string& topic = topic_it->first;
        const AssignorMember* to = nullptr;
        for (const AssignorMember* m : order) {
          if (m == from || !Subscribes(*m, topic)) continue;
          if (to == nullptr || load[m->member_id] < load[to->member_id]) to = m;
        }
        if (to == nullptr || load[to->member_id] + 1 >= load[from->member_id] ||
            topic_it->second.empty()) {
          continue;
        }
        const int32_t p = *topic_it->second.rbegin();
        topic_it->second.erase(p);
        result[to->member_id][topic].insert(p);
        --load[from->member_id];
        ++load[to->member_id];
        moved = true;
      }
      if (moved) break;
    }
    if (!moved) break;
  }
  // Drop topics left with no partitions.
  for (auto& [member, assignment] : result) {
    std::erase_if(assignment, [](const auto& entry) { return entry.second.empty(); });
  }
  return result;
}

absl::StatusOr<std::map<std::string, Assignment>> Assign(
    absl::string_view name, const std::vector<AssignorMember>& members,
    const PartitionCounts& counts) {
  if (name == kUniformAssignor) return UniformAssign(members, counts);
  if (name == kRangeAssignor) return RangeAssign(members, counts);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown assignor \"", name, "\"; use \"uniform\" or \"range\""));
}

}  // namespace fjord::broker::group
