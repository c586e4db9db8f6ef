#include "storage/sync_journal_fs.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"

namespace fjord::storage {
namespace {

std::string TestDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void Write(const std::string& path, size_t bytes) {
  std::ofstream(path) << std::string(bytes, 'x');
}

TEST(SyncJournalTest, DropTruncatesToTheLastSyncFollowingRenamesAndDeletes) {
  const std::string dir = TestDir("replay");
  Write(dir + "/a", 100);
  Write(dir + "/b", 100);
  Write(dir + "/c", 100);
  Write(dir + "/untracked", 100);
  Write(dir + "/d", 100);
  std::ofstream(dir + "/journal") << "S 0 " << dir << "/a\n"
                                  << "S 40 " << dir << "/a\n"
                                  << "S 0 " << dir << "/tmp\n"
                                  << "S 70 " << dir << "/tmp\n"
                                  << "R " << dir << "/tmp\t" << dir << "/b\n"
                                  << "S 0 " << dir << "/c\n"
                                  << "S 0 " << dir << "/d\n"
                                  << "D " << dir << "/d\n"
                                  << "S 1";  // torn last line
  absl::StatusOr<DropReport> r = DropUnsyncedData(dir + "/journal");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::filesystem::file_size(dir + "/a"), 40u);
  EXPECT_EQ(std::filesystem::file_size(dir + "/b"), 70u);
  EXPECT_EQ(std::filesystem::file_size(dir + "/c"), 0u);
  EXPECT_EQ(std::filesystem::file_size(dir + "/untracked"), 100u);
  EXPECT_EQ(std::filesystem::file_size(dir + "/d"), 100u) << "deleted, then made by someone else";
  EXPECT_EQ(r->files_truncated, 3);
  EXPECT_EQ(r->bytes_dropped, 60 + 30 + 100);
  EXPECT_EQ(DropUnsyncedData(dir + "/nope").status().code(), absl::StatusCode::kNotFound);
}

// Through RocksDB: a synced write survives dropping unsynced data, an unsynced
// one does not.
TEST(SyncJournalTest, RocksDbKeepsOnlySyncedWrites) {
  const std::string dir = TestDir("rocks");
  const std::string journal = dir + ".journal";
  std::filesystem::remove(journal);
  absl::StatusOr<std::shared_ptr<rocksdb::FileSystem>> fs = NewSyncJournalFileSystem(journal);
  ASSERT_TRUE(fs.ok()) << fs.status();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(*fs);
  rocksdb::Options options;
  options.create_if_missing = true;
  options.env = env.get();
  options.avoid_flush_during_shutdown = true;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir, &db).ok());
  rocksdb::WriteOptions synced;
  synced.sync = true;
  ASSERT_TRUE(db->Put(synced, "kept", "1").ok());
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "lost", "2").ok());
  // Closing without a flush or a WAL sync leaves the unsynced write only in the
  // page cache, as a process killed at this point would.
  delete db;
  absl::StatusOr<DropReport> r = DropUnsyncedData(journal);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->bytes_dropped, 0);
  ASSERT_TRUE(rocksdb::DB::Open(options, dir, &db).ok());
  std::string value;
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "kept", &value).ok());
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "lost", &value).IsNotFound());
  delete db;
}

}  // namespace
}  // namespace fjord::storage
