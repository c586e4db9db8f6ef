#include "broker/replica_manager.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "broker/damage.h"
#include "broker/errors.h"
#include "common/clock.h"
#include "common/network_faults.h"
#include "glog/logging.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace fjord::broker {
namespace {

namespace fiv1 = fjord::internal::v1;
using fjord::v1::ErrorInfo;

bool Contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::string Name(const std::pair<std::string, int32_t>& key) {
  return absl::StrCat(key.first.substr(0, 8), "-", key.second);
}

}  // namespace

class ReplicaManager::ServiceImpl final : public fiv1::ReplicationService::Service {
 public:
  explicit ServiceImpl(ReplicaManager* rm) : rm_(rm) {}
  grpc::Status ReplicaFetch(grpc::ServerContext* context, const fiv1::ReplicaFetchRequest* req,
                            fiv1::ReplicaFetchResponse* resp) override {
    absl::StatusOr<fiv1::ReplicaFetchResponse> result = rm_->HandleFetch(*req, context);
    if (!result.ok()) return ToGrpcStatus(result.status());
    *resp = std::move(*result);
    return grpc::Status::OK;
  }

 private:
  ReplicaManager* const rm_;
};

ReplicaManager::ReplicaManager(int32_t node_id, ReplicaManagerOptions options,
                               ReplicaManagerHooks hooks)
    : node_id_(node_id),
      options_(options),
      hooks_(std::move(hooks)),
      service_(std::make_unique<ServiceImpl>(this)) {
  isr_thread_ = std::thread([this] { IsrLoop(); });
}

ReplicaManager::~ReplicaManager() { Stop(); }

grpc::Service* ReplicaManager::service() { return service_.get(); }

void ReplicaManager::Stop() {
  if (stopping_.exchange(true)) return;
  std::map<int32_t, std::thread> fetchers;
  {
    absl::MutexLock lock(&mu_);
    fetchers.swap(fetchers_);
    ++generation_;
  }
  for (auto& [id, t] : fetchers) t.join();
  if (isr_thread_.joinable()) isr_thread_.join();
}

void ReplicaManager::OnMetadata(
    const std::map<std::string, std::shared_ptr<const TopicState>, std::less<>>& topics,
    const std::map<int32_t, std::string>& addresses, const controller::MetadataImage& image) {
  absl::MutexLock apply_lock(&apply_mu_);  // no follower write in flight (FetcherLoop)
  absl::MutexLock lock(&mu_);
  addresses_ = addresses;
  std::map<Key, Led> led;
  std::map<Key, Followed> followed;
  const absl::Time now = MonotonicNow();
  for (const auto& [name, topic] : topics) {
    const controller::Topic* t = image.FindTopicById(topic->info.topic_id());
    for (int p = 0; p < topic->info.partitions_size(); ++p) {
      if (topic->logs[p] == nullptr) continue;  // not a replica here
      const fjord::v1::PartitionInfo& info = topic->info.partitions(p);
      Key key{topic->info.topic_id(), p};
      if (info.leader_id() == node_id_) {
        auto it = led_.find(key);
        Led l;
        if (it != led_.end() && it->second.leader_epoch == info.leader_epoch()) {
          l = std::move(it->second);  // still leading in the same epoch
        } else {
          l.log = topic->logs[p];
          l.leader_epoch = info.leader_epoch();
          l.epoch_start_offset = l.log->log_end_offset();
          LOG(INFO) << "leading " << name << "-" << p << " in epoch " << info.leader_epoch();
        }
        const int32_t partition_epoch =
            t != nullptr && p < static_cast<int>(t->partitions.size())
                ? t->partitions[p].partition_epoch
                : 0;
        if (partition_epoch >= l.partition_epoch) {
          l.partition_epoch = partition_epoch;
          l.isr.assign(info.isr().begin(), info.isr().end());
        }
        l.min_isr =
            t != nullptr && p < static_cast<int>(t->partitions.size())
                ? controller::EffectiveMinIsr(t->configs, t->partitions[p])
                : static_cast<int32_t>(
                      std::clamp<int64_t>(topic->config.min_insync_replicas, 1,
                                          std::max(1, info.replicas_size())));
        if (!l.unconfirmed.empty() && partition_epoch > l.unconfirmed_epoch) {
          l.unconfirmed.clear();  // the controller decided since; the ISR above is it
        }
        l.replicas.assign(info.replicas().begin(), info.replicas().end());
        for (int32_t r : l.replicas) {
          if (r == node_id_) continue;
          auto [f, inserted] = l.followers.try_emplace(r);
          // A new leader gives every follower a full lag period to show up.
          if (inserted) f->second.last_caught_up = now;
        }
        led.emplace(key, std::move(l));
      } else if (Contains({info.replicas().begin(), info.replicas().end()}, node_id_)) {
        auto it = followed_.find(key);
        if (it == followed_.end() || it->second.leader_epoch != info.leader_epoch()) {
          LOG(INFO) << "following " << name << "-" << p << " from broker "
                    << info.leader_id() << " in epoch " << info.leader_epoch();
        }
        followed.emplace(key, Followed{topic->logs[p], info.leader_id(), info.leader_epoch()});
      }
    }
  }
  led_.swap(led);
  followed_.swap(followed);
  ++generation_;
  for (auto& [key, l] : led_) AdvanceHighWatermarkLocked(l);
  // One fetcher per leader this broker follows.
  std::set<int32_t> leaders;
  for (const auto& [key, f] : followed_) {
    if (f.leader >= 0) leaders.insert(f.leader);
  }
  for (int32_t leader : leaders) {
    if (fetchers_.count(leader) == 0 && !stopping_.load()) {
      fetchers_.emplace(leader, std::thread([this, leader] { FetcherLoop(leader); }));
    }
  }
}

