#include "controller/metadata_state_machine.h"

#include "glog/logging.h"

namespace fjord::controller {

namespace fiv1 = fjord::internal::v1;

MetadataStateMachine::MetadataStateMachine(size_t retained_records)
    : retained_records_(retained_records) {}

void MetadataStateMachine::Apply(int64_t raft_index, absl::string_view data) {
  fiv1::MetadataBatch batch;
  const bool parsed = batch.ParseFromArray(data.data(), static_cast<int>(data.size()));
  absl::MutexLock lock(&mu_);
  applied_index_ = raft_index;
  if (!parsed) {
    LOG(ERROR) << "metadata entry " << raft_index << " does not parse; skipped";
    return;
  }
  if (batch.records_size() == 0) return;
  Batch kept{next_offset_, {}};
  for (const fiv1::MetadataRecord& record : batch.records()) {
    absl::Status s = image_.Apply(record);
    if (!s.ok()) {
      LOG(ERROR) << "metadata record at offset " << next_offset_ << " (entry "
                 << raft_index << ") rejected: " << s;
    }
    kept.records.push_back(record);
    ++next_offset_;
  }
  retained_ += kept.records.size();
  batches_.push_back(std::move(kept));
  while (retained_ > retained_records_ && batches_.size() > 1) {
    retained_ -= batches_.front().records.size();
    batches_.pop_front();
  }
}

std::string MetadataStateMachine::Snapshot() const {
  absl::MutexLock lock(&mu_);
  fiv1::ControllerSnapshot snapshot;
  *snapshot.mutable_image() = image_.Snapshot();
  snapshot.set_next_offset(next_offset_);
  return snapshot.SerializeAsString();
}

absl::Status MetadataStateMachine::Restore(absl::string_view data) {
  fiv1::ControllerSnapshot snapshot;
  if (!snapshot.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return absl::DataLossError("controller snapshot does not parse");
  }
  MetadataImage image;
  if (absl::Status s = image.Restore(snapshot.image()); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  image_ = std::move(image);
  next_offset_ = snapshot.next_offset();
  batches_.clear();
  retained_ = 0;
  return absl::OkStatus();
}

void MetadataStateMachine::WithImage(
    const std::function<void(const MetadataImage&, int64_t)>& fn) const {
  absl::ReaderMutexLock lock(&mu_);
  fn(image_, next_offset_);
}

int64_t MetadataStateMachine::next_offset() const {
  absl::ReaderMutexLock lock(&mu_);
  return next_offset_;
}

int64_t MetadataStateMachine::applied_index() const {
  absl::ReaderMutexLock lock(&mu_);
  return applied_index_;
}

bool MetadataStateMachine::ReadFrom(int64_t from_offset, size_t max_records,
                                    fiv1::FetchMetadataResponse* out) const {
  absl::ReaderMutexLock lock(&mu_);
  if (from_offset == next_offset_) return false;
  const bool retained = !batches_.empty() &&
                        from_offset >= batches_.front().base_offset &&
                        from_offset < next_offset_;
  if (!retained) {
    // Too old (compacted away, or never retained after a restore), or ahead of
    // us: start the broker over from the whole image.
    *out->mutable_snapshot() = image_.Snapshot();
    out->set_snapshot_offset(next_offset_);
    out->set_base_offset(next_offset_);
    out->set_next_offset(next_offset_);
    return true;
  }
  // Find the batch holding from_offset; batches are sent whole (they are atomic),
  // so a broker always asks at a batch boundary.
  auto it = batches_.begin();
  while (it + 1 != batches_.end() && (it + 1)->base_offset <= from_offset) ++it;
  out->set_base_offset(it->base_offset);
  int64_t next = it->base_offset;
  for (; it != batches_.end(); ++it) {
    if (out->records_size() > 0 &&
        out->records_size() + it->records.size() > max_records) {
      break;
    }
    for (const auto& r : it->records) *out->add_records() = r;
    next = it->base_offset + static_cast<int64_t>(it->records.size());
  }
  out->set_next_offset(next);
  return true;
}

bool MetadataStateMachine::WaitForOffset(int64_t offset, absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto moved = [this, offset]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return next_offset_ > offset;
  };
  return mu_.AwaitWithDeadline(absl::Condition(&moved), deadline);
}

bool MetadataStateMachine::WaitForApplied(int64_t index, absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, index]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return applied_index_ >= index;
  };
  return mu_.AwaitWithDeadline(absl::Condition(&reached), deadline);
}

}  // namespace fjord::controller
