// The active controller's decisions: turning broker and admin requests into
// metadata records, given the current image and the current time.
//
// Nothing here does I/O, owns a thread or reads a clock; time and log
// offsets are passed in. The records a call returns are one atomic batch: the
// caller proposes them to Raft together, and everyone applies them in order
// with MetadataImage::Apply. Each call reads the image it was given at
// construction; the caller must apply a call's records to that image (which
// the active controller does immediately, speculatively, as Kafka's
// QuorumController does, rolling back to the committed state if it loses
// leadership) before the next call, or serialize calls behind commits.
//
// Soft state. Heartbeat times, the metadata offset each broker last reported
// and controlled-shutdown offsets are NOT replicated: they live only in this
// object on the active controller. A controller that becomes active must
// call Activate(now), which gives every registered broker a fresh, full
// session, as Kafka does: otherwise a failover after a long leaderless
// period would fence every broker at once.
//
// Offsets. `next_offset` arguments are the metadata offset the first
// returned record will occupy when proposed (the log end offset of the
// active controller, counting records it proposed but not yet committed);
// the batch occupies next_offset .. next_offset + n - 1. A broker's epoch is
// the offset of its registration record (Kafka's rule), so epochs increase
// across the whole cluster without a separate counter.
//
// Kafka rules followed (KIP-631 broker lifecycle, KIP-841 controlled
// shutdown, KIP-903 broker epochs in AlterPartition, KIP-966 eligible leader
// replicas), and where Fjord differs, are noted on each method.
//
// Leader elections and the ELR. A partition without a leader gets, in this
// order: the first eligible ISR member (replica order), keeping the ISR; else
// the first eligible ELR member, alone in the ISR (a clean election: it holds
// every committed record); else, only when the topic has
// unclean.leader.election.enable, the first eligible replica, alone in the
// ISR, with the ELR cleared; else none. Every change that takes members out
// of an ISR (fencing, controlled shutdown, re-registration, unregistration,
// the leader's AlterPartition, an election from the ELR) puts them in the
// ELR when the ISR left is smaller than EffectiveMinIsr, and a change that
// brings the ISR to EffectiveMinIsr clears the ELR. That the leader drops a
// follower for lag does not matter: what makes a departed member safe to
// elect is that the high watermark stops while the ISR is below
// min.insync.replicas (brokers enforce it), so nothing is committed after it
// left; while it was in the ISR, the high watermark waited for it. Kafka adds
// such members to the ELR too. Only a new incarnation is forgotten: it
// leaves every ISR, even as the last member, and every ELR.
//
// Not thread-safe; the active controller's single event loop owns it.
#ifndef FJORD_CONTROLLER_METADATA_CONTROLLER_LOGIC_H_
#define FJORD_CONTROLLER_METADATA_CONTROLLER_LOGIC_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/metadata/metadata_image.h"
#include "fjord/internal/v1/controller_records.pb.h"

namespace fjord::controller {

using RecordBatch = std::vector<records::MetadataRecord>;

struct ControllerOptions {
  // A broker that has not heartbeated for this long is fenced
  // (broker.session.timeout.ms; DESIGN.md: about 6 s, 3 s in tests).
  absl::Duration session_timeout = absl::Seconds(6);
};

struct CreateTopicRequest {
  std::string name;
  int32_t partitions = 1;
  int32_t replication_factor = 1;
  // Only keys broker::TopicConfig accepts.
  std::map<std::string, std::string> configs;
};

struct RegisterBrokerRequest {
  int32_t broker_id = 0;
  // A fresh random id per process start.
  std::string incarnation_id;
  std::vector<BrokerEndpoint> endpoints;
  std::string rack;
};

struct RegisterBrokerResult {
  RecordBatch records;
  // The epoch the broker must send with every later request.
  int64_t broker_epoch = 0;
};

struct HeartbeatRequest {
  int32_t broker_id = 0;
  int64_t broker_epoch = 0;
  // The offset of the last metadata record the broker has applied, -1 if
  // none.
  int64_t current_metadata_offset = -1;
  // Stay (or become) fenced, e.g. while the broker is still recovering logs.
  bool want_fence = false;
  // The broker is stopping (SIGTERM) and asks for a controlled shutdown.
  bool want_shutdown = false;
};

// The broker's state as it will be once `records` are applied.
struct HeartbeatResult {
  RecordBatch records;
  bool fenced = true;
  bool in_controlled_shutdown = false;
  // The broker may stop now: it leads nothing and, in a controlled shutdown,
  // every active broker has seen the leadership moves.
  bool should_shutdown = false;
};

// One proposed ISR member: the broker and the epoch the leader saw in its
// fetch requests (KIP-903).
struct IsrMember {
  int32_t broker_id = 0;
  int64_t broker_epoch = 0;
};

struct AlterPartitionRequest {
  // The leader sending the request, and its epoch.
  int32_t broker_id = 0;
  int64_t broker_epoch = 0;
  std::string topic_id;
  int32_t partition = 0;
  // The leader epoch and partition epoch the leader's proposal is based on.
  int32_t leader_epoch = 0;
  int32_t partition_epoch = 0;
  std::vector<IsrMember> new_isr;
};

struct AlterPartitionResult {
  RecordBatch records;
  // The partition as it will be once `records` are applied.
  Partition partition;
};

class ControllerLogic {
 public:
  // `image` must outlive this object; see the file comment for who applies
  // records to it.
  ControllerLogic(const MetadataImage* image, ControllerOptions options = {});

