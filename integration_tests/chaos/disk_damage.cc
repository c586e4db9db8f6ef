#include "integration_tests/chaos/disk_damage.h"

#include <fcntl.h>
#include <unistd.h>

#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace fjord::testing::chaos {

std::optional<std::filesystem::path> LargestFile(const std::string& dir,
                                                 const std::string& suffix) {
  std::optional<std::filesystem::path> best;
  uintmax_t best_size = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (!e.is_regular_file() || !absl::EndsWith(e.path().filename().string(), suffix)) continue;
    if (e.file_size() > best_size) {
      best = e.path();
      best_size = e.file_size();
    }
  }
  return best;
}

absl::Status FlipMiddleBit(const std::filesystem::path& path) {
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path.string()));
  const off_t at = static_cast<off_t>(std::filesystem::file_size(path) / 2);
  unsigned char byte = 0;
  bool ok = pread(fd, &byte, 1, at) == 1;
  byte ^= 0x01;
  ok = ok && pwrite(fd, &byte, 1, at) == 1 && fsync(fd) == 0;
  close(fd);
  if (!ok) return absl::InternalError(absl::StrCat("flip a bit in ", path.string()));
  return absl::OkStatus();
}

}  // namespace fjord::testing::chaos
