// Damaging a stopped broker's store on purpose, for the disk faults of the
// chaos suite (nemesis.h, damage-store) and disk_damage_test.
#ifndef FJORD_INTEGRATION_TESTS_CHAOS_DISK_DAMAGE_H_
#define FJORD_INTEGRATION_TESTS_CHAOS_DISK_DAMAGE_H_

#include <filesystem>
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace fjord::testing::chaos {

// The largest regular file directly in `dir` whose name ends in `suffix`
// (".sst": a table file, ".log": a write-ahead log); nullopt when none.
std::optional<std::filesystem::path> LargestFile(const std::string& dir,
                                                 const std::string& suffix);

// Flips the lowest bit of the byte in the middle of `path`, and syncs it.
absl::Status FlipMiddleBit(const std::filesystem::path& path);

}  // namespace fjord::testing::chaos

#endif  // FJORD_INTEGRATION_TESTS_CHAOS_DISK_DAMAGE_H_
