// ClusterMetadata: the metadata of a broker that belongs to a cluster run by a
// controller quorum (--controller-quorum-voters).
//
// The broker registers with the active controller (getting a broker epoch),
// heartbeats, and follows the metadata log (ControllerService.FetchMetadata) into
// its own MetadataImage, the same state machine the controllers apply. After every
// batch it reconciles its store with the image: it creates the logs of the
// partition replicas assigned to it and drops those of deleted topics. Topic
// creation and deletion are forwarded to the active controller; the call returns
// once this broker's image shows the change, so a client that created a topic
// through a broker can use it there at once.
//
// The broker is ready (health SERVING) once it is registered, has applied the
// metadata log up to its registration and the controller has unfenced it.
//
// Thread-safe. Two background threads: heartbeats, and the metadata follower.
#ifndef FJORD_BROKER_CLUSTER_METADATA_H_
#define FJORD_BROKER_CLUSTER_METADATA_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/metadata_view.h"
#include "controller/metadata/metadata_image.h"
#include "fjord/internal/v1/controller.grpc.pb.h"
#include "fjord/v1/admin.grpc.pb.h"
#include "storage/log_store.h"

namespace fjord::broker {

struct ClusterOptions {
  int32_t node_id = 1;
  // Controller voters: id -> host:port.
  std::map<int32_t, std::string> voters;
  std::string rack;
  // What clients are told to use.
  std::string advertised_host;
  int advertised_port = 0;
  // Identifies this broker's data directory to the controller; empty picks a
  // random one.
  std::string incarnation_id;
  // Until the controller says otherwise.
  absl::Duration heartbeat_interval = absl::Milliseconds(500);
  // The budget of one controller call over all its attempts (topic creation
  // and deletion get three times as much). An attempt of a topic change may
  // wait this long for one controller; every other attempt, and the metadata
  // stream's silence, only ClusterMetadata::AttemptTimeout, so that a hung
  // controller is given up on well within a session timeout.
  absl::Duration rpc_timeout = absl::Seconds(3);
};

// Calls the active controller, whichever voter that is.
//
// It keeps one belief, shared by all of the broker's controller calls, about
// which voter is active, learned from answers and from the leader that a
// NOT_LEADER answer names (a hint counts only when it names a voter: ids are
// >= 1, and a controller that knows no leader, or was just elected and is
// still catching up, sends 0 or -1). It also remembers which voters failed
// to answer at all on their last attempt (deadline exceeded, unreachable): a
// hung (SIGSTOPped, stuck on a disk) controller keeps its connections open
// and says nothing, so time is the only sign of it.
//
// A call tries the believed active controller first, then voters that
// answered lately, and voters that did not only when no other is left; each
// attempt has a deadline of its own, well below the broker session timeout,
// so that a heartbeat that went to a hung controller still reaches the new
// active one within one session (Kafka: KAFKA-14392, KAFKA-19294). A failure
// on one voter never moves the belief off another voter: calls run
// concurrently, and one that timed out on the hung controller must not send
// the others back there.
//
// Thread-safe.
class ControllerClient {
 public:
  explicit ControllerClient(std::map<int32_t, std::string> voters);

  struct Stubs {
    std::unique_ptr<fjord::internal::v1::ControllerService::Stub> controller;
    std::unique_ptr<fjord::v1::AdminService::Stub> admin;
  };

  // The voters one call (or one metadata stream) tried since it last backed
  // off. Not thread-safe; one per caller.
  class Round {
   public:
    void Reset() {
      tried_.clear();
      answered_ = false;
    }

   private:
    friend class ControllerClient;
    std::set<int32_t> tried_;
    bool answered_ = false;  // some voter answered (even NOT_LEADER)
  };

  // Which voters answer a call: only the active controller (the writes:
  // registration, heartbeats, ISR and topic changes; their OK shows which
  // voter is active), or any voter (DescribeCluster, from its own image).
  enum class Answerer { kActive, kAnyVoter };