void ReplicaManager::AdvanceHighWatermarkLocked(Led& led) {
  // KIP-966's strict min ISR. While the committed ISR is smaller than
  // min.insync.replicas nothing more is committed, not even acks=1 records,
  // and an acks=all batch appended before the ISR shrank waits: the replicas
  // that left the ISR since (the controller keeps them as eligible leader
  // replicas and may elect one when no ISR member can lead) then hold every
  // committed record. Without this a lone leader would commit records only it
  // has, and a clean election of such a replica would lose them.
  if (static_cast<int64_t>(led.isr.size()) < led.min_isr) return;
  int64_t hw = led.log->log_end_offset();
  std::vector<int32_t> maximal = led.isr;
  for (int32_t m : led.pending_isr) {
    if (!Contains(maximal, m)) maximal.push_back(m);
  }
  // Followers about to rejoin hold the high watermark where it is until they
  // reach it (see IsrLoop).
  for (int32_t m : led.catching_up) {
    if (!Contains(maximal, m)) maximal.push_back(m);
  }
  for (int32_t m : led.unconfirmed) {
    if (!Contains(maximal, m)) maximal.push_back(m);
  }
  for (int32_t member : maximal) {
    if (member == node_id_) continue;
    auto it = led.followers.find(member);
    if (it == led.followers.end() || it->second.leo < 0) return;  // unknown yet
    hw = std::min(hw, it->second.leo);
  }
  if (hw > led.log->high_watermark()) {
    absl::Status s = led.log->SetHighWatermark(hw);
    if (!s.ok()) LOG(WARNING) << "advancing the high watermark: " << s;
  }
}

void ReplicaManager::OnLeaderAppend(const PartitionHandle& partition) {
  absl::MutexLock lock(&mu_);
  auto it = led_.find({partition.topic->info.topic_id(), partition.partition});
  if (it != led_.end()) AdvanceHighWatermarkLocked(it->second);
}

std::vector<int32_t> ReplicaManager::Isr(const PartitionHandle& partition) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = led_.find({partition.topic->info.topic_id(), partition.partition});
  if (it == led_.end()) return {};
  return it->second.isr;
}

