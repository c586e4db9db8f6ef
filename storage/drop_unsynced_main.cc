// drop-unsynced JOURNAL: testing only. Truncates every file the sync journal of
// a stopped fjord-broker tracks to the size it was last synced at, as a power
// failure would leave it (see storage/sync_journal_fs.h). Prints what it
// dropped; exit 0 on success.
#include <iostream>

#include "storage/sync_journal_fs.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: drop-unsynced JOURNAL\n";
    return 2;
  }
  absl::StatusOr<fjord::storage::DropReport> r = fjord::storage::DropUnsyncedData(argv[1]);
  if (!r.ok()) {
    std::cerr << "drop-unsynced: " << r.status() << "\n";
    return 1;
  }
  std::cout << "drop-unsynced: truncated " << r->files_truncated << " files, dropped "
            << r->bytes_dropped << " unsynced bytes\n";
  return 0;
}
