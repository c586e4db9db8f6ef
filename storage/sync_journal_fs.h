// Testing only: a RocksDB FileSystem that journals what reached the disk, so a
// test can later drop everything that was never synced, as a power failure
// would (Jepsen's "lose unsynced writes" fault; LevelDB and RocksDB test their
// own recovery the same way).
//
// Every file RocksDB writes through it is tracked: its size as appended, and
// the size it had at its last Sync/Fsync. Each sync, rename and delete is
// appended to a journal file (itself fdatasync'ed per entry, so the journal
// is never behind the data it describes). After the process is killed,
// DropUnsyncedData replays the journal and truncates every tracked file to the
// size it was last synced at (0 when never synced): what is left is what a
// machine that lost power at the kill would have kept.
//
// Simplifications, on the optimistic side: a rename or delete counts as durable
// when it returns (RocksDB syncs the directory after the renames that matter),
// and directory entries of created files survive (their data does not).
#ifndef FJORD_STORAGE_SYNC_JOURNAL_FS_H_
#define FJORD_STORAGE_SYNC_JOURNAL_FS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace fjord::storage {

// A FileSystem over the default one that journals syncs to `journal_path`.
absl::StatusOr<std::shared_ptr<rocksdb::FileSystem>> NewSyncJournalFileSystem(
    const std::string& journal_path);

struct DropReport {
  int files_truncated = 0;
  int64_t bytes_dropped = 0;
};

// Truncates every file the journal tracks to its last synced size. Files the
// journal does not know are left alone. NOT_FOUND when there is no journal.
absl::StatusOr<DropReport> DropUnsyncedData(const std::string& journal_path);

}  // namespace fjord::storage

#endif  // FJORD_STORAGE_SYNC_JOURNAL_FS_H_
