#include "integration_tests/chaos/clock.h"

#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fjord::testing::chaos {

namespace fs = std::filesystem;

std::string FaketimeOffset(absl::Duration offset) {
  const int64_t seconds = absl::ToInt64Seconds(offset);
  return absl::StrCat(seconds < 0 ? "" : "+", seconds, "s");
}

absl::StatusOr<std::unique_ptr<ClockSkew>> ClockSkew::Create(
    const std::string& dir, const std::vector<std::string>& nodes,
    const std::string& shim_path) {
  std::error_code ec;
  if (!fs::exists(kLibFaketime, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        kLibFaketime, " is missing: install Debian's libfaketime package "
                      "(tools/install-deps does)"));
  }
  if (!fs::exists(shim_path, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("clock shim ", shim_path, " is missing"));
  }
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("create ", dir, ": ", ec.message()));
  }
  auto clock = std::unique_ptr<ClockSkew>(
      new ClockSkew(fs::absolute(dir).string(), nodes,
                    fs::absolute(shim_path).string()));
  if (absl::Status s = clock->ResetAll(); !s.ok()) return s;
  return clock;
}

ClockSkew::ClockSkew(std::string dir, std::vector<std::string> nodes,
                     std::string shim_path)
    : dir_(std::move(dir)),
      nodes_(std::move(nodes)),
      shim_path_(std::move(shim_path)) {}

std::string ClockSkew::FileOf(const std::string& node) const {
  return (fs::path(dir_) / (node + ".offset")).string();
}

EnvVars ClockSkew::EnvFor(const std::string& node) const {
  return {
      // The shim first: its clock_gettime calls must reach libfaketime.
      {"LD_PRELOAD", absl::StrCat(shim_path_, " ", kLibFaketime)},
      {"FAKETIME_TIMESTAMP_FILE", FileOf(node)},
      {"FAKETIME_CACHE_DURATION", "1"},
      {"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
  };
}

absl::Status ClockSkew::Set(const std::string& node, absl::Duration offset) {
  const std::string path = FileOf(node);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << FaketimeOffset(offset) << "\n";
    if (!out.good()) {
      return absl::InternalError(absl::StrCat("write ", tmp));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("rename ", tmp, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status ClockSkew::ResetAll() {
  for (const std::string& node : nodes_) {
    if (absl::Status s = Set(node, absl::ZeroDuration()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace fjord::testing::chaos
