#include "integration_tests/chaos/group_checker.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"

namespace fjord::testing::chaos {
namespace {

constexpr int kMaxDetails = 20;

// One consumer's uninterrupted ownership of one partition, as observed.
struct Run {
  int consumer = 0;
  int32_t partition = 0;
  absl::Time first;
  absl::Time last;
  std::vector<int64_t> offsets;  // records returned during the run, in order
};

}  // namespace

bool GroupCheckResult::valid() const {
  return double_owned == 0 && skipped == 0 && backwards == 0 && commit_regressions == 0 &&
         final_commit_behind == 0 && missed == 0;
}

std::string GroupCheckResult::Report() const {
  std::string out = absl::StrCat(
      "group checker: consumers=", consumers, " polls=", polls,
      " records_returned=", records_returned, " commits=", commits, " handovers=", handovers,
      " double_owned=", double_owned, " skipped=", skipped, " backwards=", backwards,
      " commit_regressions=", commit_regressions, " final_commit_behind=", final_commit_behind,
      " missed=", missed, " valid=", valid() ? "yes" : "NO", "\n");
  for (const std::string& d : details) absl::StrAppend(&out, "  ", d, "\n");
  return out;
}

GroupCheckResult CheckGroup(const std::vector<GroupPoll>& polls,
                            const std::vector<GroupCommit>& commits,
                            const std::map<int32_t, std::vector<ReadRecord>>& final_read,
                            const std::map<int32_t, int64_t>& final_committed) {
  GroupCheckResult result;
  std::map<std::string, int> counts;
  auto detail = [&](const std::string& kind, std::string text) {
    if (++counts[kind] <= kMaxDetails) result.details.push_back(absl::StrCat(kind, ": ", text));
  };
  result.polls = static_cast<int64_t>(polls.size());
  result.commits = static_cast<int64_t>(commits.size());

  // Runs of ownership per consumer and partition, from each consumer's polls in
  // order (the log is in time order per consumer: one thread per consumer).
  std::vector<Run> runs;
  std::map<std::pair<int, int32_t>, size_t> open;  // (consumer, partition) -> run
  std::set<int> consumers;
  std::set<std::pair<int32_t, int64_t>> returned;
  for (const GroupPoll& poll : polls) {
    consumers.insert(poll.consumer);
    for (auto it = open.begin(); it != open.end();) {
      if (it->first.first == poll.consumer && (!poll.owned.contains(it->first.second) ||
                                               poll.released.contains(it->first.second))) {
        it = open.erase(it);  // released
      } else {
        ++it;
      }
    }
    for (int32_t p : poll.owned) {
      auto [it, fresh] = open.emplace(std::make_pair(poll.consumer, p), runs.size());
      if (fresh) runs.push_back(Run{poll.consumer, p, poll.at, poll.at, {}});
      runs[it->second].last = poll.at;
    }
    for (const auto& [p, r] : poll.records) {
      ++result.records_returned;
      returned.insert({p, r.offset});
      auto it = open.find({poll.consumer, p});
      if (it == open.end()) {
        // Records of a partition it did not own after the Poll: the release
        // happened in this very Poll, so they were returned before it. Count
        // them in the run that just ended, if any.
        for (size_t i = runs.size(); i-- > 0;) {
          if (runs[i].consumer == poll.consumer && runs[i].partition == p) {
            runs[i].offsets.push_back(r.offset);
            runs[i].last = poll.at;
            break;
          }
        }
        continue;
      }
      runs[it->second].offsets.push_back(r.offset);
    }
  }
  result.consumers = static_cast<int64_t>(consumers.size());

  // Overlapping runs of different consumers on one partition.
  for (size_t i = 0; i < runs.size(); ++i) {
    for (size_t j = i + 1; j < runs.size(); ++j) {
      const Run& a = runs[i];
      const Run& b = runs[j];
      if (a.partition != b.partition || a.consumer == b.consumer) continue;
      if (a.first <= b.last && b.first <= a.last) {
        ++result.double_owned;
        detail("double_owned",
               absl::StrCat("partition ", a.partition, ": consumer ", a.consumer, " [",
                            absl::FormatTime(a.first), " .. ", absl::FormatTime(a.last),
                            "] and consumer ", b.consumer, " [", absl::FormatTime(b.first),
                            " .. ", absl::FormatTime(b.last), "]"));
      }
    }
  }
  // Within a run: consecutive offsets.
  for (const Run& run : runs) {
    for (size_t k = 1; k < run.offsets.size(); ++k) {
      const int64_t prev = run.offsets[k - 1];
      const int64_t cur = run.offsets[k];
      if (cur <= prev) {
        ++result.backwards;
        detail("backwards", absl::StrCat("consumer ", run.consumer, " partition ",
                                         run.partition, ": offset ", cur, " after ", prev));
      } else if (cur != prev + 1) {
        ++result.skipped;
        detail("skipped", absl::StrCat("consumer ", run.consumer, " partition ", run.partition,
                                       ": offset ", cur, " after ", prev));
      }
    }
  }
  // A new owner starts at or above what was committed before it took over.
  for (const Run& run : runs) {
    if (run.offsets.empty()) continue;
    int64_t committed_before = -1;
    for (const GroupCommit& c : commits) {
      if (c.partition == run.partition && c.consumer != run.consumer && c.at < run.first) {
        committed_before = std::max(committed_before, c.offset);
      }
    }
    if (committed_before >= 0) ++result.handovers;
    if (run.offsets.front() < committed_before) {
      ++result.commit_regressions;
      detail("commit_regression",
             absl::StrCat("consumer ", run.consumer, " partition ", run.partition,
                          " started at ", run.offsets.front(), " although ", committed_before,
                          " was committed before it took the partition"));
    }
  }
  // The final committed offsets are not behind any acknowledged commit.
  std::map<int32_t, int64_t> max_acked;
  for (const GroupCommit& c : commits) {
    int64_t& m = max_acked[c.partition];
    m = std::max(m, c.offset);
  }
  for (const auto& [p, acked] : max_acked) {
    auto it = final_committed.find(p);
    const int64_t final_offset = it == final_committed.end() ? -1 : it->second;
    if (final_offset < acked) {
      ++result.final_commit_behind;
      detail("final_commit_behind", absl::StrCat("partition ", p, ": committed ", final_offset,
                                                 " at the end, ", acked, " acknowledged"));
    }
  }
  // Every committed record was returned by some consumer.
  for (const auto& [p, records] : final_read) {
    for (const ReadRecord& r : records) {
      if (!returned.contains({p, r.offset})) {
        ++result.missed;
        detail("missed", absl::StrCat("partition ", p, " offset ", r.offset, " value ", r.value));
      }
    }
  }
  return result;
}

}  // namespace fjord::testing::chaos
