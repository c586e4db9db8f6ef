// Deterministic simulation of Raft clusters (see simulator.h).
//
// CI mode (default): runs seeds over 3- and 5-node clusters until at least
// 1,000,000 steps have been simulated, then prints the totals.
// Reproduce one run:   simulator_test --seed=S [--nodes=N] [--steps=K] [-v]
//                      (or FJORD_SIM_SEED=S)
// Soak for an hour:    FJORD_SIM_SECONDS=3600 simulator_test
#include "controller/raft/simulator.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "gtest/gtest.h"

namespace fjord::raft {
namespace {

std::optional<uint64_t> g_seed;
int g_nodes = 0;  // 0: alternate 3 and 5.
int64_t g_steps = 0;
bool g_verbose = false;

constexpr int64_t kStepsPerSeed = 100000;
// The brief asks for >= 1,000,000; the simulator is fast enough for 10x.
constexpr int64_t kCiTotalSteps = 10000000;

std::optional<uint64_t> EnvU64(const char* name) {
  const char* v = std::getenv(name);
  uint64_t out = 0;
  if (v == nullptr || !absl::SimpleAtoi(v, &out)) return std::nullopt;
  return out;
}

TEST(SimulatorTest, SafetyAndLivenessAcrossSeeds) {
  const std::optional<uint64_t> seconds = EnvU64("FJORD_SIM_SECONDS");
  const auto start = std::chrono::steady_clock::now();
  int64_t total_steps = 0;
  int seeds = 0;
  uint64_t first_seed = g_seed.value_or(1);
  for (uint64_t seed = first_seed;; ++seed) {
    if (g_seed.has_value() && seed != *g_seed) break;
    SimOptions o;
    o.seed = seed;
    o.nodes = g_nodes != 0 ? g_nodes : (seed % 2 == 1 ? 3 : 5);
    o.steps = g_steps != 0 ? g_steps : kStepsPerSeed;
    // Half the seeds run with a busy clock: more elections, more churn.
    o.busy_clock = (seed / 2) % 2 == 1;
    o.verbose = g_verbose;
    Simulator sim(o);
    absl::Status s = sim.Run();
    total_steps += sim.stats().steps;
    ++seeds;
    ASSERT_TRUE(s.ok()) << s << "\n  stats: " << sim.stats().ToString();
    // Every run must actually make progress, not just stay safe.
    EXPECT_GT(sim.stats().proposals_acked, 0) << "seed " << seed;
    if (g_seed.has_value()) {
      std::cout << "seed " << seed << ": " << sim.stats().ToString() << "\n";
      break;
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (seconds.has_value() ? elapsed >= static_cast<double>(*seconds)
                            : total_steps >= kCiTotalSteps) {
      break;
    }
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::cout << "simulated " << total_steps << " steps over " << seeds
            << " seeds (" << first_seed << ".." << first_seed + seeds - 1
            << ") in " << elapsed << " s\n";
  if (!g_seed.has_value() && !seconds.has_value()) {
    EXPECT_GE(total_steps, kCiTotalSteps);
  }
}

TEST(SimulatorTest, SameSeedSameRun) {
  SimOptions o;
  o.seed = 7;
  o.steps = 20000;
  Simulator a(o), b(o);
  ASSERT_TRUE(a.Run().ok());
  ASSERT_TRUE(b.Run().ok());
  EXPECT_EQ(a.stats().fingerprint, b.stats().fingerprint);
  EXPECT_EQ(a.stats().ToString(), b.stats().ToString());
  o.seed = 8;
  Simulator c(o);
  ASSERT_TRUE(c.Run().ok());
  EXPECT_NE(a.stats().fingerprint, c.stats().fingerprint);
}

TEST(SimulatorTest, SingleVoterCluster) {
  SimOptions o;
  o.nodes = 1;
  o.seed = 3;
  o.steps = 20000;
  Simulator sim(o);
  absl::Status s = sim.Run();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_GT(sim.stats().proposals_acked, 100);
}

// Runs seeds with a planted bug until the checker reports a violation;
// returns the first report (empty if none within the budget).
std::string FindViolation(SimOptions o, int max_seeds, int nodes = 0) {
  for (int seed = 1; seed <= max_seeds; ++seed) {
    o.seed = seed;
    o.nodes = nodes != 0 ? nodes : (seed % 2 == 1 ? 3 : 5);
    Simulator sim(o);
    absl::Status s = sim.Run();
    if (!s.ok()) return std::string(s.message());
  }
  return "";
}

TEST(SimulatorTest, CatchesPlantedDoubleVote) {
  SimOptions o;
  o.steps = 50000;
  o.knobs.vote_twice_in_a_term = true;
  // Only the election-safety check may catch it, not the direct vote check.
  o.check_persisted_votes = false;
  const std::string v = FindViolation(o, 40);
  std::cout << "planted double vote caught: " << v << "\n";
  EXPECT_NE(v.find("election safety"), std::string::npos) << v;
  EXPECT_NE(v.find("seed="), std::string::npos) << v;
}

TEST(SimulatorTest, CatchesPlantedDoubleVoteByVoteCheck) {
  SimOptions o;
  o.steps = 50000;
  o.knobs.vote_twice_in_a_term = true;
  const std::string v = FindViolation(o, 40);
  std::cout << "planted double vote caught: " << v << "\n";
  EXPECT_FALSE(v.empty());
}

TEST(SimulatorTest, CatchesPlantedOldTermCommitByCounting) {
  SimOptions o;
  o.steps = 50000;
  o.busy_clock = true;
  o.knobs.commit_old_term_entries_by_count = true;
  const std::string v = FindViolation(o, 1000);
  std::cout << "planted old-term commit caught: " << v << "\n";
  EXPECT_FALSE(v.empty());
}

}  // namespace
}  // namespace fjord::raft

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  using fjord::raft::g_nodes;
  using fjord::raft::g_seed;
  using fjord::raft::g_steps;
  using fjord::raft::g_verbose;
  g_seed = fjord::raft::EnvU64("FJORD_SIM_SEED");
  for (int i = 1; i < argc; ++i) {
    uint64_t v = 0;
    const std::string arg = argv[i];
    if (arg.rfind("--seed=", 0) == 0 && absl::SimpleAtoi(arg.substr(7), &v)) {
      g_seed = v;
    } else if (arg.rfind("--nodes=", 0) == 0 &&
               absl::SimpleAtoi(arg.substr(8), &v)) {
      g_nodes = static_cast<int>(v);
    } else if (arg.rfind("--steps=", 0) == 0 &&
               absl::SimpleAtoi(arg.substr(8), &v)) {
      g_steps = static_cast<int64_t>(v);
    } else if (arg == "-v" || arg == "--verbose") {
      g_verbose = true;
    } else {
      std::cerr << "unknown flag " << arg << "\n";
      return 2;
    }
  }
  if (g_seed.has_value()) {
    testing::GTEST_FLAG(filter) = "SimulatorTest.SafetyAndLivenessAcrossSeeds";
  }
  return RUN_ALL_TESTS();
}
