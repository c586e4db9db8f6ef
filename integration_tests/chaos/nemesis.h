// The nemesis of a chaos run: a seeded schedule of faults (process, network,
// clock, disk), each with its heal, executed one at a time against a Cluster.
// docs/RELIABILITY.md describes each kind and what it has found.
//
// Process faults:
//
//   kill-broker        SIGKILL a broker chosen by the seed; restart it after
//                      `hold`.
//   kill-leader        SIGKILL the current leader of a partition chosen by the
//                      seed (resolved through MetadataService when the fault
//                      starts); restart it after `hold`.
//   kill-controller    SIGKILL the active controller (resolved through
//                      ControllerService.DescribeQuorum); restart after `hold`.
//   pause-leader       SIGSTOP the leader of a partition for `hold`, longer
//                      than the session timeout (so it is fenced and loses its
//                      leaderships while stopped); SIGCONT.
//   pause-controller   SIGSTOP the active controller for `hold`, longer than
//                      the largest election timeout; SIGCONT.
//   terminate-broker   SIGTERM a broker chosen by the seed (controlled
//                      shutdown), restart it after `hold`.
//   kill-all-brokers   SIGKILL every broker at once; restart them all after
//                      `hold`.
//
// Network faults (need a NetworkControl: either the cluster runs one network
// namespace per node, integration_tests/netns.h, and each fault is an nftables
// cut on the bridge; or, without root, the nodes' gRPC transport drops calls
// between cut nodes, integration_tests/transport_faults.h. Healed by removing
// the cut; clients keep reaching every node):
//
//   isolate-broker     a broker chosen by the seed cut from every other node
//                      (controllers and brokers) for `hold`, 0.5-1.7x the
//                      session timeout: sometimes fenced, sometimes not.
//   isolate-leader-from-followers
//                      the leader of a partition chosen by the seed cut from
//                      the partition's other replicas only (it still reaches
//                      the controllers and the clients), 1.2-1.7x the replica
//                      lag: the ISR shrinks to the leader.
//   isolate-controller the active controller cut from every other node for
//                      1.2x the largest election timeout to 1.7x the session
//                      timeout: another is elected.
//   split-majority-minority
//                      a seed-chosen controller and broker (the minority) cut
//                      from the other nodes, 1.2-1.7x the session timeout.
//   bridge-partition   two sides that cannot reach each other and a
//                      seed-chosen controller (the bridge) that reaches both:
//                      the other two controllers one on each side, brokers on
//                      sides chosen by the seed (non-transitive), 1.2-1.7x the
//                      session timeout.
//   brokers-from-controllers
//                      every broker cut from every controller (brokers still
//                      reach each other and the clients), 0.5-1.7x the session
//                      timeout.
//
// The schedule (order, planned start offsets, kinds, seed-chosen targets,
// holds and gaps) is a function of the seed alone: MakeSchedule with the same
// seed and options returns the same schedule on any machine (it uses its own
// SplitMix64 generator, not std:: distributions). What a "leader" or "active
// controller" target resolves to depends on the run and is printed in the
// timeline. A fault starts at its planned offset, or `gap` after the previous
// heal finished when that is later (restarts take as long as they take).
//
// A fault's heal time (FaultRecord::healed) is when its heal finished: the
// restarted node(s) answer health SERVING (for a broker: registered and
// unfenced), or, for a pause, the node is running again after SIGCONT, or, for
// a network fault, the cut was removed.
//
// Clock faults (need a ClockSkew: every node runs under libfaketime with a
// clock of its own, see integration_tests/chaos/clock.h). The wall clock moves,
// the monotonic clock does not, as when NTP or an operator steps a machine's
// clock; heal sets the offsets back to zero (itself a jump).
//
//   clock-jump-leader  the wall clock of the leader of a partition chosen by
//                      the seed jumps by a seeded 20 s - 10 min, forward or
//                      back, for `hold`, 1.2-2x the session timeout.
//   clock-jump-controller
//                      the same for the active controller.
//   clock-skew-all     every node's clock is off by its own seeded amount,
//                      up to 2 min either way, for `hold`.
//
// Disk faults (need SetDiskFaults; each heals only once every partition of
// the given topics has its full ISR again, one broker's disk at a time, as an
// operator replaces disks):
//
//   damage-store       SIGKILL a broker chosen by the seed and damage its
//                      store at rest: a bit flipped in the middle of its
//                      largest table file or of its write-ahead log, or the
//                      table file cut to half (seeded); restart it. It must
//                      find the damage, move the store aside and fetch its
//                      replicas again (broker/damage.h).
//   lose-unsynced      SIGKILL a broker chosen by the seed and drop every
//                      write it had not synced (//storage:drop-unsynced: the
//                      nodes run with FJORD_TESTING_SYNC_JOURNAL=1), as a
//                      power failure of that machine would; restart it.
//
// A schedule holds one family: chaos_test's quick suite the process kinds
// (AllFaultKinds, ScheduleOptions::kinds empty, so its schedules are the same
// as before the other families existed), its clock and disk runs
// ClockFaultKinds() and DiskFaultKinds(), partition_test NetworkFaultKinds().
#ifndef FJORD_INTEGRATION_TESTS_CHAOS_NEMESIS_H_
#define FJORD_INTEGRATION_TESTS_CHAOS_NEMESIS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "integration_tests/chaos/clock.h"
#include "integration_tests/chaos/history.h"
#include "integration_tests/chaos/workload.h"
#include "integration_tests/cluster.h"
#include "integration_tests/netns.h"

