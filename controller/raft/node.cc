#include "controller/raft/node.h"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <random>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/network_faults.h"
#include "controller/raft/raft.h"
#include "controller/raft/raft_proto.h"
#include "controller/raft/rocksdb_storage.h"
#include "fjord/internal/v1/raft.grpc.pb.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"

namespace fjord::raft {
namespace {

namespace pb = ::fjord::internal::v1;

// The payload key raft.cc attaches to its not-leader errors, so that
// raft::IsNotLeader / raft::LeaderHint also work on the errors made here.
constexpr char kLeaderHintPayload[] = "fjord.raft.leader_hint";

// One Step call carries at most this many messages / about this many bytes
// (always at least one message).
constexpr size_t kMaxBatchMessages = 256;
constexpr size_t kMaxBatchBytes = size_t{4} << 20;
// Snapshots travel in one message.
constexpr int kMaxReceiveMessageBytes = 64 << 20;
// Backoff after a failed call to a peer.
constexpr absl::Duration kMinBackoff = absl::Milliseconds(50);
constexpr absl::Duration kMaxBackoff = absl::Seconds(1);

uint64_t RandomSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

size_t ApproxBytes(const Message& m) {
  size_t n = 64 + m.context.size();
  for (const Entry& e : m.entries) n += 32 + e.data.size();
  if (m.snapshot.has_value()) n += m.snapshot->data.size();
  return n;
}

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

absl::Status WithLeaderHint(absl::Status s, NodeId leader) {
  s.SetPayload(kLeaderHintPayload, absl::Cord(absl::StrCat(leader.value())));
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------
// Waiters: a client thread blocks on `done`; the driver (or Stop, after the
// driver exited) fills the result and notifies, at most once.

struct RaftNode::ProposalWaiter {
  std::string data;
  absl::Time deadline;
  absl::Notification done;
  absl::StatusOr<LogIndex> result = absl::UnknownError("not completed");

  void Complete(absl::StatusOr<LogIndex> r) {
    if (done.HasBeenNotified()) return;
    result = std::move(r);
    done.Notify();
  }
};

struct RaftNode::ReadWaiter {
  absl::Time deadline;
  NodeId asked;  // The leader the request went to.
  absl::Notification done;
  absl::Status result = absl::UnknownError("not completed");

  void Complete(absl::Status s) {
    if (done.HasBeenNotified()) return;
    result = std::move(s);
    done.Notify();
  }
};

struct RaftNode::PendingProposal {
  Term term;
  std::shared_ptr<ProposalWaiter> waiter;
};

// ---------------------------------------------------------------------------
// Outbound transport: one thread and one bounded queue per peer.

class RaftNode::PeerSender {
 public:
  PeerSender(NodeId self, Voter peer, const RaftNodeOptions& options)
      : self_(self), peer_(std::move(peer)), options_(options) {
    grpc::ChannelArguments args;
    // Keepalive within what Fjord servers accept (broker/broker.cc: pings
    // down to every 5 s); only while a call is open, so idle channels never
    // earn a "too many pings" GOAWAY.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    // Reconnect quickly after a peer restarts (elections take 1-2 s).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetMaxSendMessageSize(-1);
    args.SetMaxReceiveMessageSize(-1);
    channel_ = NewPeerChannel(peer_.address, args);
    stub_ = pb::RaftService::NewStub(channel_);
  }

  ~PeerSender() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  // Cancels the call in flight and joins the thread. Idempotent.
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
      if (inflight_ != nullptr) inflight_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

  // Queues `m`, or drops it when the queue is full, the peer is in backoff
  // after a failure, or the sender stopped.
  void Enqueue(Message m) {
    absl::MutexLock lock(&mu_);
    if (stop_ || queue_.size() >= options_.peer_queue_limit ||
        MonotonicNow() < backoff_until_) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(m));
  }

  void FillStats(RaftNodeStatus::Peer* p) const {
    absl::MutexLock lock(&mu_);
    p->sent = sent_;
    p->dropped = dropped_;
    p->reachable = reachable_;
  }

 private:
  void Run() {
    absl::Duration backoff = absl::ZeroDuration();
    for (;;) {
      std::vector<Message> batch;
      bool has_snapshot = false;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](PeerSender* s) { return s->stop_ || !s->queue_.empty(); },
            this));
        if (stop_) return;
        size_t bytes = 0;
        while (!queue_.empty() && batch.size() < kMaxBatchMessages) {
          const size_t n = ApproxBytes(queue_.front());
          if (!batch.empty() && bytes + n > kMaxBatchBytes) break;
          bytes += n;
          has_snapshot |= queue_.front().snapshot.has_value();
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      pb::RaftStepRequest request;
      for (const Message& m : batch) MessageToProto(m, request.add_messages());
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(
          absl::Now() + options_.rpc_timeout * (has_snapshot ? 10 : 1)));
      {
        absl::MutexLock lock(&mu_);
        if (stop_) return;
        inflight_ = &context;
      }
      pb::RaftStepResponse response;
      const grpc::Status status = stub_->Step(&context, request, &response);
      absl::MutexLock lock(&mu_);
      inflight_ = nullptr;
      if (status.ok()) {
        if (!reachable_) {
          LOG(INFO) << "[raft node=" << self_ << "] peer " << peer_.id << " at "
                    << peer_.address << " is reachable";
        }
        reachable_ = true;
        sent_ += batch.size();
        backoff = absl::ZeroDuration();
        continue;
      }
      if (stop_) return;
      if (reachable_ || !warned_) {
        LOG(WARNING) << "[raft node=" << self_ << "] peer " << peer_.id
                     << " at " << peer_.address
                     << " unreachable: " << status.error_message() << " ("
                     << status.error_code() << "); dropping messages";
        warned_ = true;
      }
      reachable_ = false;
      dropped_ += batch.size() + queue_.size();
      queue_.clear();
      backoff = std::clamp(backoff * 2, kMinBackoff, kMaxBackoff);
      backoff_until_ = MonotonicNow() + backoff;
      mu_.AwaitWithTimeout(absl::Condition(&stop_), backoff);
      if (stop_) return;
    }
  }

  const NodeId self_;
  const Voter peer_;
  const RaftNodeOptions& options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::RaftService::Stub> stub_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::deque<Message> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* inflight_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Time backoff_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool reachable_ ABSL_GUARDED_BY(mu_) = false;
  bool warned_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

