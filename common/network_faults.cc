#include "common/network_faults.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/client_interceptor.h"
#include "grpcpp/support/interceptor.h"

namespace fjord {
namespace {

// The blocked peers, from the file named at start-up.
class BlockList {
 public:
  explicit BlockList(std::string path) : path_(std::move(path)) {}

  bool Blocked(const std::string& address) {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (now - checked_ >= absl::Milliseconds(20)) {
      checked_ = now;
      // Inode, size and modification time: file systems keep coarse
      // timestamps (a jiffy), so two writes in a row may share one; a file
      // replaced by rename (as the tests do) has a new inode.
      struct stat st {};
      const Signature signature =
          stat(path_.c_str(), &st) == 0
              ? Signature{static_cast<int64_t>(st.st_ino), static_cast<int64_t>(st.st_size),
                          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                              st.st_mtim.tv_nsec}
              : Signature{-1, -1, -1};
      if (signature != signature_) {
        signature_ = signature;
        Reload();
      }
    }
    return blocked_.contains(address);
  }

 private:
  void Reload() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::set<std::string> next;
    std::ifstream in(path_);
    for (std::string line; std::getline(in, line);) {
      absl::string_view l = absl::StripAsciiWhitespace(line);
      if (!l.empty()) next.emplace(l);
    }
    if (next != blocked_) {
      LOG(WARNING) << "TESTING: network faults: " << next.size() << " peer(s) cut off";
    }
    blocked_ = std::move(next);
  }

  using Signature = std::tuple<int64_t, int64_t, int64_t>;  // inode, size, mtime

  const std::string path_;
  absl::Mutex mu_;
  absl::Time checked_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  Signature signature_ ABSL_GUARDED_BY(mu_) = {-2, -2, -2};
  std::set<std::string> blocked_ ABSL_GUARDED_BY(mu_);
};

BlockList* block_list = nullptr;  // set once at start-up, then only read

// Fails every call to a blocked peer with UNAVAILABLE, without sending it.
class CutInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit CutInterceptor(std::string peer) : peer_(std::move(peer)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_INITIAL_METADATA)) {
      cut_ = block_list->Blocked(peer_);
    }
    if (!cut_) {
      methods->Proceed();
      return;
    }
    if (methods->QueryInterceptionHookPoint(Hook::PRE_RECV_MESSAGE)) {
      methods->FailHijackedRecvMessage();
    }
    if (methods->QueryInterceptionHookPoint(Hook::PRE_RECV_STATUS)) {
      *methods->GetRecvStatus() = grpc::Status(
          grpc::StatusCode::UNAVAILABLE,
          absl::StrCat("testing: network fault: ", peer_, " is cut off from this node"));
    }
    if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_INITIAL_METADATA)) {
      methods->Hijack();
    } else {
      methods->Proceed();
    }
  }

 private:
  const std::string peer_;
  bool cut_ = false;
};

class CutInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit CutInterceptorFactory(std::string peer) : peer_(std::move(peer)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new CutInterceptor(peer_);
  }

 private:
  const std::string peer_;
};

bool IsLoopback(absl::string_view host) {
  return host == "localhost" || absl::StartsWith(host, "127.");
}

}  // namespace

absl::Status InitNetworkFaultsFromEnv(absl::string_view listen_host) {
  const char* path = std::getenv(kNetworkFaultsEnv);
  if (path == nullptr || *path == '\0') return absl::OkStatus();
  if (!IsLoopback(listen_host)) {
    return absl::FailedPreconditionError(absl::StrCat(
        kNetworkFaultsEnv, " is a testing switch: it is refused unless the process "
        "listens on a loopback address (127.0.0.0/8), and this one listens on ",
        listen_host));
  }
  LOG(ERROR) << "TESTING ONLY: " << kNetworkFaultsEnv << "=" << path
             << ": calls to the peers listed there fail as if the network were cut";
  block_list = new BlockList(path);
  return absl::OkStatus();
}

bool NetworkFaultsEnabled() { return block_list != nullptr; }

std::shared_ptr<grpc::Channel> NewPeerChannel(const std::string& address,
                                              const grpc::ChannelArguments& args) {
  if (block_list == nullptr) {
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<CutInterceptorFactory>(address));
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      address, grpc::InsecureChannelCredentials(), args, std::move(factories));
}

}  // namespace fjord
