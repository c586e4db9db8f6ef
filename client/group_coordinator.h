// Talking to a consumer group's coordinator: the broker that leads the group's
// __consumer_offsets partition (see proto/fjord/v1/group.proto). The
// coordinator moves when that partition's leadership moves, so every call may
// have to find it again.
#ifndef FJORD_CLIENT_GROUP_COORDINATOR_H_
#define FJORD_CLIENT_GROUP_COORDINATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/cluster.h"
#include "fjord/v1/group.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace fjord::client {

// Lets one thread stop another's GroupCoordinator::Call(): the RPC in flight is
// cancelled and backoff sleeps end at once. Once cancelled, stays cancelled.
// Thread-safe.
class CallCanceller {
 public:
  void Cancel();
  bool cancelled() const;

  // Sleeps for `d`; false when cancelled (before or during the sleep).
  bool Sleep(absl::Duration d);

  // Registers the context of the RPC about to be sent (cancelled at once when
  // already cancelled); End() unregisters it before the context dies.
  void Begin(grpc::ClientContext* context);
  void End();

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// Whether a failed GroupService call should be sent again (to the same or a
// newly found coordinator): UNAVAILABLE (NOT_COORDINATOR, COORDINATOR_LOADING,
// NOT_ENOUGH_REPLICAS, a broker that is down or shutting down) and
// DEADLINE_EXCEEDED. Every GroupService call is safe to repeat except a join
// (a Heartbeat with member_epoch 0), whose lost answer leaves a member behind
// until its session times out.
bool IsRetriableGroupError(const grpc::Status& status);

// OK when `group_id` is a valid group id: 1 to 249 characters, ASCII letters,
// digits, '.', '_' and '-' (as FindCoordinator checks it); INVALID_ARGUMENT
// naming the problem otherwise.
absl::Status ValidateGroupId(absl::string_view group_id);

// Whether `status` carries fjord.v1.ErrorInfo with `reason`.
bool HasReason(const grpc::Status& status, fjord::v1::ErrorInfo::Reason reason);

// The group's coordinator, found with FindCoordinator at any broker and cached
// until a call says it moved. Thread-safe.
class GroupCoordinator {
 public:
  struct Options {
    // Between attempts after a retriable error, doubling up to the maximum.
    // A NOT_COORDINATOR answer that names the new coordinator is followed at
    // once, the first time.
    absl::Duration retry_backoff = absl::Milliseconds(100);
    absl::Duration retry_backoff_max = absl::Seconds(1);
  };

  GroupCoordinator(std::shared_ptr<Cluster> cluster, std::string group_id,
                   Options options);
  GroupCoordinator(std::shared_ptr<Cluster> cluster, std::string group_id)
      : GroupCoordinator(std::move(cluster), std::move(group_id), Options()) {}

  const std::string& group_id() const { return group_id_; }
  const std::shared_ptr<Cluster>& cluster() const { return cluster_; }

  // One attempt of a GroupService call: sends it on `stub` with `context`
  // (whose deadline is already set) and returns the status.
  using Attempt = std::function<grpc::Status(
      fjord::v1::GroupService::Stub& stub, grpc::ClientContext& context)>;

  // Runs `attempt` against the coordinator (found first when unknown), each
  // attempt with a deadline of the cluster's rpc_timeout or what is left of
  // `deadline`, until it returns a status IsRetriableGroupError() does not
  // accept, or `deadline` passes, or `canceller` (may be null) is cancelled.
  // On NOT_COORDINATOR it moves to the coordinator the ErrorInfo names (or
  // finds it again); on a transport error or DEADLINE_EXCEEDED it forgets the
  // coordinator; it backs off between attempts. Returns the last status (the
  // attempt's, or FindCoordinator's; CANCELLED when cancelled).
  grpc::Status Call(const Attempt& attempt, absl::Time deadline,
                    CallCanceller* canceller = nullptr);

  // Forgets the cached coordinator; the next Call() finds it again.
  void Forget();

  // The cached coordinator's broker id, or -1.
  int32_t coordinator_id() const;

 private:
  // The cached coordinator's channel, or one FindCoordinator round (any
  // broker) to learn it.
  grpc::Status Channel(absl::Time deadline,
                       std::shared_ptr<grpc::Channel>* channel);
  // Caches broker `id` at `address` (either may be unknown: -1 / "").
  // Returns false when neither is known.
  bool SetCoordinator(int32_t id, const std::string& address);

  const std::shared_ptr<Cluster> cluster_;
  const std::string group_id_;
  const Options options_;

  mutable absl::Mutex mu_;
  int32_t coordinator_id_ ABSL_GUARDED_BY(mu_) = -1;
  std::shared_ptr<grpc::Channel> channel_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fjord::client

#endif  // FJORD_CLIENT_GROUP_COORDINATOR_H_
