#include "integration_tests/chaos/checker.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fjord::testing::chaos {
namespace {

constexpr int kMaxDetailsPerKind = 20;

std::string Name(const TopicPartition& tp) {
  return absl::StrCat(tp.topic, "/", tp.partition);
}

// Everything the history says about one value of one topic.
struct ValueInfo {
  std::set<int32_t> partitions;  // where produces sent it
  std::vector<const Op*> produces;
  bool ok = false;
  bool unknown = false;  // some produce indeterminate or pending
};

class Checker {
 public:
  Checker(const std::vector<Op>& ops, const FinalReads& final_reads,
          const std::vector<FaultRecord>& faults)
      : ops_(ops), final_(final_reads), faults_(faults) {}

  CheckResult Run() {
    IndexProduces();
    CheckFinalReads();
    CheckAcks();
    CheckMidRunReads();
    CheckOrder();
    CheckRecovery();
    return std::move(result_);
  }

 private:
  void Detail(const std::string& kind, std::string text) {
    if (++detail_counts_[kind] <= kMaxDetailsPerKind) {
      result_.details.push_back(absl::StrCat(kind, ": ", text));
    }
  }

  const ValueInfo* Find(const std::string& topic, const std::string& value) {
    auto it = values_.find({topic, value});
    return it == values_.end() ? nullptr : &it->second;
  }

  void IndexProduces() {
    for (const Op& op : ops_) {
      if (op.type == OpType::kRead) {
        ++result_.read_ops;
        continue;
      }
      ++result_.produce_ops;
      ValueInfo& info = values_[{op.topic, op.value}];
      info.partitions.insert(op.partition);
      info.produces.push_back(&op);
      info.ok |= op.outcome == Outcome::kOk;
      info.unknown |= op.outcome == Outcome::kIndeterminate ||
                      op.outcome == Outcome::kPending;
    }
    for (const auto& [key, info] : values_) {
      if (info.ok) {
        ++result_.acked;
      } else if (info.unknown) {
        ++result_.indeterminate;
      } else {
        ++result_.failed;
      }
    }
  }

  // A record read on `tp`: was it ever sent there, and not definitely failed?
  // Each (partition, value) is judged once however often it is read.
  void JudgeRead(const TopicPartition& tp, const ReadRecord& r,
                 const char* where) {
    if (!judged_.insert({tp, r.value}).second) return;
    const ValueInfo* info = Find(tp.topic, r.value);
    if (info == nullptr || info->partitions.count(tp.partition) == 0) {
      ++result_.unexpected;
      Detail("unexpected",
             absl::StrCat(Name(tp), " offset=", r.offset, " value=", r.value,
                          " (", where, "): never sent to this partition"));
      return;
    }
    if (!info->ok && !info->unknown) {
      ++result_.read_from_failed;
      std::vector<std::string> attempts;
      for (const Op* op : info->produces) {
        attempts.push_back(absl::StrCat("op ", op->id, ": ", op->error));
      }
      Detail("read_from_failed",
             absl::StrCat(Name(tp), " offset=", r.offset, " value=", r.value,
                          " (", where, "); every produce failed: ",
                          absl::StrJoin(attempts, "; ")));
    }
  }

  void CheckFinalReads() {
    for (const auto& [tp, records] : final_) {
      result_.records_read += static_cast<int64_t>(records.size());
      std::map<std::string, std::vector<int64_t>>& offsets = offsets_[tp];
      int64_t expected = 0;
      for (const ReadRecord& r : records) {
        if (r.offset != expected) {
          ++result_.offset_gaps;
          Detail("offset_gap", absl::StrCat(Name(tp), " expected offset ",
                                            expected, ", read ", r.offset));
        }
        expected = r.offset + 1;
        at_[tp][r.offset] = r.value;
        offsets[r.value].push_back(r.offset);
        JudgeRead(tp, r, "final read");
      }
      for (const auto& [value, where] : offsets) {
        if (where.size() > 1) {
          ++result_.duplicated;
          Detail("duplicated",
                 absl::StrCat(Name(tp), " value=", value, " at offsets ",
                              absl::StrJoin(where, ",")));
        }
      }
    }
  }

