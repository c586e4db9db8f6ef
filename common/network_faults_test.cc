#include "common/network_faults.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"

namespace fjord {
namespace {

grpc::Status Check(const std::string& address) {
  auto stub = grpc::health::v1::Health::NewStub(NewPeerChannel(address, grpc::ChannelArguments()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  return stub->Check(&ctx, req, &resp);
}

void WriteBlocked(const std::string& path, const std::string& text) {
  std::ofstream(path + ".tmp", std::ios::trunc) << text;
  std::rename((path + ".tmp").c_str(), path.c_str());
}

TEST(NetworkFaultsTest, RefusedOffLoopbackThenCutsAndHealsListedPeers) {
  const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/blocked");
  WriteBlocked(path, "");
  setenv(kNetworkFaultsEnv, path.c_str(), 1);

  absl::Status refused = InitNetworkFaultsFromEnv("0.0.0.0");
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_FALSE(NetworkFaultsEnabled());
  ASSERT_TRUE(InitNetworkFaultsFromEnv("127.0.0.1").ok());
  ASSERT_TRUE(NetworkFaultsEnabled());

  grpc::EnableDefaultHealthCheckService(true);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  const std::string address = absl::StrCat("127.0.0.1:", port);

  EXPECT_TRUE(Check(address).ok());
  WriteBlocked(path, absl::StrCat("127.0.0.1:1\n", address, "\n"));
  // The file is looked at again after 20 ms at most; the wait is bounded.
  grpc::Status cut;
  for (int i = 0; i < 100 && (cut = Check(address)).ok(); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(cut.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(cut.error_message().find("network fault"), std::string::npos) << cut.error_message();

  WriteBlocked(path, "");
  grpc::Status healed;
  for (int i = 0; i < 100 && !(healed = Check(address)).ok(); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_TRUE(healed.ok()) << healed.error_message();
  server->Shutdown();
}

}  // namespace
}  // namespace fjord
