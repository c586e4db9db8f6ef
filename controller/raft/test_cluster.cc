#include "controller/raft/test_cluster.h"

#include <cstdlib>
#include <deque>
#include <iostream>

namespace fjord::raft::testing {

std::vector<NodeId> Ids(std::initializer_list<uint64_t> ids) {
  std::vector<NodeId> out;
  for (uint64_t id : ids) out.push_back(NodeId(id));
  return out;
}

Config TestConfig(NodeId id, std::vector<NodeId> voters, const Storage* s,
                  int election, int heartbeat) {
  Config c;
  c.id = id;
  c.voters = std::move(voters);
  c.storage = s;
  c.election_tick = election;
  c.heartbeat_tick = heartbeat;
  c.seed = 42;
  return c;
}

std::vector<Message> Drain(TestNode& node) {
  std::vector<Message> out;
  while (node.raft->HasReady()) {
    raft::Ready rd = node.raft->Ready();
    if (rd.snapshot.has_value()) {
      if (!node.storage->ApplySnapshot(*rd.snapshot).ok()) std::abort();
    }
    if (!node.storage->Append(rd.entries).ok()) std::abort();
    if (rd.hard_state.has_value()) node.storage->SetHardState(*rd.hard_state);
    for (Message& m : rd.messages) out.push_back(std::move(m));
    if (rd.snapshot.has_value()) node.applied.clear();
    for (const Entry& e : rd.committed_entries) {
      if (e.type == EntryType::kNormal) node.applied.push_back(e);
    }
    for (const ReadState& rs : rd.read_states) node.read_states.push_back(rs);
    node.raft->Advance();
  }
  return out;
}

Cluster::Cluster(int n, std::function<void(Config&)> config_hook,
                 std::function<void(NodeId, MemoryStorage&)> storage_hook)
    : hook_(std::move(config_hook)) {
  for (int i = 1; i <= n; ++i) ids_.push_back(NodeId(i));
  for (NodeId id : ids_) {
    TestNode& tn = nodes_[id];
    tn.storage = std::make_unique<MemoryStorage>();
    if (storage_hook) storage_hook(id, *tn.storage);
    auto r = Raft::Create(MakeConfig(id));
    if (!r.ok()) {
      std::cerr << r.status() << "\n";
      std::abort();
    }
    tn.raft = std::move(*r);
  }
}

Config Cluster::MakeConfig(NodeId id) {
  Config c = TestConfig(id, ids_, nodes_.at(id).storage.get());
  c.seed = 42 + id.value();
  if (hook_) hook_(c);
  return c;
}

bool Cluster::Allowed(const Message& m) const {
  if (dropped_types_.count(m.type)) return false;
  return !cut_.count({m.from, m.to});
}

void Cluster::Send(std::vector<Message> msgs) {
  std::deque<Message> q(msgs.begin(), msgs.end());
  for (;;) {
    for (NodeId id : ids_) {
      for (Message& m : Drain(nodes_.at(id))) q.push_back(std::move(m));
    }
    if (q.empty()) return;
    Message m = std::move(q.front());
    q.pop_front();
    if (!Allowed(m)) {
      dropped_.push_back(std::move(m));
      continue;
    }
    (void)nodes_.at(m.to).raft->Step(m);
  }
}

void Cluster::Stabilize() { Send({}); }

void Cluster::TickAll() {
  for (NodeId id : ids_) nodes_.at(id).raft->Tick();
  Stabilize();
}

void Cluster::Elect(uint64_t id) {
  raft(id).Campaign();
  Stabilize();
}

void Cluster::Isolate(uint64_t id) {
  for (NodeId other : ids_) {
    if (other == NodeId(id)) continue;
    cut_.insert({NodeId(id), other});
    cut_.insert({other, NodeId(id)});
  }
}

void Cluster::Cut(uint64_t a, uint64_t b) {
  cut_.insert({NodeId(a), NodeId(b)});
  cut_.insert({NodeId(b), NodeId(a)});
}

void Cluster::Heal() {
  cut_.clear();
  dropped_types_.clear();
}

void Cluster::Restart(uint64_t id) {
  TestNode& tn = nodes_.at(NodeId(id));
  auto r = Raft::Create(MakeConfig(NodeId(id)));
  if (!r.ok()) std::abort();
  tn.raft = std::move(*r);
  tn.applied.clear();
}

}  // namespace fjord::raft::testing
