#include "integration_tests/chaos/group_workload.h"

#include <iostream>
#include <memory>

#include "absl/time/clock.h"
#include "client/cluster.h"
#include "client/consumer.h"
#include "client/group_admin.h"

namespace fjord::testing::chaos {

void GroupLog::AddPoll(GroupPoll poll) {
  absl::MutexLock lock(&mu_);
  for (const auto& [p, r] : poll.records) {
    int64_t& end = read_ends_[p];
    end = std::max(end, r.offset + 1);
  }
  polls_.push_back(std::move(poll));
}

void GroupLog::AddCommit(GroupCommit commit) {
  absl::MutexLock lock(&mu_);
  commits_.push_back(commit);
}

std::vector<GroupPoll> GroupLog::polls() const {
  absl::MutexLock lock(&mu_);
  return polls_;
}

std::vector<GroupCommit> GroupLog::commits() const {
  absl::MutexLock lock(&mu_);
  return commits_;
}

std::map<int32_t, int64_t> GroupLog::read_ends() const {
  absl::MutexLock lock(&mu_);
  return read_ends_;
}

void GroupWorkload::Start() {
  for (int slot = 0; slot < options_.consumers; ++slot) {
    threads_.emplace_back([this, slot] { Run(slot); });
  }
}

void GroupWorkload::Stop() {
  stop_.store(true);
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

bool GroupWorkload::WaitCaughtUp(const std::map<int32_t, int64_t>& ends,
                                 absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const std::map<int32_t, int64_t> read = log_->read_ends();
    bool done = true;
    for (const auto& [p, end] : ends) {
      auto it = read.find(p);
      done &= end == 0 || (it != read.end() && it->second >= end);
    }
    if (done) return true;
    absl::SleepFor(absl::Milliseconds(100));  // poll interval
  }
  return false;
}

absl::StatusOr<std::map<int32_t, int64_t>> GroupWorkload::Committed() const {
  client::ClientOptions co;
  co.bootstrap = options_.bootstrap;
  absl::StatusOr<std::shared_ptr<client::Cluster>> cluster = client::Cluster::Create(co);
  if (!cluster.ok()) return cluster.status();
  client::GroupAdmin admin(*cluster);
  auto offsets = admin.FetchOffsets(options_.group);
  if (!offsets.ok()) return offsets.status();
  std::map<int32_t, int64_t> out;
  for (const auto& [tp, c] : *offsets) {
    if (tp.topic == options_.topic) out[tp.partition] = c.offset();
  }
  return out;
}

void GroupWorkload::Run(int slot) {
  client::ClientOptions co;
  co.bootstrap = options_.bootstrap;
  co.rpc_timeout = absl::Seconds(3);
  absl::StatusOr<std::shared_ptr<client::Cluster>> cluster = client::Cluster::Create(co);
  if (!cluster.ok()) {
    std::cerr << "chaos: group consumer slot " << slot << ": " << cluster.status() << "\n";
    return;
  }
  // Staggered lifetimes, so that members come and go one at a time.
  absl::Duration lifetime = options_.lifetime + absl::Seconds(3) * slot;
  for (int generation = 0; !stop_.load() && generation < 1000; ++generation) {
    const int id = next_consumer_.fetch_add(1);
    client::ConsumerOptions opts;
    opts.group_id = options_.group;
    opts.auto_offset_reset = client::OffsetReset::kEarliest;
    opts.enable_auto_commit = false;
    opts.session_timeout = options_.session_timeout;
    opts.api_timeout = absl::Seconds(20);
    // Filled by the rebalance callbacks, which run inside Poll() on this thread.
    std::set<int32_t> released;
    auto note_released = [&](const std::vector<client::TopicPartition>& partitions) {
      for (const client::TopicPartition& tp : partitions) {
        if (tp.topic == options_.topic) released.insert(tp.partition);
      }
    };
    opts.on_partitions_revoked = note_released;
    opts.on_partitions_lost = note_released;
    absl::StatusOr<std::unique_ptr<client::Consumer>> consumer =
        client::Consumer::Create(*cluster, opts);
    if (!consumer.ok() || !(*consumer)->Subscribe({options_.topic}).ok()) {
      absl::SleepFor(absl::Milliseconds(500));  // back-off before a new consumer
      continue;
    }
    const absl::Time retire = absl::Now() + lifetime;
    for (int64_t i = 0; !stop_.load() && absl::Now() < retire && i < 10'000'000; ++i) {
      absl::StatusOr<std::vector<client::ConsumerRecord>> records =
          (*consumer)->Poll(absl::Milliseconds(200));
      GroupPoll poll;
      poll.consumer = id;
      poll.at = absl::Now();
      poll.released.swap(released);
      for (const client::TopicPartition& tp : (*consumer)->Assignment()) {
        if (tp.topic == options_.topic) poll.owned.insert(tp.partition);
      }
      std::map<client::TopicPartition, int64_t> next;
      if (records.ok()) {
        for (const client::ConsumerRecord& r : *records) {
          poll.records.push_back({r.partition, ReadRecord{r.offset, r.key.value_or(""), r.value}});
          next[{r.topic, r.partition}] = r.offset + 1;
        }
      }
      log_->AddPoll(std::move(poll));
      if (next.empty()) continue;
      // Commit exactly what this Poll returned, as processed.
      if ((*consumer)->Commit(next).ok()) {
        const absl::Time at = absl::Now();
        for (const auto& [tp, offset] : next) log_->AddCommit({id, tp.partition, offset, at});
      }
    }
    (void)(*consumer)->Close();
  }
}

}  // namespace fjord::testing::chaos
