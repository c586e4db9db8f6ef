// The controller's replicated metadata state machine: the image of brokers,
// topics and partitions that applying the metadata log's records in order
// produces (proto/fjord/internal/v1/controller_records.proto).
//
// Every controller applies the same committed records in the same order, so
// Apply is deterministic: it reads no clock, no randomness and no process
// state, and iterates only ordered containers. A record that would break an
// invariant below is rejected with a status and leaves the image unchanged;
// since every controller rejects it the same way, the images stay identical.
// (The active controller only produces valid records, see controller_logic.h;
// a rejection means a bug or a corrupted log, and the caller should log it.)
//
// Invariants, true after every Apply and Restore (CheckInvariants verifies
// them; the randomized tests call it after every step):
//
//   I1  Broker ids are >= 0 and every broker epoch is <= max_broker_epoch().
//   I2  Broker epochs only increase: a (re)registration's epoch is larger
//       than every epoch assigned before, including to brokers since
//       unregistered.
//   I3  A broker in controlled shutdown is not fenced.
//   I4  Topic names and topic ids are unique; names follow Kafka's rules; a
//       topic has partitions 0..n-1, n >= 1.
//   I5  Replicas are non-empty, without duplicates, and never change.
//   I6  ISR is without duplicates and a subset of the replicas. It is empty
//       only when the partition has no leader: its last member registered
//       again as a new incarnation (which may have an empty disk, KIP-903).
//   I7  The leader is -1 (no leader) or an ISR member.
//   I8  A leader is registered, unfenced and not in controlled shutdown
//       ("eligible").
//   I9  When the ISR has more than one member, every member is eligible. A
//       fenced (or shutting down, or unregistered) broker stays in an ISR only
//       as its sole member: when the last in-sync replica is fenced the
//       partition keeps it in the ISR with leader -1, so that only a replica
//       known to hold every committed record can lead again.
//   I10 Leader epoch and partition epoch only increase: every change of a
//       partition raises the partition epoch by exactly one, and a change of
//       leader (including to or from -1) raises the leader epoch by exactly
//       one; an ISR- or ELR-only change keeps the leader epoch.
//   I11 The ELR (eligible leader replicas, KIP-966) is without duplicates, a
//       subset of the replicas, disjoint from the ISR, and non-empty only
//       while the ISR has fewer members than EffectiveMinIsr. Its members
//       may be fenced or unregistered.
//   I12 A registration under a new incarnation id, or of an id that is not
//       registered, finds the id in no ISR and no ELR: the process may have
//       lost its disk, so it must not count as holding committed records.
//       (A transition rule, like I10, enforced by Apply.)
//
// What the ELR means (controller_logic.h maintains it; docs/GUARANTEES.md):
// a replica in a partition's ISR or ELR holds every record below the
// partition's high watermark. Brokers keep that true for the ELR by never
// advancing a high watermark while the ISR is smaller than EffectiveMinIsr
// (broker/replica_manager.cc), so the records committed when a replica left
// the ISR for the ELR are all that are committed until the ELR is cleared.
//
// Ownership and threads: a plain value type, not thread-safe; the owner
// serializes access.
#ifndef FJORD_CONTROLLER_METADATA_METADATA_IMAGE_H_
#define FJORD_CONTROLLER_METADATA_METADATA_IMAGE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fjord/internal/v1/controller_records.pb.h"
#include "fjord/v1/metadata.pb.h"

namespace fjord::controller {

namespace records = ::fjord::internal::v1;

// The leader id of a partition without a leader.
inline constexpr int32_t kNoLeader = -1;

struct BrokerEndpoint {
  std::string name;
  std::string host;
  int32_t port = 0;

  bool operator==(const BrokerEndpoint&) const = default;
};

// A registered broker.
struct Broker {
  int32_t id = 0;
  // One run of the broker process; a restart has a new one.
  std::string incarnation_id;
  std::vector<BrokerEndpoint> endpoints;
  std::string rack;
  // The metadata offset of the broker's registration record.
  int64_t epoch = 0;
  // A registration starts fenced; UnfenceBrokerRecord clears it.
  bool fenced = true;
  // Asked to shut down (KIP-841): still unfenced, but not eligible.
  bool in_controlled_shutdown = false;

  // May lead a partition and be in a multi-member ISR.
  bool eligible() const { return !fenced && !in_controlled_shutdown; }

  bool operator==(const Broker&) const = default;
};

// One partition (see PartitionState in controller_records.proto).
struct Partition {
  std::vector<int32_t> replicas;
  int32_t leader = kNoLeader;
  int32_t leader_epoch = 0;
  std::vector<int32_t> isr;
  int32_t partition_epoch = 0;
  // Eligible leader replicas (I11), in replica order.
  std::vector<int32_t> elr;

  bool operator==(const Partition&) const = default;
};

struct Topic {
  std::string name;
  // 32 lowercase hex digits.
  std::string id;
  // As given at creation (only non-default keys).
  std::map<std::string, std::string> configs;
  // Indexed by partition index.
  std::vector<Partition> partitions;

  bool operator==(const Topic&) const = default;
};

class MetadataImage {
 public:
  MetadataImage() = default;

