#include "broker/broker.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/damage.h"
#include "broker/errors.h"
#include "controller/raft/voters.h"
#include "common/status_macros.h"
#include "common/random_id.h"
#include "glog/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace fjord::broker {
namespace {

// Splits "host:port" (host may be "[v6]"). INVALID_ARGUMENT when malformed.
absl::Status SplitHostPort(absl::string_view what, absl::string_view address,
                           std::string* host, int* port) {
  size_t colon = address.rfind(':');
  int p;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " \"", address, "\" is not host:port (e.g. 127.0.0.1:9092)"));
  }
  *host = std::string(address.substr(0, colon));
  *port = p;
  return absl::OkStatus();
}

constexpr int64_t kReceiveHeadroomBytes = 4 << 20;

// A port on 127.0.0.1 that was free a moment ago.
absl::StatusOr<int> FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  if (port <= 0) return absl::UnavailableError("no free port on 127.0.0.1");
  return port;
}

// Opens the partition store; on damage (broker/damage.h) moves it aside and
// starts empty, in a cluster with recovery enabled, or refuses.
absl::StatusOr<std::unique_ptr<storage::LogStore>> OpenStore(
    const BrokerOptions& options, const storage::StoreOptions& store_options) {
  SetDamageDirectory(options.data_dir);
  absl::StatusOr<std::string> marker = ReadDamageMarker(options.data_dir);
  absl::StatusOr<std::unique_ptr<storage::LogStore>> store =
      marker.ok() ? absl::DataLossError(
                        absl::StrCat("the broker stopped on damaged data: ", *marker))
                  : storage::LogStore::Open(store_options);
  if (store.ok() || !IsDamage(store.status())) return store;
  const bool embedded = options.controller_quorum_voters.empty();
  if (embedded || !options.recover_damaged_data) {
    return absl::DataLossError(absl::StrCat(
        "the store in --data-dir ", options.data_dir, " is damaged: ", store.status().message(),
        embedded ? ". A single-node broker has no replicas to recover it from"
                 : ". --recover-damaged-data=false",
        "; restore it from a backup, or move it away to start empty"));
  }
  LOG(ERROR) << "the store in " << options.data_dir << " is damaged: " << store.status();
  ASSIGN_OR_RETURN(std::string moved, QuarantineStore(options.data_dir));
  LOG(ERROR) << "moved the damaged store to " << moved
             << " (kept for inspection; delete it to free the space); starting with an empty "
                "store under a new incarnation: this broker leaves every ISR and fetches its "
                "replicas again from their leaders";
  return storage::LogStore::Open(store_options);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Broker>> Broker::Start(const BrokerOptions& options) {
  std::unique_ptr<Broker> broker(new Broker());
  broker->options_ = options;
  std::string listen_host;
  int listen_port;
  RETURN_IF_ERROR(SplitHostPort("--listen", options.listen, &listen_host, &listen_port));
  if (options.node_id < 0) {
    return absl::InvalidArgumentError("--node-id must not be negative");
  }

  storage::StoreOptions store_options;
  store_options.data_dir = options.data_dir;
  store_options.fsync = options.fsync;
  if (!options.planted_bug.empty() && options.planted_bug != "ack-before-replication" &&
      options.planted_bug != "skip-fsync") {
    return absl::InvalidArgumentError(
        absl::StrCat("FJORD_TESTING_PLANTED_BUG=", options.planted_bug,
                     " is not a known planted bug (ack-before-replication, skip-fsync)"));
  }
  if (options.planted_bug == "skip-fsync") {
    LOG(ERROR) << "TESTING ONLY: planted bug skip-fsync: appends are acknowledged "
                  "without being synced; acknowledged records WILL be lost when the "
                  "machine loses power";
    store_options.planted_skip_fsync = true;
  }
  if (options.testing_sync_journal) {
    store_options.sync_journal_path = options.data_dir + ".sync-journal";
  }
  store_options.verify_checksums_on_open = options.verify_checksums_on_start;
  ASSIGN_OR_RETURN(broker->store_, OpenStore(options, store_options));

  // The ServiceContext refers to the metadata, which refers to the store; all of
  // them live as long as the broker.
  ServiceContext ctx;
  ctx.limits = options.limits;
  if (options.planted_bug == "ack-before-replication") {
    LOG(ERROR) << "TESTING ONLY: planted bug " << options.planted_bug
               << ": acks=all is acknowledged before followers have the batch; "
                  "acknowledged records WILL be lost when a leader fails";
    ctx.planted_ack_before_replication = true;
  }
  ctx.shutting_down = &broker->shutting_down_;
  ctx.ready = &broker->serving_;

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(),
                           &broker->port_);
  // gRPC refuses requests above its receive limit with its own RESOURCE_EXHAUSTED
  // before any handler runs. Leave headroom above --max-batch-bytes so that
  // oversized batches usually reach Produce, which names the limit
  // (BATCH_TOO_LARGE).
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(options.limits.max_batch_bytes + kReceiveHeadroomBytes));
  // Keepalive: the server pings idle connections every 30 s and accepts client
  // pings down to every 5 s, so clients may use keepalives of 10 s or more
  // (docs/OPERATIONS.md).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);

  // Where clients reach this broker. With port 0 (tests) the port is known only
  // once the server listens; a single-node broker fills it in then.
  std::string adv_host = listen_host;
  int adv_port = listen_port;
  if (!options.advertised.empty()) {
    RETURN_IF_ERROR(SplitHostPort("--advertised", options.advertised, &adv_host,
                                  &adv_port));
  } else if (adv_host.empty() || adv_host == "0.0.0.0" || adv_host == "[::]" ||
             adv_host == "::") {
    adv_host = "127.0.0.1";
  }

  if (options.node_id < 1) {
    return absl::InvalidArgumentError("--node-id must be at least 1");
  }
  ClusterOptions cluster;
  cluster.node_id = options.node_id;
  cluster.rack = options.rack;
  const bool embedded = options.controller_quorum_voters.empty();
  // The incarnation id names this data directory: chosen when the directory is
  // created, kept across restarts. A restart on the same disk may register again
  // at once; a broker that comes back with an empty disk is a new incarnation
  // and waits until its old session expired (KIP-903's point: it must not be
  // taken for the replica it was).
  {
    ASSIGN_OR_RETURN(std::optional<std::string> incarnation,
                     broker->store_->GetMeta("broker/incarnation"));
    if (!incarnation.has_value()) {
      incarnation = RandomHexId();
      RETURN_IF_ERROR(broker->store_->PutMeta("broker/incarnation", *incarnation));
    }
    cluster.incarnation_id = *incarnation;
  }
  if (embedded) {
    // A single-node cluster: this process also runs the one controller voter, on
    // a loopback port of its own, and uses it exactly as a cluster broker would.
    ASSIGN_OR_RETURN(auto legacy, broker->store_->ScanMeta("topic/"));
    if (!legacy.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--data-dir ", options.data_dir,
          " holds topics in the pre-controller single-node format, which this "
          "version no longer reads; move it away or delete it"));
    }
    ASSIGN_OR_RETURN(int controller_port, FreeLoopbackPort());
    controller::ControllerNodeOptions c;
    c.node_id = options.node_id;
    c.listen = absl::StrCat("127.0.0.1:", controller_port);
    c.voters = absl::StrCat(options.node_id, "@127.0.0.1:", controller_port);
    c.data_dir = options.data_dir + "/__controller";
    ASSIGN_OR_RETURN(broker->controller_, controller::ControllerNode::Start(c));
    cluster.voters[options.node_id] = absl::StrCat("127.0.0.1:", controller_port);
  } else {
    if (!options.create_topics.empty()) {
      return absl::InvalidArgumentError(
          "--create-topics is for single-node brokers; in a cluster create topics "
          "with `fjord topic create` (deploy/local/cluster reads FJORD_CREATE_TOPICS)");
    }
    if (adv_port == 0) {
      return absl::InvalidArgumentError(
          "a broker in a cluster needs a fixed port in --listen or --advertised");
    }
    ASSIGN_OR_RETURN(std::vector<raft::Voter> voters,
                     raft::ParseVoters(options.controller_quorum_voters));
    for (const raft::Voter& v : voters) {
      cluster.voters[static_cast<int32_t>(v.id.value())] = v.address;
    }
  }
  Broker* b = broker.get();
  ASSIGN_OR_RETURN(broker->cluster_,
                   ClusterMetadata::Create(broker->store_.get(), cluster,
                                           [b, embedded](bool fenced) {
                                             b->OnFenceChange(fenced, embedded);
                                           }));
  ctx.metadata = broker->cluster_.get();
  ReplicaManagerOptions replica_options;
  replica_options.replica_lag_time_max = options.replica_lag_time_max;
  ReplicaManagerHooks hooks;
  ClusterMetadata* md = broker->cluster_.get();
  hooks.broker_epoch = [md] { return md->broker_epoch(); };
  hooks.alter_partition = [md](const fjord::internal::v1::AlterPartitionRequest& r) {
    return md->AlterPartition(r);
  };
  broker->replicas_ =
      std::make_unique<ReplicaManager>(options.node_id, replica_options, std::move(hooks));
  ReplicaManager* rm = broker->replicas_.get();
  ctx.replicas = rm;
  broker->groups_ = std::make_unique<GroupCoordinator>(ctx, options.groups);
  GroupCoordinator* gc = broker->groups_.get();
  broker->cluster_->set_on_metadata(
      [rm, gc](const ClusterMetadata::TopicTable& topics,
               const std::map<int32_t, std::string>& addresses,
               const controller::MetadataImage& image) {
        // Replicas first: the coordinator writes to partitions it has just
        // started to lead.
        rm->OnMetadata(topics, addresses, image);
        gc->OnMetadata(topics);
      });
  broker->produce_ = std::make_unique<ProduceServiceImpl>(ctx);
  broker->fetch_ = std::make_unique<FetchServiceImpl>(ctx);
  broker->metadata_service_ = std::make_unique<MetadataServiceImpl>(ctx);
  broker->admin_ = std::make_unique<AdminServiceImpl>(ctx);
  builder.RegisterService(broker->produce_.get());
  builder.RegisterService(broker->fetch_.get());
  builder.RegisterService(broker->metadata_service_.get());
  builder.RegisterService(broker->admin_.get());
  builder.RegisterService(broker->groups_.get());
  builder.RegisterService(broker->replicas_->service());

  {
    // Health answers NOT_SERVING until start-up is complete (MarkReady).
    absl::MutexLock lock(&broker->ready_mu_);
    broker->server_ = builder.BuildAndStart();
    if (broker->server_ == nullptr || broker->port_ == 0) {
      broker->server_.reset();
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", options.listen, " (address in use or not local?)"));
    }
    broker->server_->GetHealthCheckService()->SetServingStatus(broker->ready_);
  }
  LOG(INFO) << "broker " << options.node_id << " listening on " << listen_host << ":"
            << broker->port_ << " data-dir=" << options.data_dir
            << " fsync=" << storage::FsyncPolicyName(options.fsync)
            << (embedded ? " (single-node cluster)"
                         : " (cluster member; waiting to be unfenced)");
  broker->cluster_->Run(adv_host, adv_port == 0 ? broker->port_ : adv_port);
  if (embedded) {
    if (!broker->cluster_->WaitUnfenced(absl::Seconds(30))) {
      return absl::DeadlineExceededError(
          "the embedded controller did not accept this broker within 30 s");
    }
    RETURN_IF_ERROR(broker->CreateStartupTopics(options.create_topics));
    broker->MarkReady();
  }
  return broker;
}