  // Runs `call` until a voter answers anything but UNAVAILABLE /
  // DEADLINE_EXCEEDED, or `timeout` passes (then the last error). `call` gets
  // a fresh ClientContext whose deadline is at most `attempt_timeout` away;
  // the attempts go to the voters in the order Next gives, with a back-off of
  // 100 ms once every voter worth trying was tried.
  absl::Status Call(
      const std::function<grpc::Status(Stubs&, grpc::ClientContext*)>& call,
      absl::Duration timeout, absl::Duration attempt_timeout,
      Answerer answerer = Answerer::kActive);

  // The voter `round` should try next (and marks it tried), or -1 once every
  // voter worth trying in this round was: the caller backs off and resets the
  // round. The order: the believed active controller; voters not suspect
  // (their last attempt got an answer, or failed more than a few seconds
  // ago); then, only if no voter is believed active and none answered in
  // this round, suspect voters (oldest failure first).
  int32_t Next(Round* round);

  // Learns from one attempt on voter `id` that ended with `status` (and notes
  // an answer in `round`, which may be null):
  // OK: `id` is active (with `answerer` kAnyVoter: `id` answered, nothing
  // more). NOT_LEADER: `id` answers but is not active; the voter it names, if
  // any, is believed active. Other UNAVAILABLE or DEADLINE_EXCEEDED: no
  // answer; `id` is suspect and, if it was, no longer believed active.
  // Anything else: `id` answered, nothing more. Only an attempt that had its
  // full attempt timeout counts as no answer.
  void Observe(int32_t id, const absl::Status& status, Round* round = nullptr,
               Answerer answerer = Answerer::kActive);

  // The stubs of voter `id` (which must be a voter). They live as long as this.
  Stubs& stubs(int32_t id) { return stubs_.at(id); }

  // The voter believed active, -1 if none is.
  int32_t leader() const;

 private:
  // Both fixed after construction.
  std::vector<int32_t> ids_;
  std::map<int32_t, Stubs> stubs_;

  mutable absl::Mutex mu_;
  int32_t leader_ ABSL_GUARDED_BY(mu_) = -1;
  // The last active controller named in a log line, to log changes only.
  int32_t logged_leader_ ABSL_GUARDED_BY(mu_) = -1;
  // Voters whose last attempt got no answer -> when it failed (monotonic).
  std::map<int32_t, absl::Time> suspect_since_ ABSL_GUARDED_BY(mu_);
  // Where the next round starts looking among the answering voters, so that
  // rounds do not all start on the same one.
  size_t start_ ABSL_GUARDED_BY(mu_) = 0;
};

class ClusterMetadata final : public MetadataView {
 public:
  // Makes the metadata view; nothing runs until Run. `store` must outlive this.
  // `on_fence_change` (may be empty) runs on the heartbeat thread whenever the
  // controller fences or unfences this broker, with the new state.
  static absl::StatusOr<std::unique_ptr<ClusterMetadata>> Create(
      storage::LogStore* store, ClusterOptions options,
      std::function<void(bool fenced)> on_fence_change);

  // Starts registering (with this advertised endpoint, which overrides the
  // options') and following the metadata log; does not wait.
  void Run(std::string advertised_host, int advertised_port);

  // Waits until the controller has unfenced this broker, up to `timeout`.
  bool WaitUnfenced(absl::Duration timeout) const;

  using TopicTable = std::map<std::string, std::shared_ptr<const TopicState>, std::less<>>;
  // Called (under this object's lock; it must not call back) after every metadata
  // change with the topic table, every broker's host:port and the image. Set
  // before Run.
  void set_on_metadata(std::function<void(const TopicTable&, const std::map<int32_t, std::string>&,
                                          const controller::MetadataImage&)>
                           fn) {
    on_metadata_ = std::move(fn);
  }

  // Forwards an ISR change to the active controller.
  absl::StatusOr<fjord::internal::v1::AlterPartitionResponse> AlterPartition(
      const fjord::internal::v1::AlterPartitionRequest& request);
  ~ClusterMetadata() override;

  // Controlled shutdown: asks the controller to move this broker's leaderships
  // away and waits (up to `timeout`) until it may stop; then stops the threads.
  void Shutdown(absl::Duration timeout);