absl::Status ReplicaManager::WaitForCommit(const PartitionHandle& partition,
                                           int64_t last_offset, absl::Time deadline) {
  const Key key{partition.topic->info.topic_id(), partition.partition};
  absl::MutexLock lock(&mu_);
  auto it = led_.find(key);
  if (it == led_.end()) {
    return MakeError(absl::StatusCode::kUnavailable, ErrorInfo::OUTCOME_UNKNOWN,
                     "lost leadership after appending, before the batch was replicated; "
                     "it may or may not be committed");
  }
  const int32_t epoch = it->second.leader_epoch;
  storage::PartitionLog* log = it->second.log.get();
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto l = led_.find(key);
    return stopping_.load() || l == led_.end() || l->second.leader_epoch != epoch ||
           log->high_watermark() > last_offset;
  };
  mu_.AwaitWithDeadline(absl::Condition(&done), WallDeadline(deadline));
  if (log->high_watermark() > last_offset) return absl::OkStatus();
  auto l = led_.find(key);
  if (stopping_.load() || l == led_.end() || l->second.leader_epoch != epoch) {
    return MakeError(absl::StatusCode::kUnavailable, ErrorInfo::OUTCOME_UNKNOWN,
                     "lost leadership after appending, before the batch was replicated to "
                     "every in-sync replica; it may or may not be committed");
  }
  return absl::DeadlineExceededError(
      "indeterminate: the batch is on the leader but not yet on every in-sync replica");
}

absl::StatusOr<fiv1::ReplicaFetchResponse> ReplicaManager::HandleFetch(
    const fiv1::ReplicaFetchRequest& req, grpc::ServerContext* context) {
  fiv1::ReplicaFetchResponse response;
  struct Pending {
    fiv1::ReplicaFetchPartitionData* out;
    std::shared_ptr<storage::PartitionLog> log;
    int64_t offset;
  };
  std::vector<Pending> reads;
  const absl::Time now = MonotonicNow();
  {
    absl::MutexLock lock(&mu_);
    for (const fiv1::ReplicaFetchPartition& p : req.partitions()) {
      fiv1::ReplicaFetchPartitionData* out = response.add_partitions();
      out->set_topic_id(p.topic_id());
      out->set_partition(p.partition());
      out->set_diverging_epoch(-1);
      out->set_diverging_end_offset(-1);
      auto it = led_.find({p.topic_id(), p.partition()});
      if (it == led_.end()) {
        out->set_error(fiv1::ReplicaFetchPartitionData::NOT_LEADER);
        continue;
      }
      Led& led = it->second;
      if (p.current_leader_epoch() < led.leader_epoch) {
        out->set_error(fiv1::ReplicaFetchPartitionData::FENCED_LEADER_EPOCH);
        continue;
      }
      if (p.current_leader_epoch() > led.leader_epoch) {
        out->set_error(fiv1::ReplicaFetchPartitionData::UNKNOWN_LEADER_EPOCH);
        continue;
      }
      storage::PartitionLog& log = *led.log;
      out->set_log_start_offset(log.log_start_offset());
      // KIP-320: does the follower's log agree with ours up to its end?
      if (p.last_fetched_epoch() >= 0 && p.fetch_offset() > 0) {
        auto [epoch, end] = log.EndOffsetForEpoch(p.last_fetched_epoch());
        if (epoch < 0) {
          // We have nothing from that epoch or earlier: all of it goes.
          out->set_diverging_epoch(0);
          out->set_diverging_end_offset(log.log_start_offset());
          continue;
        }
        if (epoch != p.last_fetched_epoch() || end < p.fetch_offset()) {
          out->set_diverging_epoch(epoch);
          out->set_diverging_end_offset(end);
          continue;
        }
      }
      const int64_t leo = log.log_end_offset();
      if (p.fetch_offset() > leo || p.fetch_offset() < log.log_start_offset()) {
        out->set_error(fiv1::ReplicaFetchPartitionData::OFFSET_OUT_OF_RANGE);
        out->set_error_message(absl::StrCat("fetch offset ", p.fetch_offset(),
                                            " is outside ", log.log_start_offset(), "..",
                                            leo));
        continue;
      }
      // Kafka's lastCaughtUpTime rule.
      Follower& f = led.followers[req.replica_id()];
      f.broker_epoch = req.replica_epoch();
      f.leo = p.fetch_offset();
      if (p.fetch_offset() >= leo) {
        f.last_caught_up = now;
      } else if (p.fetch_offset() >= f.leader_leo_at_last_fetch) {
        f.last_caught_up = std::max(f.last_caught_up, f.last_fetch);
      }
      f.leader_leo_at_last_fetch = leo;
      f.last_fetch = now;
      AdvanceHighWatermarkLocked(led);
      reads.push_back({out, led.log, p.fetch_offset()});
    }
  }
  // Long-poll until some partition has records past its fetch offset.
  const absl::Time deadline =
      now + std::min(absl::Milliseconds(std::max(0, req.max_wait_ms())), absl::Seconds(10));
  auto has_data = [&] {
    for (const Pending& r : reads) {
      if (r.log->log_end_offset() > r.offset) return true;
    }
    return false;
  };
  while (!has_data() && !reads.empty() && MonotonicNow() < deadline && !context->IsCancelled() &&
         !stopping_.load()) {
    // Sleep on the first partition's log; the others are checked every slice.
    reads.front().log->WaitForData(
        reads.front().offset, std::min(deadline - MonotonicNow(), absl::Milliseconds(10)));
  }
  int64_t budget = std::max(1, req.max_bytes());
  for (Pending& r : reads) {
    r.out->set_high_watermark(r.log->high_watermark());
    if (r.log->log_end_offset() <= r.offset || budget <= 0) continue;
    absl::StatusOr<std::vector<storage::StoredBatch>> batches =
        r.log->Read(r.offset, static_cast<size_t>(budget));
    if (!batches.ok()) {
      // Damage RocksDB's block checksums found: the leader stops rather than
      // serve it (broker/damage.h). A batch whose own CRC fails is refused by
      // the follower's append (ValidateBatch), so it is not checked here too.
      (void)CheckDamage(batches.status(), "replica fetch");
      r.out->set_error(fiv1::ReplicaFetchPartitionData::STORAGE_ERROR);
      r.out->set_error_message(std::string(batches.status().message()));
      continue;
    }
    for (storage::StoredBatch& b : *batches) {
      fiv1::ReplicatedBatch* out = r.out->add_batches();
      out->set_base_offset(b.base_offset);
      budget -= static_cast<int64_t>(b.data.size());
      out->set_data(std::move(b.data));
    }
  }
  return response;
}

