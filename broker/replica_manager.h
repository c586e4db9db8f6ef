// ReplicaManager: partition replication on one broker, in Kafka's model.
//
// Followers pull. For every partition this broker follows, a fetcher (one thread
// per leader broker) sends ReplicaFetch with the follower's log end offset and the
// epoch of its last batch; the leader answers with batches, its high watermark,
// or, when the follower's log has diverged (KIP-320), the point to truncate to.
// The follower appends the leader's batches byte for byte (same offsets, same
// leader epochs), so replicas never differ below the high watermark.
//
// Leaders track each follower: its log end offset (the fetch offset of its last
// request) and when it last caught up (Kafka's lastCaughtUpTime: its fetch
// offset reached the leader's log end offset as of its previous fetch). The high
// watermark is the smallest log end offset among the in-sync replicas; it never
// moves back on a leader. A follower that has not caught up for
// replica.lag.time.max.ms is removed from the ISR, and one that reaches the high
// watermark is added back, through AlterPartition at the controller with the
// partition epoch and the follower's broker epoch (KIP-903); the leader keeps
// counting a member it is adding as in sync only once the controller agreed.
//
// acks=all: the leader appends, then waits until the high watermark passes the
// batch (WaitForCommit). A leader that loses leadership (a newer leader epoch in
// the metadata) fails its waiting producers with NOT_LEADER: their records are
// then in an unknown state, exactly as a timeout.
//
// Thread-safe.
#ifndef FJORD_BROKER_REPLICA_MANAGER_H_
#define FJORD_BROKER_REPLICA_MANAGER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/metadata_view.h"
#include "controller/metadata/metadata_image.h"
#include "fjord/internal/v1/controller.pb.h"
#include "fjord/internal/v1/replication.grpc.pb.h"

namespace fjord::broker {

struct ReplicaManagerOptions {
  // A follower that has not caught up for this long leaves the ISR
  // (replica.lag.time.max.ms; DESIGN.md: about 10 s, 3 s in tests).
  absl::Duration replica_lag_time_max = absl::Seconds(10);
  // Follower fetch long-poll.
  absl::Duration fetch_max_wait = absl::Milliseconds(500);
  int32_t fetch_max_bytes = 8 << 20;
};

// What the replica manager needs from the rest of the broker.
struct ReplicaManagerHooks {
  // This broker's current broker epoch (-1 before registration).
  std::function<int64_t()> broker_epoch;
  // Sends an AlterPartition to the active controller.
  std::function<absl::StatusOr<fjord::internal::v1::AlterPartitionResponse>(
      const fjord::internal::v1::AlterPartitionRequest&)>
      alter_partition;
};

class ReplicaManager {
 public:
  ReplicaManager(int32_t node_id, ReplicaManagerOptions options, ReplicaManagerHooks hooks);
  // Calls Stop().
  ~ReplicaManager();

  // The metadata changed: `topics` is the whole topic table, `addresses` every
  // broker's host:port. Starts leading, following or forgetting partitions.
  void OnMetadata(const std::map<std::string, std::shared_ptr<const TopicState>,
                                 std::less<>>& topics,
                  const std::map<int32_t, std::string>& addresses,
                  const controller::MetadataImage& image);

  // After a leader append: advances the high watermark if the ISR allows.
  void OnLeaderAppend(const PartitionHandle& partition);

  // Waits until the high watermark is above `last_offset`. UNAVAILABLE
  // (NOT_LEADER) when leadership is lost meanwhile, DEADLINE_EXCEEDED at
  // `deadline` (a MonotonicNow() instant, common/clock.h): in both cases the
  // batch may or may not end up committed.
  absl::Status WaitForCommit(const PartitionHandle& partition, int64_t last_offset,
                             absl::Time deadline);

  // The in-sync replicas the leader counts now (the ISR in the metadata, plus
  // members whose addition the controller confirmed).
  std::vector<int32_t> Isr(const PartitionHandle& partition) const;

