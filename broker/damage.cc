#include "broker/damage.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

namespace fjord::broker {
namespace {

namespace fs = std::filesystem;

absl::Mutex dir_mu;
std::string* damage_dir ABSL_GUARDED_BY(dir_mu) = nullptr;

// Writes `text` to `path` and syncs it, with plain system calls (this runs on
// the way out of a process that may be in any state).
void WriteSynced(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  (void)fsync(fd);
  (void)close(fd);
}

}  // namespace

void SetDamageDirectory(const std::string& data_dir) {
  absl::MutexLock lock(&dir_mu);
  delete damage_dir;
  damage_dir = new std::string(data_dir);
}

void StopOnDamage(const absl::Status& status, absl::string_view where) {
  std::string dir;
  {
    absl::MutexLock lock(&dir_mu);
    if (damage_dir != nullptr) dir = *damage_dir;
  }
  const std::string text =
      absl::StrCat(absl::FormatTime(absl::Now()), " ", where, ": ", status.ToString(), "\n");
  LOG(ERROR) << "damaged data in " << (dir.empty() ? "the store" : dir) << " (" << where
             << "): " << status
             << ". Stopping: nothing more is served from it. On restart the broker moves the "
                "damaged files aside and fetches its replicas again from the other brokers.";
  if (!dir.empty()) {
    WriteSynced((fs::path(dir) / kDamageMarker).string(), text);
    // The marker's directory entry must survive a crash too.
    const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)fsync(dfd);
      (void)close(dfd);
    }
  }
  google::FlushLogFiles(google::GLOG_INFO);
  std::_Exit(kExitDamagedData);
}

absl::StatusOr<std::string> ReadDamageMarker(const std::string& data_dir) {
  const fs::path path = fs::path(data_dir) / kDamageMarker;
  std::error_code ec;
  if (!fs::exists(path, ec)) return absl::NotFoundError("no damage marker");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<std::string> QuarantineStore(const std::string& data_dir) {
  const std::string name =
      absl::StrCat("damaged-", absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone()));
  const fs::path target = fs::path(data_dir) / name;
  std::error_code ec;
  fs::create_directories(target, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", target.string(), ": ", ec.message()));
  }
  std::vector<fs::path> entries;
  for (const fs::directory_entry& entry : fs::directory_iterator(data_dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (file == "__controller" || file.rfind("damaged-", 0) == 0) continue;
    entries.push_back(entry.path());
  }
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot list ", data_dir, ": ", ec.message()));
  }
  for (const fs::path& entry : entries) {
    fs::rename(entry, target / entry.filename(), ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot move ", entry.string(), " to ",
                                              target.string(), ": ", ec.message()));
    }
  }
  const int dfd = open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    (void)close(dfd);
  }
  return target.string();
}

}  // namespace fjord::broker