void ReplicaManager::FetcherLoop(int32_t leader) {
  std::shared_ptr<grpc::Channel> channel;
  std::string channel_address;
  std::unique_ptr<fiv1::ReplicationService::Stub> stub;
  while (!stopping_.load()) {
    fiv1::ReplicaFetchRequest request;
    std::vector<std::pair<Key, Followed>> partitions;
    std::string address;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [key, f] : followed_) {
        if (f.leader == leader) partitions.emplace_back(key, f);
      }
      if (auto it = addresses_.find(leader); it != addresses_.end()) address = it->second;
    }
    if (partitions.empty() || address.empty()) {
      absl::SleepFor(absl::Milliseconds(100));
      continue;
    }
    if (address != channel_address) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
      args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      args.SetMaxReceiveMessageSize(options_.fetch_max_bytes + (16 << 20));
      channel = NewPeerChannel(address, args);
      stub = fiv1::ReplicationService::NewStub(channel);
      channel_address = address;
    }
    request.set_replica_id(node_id_);
    request.set_replica_epoch(hooks_.broker_epoch ? hooks_.broker_epoch() : -1);
    request.set_max_wait_ms(static_cast<int32_t>(absl::ToInt64Milliseconds(options_.fetch_max_wait)));
    request.set_max_bytes(options_.fetch_max_bytes);
    for (const auto& [key, f] : partitions) {
      fiv1::ReplicaFetchPartition* p = request.add_partitions();
      p->set_topic_id(key.first);
      p->set_partition(key.second);
      p->set_current_leader_epoch(f.leader_epoch);
      p->set_fetch_offset(f.log->log_end_offset());
      p->set_last_fetched_epoch(f.log->LatestEpoch());
    }
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + options_.fetch_max_wait + absl::Seconds(5)));
    fiv1::ReplicaFetchResponse response;
    grpc::Status status = stub->ReplicaFetch(&context, request, &response);
    if (!status.ok()) {
      LOG_EVERY_N(WARNING, 20) << "replica fetch from broker " << leader << " at " << address
                               << ": " << status.error_message();
      absl::SleepFor(absl::Milliseconds(200));
      continue;
    }
    bool any_error = false;
    for (const fiv1::ReplicaFetchPartitionData& data : response.partitions()) {
      const Key key{data.topic_id(), data.partition()};
      auto it = std::find_if(partitions.begin(), partitions.end(),
                             [&](const auto& p) { return p.first == key; });
      if (it == partitions.end()) continue;
      // Apply the answer only if we still follow this leader in this epoch.
      // apply_mu_ is held while writing, and OnMetadata takes it before it
      // changes any partition's role, so a partition that became ours to lead
      // is never truncated or appended to by a fetcher. mu_ is not held across
      // the (synced) write, so produces and fetches on this broker go on.
      absl::MutexLock apply_lock(&apply_mu_);
      {
        absl::MutexLock lock(&mu_);
        auto current = followed_.find(key);
        if (current == followed_.end() || current->second.leader != leader ||
            current->second.leader_epoch != it->second.leader_epoch) {
          continue;
        }
      }
      storage::PartitionLog& log = *it->second.log;
      if (data.error() != fiv1::ReplicaFetchPartitionData::NONE) {
        any_error = true;
        VLOG(1) << "fetch " << Name(key) << " from " << leader << ": error " << data.error()
                << " " << data.error_message();
        continue;
      }
      if (data.diverging_epoch() >= 0) {
        const int64_t target = std::min(data.diverging_end_offset(), log.log_end_offset());
        absl::StatusOr<int64_t> end = log.TruncateTo(std::max(target, log.log_start_offset()));
        LOG(INFO) << "partition " << Name(key) << " diverged from leader " << leader
                  << " (epoch " << data.diverging_epoch() << " ends at "
                  << data.diverging_end_offset() << "): truncated to "
                  << (end.ok() ? absl::StrCat(*end) : end.status().ToString());
        continue;
      }
      // All of the answer's batches in one group commit: one fsync, not one
      // per batch (which would make catching up crawl).
      std::vector<std::pair<int64_t, std::string>> batches;
      for (const fiv1::ReplicatedBatch& batch : data.batches()) {
        if (batch.base_offset() < log.log_end_offset()) continue;  // already here
        batches.emplace_back(batch.base_offset(), batch.data());
      }
      if (!batches.empty()) {
        absl::StatusOr<int64_t> end = log.AppendReplicatedBatches(std::move(batches));
        if (!end.ok()) {
          LOG(WARNING) << "appending replicated batches to " << Name(key) << ": "
                       << end.status();
          any_error = true;
        }
      }
      const int64_t hw = std::min(data.high_watermark(), log.log_end_offset());
      if (hw > log.high_watermark()) {
        absl::Status s = log.SetHighWatermark(hw);
        if (!s.ok()) LOG(WARNING) << "follower high watermark: " << s;
      }
    }
    // Errors mean our metadata is behind or ahead of the leader's: give the
    // metadata a moment rather than spinning.
    if (any_error) absl::SleepFor(absl::Milliseconds(50));
  }
}