// ---------------------------------------------------------------------------
// Inbound transport.

class RaftNode::Service final : public pb::RaftService::Service {
 public:
  explicit Service(RaftNode* node) : node_(node) {
    for (const Voter& v : node->options_.voters) {
      if (v.id != node->id()) peers_.insert(v.id);
    }
  }

  grpc::Status Step(grpc::ServerContext* context,
                    const pb::RaftStepRequest* request,
                    pb::RaftStepResponse* response) override {
    std::vector<Message> messages;
    messages.reserve(request->messages_size());
    for (const pb::RaftMessage& p : request->messages()) {
      absl::StatusOr<Message> m = MessageFromProto(p);
      if (!m.ok()) return ToGrpc(m.status());
      if (m->to != node_->id()) {
        return grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("raft message for node ", m->to.value(),
                         " sent to node ", node_->id().value()));
      }
      if (!peers_.count(m->from)) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("raft message from ", m->from.value(),
                                         ", which is not another voter"));
      }
      messages.push_back(*std::move(m));
    }
    return ToGrpc(node_->Deliver(std::move(messages)));
  }

 private:
  RaftNode* const node_;
  std::set<NodeId> peers_;
};

// ---------------------------------------------------------------------------
// Construction and lifecycle.

absl::StatusOr<std::unique_ptr<RaftNode>> RaftNode::Create(
    RaftNodeOptions options, StateMachine* state_machine) {
  if (state_machine == nullptr) {
    return absl::InvalidArgumentError("raft node: no state machine");
  }
  if (options.id == kNoNode) {
    return absl::InvalidArgumentError("raft node: node id must be positive");
  }
  std::set<NodeId> ids;
  for (const Voter& v : options.voters) {
    if (v.id == kNoNode || !ids.insert(v.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("raft node: zero or duplicate voter id ", v.id.value()));
    }
  }
  if (!ids.count(options.id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raft node: node id ", options.id.value(), " is not among the voters ",
        FormatVoters(options.voters)));
  }
  if (options.tick_interval <= absl::ZeroDuration() ||
      options.heartbeat_ticks <= 0 ||
      options.election_ticks <= options.heartbeat_ticks) {
    return absl::InvalidArgumentError(
        "raft node: need tick_interval > 0 and 0 < heartbeat_ticks < "
        "election_ticks");
  }
  if (options.snapshot_interval == 0 || options.peer_queue_limit == 0 ||
      options.rpc_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "raft node: snapshot_interval, peer_queue_limit and rpc_timeout must "
        "be positive");
  }
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("raft node: no data directory");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat(
        "raft node: cannot create ", options.data_dir, ": ", ec.message()));
  }
  if (options.seed == 0) options.seed = RandomSeed();
  if (options.transfer_timeout <= absl::ZeroDuration()) {
    options.transfer_timeout =
        options.tick_interval * (4 * options.election_ticks);
  }

  std::unique_ptr<RaftNode> node(
      new RaftNode(std::move(options), state_machine));
  const RaftNodeOptions& o = node->options_;
  absl::StatusOr<std::unique_ptr<RocksDbRaftStorage>> storage =
      RocksDbRaftStorage::Open(o.data_dir);
  if (!storage.ok()) return storage.status();
  node->storage_ = std::move(*storage);

  // The state machine starts from the latest snapshot; Raft hands out the
  // committed entries after it again.
  absl::StatusOr<Snapshot> snap = node->storage_->GetSnapshot();
  if (!snap.ok()) return snap.status();
  if (!snap->empty()) {
    absl::Status s = state_machine->Restore(snap->data);
    if (!s.ok()) {
      return absl::Status(
          s.code(),
          absl::StrCat("raft node: restoring the snapshot at ",
                       snap->metadata.index.value(), ": ", s.message()));
    }
  }
  node->applied_ = snap->metadata.index;

  Config c;
  c.id = o.id;
  for (const Voter& v : o.voters) c.voters.push_back(v.id);
  c.election_tick = o.election_ticks;
  c.heartbeat_tick = o.heartbeat_ticks;
  c.pre_vote = true;
  c.check_quorum = true;
  c.max_size_per_message = o.max_size_per_message;
  c.applied = snap->metadata.index;
  c.seed = o.seed;
  c.storage = node->storage_.get();
  absl::StatusOr<std::unique_ptr<Raft>> raft = Raft::Create(c);
  if (!raft.ok()) return raft.status();
  node->raft_ = std::move(*raft);

  for (const Voter& v : o.voters) {
    if (v.id == o.id) continue;
    node->peers_[v.id] = std::make_unique<PeerSender>(o.id, v, node->options_);
  }
  node->service_ = std::make_unique<Service>(node.get());
  node->PublishStatus();
  LOG(INFO) << "[raft node=" << o.id << "] opened " << o.data_dir
            << ": term=" << node->raft_->term()
            << " commit=" << node->raft_->commit()
            << " snapshot=" << snap->metadata.index << " log=["
            << node->storage_->FirstIndex() << ", "
            << node->storage_->LastIndex()
            << "] voters=" << FormatVoters(o.voters);
  return node;
}