  // This controller became active at `now`: forget all soft state and give
  // every registered broker a fresh session starting now. Every `now` given
  // to this class must come from one clock; the server uses the monotonic one
  // (common/clock.h), so that a wall-clock jump expires no session.
  void Activate(absl::Time now);

  // Creates topics, all or nothing: on any error no records are returned.
  // Checks, per topic: the name (broker::ValidateTopicName), not existing and
  // not repeated in the request (ALREADY_EXISTS / INVALID_ARGUMENT), 1 to
  // kMaxPartitionsPerTopic partitions (INVALID_ARGUMENT,
  // INVALID_PARTITION_COUNT), a replication factor from 1 to the number of
  // eligible brokers (INVALID_ARGUMENT, INVALID_REPLICATION_FACTOR; Kafka's
  // KRaft counts only unfenced brokers too), and configs
  // (broker::TopicConfig::Parse). Replicas are placed by PlaceReplicas over
  // the eligible brokers, seeded by the topic id. Every initial ISR is the
  // full replica list, the leader the first replica, both epochs 0.
  // `new_topic_id` returns a fresh random id (32 lowercase hex digits) per
  // call; a malformed or colliding id is INTERNAL.
  absl::StatusOr<RecordBatch> CreateTopics(
      const std::vector<CreateTopicRequest>& requests,
      const std::function<std::string()>& new_topic_id);

  // Deletes topics by name, all or nothing: NOT_FOUND (UNKNOWN_TOPIC) if any
  // is missing, INVALID_ARGUMENT if one is named twice.
  absl::StatusOr<RecordBatch> DeleteTopics(
      const std::vector<std::string>& names);

  // Registers a broker (a new one, or the same id restarted). The broker
  // starts fenced; its epoch is the offset of the RegisterBrokerRecord.
  //
  // Kafka's rule (ClusterControlManager.registerBroker): a registration with
  // a different incarnation id while the old registration still has a live
  // session (a heartbeat, registration or controller takeover less than the
  // session timeout ago) is refused, ALREADY_EXISTS with
  // DUPLICATE_BROKER_REGISTRATION: two processes with one id are a
  // misconfiguration, and the refused one retries until the old session
  // expires. This holds whether the old registration is fenced or not (a
  // fenced broker that heartbeats is alive too). The same incarnation
  // registering again (a retry after a lost answer) is accepted.
  //
  // A registration first removes the old registration from every leadership,
  // electing new leaders as fencing does. The same incarnation (a restart on
  // the same disk) leaves only multi-member ISRs, and may join ELRs, as on
  // fencing. A new incarnation id, or an id registered again after it was
  // unregistered, may have lost its disk (KIP-903; Kafka KIP-966 likewise
  // drops a replica that lost data from the ELR): it leaves every ISR, even
  // as its last member (the ISR is then empty, without a leader, until an
  // ELR member or, when allowed, an unclean election takes over), and every
  // ELR, so it is never elected for data it may not have.
  //
  // INVALID_ARGUMENT for a negative id, an empty incarnation id, no
  // endpoint, a bad host or port; INTERNAL if `next_offset` is not above
  // every broker epoch so far (a caller bug).
  absl::StatusOr<RegisterBrokerResult> RegisterBroker(
      const RegisterBrokerRequest& request, absl::Time now,
      int64_t next_offset);

  // A broker's periodic heartbeat. Errors: FAILED_PRECONDITION with
  // BROKER_NOT_REGISTERED (unknown id) or STALE_BROKER_EPOCH (an old
  // incarnation; it must re-register); the session is not renewed then.
  //
  // Otherwise the session is renewed and the broker's state moves as in
  // Kafka's BrokerHeartbeatManager:
  //   fenced, want_shutdown          -> should_shutdown (it leads nothing).
  //   fenced, want_fence             -> stays fenced.
  //   fenced, caught up              -> unfenced: current_metadata_offset >=
  //                                     its registration offset (= epoch).
  //                                     Leaderless partitions it can lead get
  //                                     it as leader (from the ISR, then the
  //                                     ELR; or any replica when the topic
  //                                     allows unclean election).
  //   fenced, behind                 -> stays fenced.
  //   unfenced, want_shutdown        -> controlled shutdown: leaderships move
  //                                     to other ISR members and it leaves
  //                                     the ISRs (records), then it waits; if
  //                                     it held nothing it is fenced and told
  //                                     to shut down at once.
  //   unfenced, want_fence           -> fenced (as on session expiry).
  //   in controlled shutdown         -> should_shutdown (and fenced) once
  //                                     every active broker (unfenced, not
  //                                     shutting down) has reported a
  //                                     metadata offset at or past the
  //                                     controlled-shutdown record, so the
  //                                     new leaders know they lead.
  absl::StatusOr<HeartbeatResult> Heartbeat(const HeartbeatRequest& request,
                                            absl::Time now,
                                            int64_t next_offset);