  // Applies one committed record. OK: the image changed as the record says.
  // INVALID_ARGUMENT (for a malformed record), NOT_FOUND (unknown broker or
  // topic), ALREADY_EXISTS (topic name or id taken) or FAILED_PRECONDITION
  // (the record does not fit the current state, e.g. a stale broker epoch, a
  // partition epoch that is not current + 1, or a fence of a broker that
  // still leads): the image is unchanged.
  //
  // Batches: a request's records are applied one by one; each record keeps
  // the invariants on its own, because partition changes that move
  // leaderships away from a broker precede the record that fences it.
  absl::Status Apply(const records::MetadataRecord& record);

  // The whole image, deterministic (brokers by id, topics by id).
  records::MetadataSnapshot Snapshot() const;

  // Replaces the image with `snapshot`. INVALID_ARGUMENT if the snapshot
  // breaks an invariant, leaving the image unchanged.
  absl::Status Restore(const records::MetadataSnapshot& snapshot);

  // OK, or INTERNAL naming the first broken invariant (I1-I9, I11; I10 and
  // I12 are about transitions and are enforced by Apply).
  absl::Status CheckInvariants() const;

  // Read access. Pointers stay valid until the next Apply or Restore.
  const Broker* FindBroker(int32_t id) const;
  const Topic* FindTopicById(absl::string_view topic_id) const;
  const Topic* FindTopicByName(absl::string_view name) const;
  // By broker id.
  const std::map<int32_t, Broker>& brokers() const { return brokers_; }
  // By topic id.
  const std::map<std::string, Topic>& topics() const { return topics_; }
  // The largest broker epoch ever assigned, -1 before the first registration.
  int64_t max_broker_epoch() const { return max_broker_epoch_; }
  // Empty until the first active controller committed a ClusterIdRecord.
  const std::string& cluster_id() const { return cluster_id_; }
  // Registered, unfenced and not in controlled shutdown.
  bool IsEligible(int32_t broker_id) const;

  // Public API views (fjord.v1). BrokerInfo's host and port are the first
  // endpoint's. TopicInfo's configs are the effective configs (defaults
  // filled in); its replication factor is partition 0's replica count.
  std::vector<fjord::v1::BrokerInfo> BrokerInfos() const;
  std::optional<fjord::v1::BrokerInfo> BrokerInfoOf(int32_t id) const;
  // NOT_FOUND (reason UNKNOWN_TOPIC) when no topic has this name.
  absl::StatusOr<fjord::v1::TopicInfo> TopicInfoByName(
      absl::string_view name) const;
  // Every topic, ordered by name.
  std::vector<fjord::v1::TopicInfo> TopicInfos() const;

  bool operator==(const MetadataImage&) const = default;

 private:
  absl::Status ApplyRegisterBroker(const records::RegisterBrokerRecord& r);
  absl::Status ApplyUnfenceBroker(const records::UnfenceBrokerRecord& r);
  absl::Status ApplyFenceBroker(const records::FenceBrokerRecord& r);
  absl::Status ApplyControlledShutdown(
      const records::BrokerControlledShutdownRecord& r);
  absl::Status ApplyUnregisterBroker(const records::UnregisterBrokerRecord& r);
  absl::Status ApplyCreateTopic(const records::CreateTopicRecord& r);
  absl::Status ApplyDeleteTopic(const records::DeleteTopicRecord& r);
  absl::Status ApplyChangePartition(const records::ChangePartitionRecord& r);

  // The broker with `id` and `epoch`, or NOT_FOUND / FAILED_PRECONDITION.
  absl::StatusOr<Broker*> MutableBroker(int32_t id, int64_t epoch);
  // OK when the broker leads nothing and is in no multi-member ISR, i.e. it
  // may become ineligible without breaking I8/I9.
  absl::Status CheckHoldsNothing(int32_t broker_id) const;
  // OK when the broker is in no ISR and no ELR (I12).
  absl::Status CheckInNoIsrOrElr(int32_t broker_id) const;
  // I5-I9 and I11 for one partition state of a topic with `configs`.
  absl::Status CheckPartition(
      const Partition& p,
      const std::map<std::string, std::string>& configs) const;

  fjord::v1::TopicInfo ToTopicInfo(const Topic& topic) const;

  std::map<int32_t, Broker> brokers_;
  std::map<std::string, Topic> topics_;                   // by id
  std::map<std::string, std::string> topic_ids_by_name_;  // name -> id
  int64_t max_broker_epoch_ = -1;
  std::string cluster_id_;
};

// The ISR size at or above which a partition needs no ELR: the topic's
// min.insync.replicas, capped at the partition's replica count (as Kafka
// caps it), at least 1. Configs that do not parse (written by a newer
// version) count as min.insync.replicas=1. Brokers stop advancing the high
// watermark below it.
int32_t EffectiveMinIsr(const std::map<std::string, std::string>& configs,
                        const Partition& p);

// Conversions between the image's structs and the record messages.
Partition PartitionFromProto(const records::PartitionState& p);
records::PartitionState PartitionToProto(int32_t index, const Partition& p);

// True when `id` is 32 lowercase hex digits.
bool IsValidTopicId(absl::string_view id);

}  // namespace fjord::controller

#endif  // FJORD_CONTROLLER_METADATA_METADATA_IMAGE_H_