namespace fjord::testing::chaos {

enum class FaultKind {
  kKillBroker,
  kKillLeader,
  kKillController,
  kPauseLeader,
  kPauseController,
  kTerminateBroker,
  kKillAllBrokers,
  // Network faults (Nemesis needs a NetworkControl).
  kIsolateBroker,
  kIsolateLeaderFromFollowers,
  kIsolateController,
  kSplitMajorityMinority,
  kBridgePartition,
  kBrokersFromControllers,
  // Clock faults (Nemesis needs a ClockSkew).
  kClockJumpLeader,
  kClockJumpController,
  kClockSkewAll,
  // Disk faults (Nemesis needs SetDiskFaults).
  kDamageStore,
  kLoseUnsynced,
};

// Every process-fault kind, in declaration order: the quick suite's (the
// default of ScheduleOptions::kinds).
const std::vector<FaultKind>& AllFaultKinds();
// Every network-fault kind, in declaration order.
const std::vector<FaultKind>& NetworkFaultKinds();
bool IsNetworkFault(FaultKind kind);
// Every clock-fault kind, in declaration order.
const std::vector<FaultKind>& ClockFaultKinds();
bool IsClockFault(FaultKind kind);
// Every disk-fault kind, in declaration order.
const std::vector<FaultKind>& DiskFaultKinds();
bool IsDiskFault(FaultKind kind);
// "kill-broker", "kill-leader", ...
const char* FaultKindName(FaultKind kind);

struct ScheduledFault {
  int index = 0;
  absl::Duration at;  // planned start, from the nemesis start
  FaultKind kind = FaultKind::kKillBroker;
  int broker = 0;       // kill-broker, terminate-broker: broker id
  int partition = 0;    // kill-leader, pause-leader: partition of the topic
  absl::Duration hold;  // down or paused this long before the heal
  absl::Duration gap;   // at least this long after the heal before the next
  // split-majority-minority: side_a is the minority; bridge-partition: the
  // two sides and the bridge controller. Node names. Empty for other kinds.
  std::vector<std::string> side_a;
  std::vector<std::string> side_b;
  std::string bridge;
  // Clock faults: the jump (one entry), or for clock-skew-all each node's
  // offset, controllers first then brokers (Nemesis::AllNodes order).
  std::vector<absl::Duration> offsets;
  // damage-store: picks the file and the damage.
  uint64_t damage = 0;

