// Network partitions without root: the fault layer in the nodes' gRPC
// transport (common/network_faults.h). Each node gets a file listing the
// addresses of the peers it is cut off from ($FJORD_TESTING_NETWORK_FAULTS);
// Cut rewrites the files of both sides, Heal empties them. The nodes run on
// 127.0.0.1 as usual and the test's own clients keep reaching every node.
//
//   auto faults = *TransportFaults::Create(dir, {"controller-1", "broker-1"});
//   options.node_env["broker-1"] = faults->EnvFor("broker-1");
//   ... Cluster::Up(options) ...
//   faults->SetAddresses(*cluster);
//   faults->Cut({{{"broker-1"}, {"controller-1"}}});
//
// Differences from a real cut (netns.h): a cut call fails at once with
// UNAVAILABLE instead of timing out, and calls already in flight finish.
#ifndef FJORD_INTEGRATION_TESTS_TRANSPORT_FAULTS_H_
#define FJORD_INTEGRATION_TESTS_TRANSPORT_FAULTS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "integration_tests/network_control.h"
#include "integration_tests/process.h"

namespace fjord::testing {

class Cluster;

class TransportFaults : public NetworkControl {
 public:
  // Writes an empty block file per node into `dir` (created).
  static absl::StatusOr<std::unique_ptr<TransportFaults>> Create(
      const std::string& dir, const std::vector<std::string>& nodes);

  // The environment that turns the fault layer on for `node`.
  EnvVars EnvFor(const std::string& node) const;
  // Every node's "host:port", once the cluster is up.
  void SetAddresses(std::map<std::string, std::string> addresses);

  absl::Status Cut(const std::vector<NodeCut>& cuts) override;
  absl::Status Heal() override;
  bool partitioned() const override { return partitioned_; }

 private:
  TransportFaults(std::string dir, std::vector<std::string> nodes);
  std::string FileOf(const std::string& node) const;
  absl::Status Write(const std::map<std::string, std::vector<std::string>>& blocked);

  std::string dir_;
  std::vector<std::string> nodes_;
  std::map<std::string, std::string> addresses_;
  bool partitioned_ = false;
};

}  // namespace fjord::testing

#endif  // FJORD_INTEGRATION_TESTS_TRANSPORT_FAULTS_H_