  // The value the final read shows at `offset`, or nullptr when it ends before.
  const std::string* FinalAt(const TopicPartition& tp, int64_t offset) {
    auto p = at_.find(tp);
    if (p == at_.end()) return nullptr;
    auto it = p->second.find(offset);
    return it == p->second.end() ? nullptr : &it->second;
  }

  void DoubleValued(const TopicPartition& tp, int64_t offset,
                    const std::string& seen, const std::string* final_value,
                    const std::string& how) {
    if (!double_.insert({tp, offset}).second) return;
    ++result_.double_valued;
    Detail("double_valued",
           absl::StrCat(Name(tp), " offset=", offset, ": ", how, " ", seen,
                        ", final read ",
                        final_value == nullptr
                            ? std::string("has no record there")
                            : absl::StrCat("has ", *final_value)));
  }

  void CheckAcks() {
    for (const auto& [key, info] : values_) {
      if (!info.ok) continue;
      for (const Op* op : info.produces) {
        if (op->outcome != Outcome::kOk) continue;
        const TopicPartition tp{op->topic, op->partition};
        auto p = offsets_.find(tp);
        const bool found = p != offsets_.end() && p->second.count(op->value);
        if (!found && lost_.insert({tp, op->value}).second) {
          ++result_.lost;
          Detail(
              "lost",
              absl::StrCat(Name(tp), " value=", op->value, " acked at offset ",
                           op->offset, " by op ", op->id, " (process ",
                           op->process, ", broker ", op->broker, ")"));
        }
        const std::string* final_value = FinalAt(tp, op->offset);
        if (final_value == nullptr || *final_value != op->value) {
          DoubleValued(tp, op->offset, op->value, final_value,
                       absl::StrCat("op ", op->id, " acked"));
        }
      }
    }
  }

  void CheckMidRunReads() {
    for (const Op& op : ops_) {
      if (op.type != OpType::kRead || op.outcome != Outcome::kOk) continue;
      const TopicPartition tp{op.topic, op.partition};
      for (const ReadRecord& r : op.records) {
        JudgeRead(tp, r, absl::StrCat("read op ", op.id).c_str());
        const std::string* final_value = FinalAt(tp, r.offset);
        if (final_value == nullptr || *final_value != r.value) {
          DoubleValued(tp, r.offset, r.value, final_value,
                       absl::StrCat("read op ", op.id, " saw"));
        }
      }
    }
  }

  void CheckOrder() {
    // (process, partition) -> ok produces in completion order. A process is
    // sequential, so completion order is invocation order.
    std::map<std::pair<int, TopicPartition>, std::vector<const Op*>> acked;
    for (const Op& op : ops_) {
      if (op.type == OpType::kProduce && op.outcome == Outcome::kOk) {
        acked[{op.process, {op.topic, op.partition}}].push_back(&op);
      }
    }
    for (auto& [key, list] : acked) {
      const TopicPartition& tp = key.second;
      std::stable_sort(list.begin(), list.end(), [](const Op* a, const Op* b) {
        return a->completed < b->completed;
      });
      auto p = offsets_.find(tp);
      if (p == offsets_.end()) continue;
      const Op* previous = nullptr;
      int64_t previous_offset = -1;
      for (const Op* op : list) {
        auto it = p->second.find(op->value);
        if (it == p->second.end()) continue;  // lost: counted already
        const int64_t first = it->second.front();
        if (previous != nullptr && previous->value != op->value &&
            first < previous_offset) {
          ++result_.reordered;
          Detail("reordered",
                 absl::StrCat(Name(tp), " process ", key.first, " acked ",
                              previous->value, " (op ", previous->id,
                              ") before ", op->value, " (op ", op->id,
                              ") but they are at offsets ", previous_offset,
                              " and ", first));
        }
        previous = op;
        previous_offset = first;
      }
    }
  }

