// What a broker does about damaged data in its own store.
//
// A flipped bit or a truncated file under --data-dir shows up as DATA_LOSS:
// at start-up (RocksDB's WAL, MANIFEST and table-file checks, and the
// checksum pass of StoreOptions::verify_checksums_on_open), or while running
// (the checksum of every block and record batch read). The broker must then
// neither serve nor lead from that data, and its replicas must come back from
// the other brokers:
//
//   - While running, StopOnDamage() writes a marker file into the data
//     directory and ends the process at once (exit code kExitDamagedData).
//     Its leaderships move to other in-sync replicas when its session ends,
//     as after any crash. Whatever restarts it (Kubernetes, systemd, the
//     chaos suite) starts the recovery below.
//   - At start-up, a cluster broker that finds damage (the marker, or
//     DATA_LOSS opening the store) moves every file of the store into
//     <data-dir>/damaged-<time>/ (kept for the operator, never read again) and
//     starts with an empty store. An empty store has a new incarnation id, so
//     the controller takes the broker out of every ISR and leadership it held
//     (KIP-903) and it fetches its replicas again from their leaders, joining
//     each ISR once caught up.
//   - A single-node broker has no replicas to recover from, and
//     --recover-damaged-data=false asks not to: the broker refuses to start,
//     saying where the damage is.
#ifndef FJORD_BROKER_DAMAGE_H_
#define FJORD_BROKER_DAMAGE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fjord::broker {

// The exit code of a broker that stopped on damaged data.
inline constexpr int kExitDamagedData = 3;

// The marker's name inside the data directory.
inline constexpr char kDamageMarker[] = "DAMAGED";

// Where StopOnDamage() writes its marker: `data_dir`. Call once at start-up.
void SetDamageDirectory(const std::string& data_dir);

// True for a status that says this broker's own stored data is damaged.
inline bool IsDamage(const absl::Status& s) {
  return s.code() == absl::StatusCode::kDataLoss;
}

// Logs `status` and `where`, writes the marker (synced) and ends the process
// with kExitDamagedData, without running destructors: nothing more is served
// from the damaged store.
[[noreturn]] void StopOnDamage(const absl::Status& status, absl::string_view where);

// `status` unchanged, unless it reports damage: then StopOnDamage.
inline absl::Status CheckDamage(absl::Status status, absl::string_view where) {
  if (IsDamage(status)) StopOnDamage(status, where);
  return status;
}

// The marker's text when `data_dir` has one (a broker stopped on damage).
absl::StatusOr<std::string> ReadDamageMarker(const std::string& data_dir);

// Moves every entry of `data_dir` except the embedded controller's
// (__controller) and earlier damaged-* directories into
// <data_dir>/damaged-<UTC time>/, and returns that path.
absl::StatusOr<std::string> QuarantineStore(const std::string& data_dir);

}  // namespace fjord::broker

#endif  // FJORD_BROKER_DAMAGE_H_
