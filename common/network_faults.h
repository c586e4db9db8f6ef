// Testing only: network faults in the gRPC transport, for the chaos suite's
// partition tests on machines where a test cannot create network namespaces
// (not root). docs/RELIABILITY.md, "Network partitions without root".
//
// When $FJORD_TESTING_NETWORK_FAULTS names a file, every channel this process
// opens to another node (NewPeerChannel: Raft peers, controllers, partition
// leaders) fails its calls with UNAVAILABLE while the peer's address
// ("host:port", one per line) is listed in that file. The test replaces the
// file (write and rename) to cut and heal; it is read again when its inode,
// size or modification time changes (looked at no more than every 20 ms). Both sides of a cut list each other,
// so no call crosses it either way; calls already in flight finish. Unlike a
// dropped packet, a cut call fails at once instead of at its deadline.
//
// Production start-up refuses it: InitNetworkFaultsFromEnv fails unless the
// process listens on a loopback address (127.0.0.0/8), which is where the
// tests run and where no production deployment does.
#ifndef FJORD_COMMON_NETWORK_FAULTS_H_
#define FJORD_COMMON_NETWORK_FAULTS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace fjord {

inline constexpr char kNetworkFaultsEnv[] = "FJORD_TESTING_NETWORK_FAULTS";

// Reads $FJORD_TESTING_NETWORK_FAULTS; a no-op when it is unset or empty.
// FAILED_PRECONDITION when it is set and `listen_host` is not a loopback
// address. Call once, at start-up, before any NewPeerChannel.
absl::Status InitNetworkFaultsFromEnv(absl::string_view listen_host);

// Whether the fault layer is on in this process.
bool NetworkFaultsEnabled();

// A channel to another node at `address`, through the fault layer when it is
// on; otherwise grpc::CreateCustomChannel.
std::shared_ptr<grpc::Channel> NewPeerChannel(const std::string& address,
                                              const grpc::ChannelArguments& args);

}  // namespace fjord

#endif  // FJORD_COMMON_NETWORK_FAULTS_H_
