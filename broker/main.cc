// fjord-broker: serves the Fjord API. Without --controller-quorum-voters it is a
// complete single-node cluster that keeps its metadata in its own data directory.
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "broker/broker.h"
#include "common/flags.h"
#include "common/network_faults.h"
#include "glog/logging.h"

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

  fjord::broker::BrokerOptions options;
  int64_t node_id = options.node_id;
  std::string fsync = "always";
  std::string voters;
  int64_t max_batch_bytes = options.limits.max_batch_bytes;
  fjord::FlagSet flags(
      "fjord-broker",
      "Serves Fjord's gRPC API (fjord.v1). Without --controller-quorum-voters it runs\n"
      "as a single-node cluster with its metadata in --data-dir.");
  flags.Int("node-id", &node_id, "broker id, unique in the cluster");
  flags.String("listen", &options.listen, "gRPC listen address host:port");
  flags.String("advertised", &options.advertised,
               "host:port clients should use (default: --listen, 127.0.0.1 for a "
               "wildcard host)");
  flags.String("data-dir", &options.data_dir, "directory for the partition store");
  flags.String("controller-quorum-voters", &voters,
               "id@host:port,... of the controller quorum; empty runs a "
               "single-node cluster");
  flags.String("rack", &options.rack, "rack id, for rack-aware placement");
  flags.String("fsync", &fsync,
               "always (sync before acknowledging) | interval | never");
  flags.String("create-topics", &options.create_topics,
               "topics to create at start-up: name:partitions:replicas,...");
  int64_t replica_lag_ms = absl::ToInt64Milliseconds(options.replica_lag_time_max);
  flags.Int("replica-lag-time-max-ms", &replica_lag_ms,
            "a follower that has not caught up for this long leaves the ISR");
  flags.Int("max-batch-bytes", &max_batch_bytes,
            "largest produce request in bytes");
  int64_t offsets_partitions = options.groups.offsets_topic_partitions;
  int64_t offsets_rf = options.groups.offsets_topic_replication_factor;
  int64_t session_ms = options.groups.limits.default_session_timeout_ms;
  int64_t min_session_ms = options.groups.limits.min_session_timeout_ms;
  int64_t max_session_ms = options.groups.limits.max_session_timeout_ms;
  flags.Int("offsets-topic-partitions", &offsets_partitions,
            "partitions of __consumer_offsets when this broker creates it");
  flags.Int("offsets-topic-replication-factor", &offsets_rf,
            "replication factor of __consumer_offsets when this broker creates it; 0 "
            "means min(3, brokers)");
  flags.Int("group-session-timeout-ms", &session_ms,
            "a group member's session timeout when it asks for none");
  flags.Int("group-min-session-timeout-ms", &min_session_ms,
            "smallest session timeout a group member may ask for");
  flags.Int("group-max-session-timeout-ms", &max_session_ms,
            "largest session timeout a group member may ask for");

  flags.Bool("verify-checksums-on-start", &options.verify_checksums_on_start,
             "read every table file of the store at start-up and check its checksums, so "
             "that data damaged at rest is found before it is served (costs one read of "
             "the store)");
  flags.Bool("recover-damaged-data", &options.recover_damaged_data,
             "in a cluster, when the store is damaged: move it to <data-dir>/damaged-<time> "
             "and fetch the replicas again from the other brokers (false: refuse to start)");
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::Status parsed = flags.Parse(args);
  if (parsed.code() == absl::StatusCode::kCancelled) {
    std::cout << parsed.message();
    return 0;
  }
  auto fail = [](absl::string_view why) {
    std::cerr << "fjord-broker: " << why << "\n";
    return 2;
  };
  if (!parsed.ok()) return fail(parsed.message());
  options.controller_quorum_voters = voters;
  if (const char* bug = std::getenv("FJORD_TESTING_PLANTED_BUG"); bug != nullptr) {
    options.planted_bug = bug;
  }
  if (const char* journal = std::getenv("FJORD_TESTING_SYNC_JOURNAL");
      journal != nullptr && std::string(journal) == "1") {
    options.testing_sync_journal = true;
  }
  if (node_id < 1 || node_id > INT32_MAX) return fail("--node-id must be from 1 to 2147483647");
  options.node_id = static_cast<int32_t>(node_id);
  absl::StatusOr<fjord::storage::FsyncPolicy> policy =
      fjord::storage::ParseFsyncPolicy(fsync);
  if (!policy.ok()) return fail(absl::StrCat("--fsync: ", policy.status().message()));
  options.fsync = *policy;
  if (max_batch_bytes < 1024 || max_batch_bytes > (256 << 20)) {
    return fail("--max-batch-bytes must be from 1024 to 268435456");
  }
  options.limits.max_batch_bytes = max_batch_bytes;
  if (replica_lag_ms < 100) return fail("--replica-lag-time-max-ms must be at least 100");
  options.replica_lag_time_max = absl::Milliseconds(replica_lag_ms);
  if (offsets_partitions < 1 || offsets_partitions > 1000) {
    return fail("--offsets-topic-partitions must be from 1 to 1000");
  }
  if (offsets_rf < 0 || offsets_rf > 16) {
    return fail("--offsets-topic-replication-factor must be from 0 to 16");
  }
  if (min_session_ms < 100 || max_session_ms > 3600000 || min_session_ms > max_session_ms ||
      session_ms < min_session_ms || session_ms > max_session_ms) {
    return fail(
        "group session timeouts: need 100 <= --group-min-session-timeout-ms <= "
        "--group-session-timeout-ms <= --group-max-session-timeout-ms <= 3600000");
  }
  options.groups.offsets_topic_partitions = static_cast<int32_t>(offsets_partitions);
  options.groups.offsets_topic_replication_factor = static_cast<int32_t>(offsets_rf);
  options.groups.limits.default_session_timeout_ms = static_cast<int32_t>(session_ms);
  options.groups.limits.min_session_timeout_ms = static_cast<int32_t>(min_session_ms);
  options.groups.limits.max_session_timeout_ms = static_cast<int32_t>(max_session_ms);

  if (absl::Status faults = fjord::InitNetworkFaultsFromEnv(
          options.listen.substr(0, options.listen.rfind(':')));
      !faults.ok()) {
    return fail(faults.message());
  }

  // Handle SIGTERM/SIGINT on this thread only: block them before any other thread
  // starts, so every thread inherits the mask, then wait for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<std::unique_ptr<fjord::broker::Broker>> broker =
      fjord::broker::Broker::Start(options);
  if (!broker.ok()) return fail(broker.status().ToString());

  int sig = 0;
  sigwait(&stop_signals, &sig);
  LOG(INFO) << "signal " << sig << ": shutting down";
  (*broker)->Shutdown();
  return 0;
}
