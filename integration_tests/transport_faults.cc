#include "integration_tests/transport_faults.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fjord::testing {

namespace fs = std::filesystem;

absl::StatusOr<std::unique_ptr<TransportFaults>> TransportFaults::Create(
    const std::string& dir, const std::vector<std::string>& nodes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", dir, ": ", ec.message()));
  auto faults = std::unique_ptr<TransportFaults>(
      new TransportFaults(fs::absolute(dir).string(), nodes));
  if (absl::Status s = faults->Write({}); !s.ok()) return s;
  return faults;
}

TransportFaults::TransportFaults(std::string dir, std::vector<std::string> nodes)
    : dir_(std::move(dir)), nodes_(std::move(nodes)) {}

std::string TransportFaults::FileOf(const std::string& node) const {
  return (fs::path(dir_) / (node + ".blocked")).string();
}

EnvVars TransportFaults::EnvFor(const std::string& node) const {
  return {{"FJORD_TESTING_NETWORK_FAULTS", FileOf(node)}};
}

void TransportFaults::SetAddresses(std::map<std::string, std::string> addresses) {
  addresses_ = std::move(addresses);
}

absl::Status TransportFaults::Write(
    const std::map<std::string, std::vector<std::string>>& blocked) {
  for (const std::string& node : nodes_) {
    const std::string path = FileOf(node);
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      if (auto it = blocked.find(node); it != blocked.end()) {
        for (const std::string& address : it->second) out << address << "\n";
      }
      if (!out.good()) return absl::InternalError(absl::StrCat("write ", tmp));
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);  // the node never reads half a file
    if (ec) return absl::InternalError(absl::StrCat("rename ", tmp, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status TransportFaults::Cut(const std::vector<NodeCut>& cuts) {
  std::map<std::string, std::vector<std::string>> blocked;
  auto address = [&](const std::string& node) -> absl::StatusOr<std::string> {
    auto it = addresses_.find(node);
    if (it == addresses_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown node ", node));
    }
    return it->second;
  };
  for (const auto& [a_side, b_side] : cuts) {
    for (const std::string& a : a_side) {
      for (const std::string& b : b_side) {
        if (a == b) return absl::InvalidArgumentError(absl::StrCat(a, " cut from itself"));
        absl::StatusOr<std::string> a_address = address(a);
        absl::StatusOr<std::string> b_address = address(b);
        if (!a_address.ok()) return a_address.status();
        if (!b_address.ok()) return b_address.status();
        blocked[a].push_back(*b_address);
        blocked[b].push_back(*a_address);
      }
    }
  }
  if (absl::Status s = Write(blocked); !s.ok()) return s;
  partitioned_ = !blocked.empty();
  return absl::OkStatus();
}

absl::Status TransportFaults::Heal() { return Cut({}); }

}  // namespace fjord::testing