void ReplicaManager::IsrLoop() {
  const absl::Duration interval =
      std::max(absl::Milliseconds(100), options_.replica_lag_time_max / 4);
  while (!stopping_.load()) {
    absl::SleepFor(interval);
    std::vector<std::pair<Key, std::vector<int32_t>>> changes;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = MonotonicNow();
      for (auto& [key, led] : led_) {
        if (led.alter_in_flight) continue;
        std::vector<int32_t> isr;
        for (int32_t m : led.isr) {
          if (m == node_id_) {
            isr.push_back(m);
            continue;
          }
          const Follower& f = led.followers[m];
          if (now - f.last_caught_up <= options_.replica_lag_time_max) isr.push_back(m);
        }
        const int64_t hw = led.log->high_watermark();
        std::vector<int32_t> catching_up;
        for (int32_t r : led.replicas) {
          if (r == node_id_ || Contains(isr, r)) continue;
          const Follower& f = led.followers[r];
          const bool recent = f.broker_epoch >= 0 &&
                              now - f.last_caught_up <= options_.replica_lag_time_max;
          if (!recent) continue;
          // Kafka's rule: also the log end at the start of this leader's
          // epoch, which may be past the high watermark of a new leader (it
          // stays behind while the ISR is below min.insync.replicas).
          if (f.leo >= std::max(hw, led.epoch_start_offset)) {
            // Back in sync: it has everything committed, and fetched recently.
            isr.push_back(r);
          } else {
            // It keeps up with the log end but, while the leader keeps
            // appending, never quite reaches the high watermark, which moves
            // with every write while the ISR is the leader alone. Counting it
            // in the high watermark from now on stops the mark until its next
            // fetch reaches it; then the branch above adds it. Adding it
            // before it has every committed record would let an election pick
            // a replica that lacks acknowledged records.
            catching_up.push_back(r);
          }
        }
        // Keep replica order, so ISRs read the same everywhere.
        std::vector<int32_t> ordered;
        for (int32_t r : led.replicas) {
          if (Contains(isr, r)) ordered.push_back(r);
        }
        // After a failed expansion, propose even an unchanged ISR: success
        // confirms that the controller's ISR is this one.
        if ((ordered != led.isr || !led.unconfirmed.empty()) && !ordered.empty()) {
          led.alter_in_flight = true;
          led.pending_isr = ordered;
          changes.emplace_back(key, std::move(ordered));
        }
        // Only now, with a member being added already in pending_isr: a
        // follower moving from catching_up into the ISR must hold the high
        // watermark all along, or the mark would jump past records it lacks
        // just before the controller makes it an electable ISR member (the
        // partition suite lost two acknowledged records that way).
        if (catching_up != led.catching_up) {
          if (!catching_up.empty()) {
            LOG(INFO) << "holding the high watermark of " << Name(key) << " at " << hw
                      << " until [" << absl::StrJoin(catching_up, ",")
                      << "] reach it and rejoin the ISR";
          }
          led.catching_up = std::move(catching_up);
          AdvanceHighWatermarkLocked(led);
        }
      }
    }
    for (auto& [key, isr] : changes) ProposeIsr(key, std::move(isr));
  }
}