RaftNode::RaftNode(RaftNodeOptions options, StateMachine* state_machine)
    : options_(std::move(options)),
      sm_(state_machine),
      read_nonce_(RandomSeed()) {}

RaftNode::~RaftNode() { Stop(/*transfer_leadership=*/false); }

void RaftNode::RegisterService(grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  builder->RegisterService(service_.get());
}

absl::Status RaftNode::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) {
      return absl::FailedPreconditionError("raft node: already started");
    }
    started_ = true;
    accepting_ = true;
    status_.running = true;
  }
  next_tick_ = MonotonicNow() + options_.tick_interval;
  // Nobody to wait for: a single voter elects itself now.
  if (options_.voters.size() == 1) raft_->Campaign();
  for (auto& [id, peer] : peers_) peer->Start();
  driver_ = std::thread([this] { DriverLoop(); });
  return absl::OkStatus();
}

void RaftNode::Stop(bool transfer_leadership) {
  bool transfer = false;
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stop_driver_) return;
    accepting_ = false;
    if (transfer_leadership && status_.role == Role::kLeader &&
        !peers_.empty()) {
      transfer = true;
      transfer_requested_ = true;
    }
  }
  if (transfer) {
    absl::MutexLock lock(&mu_);
    const bool moved = mu_.AwaitWithDeadline(
        absl::Condition(
            +[](RaftNodeStatus* s) { return s->role != Role::kLeader; },
            &status_),
        absl::Now() + options_.transfer_timeout);
    LOG(INFO) << "[raft node=" << options_.id << "] stopping: leadership "
              << (moved ? absl::StrCat("moved to ", status_.leader.value())
                        : std::string("transfer timed out"));
  }
  {
    absl::MutexLock lock(&mu_);
    stop_driver_ = true;
  }
  driver_.join();
  for (auto& [id, peer] : peers_) peer->Stop();

  // The driver has exited: its state is ours now.
  const absl::Status stopping =
      absl::UnavailableError("raft node stopping (outcome unknown)");
  std::vector<std::shared_ptr<ProposalWaiter>> proposals;
  std::vector<std::shared_ptr<ReadWaiter>> reads;
  {
    absl::MutexLock lock(&mu_);
    proposals.swap(proposals_in_);
    reads.swap(reads_in_);
    inbound_.clear();
    status_.running = false;
  }
  for (auto& w : proposals) w->Complete(stopping);
  for (auto& r : reads) r->Complete(stopping);
  for (auto& [index, p] : pending_proposals_) p.waiter->Complete(stopping);
  pending_proposals_.clear();
  FailReadsAwaitingLeader(stopping);
  for (auto& [index, r] : reads_awaiting_apply_) r->Complete(stopping);
  reads_awaiting_apply_.clear();
  LOG(INFO) << "[raft node=" << options_.id << "] stopped";
}