  // Fences every unfenced broker (including ones in controlled shutdown)
  // whose last heartbeat is `session_timeout` or more before `now`, moving
  // its leaderships and removing it from ISRs first. The caller runs it
  // periodically (e.g. every 100 ms). Empty when nothing expired.
  RecordBatch TickSessions(absl::Time now);

  // An ISR change from a partition leader (Kafka's AlterPartition). Checks,
  // in order:
  //   unknown topic or partition          NOT_FOUND
  //   sender not registered / stale epoch FAILED_PRECONDITION,
  //                                       BROKER_NOT_REGISTERED /
  //                                       STALE_BROKER_EPOCH
  //   sender not the leader               FAILED_PRECONDITION, NOT_LEADER
  //   leader epoch != current             ABORTED, FENCED_LEADER_EPOCH
  //   partition epoch != current          ABORTED, INVALID_UPDATE_VERSION
  //   ISR empty, duplicated, not within
  //   the replicas or without the leader  INVALID_ARGUMENT, INVALID_REQUEST
  //   a member fenced, shutting down,
  //   unregistered, or with a broker
  //   epoch other than its current one    FAILED_PRECONDITION,
  //                                       INELIGIBLE_REPLICA (KIP-841/903)
  // An ISR equal to the current one is accepted without records (a retry
  // whose answer was lost). Otherwise one ChangePartitionRecord with the new
  // ISR, the same leader and leader epoch, partition epoch + 1, and the ELR
  // updated (members dropped below min.insync.replicas join it; members
  // added leave it; cleared at min.insync.replicas).
  absl::StatusOr<AlterPartitionResult> AlterPartition(
      const AlterPartitionRequest& request);

  // Moves leadership back to preferred replicas: every partition whose first
  // replica is eligible, in the ISR and not the leader gets it as leader
  // (leader epoch + 1). Kafka's auto.leader.rebalance also waits for a
  // per-broker imbalance ratio; Fjord moves as soon as possible. The caller
  // runs it periodically.
  RecordBatch ElectPreferredLeaders();

  // Removes a broker registration (decommissioning), first moving its
  // leaderships and removing it from ISRs as fencing does (it may stay a
  // last ISR member or an ELR member; registering the id again forgets it).
  // FAILED_PRECONDITION, BROKER_NOT_REGISTERED if there is none.
  absl::StatusOr<RecordBatch> UnregisterBroker(int32_t broker_id);

  // Soft state, for tests and `cluster describe`.
  struct Session {
    // Last heartbeat, registration or takeover.
    absl::Time last_contact;
    // Last reported metadata offset, -1 if none.
    int64_t metadata_offset = -1;
    // Offset of the BrokerControlledShutdownRecord, -1 if not shutting down.
    int64_t controlled_shutdown_offset = -1;
  };
  const std::map<int32_t, Session>& sessions() const { return sessions_; }

 private:
  // Records that make every broker in `leaving` ineligible-safe: for each
  // partition it leads or shares an ISR of, remove it from the ISR (keeping
  // the last member), update the ELR, and elect a new leader when needed.
  // With `forget` (a new incarnation) it also leaves the ISR as its last
  // member, and every ELR. `leaving` brokers are treated as ineligible.
  RecordBatch RemoveFromPartitions(const std::set<int32_t>& leaving,
                                   bool forget) const;
  // Leader elections for leaderless partitions once `joining` (a broker being
  // unfenced) counts as eligible.
  RecordBatch ElectForLeaderless(int32_t joining) const;
  // Fences `brokers` (all unfenced) with `reason`: partition changes, then one
  // FenceBrokerRecord each. Resets their controlled-shutdown state.
  RecordBatch Fence(const std::set<int32_t>& brokers,
                    records::FenceReason reason);
  // Lowest metadata offset reported by an active broker other than
  // `except`; INT64_MAX when there is none.
  int64_t LowestActiveOffset(int32_t except) const;
  Session& SessionOf(int32_t broker_id, absl::Time now);

  const MetadataImage* image_;
  ControllerOptions options_;
  std::map<int32_t, Session> sessions_;
};

}  // namespace fjord::controller

#endif  // FJORD_CONTROLLER_METADATA_CONTROLLER_LOGIC_H_