void ReplicaManager::ProposeIsr(const Key& key, std::vector<int32_t> new_isr) {
  fiv1::AlterPartitionRequest request;
  {
    absl::MutexLock lock(&mu_);
    auto it = led_.find(key);
    if (it == led_.end()) return;
    Led& led = it->second;
    request.set_broker_id(node_id_);
    request.set_broker_epoch(hooks_.broker_epoch ? hooks_.broker_epoch() : -1);
    request.set_topic_id(key.first);
    request.set_partition(key.second);
    request.set_leader_epoch(led.leader_epoch);
    request.set_partition_epoch(led.partition_epoch);
    for (int32_t m : new_isr) {
      auto* member = request.add_new_isr();
      member->set_broker_id(m);
      member->set_broker_epoch(m == node_id_ ? request.broker_epoch()
                                             : led.followers[m].broker_epoch);
    }
  }
  LOG(INFO) << "proposing ISR [" << absl::StrJoin(new_isr, ",") << "] for " << Name(key);
  absl::StatusOr<fiv1::AlterPartitionResponse> response =
      hooks_.alter_partition ? hooks_.alter_partition(request)
                             : absl::UnavailableError("no controller");
  absl::MutexLock lock(&mu_);
  auto it = led_.find(key);
  if (it == led_.end()) return;
  Led& led = it->second;
  led.alter_in_flight = false;
  if (!response.ok()) {
    // The outcome is unknown: members this proposal added may be in the
    // controller's ISR now, so they keep holding the high watermark.
    for (int32_t m : led.pending_isr) {
      if (!Contains(led.isr, m) && !Contains(led.unconfirmed, m)) led.unconfirmed.push_back(m);
    }
    if (!led.unconfirmed.empty()) led.unconfirmed_epoch = led.partition_epoch;
    led.pending_isr.clear();
    LOG(WARNING) << "AlterPartition for " << Name(key) << ": " << response.status();
    return;
  }
  led.pending_isr.clear();
  led.unconfirmed.clear();
  const fiv1::PartitionState& state = response->partition();
  if (state.leader_epoch() == led.leader_epoch &&
      state.partition_epoch() >= led.partition_epoch) {
    led.partition_epoch = state.partition_epoch();
    led.isr.assign(state.isr().begin(), state.isr().end());
    AdvanceHighWatermarkLocked(led);
  }
}

}  // namespace fjord::broker
