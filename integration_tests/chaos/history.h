// The operation history of a chaos run: every client operation, as the client
// saw it, plus every fault the nemesis injected. The checker (checker.h) judges
// a run from this history and a final read of every partition, in the manner of
// Jepsen's histories: an operation is invoked, then completes ok, failed or
// indeterminate (or never completes, when the run ends first).
//
// Outcomes of a produce, and why (ClassifyProduceStatus below):
//
//   ok             the broker answered OK with an offset. With acks=all that
//                  offset is committed: every later read must show this value
//                  there.
//   failed         the broker definitely did not append the record. Only
//                  answers that the broker sends BEFORE it appends count:
//                    INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, OUT_OF_RANGE,
//                    RESOURCE_EXHAUSTED, PERMISSION_DENIED, UNAUTHENTICATED,
//                    UNIMPLEMENTED: validation and lookup refusals, all
//                      checked before the append;
//                    UNAVAILABLE with ErrorInfo{NOT_ENOUGH_REPLICAS} (the ISR
//                      check runs before the append: "nothing was appended") or
//                      ErrorInfo{SHUTTING_DOWN} (checked first of all);
//                    UNAVAILABLE with ErrorInfo{NOT_LEADER} only when the
//                      message is the pre-append lookup refusal of a broker
//                      that does not lead the partition ("this broker does not
//                      lead partition ..." / "... has no leader right now ...")
//                      and does not say "may or may not".
//                  A client-side refusal before anything was sent (no leader
//                  known) is failed too.
//   indeterminate  the record may or may not have been appended (and may or
//                  may not become committed). Everything else, in particular:
//                    DEADLINE_EXCEEDED (client timeout, or the broker's
//                      "on the leader but not yet on every in-sync replica"),
//                    CANCELLED, UNKNOWN, INTERNAL, DATA_LOSS,
//                    ABORTED and FAILED_PRECONDITION (fenced epochs: refused
//                      before the append today, but storage uses these codes
//                      too, so they are not taken as proof),
//                    UNAVAILABLE without ErrorInfo (transport: the connection
//                      broke or was refused; the client cannot tell whether
//                      the request left),
//                    UNAVAILABLE NOT_LEADER from a leader that lost leadership
//                      while it waited for its followers ("lost leadership
//                      before the batch was replicated ...; it may or may not
//                      be committed"): the record is in its log and may have
//                      reached the new leader,
//                    UNAVAILABLE NOT_LEADER with a message this code does not
//                      recognise (conservative: an unknown wording is never
//                      taken as proof that nothing was appended).
// Misclassifying a possibly-appended write as failed would make the checker
// report a false "read from a failed write"; misclassifying the other way only
// weakens that one check. So every doubt resolves to indeterminate.
//
// Thread-safe: producers, readers and the nemesis record concurrently.
#ifndef FJORD_INTEGRATION_TESTS_CHAOS_HISTORY_H_
#define FJORD_INTEGRATION_TESTS_CHAOS_HISTORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"

namespace fjord::testing::chaos {

enum class OpType {
  kProduce,  // one record, acks=all, to one partition
  kRead,     // a fetch of committed records (below the high watermark)
};

enum class Outcome {
  kPending,  // invoked, not completed (the run ended first): indeterminate
  kOk,
  kFailed,
  kIndeterminate,
};

// "pending", "ok", "failed", "indeterminate".
const char* OutcomeName(Outcome outcome);

// One record as a read saw it.
struct ReadRecord {
  int64_t offset = 0;
  std::string key;
  std::string value;

  bool operator==(const ReadRecord&) const = default;
};

struct Op {
  int64_t id = 0;  // assigned by History::Invoke, from 0
  // The logical client that issued it. A process issues one operation at a
  // time (invoke, then complete), so its operations are totally ordered.
  int process = 0;
  OpType type = OpType::kProduce;
  std::string topic;
  int32_t partition = 0;
  // Produce: the record. Values are unique per run (a retry resends the same
  // value as a new operation: that is how duplicates arise).
  std::string key;
  std::string value;
  absl::Time invoked;
  absl::Time completed;  // absl::InfinitePast() while pending
  Outcome outcome = Outcome::kPending;
  // Produce ok: the offset the broker assigned (base offset of the batch).
  int64_t offset = -1;
  // The broker the request went to (0: none, nothing was sent).
  int broker = 0;
  // Not ok: the gRPC code name and message, for reports.
  std::string error;
  // Read ok: the records returned, in offset order.
  std::vector<ReadRecord> records;
};

// A fault as the nemesis injected and healed it. The checker measures
// recovery from `healed`.
struct FaultRecord {
  int index = 0;       // position in the schedule
  std::string kind;    // e.g. "kill-leader" (see nemesis.h)
  std::string target;  // the node(s) actually hit, e.g. "broker-2"
  absl::Time started;
  absl::Time healed;  // absl::InfiniteFuture() if the heal did not finish
  std::string note;   // errors while injecting or healing, empty when clean
};

// The outcome of a produce answer, per the table in the file comment.
Outcome ClassifyProduceStatus(const grpc::Status& status);

class History {
 public:
  // Records an invocation now. `op.id`, `op.invoked`, `op.outcome` are set
  // here. Returns the id to pass to Complete.
  int64_t Invoke(Op op);
  // Completes a produce (offset meaningful only for kOk) or a failed read.
  void Complete(int64_t id, Outcome outcome, int64_t offset = -1,
                std::string error = "", int broker = 0);
  // Completes a read with the records it returned.
  void CompleteRead(int64_t id, std::vector<ReadRecord> records);

  void AddFault(FaultRecord fault);

  // Copies, for the checker and reports.
  std::vector<Op> ops() const;
  std::vector<FaultRecord> faults() const;

  // Counters for progress reports.
  int64_t acked() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<Op> ops_ ABSL_GUARDED_BY(mu_);  // index == id
  std::vector<FaultRecord> faults_ ABSL_GUARDED_BY(mu_);
  int64_t acked_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fjord::testing::chaos

#endif  // FJORD_INTEGRATION_TESTS_CHAOS_HISTORY_H_