  // "t=+12.5s #3 kill-leader target=leader(chaos/1) hold=1.2s gap=2.0s".
  std::string ToString(const std::string& topic) const;
};

struct ScheduleOptions {
  // The kinds to schedule; empty means AllFaultKinds() (process faults).
  std::vector<FaultKind> kinds;
  int faults_per_kind = 2;
  int controllers = 3;  // used by network kinds only
  int brokers = 3;
  int partitions = 3;
  absl::Duration session_timeout = absl::Seconds(3);
  // The brokers' --replica-lag-time-max-ms (isolate-leader-from-followers).
  absl::Duration replica_lag = absl::Seconds(3);
  // The largest Raft election timeout (randomised in [min, 2 * min]).
  absl::Duration max_election_timeout = absl::Seconds(2);
  // Heals are assumed to take this long per restarted node when planning
  // start offsets (the real time is whatever it is).
  absl::Duration planned_restart = absl::Seconds(1);
};

// Every kind of options.kinds `faults_per_kind` times in a seeded order, with
// seeded targets, holds (kills 0.5-2 s; pauses 1.2-1.7x the session timeout or
// the largest election timeout; network faults as in the file comment) and
// gaps (1.5-3 s). Network kinds draw their sides after the common draws, so a
// schedule of process kinds only is the same as before they existed.
std::vector<ScheduledFault> MakeSchedule(uint64_t seed,
                                         const ScheduleOptions& options);

// The schedule, one ToString line per fault.
std::string FormatSchedule(const std::vector<ScheduledFault>& schedule,
                           const std::string& topic);

class Nemesis {
 public:
  // `cluster` is used only from the thread running Run / HealAll (a Cluster is
  // not thread-safe); `client` and `history` are thread-safe. `topic` names the
  // partitions of leader targets. Timeline lines go to `log`.
  // `network` (optional) cuts the network between the cluster's nodes;
  // network faults without it are recorded as not healed, with a note. `clock`
  // (optional) sets the nodes' clocks; clock faults need it the same way.
  Nemesis(Cluster* cluster, ChaosClient* client, History* history,
          std::string topic, std::ostream* log,
          NetworkControl* network = nullptr, ClockSkew* clock = nullptr);

  // Executes `schedule` in order, each fault with its heal, recording each in
  // the history. Stops starting faults once `stop` is set or `deadline` has
  // passed (a fault under way is always healed). Returns the number of faults
  // executed.
  int Run(const std::vector<ScheduledFault>& schedule,
          const std::atomic<bool>& stop, absl::Time deadline);

  // Removes any network cut, resumes every paused node and restarts every
  // exited one, then waits until every node is SERVING (at most `timeout`).
  absl::Status HealAll(absl::Duration timeout);

  // Enables disk faults: `drop_unsynced` is the //storage:drop-unsynced
  // binary; a disk fault's heal waits (up to 60 s) until every partition of
  // `topics` has its full ISR.
  void SetDiskFaults(std::string drop_unsynced, std::vector<std::string> topics);

  // The active controller's node name ("controller-2"), asking each running
  // controller's DescribeQuorum in turn for up to `timeout`.
  absl::StatusOr<std::string> ActiveController(absl::Duration timeout);
  // The leader of `partition` of the topic ("broker-3"), for up to `timeout`.
  absl::StatusOr<std::string> LeaderOf(int partition, absl::Duration timeout);

 private:
  // Injects and heals one fault; fills `record`.
  void Execute(const ScheduledFault& fault, FaultRecord* record);
  // The same for a network fault.
  void ExecuteNetwork(const ScheduledFault& fault, FaultRecord* record);
  // The same for a clock fault.
  void ExecuteClock(const ScheduledFault& fault, FaultRecord* record);
  // The same for a disk fault.
  void ExecuteDisk(const ScheduledFault& fault, FaultRecord* record);
  // True once every partition of disk_topics_ has a leader and its full ISR.
  bool WaitForFullIsr(absl::Duration timeout);
  // Every node name, controllers first.
  std::vector<std::string> AllNodes() const;
  // Restarts `node`, retrying once; notes errors.
  void RestartNode(const std::string& node, std::string* note);
  double Since(absl::Time t) const;
  // The timeline's two lines for a fault: "nemesis 12.3s #4 kind target:
  // injected" and "...: healed" (with "(INCOMPLETE)" and the notes).
  void LogInjected(const FaultRecord& record) const;
  void LogHealed(const FaultRecord& record, bool complete) const;

  Cluster* cluster_;
  ChaosClient* client_;
  History* history_;
  std::string topic_;
  std::ostream* log_;
  NetworkControl* network_;
  ClockSkew* clock_;
  std::string drop_unsynced_;
  std::vector<std::string> disk_topics_;
  absl::Time start_;
};

}  // namespace fjord::testing::chaos

#endif  // FJORD_INTEGRATION_TESTS_CHAOS_NEMESIS_H_
