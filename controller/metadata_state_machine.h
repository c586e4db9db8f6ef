// MetadataStateMachine: what the controller quorum replicates. Every controller
// applies the committed Raft entries (each one a MetadataBatch) in log order to
// its MetadataImage, and keeps the recent batches so brokers can follow the
// metadata log from an offset (ControllerService.FetchMetadata).
//
// Metadata offsets count records, as in Kafka: the first record ever committed is
// offset 0, and a batch of n records applied when next_offset() is o occupies
// o .. o+n-1. Entries without records (a new leader's barrier) take no offset.
// next_offset() is part of the snapshot, so it is the same on every controller
// after the same entries.
//
// Thread-safety: Apply, Snapshot and Restore come from the Raft driver thread;
// readers (gRPC handlers) use WithImage / ReadBatches / WaitForOffset from any
// thread. All of it is guarded by one mutex.
#ifndef FJORD_CONTROLLER_METADATA_STATE_MACHINE_H_
#define FJORD_CONTROLLER_METADATA_STATE_MACHINE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/metadata/metadata_image.h"
#include "fjord/internal/v1/controller.pb.h"

namespace fjord::controller {

class MetadataStateMachine {
 public:
  // Keeps at most `retained_records` records of recent batches for followers;
  // a broker asking for an older offset gets a snapshot instead.
  explicit MetadataStateMachine(size_t retained_records = 100000);

  // Applies one committed Raft entry. An entry whose data does not parse, or a
  // record the image rejects, is logged and skipped: every controller skips the
  // same records, so the images stay identical.
  void Apply(int64_t raft_index, absl::string_view data);

  // The state as bytes (a ControllerSnapshot), and back. Restore drops the
  // retained batches: followers behind the snapshot get the snapshot.
  std::string Snapshot() const;
  absl::Status Restore(absl::string_view data);

  // Runs `fn` with the image and next offset under the lock. `fn` must not call
  // back into this object.
  void WithImage(
      const std::function<void(const MetadataImage&, int64_t next_offset)>& fn)
      const;

  int64_t next_offset() const;
  // The Raft index of the last applied entry.
  int64_t applied_index() const;

  // Fills `out` for a broker that has everything below `from_offset`: whole
  // batches from there on (up to about `max_records`), or, when `from_offset`
  // is older than the retained batches (or beyond the end, a broker that saw
  // another history), a snapshot of the current image followed by nothing.
  // Returns false when there is nothing new.
  bool ReadFrom(int64_t from_offset, size_t max_records,
                fjord::internal::v1::FetchMetadataResponse* out) const;

  // Blocks until next_offset() > offset or `deadline`. True if it moved.
  bool WaitForOffset(int64_t offset, absl::Time deadline) const;

  // Blocks until applied_index() >= index or `deadline`. True if reached.
  bool WaitForApplied(int64_t index, absl::Time deadline) const;

 private:
  struct Batch {
    int64_t base_offset;
    std::vector<fjord::internal::v1::MetadataRecord> records;
  };

  const size_t retained_records_;
  mutable absl::Mutex mu_;
  MetadataImage image_ ABSL_GUARDED_BY(mu_);
  int64_t next_offset_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t applied_index_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Batch> batches_ ABSL_GUARDED_BY(mu_);
  size_t retained_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fjord::controller

#endif  // FJORD_CONTROLLER_METADATA_STATE_MACHINE_H_