// ---------------------------------------------------------------------------
// Client API.

absl::StatusOr<LogIndex> RaftNode::Propose(std::string data,
                                           absl::Time deadline) {
  auto w = std::make_shared<ProposalWaiter>();
  w->data = std::move(data);
  w->deadline = MonotonicDeadline(deadline);
  {
    absl::MutexLock lock(&mu_);
    if (!accepting_) {
      return WithLeaderHint(absl::UnavailableError("raft node not running"),
                            status_.leader);
    }
    proposals_in_.push_back(w);
  }
  if (!w->done.WaitForNotificationWithDeadline(deadline)) {
    return absl::DeadlineExceededError(
        "raft proposal not applied before the deadline (outcome unknown)");
  }
  return w->result;
}

absl::Status RaftNode::ReadIndex(absl::Time deadline) {
  auto w = std::make_shared<ReadWaiter>();
  w->deadline = MonotonicDeadline(deadline);
  {
    absl::MutexLock lock(&mu_);
    if (!accepting_) {
      return WithLeaderHint(absl::UnavailableError("raft node not running"),
                            status_.leader);
    }
    reads_in_.push_back(w);
  }
  if (!w->done.WaitForNotificationWithDeadline(deadline)) {
    return absl::DeadlineExceededError(
        "raft read index not reached before the deadline");
  }
  return w->result;
}

bool RaftNode::IsLeader() const {
  absl::MutexLock lock(&mu_);
  return status_.role == Role::kLeader;
}

