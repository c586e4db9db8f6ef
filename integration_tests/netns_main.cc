// main() for tests that use network namespaces (netns.h): moves the process
// into a hub namespace of its own while it is still single-threaded, then runs
// the tests. When that is not possible (not root, no `ip` or `nft`) the tests
// run anyway and the ones that need namespaces skip, printing why
// (HarnessHubStatus()).
#include <iostream>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "integration_tests/netns.h"

int main(int argc, char** argv) {
  const absl::Status hub = fjord::testing::EnterHarnessHub();
  if (!hub.ok()) std::cerr << "netns: " << hub.message() << "\n";
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  fjord::testing::LeaveHarnessHub();
  return rc;
}