void Broker::OnFenceChange(bool fenced, bool embedded) {
  absl::MutexLock lock(&ready_mu_);
  if (!ready_) {
    // A cluster broker is ready once first unfenced; a single-node one once its
    // start-up topics exist too (Start marks it).
    if (fenced || embedded) return;
    ready_ = true;
    serving_.store(true);
    LOG(INFO) << "broker " << options_.node_id << " is ready";
  }
  // A fenced broker leads nothing and serves nothing: tell health checks.
  if (server_ != nullptr && !shutting_down_.load()) {
    server_->GetHealthCheckService()->SetServingStatus(!fenced);
  }
}

void Broker::MarkReady() {
  absl::MutexLock lock(&ready_mu_);
  ready_ = true;
  serving_.store(true);
  if (server_ != nullptr && !shutting_down_.load()) {
    server_->GetHealthCheckService()->SetServingStatus(true);
    LOG(INFO) << "broker " << options_.node_id << " is ready";
  }
}

absl::Status Broker::CreateStartupTopics(const std::string& spec) {
  ASSIGN_OR_RETURN(std::vector<TopicSpec> specs, ParseCreateTopics(spec));
  for (const TopicSpec& s : specs) {
    if (auto existing = cluster_->GetTopic(s.name); existing.ok()) {
      if ((*existing)->info.partitions_size() != s.partitions) {
        LOG(WARNING) << "topic " << s.name << " already exists with "
                     << (*existing)->info.partitions_size()
                     << " partitions; leaving it as it is (asked for " << s.partitions
                     << ")";
      }
      continue;
    }
    fjord::v1::NewTopic topic;
    topic.set_name(s.name);
    topic.set_partitions(s.partitions);
    topic.set_replication_factor(s.replication_factor);
    absl::StatusOr<std::vector<fjord::v1::TopicInfo>> created =
        cluster_->CreateTopics({topic}, /*validate_only=*/false);
    if (!created.ok()) {
      return WithPrefix(created.status(), "--create-topics: ");
    }
  }
  return absl::OkStatus();
}

Broker::~Broker() { Shutdown(); }

void Broker::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  // In a cluster, first hand leaderships to other replicas while still serving
  // (controlled shutdown), so clients move over without waiting for a session
  // timeout.
  if (cluster_ != nullptr) cluster_->Shutdown(absl::Seconds(5));
  shutting_down_.store(true);
  if (server_ != nullptr) {
    absl::MutexLock lock(&ready_mu_);
    if (auto* health = server_->GetHealthCheckService(); health != nullptr) {
      health->SetServingStatus(false);
    }
  }
  if (server_ != nullptr) {
    // Fetch streams notice the flag within ~100 ms; give in-flight appends time to
    // finish, then cancel whatever is left.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
  }
  produce_.reset();  // drains pending acks=0 appends
  if (groups_ != nullptr) groups_->Stop();
  if (replicas_ != nullptr) replicas_->Stop();
  cluster_.reset();
  if (controller_ != nullptr) controller_->Shutdown(/*transfer_leadership=*/false);
  if (store_ != nullptr) {
    absl::Status s = store_->Close();
    if (!s.ok()) LOG(ERROR) << "closing the store: " << s;
  }
  LOG(INFO) << "broker " << options_.node_id << " stopped";
}

}  // namespace fjord::broker