  void CheckRecovery() {
    // Per partition, ok produces by completion time.
    std::map<TopicPartition, std::vector<absl::Time>> oks;
    std::map<TopicPartition, absl::Time> last_invoked;
    for (const Op& op : ops_) {
      if (op.type != OpType::kProduce) continue;
      const TopicPartition tp{op.topic, op.partition};
      if (op.outcome == Outcome::kOk) oks[tp].push_back(op.completed);
      auto [it, inserted] = last_invoked.emplace(tp, op.invoked);
      if (!inserted) it->second = std::max(it->second, op.invoked);
    }
    for (auto& [tp, times] : oks) std::sort(times.begin(), times.end());
    for (const FaultRecord& fault : faults_) {
      if (fault.healed == absl::InfiniteFuture()) continue;
      Recovery r;
      r.fault_index = fault.index;
      r.kind = fault.kind;
      r.target = fault.target;
      int64_t worst = 0;
      bool recovered = true;
      for (const auto& [tp, last] : last_invoked) {
        if (last < fault.healed) continue;  // not written after the heal
        auto it = oks.find(tp);
        const std::vector<absl::Time>* times =
            it == oks.end() ? nullptr : &it->second;
        auto first =
            times == nullptr
                ? std::vector<absl::Time>::const_iterator()
                : std::upper_bound(times->begin(), times->end(), fault.healed);
        if (times == nullptr || first == times->end()) {
          recovered = false;
          r.slowest = Name(tp);
          break;
        }
        const int64_t ms = absl::ToInt64Milliseconds(*first - fault.healed);
        if (ms >= worst) {
          worst = ms;
          r.slowest = Name(tp);
        }
      }
      if (recovered) {
        r.recovery_ms = worst;
        result_.max_recovery_ms = std::max(result_.max_recovery_ms, worst);
      } else {
        ++result_.unrecovered;
        Detail("unrecovered",
               absl::StrCat("fault ", fault.index, " ", fault.kind, " ",
                            fault.target, ": ", r.slowest,
                            " acknowledged no write after the heal"));
      }
      result_.recoveries.push_back(std::move(r));
    }
  }

  const std::vector<Op>& ops_;
  const FinalReads& final_;
  const std::vector<FaultRecord>& faults_;
  CheckResult result_;

  std::map<std::pair<std::string, std::string>, ValueInfo> values_;
  // Final read: partition -> value -> offsets, and partition -> offset ->
  // value.
  std::map<TopicPartition, std::map<std::string, std::vector<int64_t>>>
      offsets_;
  std::map<TopicPartition, std::map<int64_t, std::string>> at_;
  std::set<std::pair<TopicPartition, std::string>> judged_;
  std::set<std::pair<TopicPartition, std::string>> lost_;
  std::set<std::pair<TopicPartition, int64_t>> double_;
  std::map<std::string, int> detail_counts_;
};

}  // namespace

bool CheckResult::valid() const {
  return lost == 0 && unexpected == 0 && read_from_failed == 0 &&
         double_valued == 0 && reordered == 0 && offset_gaps == 0 &&
         unrecovered == 0 && double_owned == 0;
}

std::string CheckResult::Summary(uint64_t seed, int faults) const {
  return absl::StrCat("run seed=", seed, " faults=", faults, " acked=", acked,
                      " lost=", lost, " unexpected=", unexpected,
                      " duplicated=", duplicated, " reordered=", reordered,
                      " double_owned=", double_owned,
                      " max_recovery_ms=", max_recovery_ms);
}

std::string CheckResult::Report() const {
  std::string out = absl::StrCat(
      "checker: produce_ops=", produce_ops, " read_ops=", read_ops,
      " acked=", acked, " indeterminate=", indeterminate, " failed=", failed,
      " records_read=", records_read, " lost=", lost,
      " unexpected=", unexpected, " read_from_failed=", read_from_failed,
      " duplicated=", duplicated, " double_valued=", double_valued,
      " reordered=", reordered, " offset_gaps=", offset_gaps,
      " unrecovered=", unrecovered, " valid=", valid() ? "yes" : "NO", "\n");
  for (const Recovery& r : recoveries) {
    absl::StrAppend(&out, "recovery: fault=", r.fault_index, " kind=", r.kind,
                    " target=", r.target, " recovery_ms=", r.recovery_ms,
                    " slowest=", r.slowest, "\n");
  }
  for (const std::string& d : details) absl::StrAppend(&out, "  ", d, "\n");
  return out;
}

CheckResult Check(const std::vector<Op>& ops, const FinalReads& final_reads,
                  const std::vector<FaultRecord>& faults) {
  return Checker(ops, final_reads, faults).Run();
}

}  // namespace fjord::testing::chaos
