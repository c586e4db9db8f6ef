// An in-process, single-node, in-memory broker for client tests: serves
// Metadata, Produce, Fetch and ListOffsets on 127.0.0.1 with an ephemeral port,
// and lets a test inject Produce failures.
#ifndef FJORD_CLIENT_TESTING_FAKE_BROKER_H_
#define FJORD_CLIENT_TESTING_FAKE_BROKER_H_

#include <deque>
#include <map>
#include <memory>
#include <string>
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
  FakeBroker();
  ~FakeBroker();

  // "127.0.0.1:PORT".
  std::string address() const { return address_; }

  void CreateTopic(const std::string& name, int partitions);

  // The next Produce calls answer these statuses, in order, without appending.
  void FailNextProduces(std::vector<grpc::Status> statuses);

  // Stored records of a partition, in offset order.
  std::vector<fjord::v1::Record> Log(const std::string& topic, int partition);

  int produce_calls();

 private:
  class Service;
  friend class Service;

  absl::Mutex mu_;
  absl::CondVar appended_;
  // topic -> partition -> records.
  std::map<std::string, std::vector<std::vector<fjord::v1::Record>>> topics_
      ABSL_GUARDED_BY(mu_);
  std::deque<grpc::Status> failures_ ABSL_GUARDED_BY(mu_);
  int produce_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int port_ = 0;
  std::string address_;

  std::unique_ptr<Service> metadata_;
  std::unique_ptr<grpc::Service> produce_, fetch_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace fjord::client::testing

#endif  // FJORD_CLIENT_TESTING_FAKE_BROKER_H_
