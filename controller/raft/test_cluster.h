// Test helpers: drive Raft nodes the way a real driver does (persist, send,
// apply, Advance) over a lossless in-process network with drop filters.
#ifndef FJORD_CONTROLLER_RAFT_TEST_CLUSTER_H_
#define FJORD_CONTROLLER_RAFT_TEST_CLUSTER_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "controller/raft/memory_storage.h"
#include "controller/raft/raft.h"
#include "controller/raft/types.h"

namespace fjord::raft::testing {

std::vector<NodeId> Ids(std::initializer_list<uint64_t> ids);

Config TestConfig(NodeId id, std::vector<NodeId> voters, const Storage* s,
                  int election = 10, int heartbeat = 1);

// One node: its durable storage, its Raft, and what it applied.
struct TestNode {
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<Raft> raft;
  std::vector<Entry> applied;          // Normal entries, in order.
  std::vector<ReadState> read_states;  // All read states seen.
};

// Processes every pending Ready of `node` in driver order and returns the
// messages it would send.
std::vector<Message> Drain(TestNode& node);

class Cluster {
 public:
  // Nodes 1..n; all voters. `config_hook` may adjust each node's Config.
  // `storage_hook` may pre-populate each node's storage.
  explicit Cluster(
      int n, std::function<void(Config&)> config_hook = nullptr,
      std::function<void(NodeId, MemoryStorage&)> storage_hook = nullptr);

  TestNode& node(uint64_t id) { return nodes_.at(NodeId(id)); }
  Raft& raft(uint64_t id) { return *node(id).raft; }

  // Delivers messages (and the messages they cause) until none are left.
  void Stabilize();
  // Injects messages then stabilizes.
  void Send(std::vector<Message> msgs);
  // Ticks every node once, then stabilizes.
  void TickAll();
  // Campaigns node `id` and stabilizes.
  void Elect(uint64_t id);

  // Network filters.
  void Isolate(uint64_t id);
  void Cut(uint64_t a, uint64_t b);
  void Heal();
  void DropType(MessageType t) { dropped_types_.insert(t); }

  // Crash: forget the Raft object; restart it from its storage.
  void Restart(uint64_t id);

  // Messages dropped by filters (for assertions).
  const std::vector<Message>& dropped() const { return dropped_; }

 private:
  bool Allowed(const Message& m) const;
  Config MakeConfig(NodeId id);

  std::map<NodeId, TestNode> nodes_;
  std::vector<NodeId> ids_;
  std::function<void(Config&)> hook_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::set<MessageType> dropped_types_;
  std::vector<Message> dropped_;
};

}  // namespace fjord::raft::testing

#endif  // FJORD_CONTROLLER_RAFT_TEST_CLUSTER_H_
