// What the chaos nemesis needs to cut the network between nodes, whichever way
// it is done: network namespaces and nftables (netns.h, root) or the fault
// layer in the nodes' gRPC transport (transport_faults.h, any user).
#ifndef FJORD_INTEGRATION_TESTS_NETWORK_CONTROL_H_
#define FJORD_INTEGRATION_TESTS_NETWORK_CONTROL_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace fjord::testing {

// One cut: every node of `first` loses its connection to every node of
// `second`, both directions.
using NodeCut = std::pair<std::vector<std::string>, std::vector<std::string>>;

class NetworkControl {
 public:
  virtual ~NetworkControl() = default;
  // Applies exactly these cuts, replacing any earlier ones; an empty list
  // heals. INVALID_ARGUMENT for an unknown node or a node cut from itself.
  virtual absl::Status Cut(const std::vector<NodeCut>& cuts) = 0;
  // Removes every cut. OK when there was none.
  virtual absl::Status Heal() = 0;
  // Whether any cut is in force.
  virtual bool partitioned() const = 0;
};

}  // namespace fjord::testing

#endif  // FJORD_INTEGRATION_TESTS_NETWORK_CONTROL_H_