NodeId RaftNode::LeaderId() const {
  absl::MutexLock lock(&mu_);
  return status_.leader;
}

Term RaftNode::term() const {
  absl::MutexLock lock(&mu_);
  return status_.term;
}

RaftNodeStatus RaftNode::GetStatus() const {
  RaftNodeStatus s;
  {
    absl::MutexLock lock(&mu_);
    s = status_;
  }
  for (RaftNodeStatus::Peer& p : s.peers) {
    auto it = peers_.find(p.id);
    if (it != peers_.end()) it->second->FillStats(&p);
  }
  return s;
}

absl::Status RaftNode::Deliver(std::vector<Message> messages) {
  absl::MutexLock lock(&mu_);
  if (!started_ || stop_driver_) {
    return absl::UnavailableError(
        absl::StrCat("raft node ", options_.id.value(), " is not running"));
  }
  if (inbound_.size() + messages.size() > options_.inbound_queue_limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat("raft node ", options_.id.value(), " inbound queue full"));
  }
  for (Message& m : messages) inbound_.push_back(std::move(m));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Driver thread.

bool RaftNode::HasWorkLocked() const {
  return stop_driver_ || !inbound_.empty() || !proposals_in_.empty() ||
         !reads_in_.empty() || transfer_requested_;
}

void RaftNode::DriverLoop() {
  for (;;) {
    std::vector<Message> inbound;
    std::vector<std::shared_ptr<ProposalWaiter>> proposals;
    std::vector<std::shared_ptr<ReadWaiter>> reads;
    bool transfer = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(this, &RaftNode::HasWorkLocked),
                            WallDeadline(next_tick_));
      if (stop_driver_) return;
      inbound.swap(inbound_);
      proposals.swap(proposals_in_);
      reads.swap(reads_in_);
      transfer = transfer_requested_;
      transfer_requested_ = false;
    }
    const absl::Time now = MonotonicNow();
    if (now >= next_tick_) {
      raft_->Tick();
      // One tick per interval; after a stall, do not catch up in a burst
      // (that would fire election timeouts the stall did not deserve).
      next_tick_ += options_.tick_interval;
      if (next_tick_ <= now) next_tick_ = now + options_.tick_interval;
      ExpireWaiters(now);
    }
    for (const Message& m : inbound) {
      absl::Status s = raft_->Step(m);
      if (!s.ok()) {
        LOG(WARNING) << "[raft node=" << options_.id << "] dropped "
                     << MessageTypeName(m.type) << " from " << m.from << ": "
                     << s;
      }
    }
    for (std::shared_ptr<ProposalWaiter>& w : proposals) {
      // The caller gave up already: better never to propose at all.
      if (w->deadline < now) continue;
      absl::StatusOr<ProposalId> id = raft_->Propose(std::move(w->data));
      if (!id.ok()) {
        w->Complete(id.status());
        continue;
      }
      auto it = pending_proposals_.find(id->index);
      if (it != pending_proposals_.end()) {
        // Left over from an earlier term whose entry this one replaces.
        it->second.waiter->Complete(
            NotLeader("proposal overwritten by a newer leader's log"));
        pending_proposals_.erase(it);
      }
      pending_proposals_.emplace(id->index, PendingProposal{id->term, w});
    }
    for (std::shared_ptr<ReadWaiter>& r : reads) {
      if (r->deadline < now) continue;
      std::string context =
          absl::StrCat(options_.id.value(), ".", read_nonce_, ".", ++read_seq_);
      r->asked = raft_->leader();
      absl::Status s = raft_->ReadIndex(context);
      if (!s.ok()) {
        r->Complete(s);
        continue;
      }
      reads_awaiting_leader_.emplace(std::move(context), r);
    }
    if (transfer) StartTransfer();
    HandleReady();
    PublishStatus();
  }
}

