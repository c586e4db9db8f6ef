// An in-process, in-memory broker for client tests: serves Metadata, Produce,
// Fetch, ListOffsets and DescribeTopics on 127.0.0.1 with an ephemeral port,
// and lets a test inject failures. Several fakes can pose as one cluster
// (AddBroker, SetLeader): each answers NOT_LEADER for the partitions it does
// not lead, as real brokers do; they share no data.
#ifndef FJORD_CLIENT_TESTING_FAKE_BROKER_H_
#define FJORD_CLIENT_TESTING_FAKE_BROKER_H_

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "fjord/v1/record.pb.h"
#include "grpcpp/grpcpp.h"

namespace fjord::client::testing {

// A failed status carrying fjord.v1.ErrorInfo in its details, as brokers send.
grpc::Status StatusWithErrorInfo(grpc::StatusCode code,
                                 const std::string& message,
                                 const fjord::v1::ErrorInfo& info);

// Thread-safe.
class FakeBroker {
 public:
  // `id`: this broker's id in the metadata it reports.
  explicit FakeBroker(int32_t id = 1);
  ~FakeBroker();

  // "127.0.0.1:PORT".
  std::string address() const { return address_; }

  void CreateTopic(const std::string& name, int partitions);

  // Another broker of the cluster, listed in Metadata (at "127.0.0.1:PORT").
  void AddBroker(int32_t id, const std::string& address);

  // Which broker leads the partition (by default this one; -1: none). Only the
  // leader answers Produce, Fetch and ListOffsets, and reports the partition's
  // offsets in DescribeTopics; an open Fetch stream ends with NOT_LEADER.
  void SetLeader(const std::string& topic, int partition, int32_t leader_id);

  // Appends a record with `value` (and no key) directly, leader or not.
  void Append(const std::string& topic, int partition,
              const std::string& value);

  // The next Produce / Fetch / ListOffsets calls answer these statuses, in
  // order, without doing anything.
  void FailNextProduces(std::vector<grpc::Status> statuses);
  void FailNextFetches(std::vector<grpc::Status> statuses);
  void FailNextListOffsets(std::vector<grpc::Status> statuses);

  // Stored records of a partition, in offset order.
  std::vector<fjord::v1::Record> Log(const std::string& topic, int partition);

  int produce_calls();
  int fetch_calls();
  int list_offsets_calls();

 private:
  class Service;
  friend class Service;

  // NOT_LEADER (with the leader's id and address) unless this broker leads
  // the partition; OK for an unknown one (the caller reports it).
  grpc::Status CheckLeader(const std::string& topic, int partition)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int32_t LeaderOf(const std::string& topic, int partition)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int32_t id_;
  absl::Mutex mu_;
  absl::CondVar appended_;
  // topic -> partition -> records.
  std::map<std::string, std::vector<std::vector<fjord::v1::Record>>> topics_
      ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int>, int32_t> leaders_ ABSL_GUARDED_BY(mu_);
  std::map<int32_t, std::string> peers_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::Status> failures_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::Status> fetch_failures_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::Status> list_failures_ ABSL_GUARDED_BY(mu_);
  int produce_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int fetch_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int list_offsets_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int port_ = 0;
  std::string address_;

  std::unique_ptr<Service> metadata_;
  std::unique_ptr<grpc::Service> produce_, fetch_, admin_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace fjord::client::testing

#endif  // FJORD_CLIENT_TESTING_FAKE_BROKER_H_