  // The inbound ReplicationService, to register on the broker's server.
  grpc::Service* service();

  // Stops fetchers and the ISR checker, fails waiters. Idempotent.
  void Stop();

 private:
  class ServiceImpl;
  struct Follower {
    int64_t leo = -1;
    int64_t broker_epoch = -1;
    // Monotonic (common/clock.h).
    absl::Time last_caught_up = absl::InfinitePast();
    absl::Time last_fetch = absl::InfinitePast();
    int64_t leader_leo_at_last_fetch = 0;
  };
  struct Led {
    std::shared_ptr<storage::PartitionLog> log;
    int32_t leader_epoch = 0;
    // The log end offset when this broker began leading in `leader_epoch`. A
    // leader is elected from the ISR or the ELR, so this is at or past every
    // committed record, while its high watermark (learned as a follower) may
    // lag behind: a follower joins the ISR only once it reaches both.
    int64_t epoch_start_offset = 0;
    int32_t partition_epoch = 0;
    std::vector<int32_t> replicas;
    std::vector<int32_t> isr;
    // controller::EffectiveMinIsr: the high watermark stays where it is while
    // `isr` (the ISR the controller committed) has fewer members.
    int32_t min_isr = 1;
    std::map<int32_t, Follower> followers;
    bool alter_in_flight = false;
    // While an AlterPartition is in flight, the ISR it proposes. The high
    // watermark counts the union of isr and pending_isr (Kafka's "maximal ISR",
    // KIP-497): the controller may already count a member being added, and may
    // not yet have dropped one being removed, so both must have a record before
    // it is committed.
    std::vector<int32_t> pending_isr;
    // Followers out of the ISR that keep up with the log end but have not
    // reached the high watermark: counted in it until they do (IsrLoop), so a
    // busy partition's ISR can grow again.
    std::vector<int32_t> catching_up;
    // Members an AlterPartition tried to add whose outcome is unknown (the call
    // failed: the controller may have applied it anyway). Counted in the high
    // watermark until the ISR is known again: a later AlterPartition succeeds,
    // or the metadata shows a partition epoch above `unconfirmed_epoch` (the
    // epoch the failed proposal was based on).
    std::vector<int32_t> unconfirmed;
    int32_t unconfirmed_epoch = 0;
  };
  struct Followed {
    std::shared_ptr<storage::PartitionLog> log;
    int32_t leader = -1;
    int32_t leader_epoch = 0;
  };
  using Key = std::pair<std::string, int32_t>;  // topic id, partition

  void FetcherLoop(int32_t leader);
  void IsrLoop();
  // Recomputes the leader's high watermark from the ISR's log end offsets;
  // leaves it where it is while the ISR is below min.insync.replicas.
  void AdvanceHighWatermarkLocked(Led& led) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<fjord::internal::v1::ReplicaFetchResponse> HandleFetch(
      const fjord::internal::v1::ReplicaFetchRequest& request, grpc::ServerContext* context);
  void ProposeIsr(const Key& key, std::vector<int32_t> new_isr);

  const int32_t node_id_;
  const ReplicaManagerOptions options_;
  const ReplicaManagerHooks hooks_;

  // Held by a fetcher while it writes to a followed partition, and by
  // OnMetadata while it changes roles. Taken before mu_, never after.
  absl::Mutex apply_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::map<Key, Led> led_ ABSL_GUARDED_BY(mu_);
  std::map<Key, Followed> followed_ ABSL_GUARDED_BY(mu_);
  std::map<int32_t, std::string> addresses_ ABSL_GUARDED_BY(mu_);
  std::map<int32_t, std::thread> fetchers_ ABSL_GUARDED_BY(mu_);
  // Bumped on every change that producers waiting in WaitForCommit must see.
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<bool> stopping_{false};
  std::thread isr_thread_;
  std::unique_ptr<grpc::Service> service_;
};

}  // namespace fjord::broker

#endif  // FJORD_BROKER_REPLICA_MANAGER_H_