void RaftNode::HandleReady() {
  while (raft_->HasReady()) {
    raft::Ready rd = raft_->Ready();
    if (rd.soft_state.has_value() && rd.soft_state->leader != last_leader_) {
      LOG(INFO) << "[raft node=" << options_.id << "] leader is "
                << rd.soft_state->leader << " (term " << raft_->term()
                << ", this node is " << RoleName(rd.soft_state->role) << ")";
      last_leader_ = rd.soft_state->leader;
      // Requests sent to another leader will not be answered now.
      std::vector<std::string> stale;
      for (auto& [context, r] : reads_awaiting_leader_) {
        if (r->asked != last_leader_) {
          r->Complete(
              NotLeader("leadership changed before the read index "
                        "was confirmed; retry"));
          stale.push_back(context);
        }
      }
      for (const std::string& c : stale) reads_awaiting_leader_.erase(c);
    }
    // 1. Persist: one synced write batch.
    absl::Status s =
        storage_->SaveReady(rd.hard_state, rd.entries, rd.snapshot);
    if (!s.ok()) {
      LOG(FATAL) << "[raft node=" << options_.id
                 << "] cannot persist the Raft log: " << s;
    }
    // 2. Send.
    for (Message& m : rd.messages) {
      auto it = peers_.find(m.to);
      if (it != peers_.end()) it->second->Enqueue(std::move(m));
    }
    // 3. Apply.
    if (rd.snapshot.has_value()) ApplySnapshot(*rd.snapshot);
    for (const Entry& e : rd.committed_entries) ApplyEntry(e);
    for (const ReadState& rs : rd.read_states) {
      auto it = reads_awaiting_leader_.find(rs.context);
      if (it == reads_awaiting_leader_.end()) continue;  // Timed out.
      reads_awaiting_apply_.emplace(rs.index, std::move(it->second));
      reads_awaiting_leader_.erase(it);
    }
    ReleaseReads();
    // 4. Advance.
    raft_->Advance();
  }
  MaybeSnapshot();
}

void RaftNode::ApplySnapshot(const Snapshot& snap) {
  const SnapshotMetadata& md = snap.metadata;
  if (md.index <= applied_) return;
  absl::Status s = sm_->Restore(snap.data);
  if (!s.ok()) {
    LOG(FATAL) << "[raft node=" << options_.id
               << "] cannot restore the snapshot at " << md.index << ": " << s;
  }
  LOG(INFO) << "[raft node=" << options_.id << "] installed snapshot at "
            << md.index << " (term " << md.term << ")";
  applied_ = md.index;
  while (!pending_proposals_.empty() &&
         pending_proposals_.begin()->first <= applied_) {
    auto it = pending_proposals_.begin();
    if (it->first == md.index && it->second.term == md.term) {
      it->second.waiter->Complete(md.index);
    } else if (it->first == md.index) {
      it->second.waiter->Complete(
          NotLeader("proposal overwritten by a newer leader's log"));
    } else {
      it->second.waiter->Complete(absl::DeadlineExceededError(
          "raft proposal's outcome is unknown: a snapshot replaced the log"));
    }
    pending_proposals_.erase(it);
  }
}

void RaftNode::ApplyEntry(const Entry& e) {
  if (e.index <= applied_) return;
  if (e.type == EntryType::kNormal) sm_->Apply(e.index, e.term, e.data);
  applied_ = e.index;
  while (!pending_proposals_.empty() &&
         pending_proposals_.begin()->first <= applied_) {
    auto it = pending_proposals_.begin();
    if (it->first == e.index && it->second.term == e.term) {
      it->second.waiter->Complete(e.index);
    } else if (it->first == e.index) {
      it->second.waiter->Complete(
          NotLeader("proposal overwritten by a newer leader's log"));
    } else {
      it->second.waiter->Complete(
          absl::DeadlineExceededError("raft proposal's outcome is unknown"));
    }
    pending_proposals_.erase(it);
  }
}

void RaftNode::ReleaseReads() {
  while (!reads_awaiting_apply_.empty() &&
         reads_awaiting_apply_.begin()->first <= applied_) {
    reads_awaiting_apply_.begin()->second->Complete(absl::OkStatus());
    reads_awaiting_apply_.erase(reads_awaiting_apply_.begin());
  }
}

