#include "storage/sync_journal_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fjord::storage {
namespace {

using rocksdb::FileOptions;
using rocksdb::FSWritableFile;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

// The journal: one line per event, "S <size> <path>", "R <src>\t<dst>",
// "D <path>", each written and fdatasync'ed before the call returns.
class Journal {
 public:
  explicit Journal(int fd) : fd_(fd) {}
  ~Journal() { close(fd_); }

  IOStatus Add(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string text = line + "\n";
    if (write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        fdatasync(fd_) != 0) {
      return IOStatus::IOError("sync journal write failed");
    }
    return IOStatus::OK();
  }

 private:
  std::mutex mu_;
  const int fd_;
};

class TrackedFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedFile(std::unique_ptr<FSWritableFile> file, std::string path, uint64_t size,
              std::shared_ptr<Journal> journal)
      : FSWritableFileOwnerWrapper(std::move(file)),
        path_(std::move(path)),
        size_(size),
        journal_(std::move(journal)) {}

  IOStatus Append(const rocksdb::Slice& data, const IOOptions& o, IODebugContext* d) override {
    IOStatus s = target()->Append(data, o, d);
    if (s.ok()) Grow(size_ + data.size());
    return s;
  }
  IOStatus Append(const rocksdb::Slice& data, const IOOptions& o,
                  const rocksdb::DataVerificationInfo& v, IODebugContext* d) override {
    IOStatus s = target()->Append(data, o, v, d);
    if (s.ok()) Grow(size_ + data.size());
    return s;
  }
  IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const IOOptions& o,
                            IODebugContext* d) override {
    IOStatus s = target()->PositionedAppend(data, offset, o, d);
    if (s.ok()) Grow(std::max<uint64_t>(size_, offset + data.size()));
    return s;
  }
  IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const IOOptions& o,
                            const rocksdb::DataVerificationInfo& v,
                            IODebugContext* d) override {
    IOStatus s = target()->PositionedAppend(data, offset, o, v, d);
    if (s.ok()) Grow(std::max<uint64_t>(size_, offset + data.size()));
    return s;
  }
  IOStatus Truncate(uint64_t size, const IOOptions& o, IODebugContext* d) override {
    IOStatus s = target()->Truncate(size, o, d);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      size_ = size;
    }
    return s;
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* d) override {
    IOStatus s = target()->Sync(o, d);
    return s.ok() ? Synced() : s;
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* d) override {
    IOStatus s = target()->Fsync(o, d);
    return s.ok() ? Synced() : s;
  }

 private:
  void Grow(uint64_t size) {
    std::lock_guard<std::mutex> lock(mu_);
    size_ = size;
  }
  IOStatus Synced() {
    uint64_t size;
    {
      std::lock_guard<std::mutex> lock(mu_);
      size = size_;
    }
    return journal_->Add(absl::StrCat("S ", size, " ", path_));
  }

  const std::string path_;
  std::mutex mu_;
  uint64_t size_;
  std::shared_ptr<Journal> journal_;
};

class SyncJournalFileSystem : public rocksdb::FileSystemWrapper {
 public:
  SyncJournalFileSystem(std::shared_ptr<Journal> journal)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), journal_(std::move(journal)) {}

  const char* Name() const override { return "FjordSyncJournalFileSystem"; }

  IOStatus NewWritableFile(const std::string& f, const FileOptions& o,
                           std::unique_ptr<FSWritableFile>* r, IODebugContext* d) override {
    IOStatus s = target()->NewWritableFile(f, o, r, d);
    if (s.ok()) {
      // A new file: until synced it holds nothing durable.
      s = journal_->Add(absl::StrCat("S 0 ", f));
      *r = std::make_unique<TrackedFile>(std::move(*r), f, 0, journal_);
    }
    return s;
  }
  IOStatus ReopenWritableFile(const std::string& f, const FileOptions& o,
                              std::unique_ptr<FSWritableFile>* r, IODebugContext* d) override {
    uint64_t size = 0;
    (void)target()->GetFileSize(f, IOOptions(), &size, d);
    IOStatus s = target()->ReopenWritableFile(f, o, r, d);
    if (s.ok()) *r = std::make_unique<TrackedFile>(std::move(*r), f, size, journal_);
    return s;
  }
  IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const FileOptions& o,
                             std::unique_ptr<FSWritableFile>* r, IODebugContext* d) override {
    IOStatus s = target()->ReuseWritableFile(f, old, o, r, d);
    if (s.ok()) {
      s = journal_->Add(absl::StrCat("R ", old, "\t", f));
      if (s.ok()) s = journal_->Add(absl::StrCat("S 0 ", f));
      *r = std::make_unique<TrackedFile>(std::move(*r), f, 0, journal_);
    }
    return s;
  }
  IOStatus RenameFile(const std::string& src, const std::string& dst, const IOOptions& o,
                      IODebugContext* d) override {
    IOStatus s = target()->RenameFile(src, dst, o, d);
    return s.ok() ? journal_->Add(absl::StrCat("R ", src, "\t", dst)) : s;
  }
  IOStatus DeleteFile(const std::string& f, const IOOptions& o, IODebugContext* d) override {
    IOStatus s = target()->DeleteFile(f, o, d);
    return s.ok() ? journal_->Add(absl::StrCat("D ", f)) : s;
  }

 private:
  std::shared_ptr<Journal> journal_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<rocksdb::FileSystem>> NewSyncJournalFileSystem(
    const std::string& journal_path) {
  const int fd = open(journal_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open the sync journal ", journal_path));
  }
  return std::make_shared<SyncJournalFileSystem>(std::make_shared<Journal>(fd));
}

absl::StatusOr<DropReport> DropUnsyncedData(const std::string& journal_path) {
  std::ifstream in(journal_path);
  if (!in) return absl::NotFoundError(absl::StrCat("no sync journal at ", journal_path));
  std::map<std::string, uint64_t> synced;  // path -> last synced size
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 3) continue;  // a torn last line
    const std::string rest = line.substr(2);
    if (line[0] == 'S') {
      const size_t space = rest.find(' ');
      uint64_t size = 0;
      if (space == std::string::npos || !absl::SimpleAtoi(rest.substr(0, space), &size)) continue;
      synced[rest.substr(space + 1)] = size;
    } else if (line[0] == 'R') {
      std::vector<std::string> parts = absl::StrSplit(rest, '\t');
      if (parts.size() != 2) continue;
      auto it = synced.find(parts[0]);
      if (it != synced.end()) {
        const uint64_t size = it->second;
        synced.erase(it);
        synced[parts[1]] = size;
      } else {
        synced.erase(parts[1]);  // an untracked file renamed over it: leave it alone
      }
    } else if (line[0] == 'D') {
      synced.erase(rest);
    }
  }
  DropReport report;
  for (const auto& [path, size] : synced) {
    std::error_code ec;
    const uintmax_t now = std::filesystem::file_size(path, ec);
    if (ec || now <= size) continue;
    std::filesystem::resize_file(path, size, ec);
    if (ec) return absl::InternalError(absl::StrCat("truncating ", path, ": ", ec.message()));
    ++report.files_truncated;
    report.bytes_dropped += static_cast<int64_t>(now - size);
  }
  return report;
}

}  // namespace fjord::storage