  // MetadataView.
  absl::StatusOr<PartitionHandle> Lookup(absl::string_view topic,
                                         int32_t partition) const override;
  absl::StatusOr<std::shared_ptr<const TopicState>> GetTopic(
      absl::string_view name) const override;
  std::vector<std::shared_ptr<const TopicState>> ListTopics() const override;
  absl::StatusOr<std::vector<fjord::v1::TopicInfo>> CreateTopics(
      const std::vector<fjord::v1::NewTopic>& topics, bool validate_only) override;
  absl::StatusOr<std::vector<std::string>> DeleteTopics(
      const std::vector<std::string>& names) override;
  std::vector<fjord::v1::BrokerInfo> Brokers() const override;
  absl::StatusOr<fjord::v1::DescribeClusterResponse> DescribeCluster() override;
  int32_t controller_id() const override;
  std::string cluster_id() const override;
  int32_t node_id() const override { return options_.node_id; }

  // For tests and logs.
  int64_t broker_epoch() const { return epoch_.load(); }
  bool fenced() const { return fenced_.load(); }
  int64_t next_offset() const;

 private:
  ClusterMetadata(storage::LogStore* store, ClusterOptions options,
                  std::function<void(bool)> on_fence_change);

  // How long one attempt waits for a controller before taking it as hung and
  // trying another voter (heartbeats, registration, ISR changes, the metadata
  // stream's silence): twice the heartbeat interval, within [500 ms,
  // rpc_timeout]. The controller renews a session on every heartbeat it
  // receives and the session timeout is at least twice the interval (3 s and
  // 500 ms in tests, 6 s and 500 ms by default), so a heartbeat that went to a
  // hung controller leaves time for one to the new active controller.
  absl::Duration AttemptTimeout() const;
  void HeartbeatLoop();
  // Records the fenced state and reports a change.
  void SetFenced(bool fenced);
  void FollowLoop();
  // Streams the metadata log from voter `id` into the image until the stream
  // ends, `id` sends nothing for AttemptTimeout (a hung controller keeps its
  // connection open: an idle active controller still sends an empty response
  // every 200 ms), a batch does not apply, or this stops. Returns how the
  // stream ended in ControllerClient::Observe's terms (OK for a planned end);
  // sets `*got_any` if `id` sent anything.
  absl::Status FollowFrom(int32_t id, bool* got_any);
  absl::Status Register();
  // Applies one FetchMetadata response, then reconciles the store.
  absl::Status ApplyLocked(const fjord::internal::v1::FetchMetadataResponse& response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReconcileLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits until `done` holds on the image, up to `timeout`.
  bool AwaitImage(const std::function<bool(const controller::MetadataImage&)>& done,
                  absl::Duration timeout);
  bool Stopping() const { return stopping_.load(); }

  storage::LogStore* const store_;
  ClusterOptions options_;  // the advertised endpoint is set by Run
  const std::string incarnation_id_;
  std::function<void(bool)> on_fence_change_;
  std::function<void(const TopicTable&, const std::map<int32_t, std::string>&,
                     const controller::MetadataImage&)>
      on_metadata_;
  ControllerClient client_;

  std::atomic<int64_t> epoch_{-1};
  std::atomic<bool> fenced_{true};
  std::atomic<bool> want_shutdown_{false};
  std::atomic<bool> may_shutdown_{false};
  std::atomic<bool> stopping_{false};

  mutable absl::Mutex mu_;
  controller::MetadataImage image_ ABSL_GUARDED_BY(mu_);
  int64_t next_offset_ ABSL_GUARDED_BY(mu_) = 0;
  std::string cluster_id_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<const TopicState>, std::less<>> topics_
      ABSL_GUARDED_BY(mu_);
  // The heartbeat interval the controller asked for, in ms.
  std::atomic<int64_t> heartbeat_interval_ms_;

  std::thread heartbeat_thread_;
  std::thread follow_thread_;
};

}  // namespace fjord::broker

#endif  // FJORD_BROKER_CLUSTER_METADATA_H_