void RaftNode::MaybeSnapshot() {
  if (applied_ < storage_->SnapshotIndex() + options_.snapshot_interval) {
    return;
  }
  std::vector<NodeId> voters;
  for (const Voter& v : options_.voters) voters.push_back(v.id);
  absl::StatusOr<Snapshot> snap =
      storage_->CreateSnapshot(applied_, std::move(voters), sm_->Snapshot());
  if (!snap.ok()) {
    LOG(ERROR) << "[raft node=" << options_.id << "] snapshot at " << applied_
               << " failed: " << snap.status();
    return;
  }
  if (applied_.value() > options_.snapshot_keep_entries) {
    const LogIndex upto = applied_ - options_.snapshot_keep_entries;
    if (upto >= storage_->FirstIndex()) {
      absl::Status s = storage_->Compact(upto);
      if (!s.ok()) {
        LOG(ERROR) << "[raft node=" << options_.id << "] compaction to " << upto
                   << " failed: " << s;
      }
    }
  }
  VLOG(1) << "[raft node=" << options_.id << "] snapshot at " << applied_
          << ", log now starts at " << storage_->FirstIndex();
}

void RaftNode::StartTransfer() {
  if (raft_->role() != Role::kLeader) return;
  NodeId best = kNoNode;
  LogIndex best_match;
  for (const auto& [id, pr] : raft_->progress()) {
    if (id == options_.id) continue;
    if (best == kNoNode || pr.match > best_match) {
      best = id;
      best_match = pr.match;
    }
  }
  if (best == kNoNode) return;
  absl::Status s = raft_->TransferLeadership(best);
  LOG(INFO) << "[raft node=" << options_.id << "] transferring leadership to "
            << best << " (match " << best_match << "): " << s;
}

void RaftNode::ExpireWaiters(absl::Time now) {
  // The callers already returned DEADLINE_EXCEEDED; forget them.
  for (auto it = pending_proposals_.begin(); it != pending_proposals_.end();) {
    if (it->second.waiter->deadline < now) {
      it = pending_proposals_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = reads_awaiting_leader_.begin();
       it != reads_awaiting_leader_.end();) {
    if (it->second->deadline < now) {
      it = reads_awaiting_leader_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = reads_awaiting_apply_.begin();
       it != reads_awaiting_apply_.end();) {
    if (it->second->deadline < now) {
      it = reads_awaiting_apply_.erase(it);
    } else {
      ++it;
    }
  }
}

void RaftNode::FailReadsAwaitingLeader(const absl::Status& status) {
  for (auto& [context, r] : reads_awaiting_leader_) r->Complete(status);
  reads_awaiting_leader_.clear();
}

absl::Status RaftNode::NotLeader(absl::string_view why) const {
  return WithLeaderHint(
      absl::UnavailableError(absl::StrCat(
          "raft: ", why, "; leader hint: ", raft_->leader().value())),
      raft_->leader());
}

void RaftNode::PublishStatus() {
  RaftNodeStatus s;
  s.id = options_.id;
  s.voters = options_.voters;
  s.leader = raft_->leader();
  s.term = raft_->term();
  s.role = raft_->role();
  s.commit = raft_->commit();
  s.applied = applied_;
  s.first_index = storage_->FirstIndex();
  s.last_index = raft_->log().LastIndex();
  s.snapshot_index = storage_->SnapshotIndex();
  for (const Voter& v : options_.voters) {
    if (v.id == options_.id) continue;
    RaftNodeStatus::Peer p;
    p.id = v.id;
    p.address = v.address;
    if (s.role == Role::kLeader) {
      auto it = raft_->progress().find(v.id);
      if (it != raft_->progress().end()) p.match = it->second.match;
    }
    s.peers.push_back(std::move(p));
  }
  absl::MutexLock lock(&mu_);
  s.running = status_.running;
  status_ = std::move(s);
}

}  // namespace fjord::raft
