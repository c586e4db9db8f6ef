// A small deterministic pseudo-random generator (SplitMix64). The Raft core
// takes one by value so that election timeouts are a pure function of the
// seed; the simulator drives a whole cluster from one.
#ifndef FJORD_CONTROLLER_RAFT_PRNG_H_
#define FJORD_CONTROLLER_RAFT_PRNG_H_

#include <cstdint>

namespace fjord::raft {

// Not thread-safe; not cryptographic. Same seed, same sequence, on every
// platform.
class Prng {
 public:
  explicit Prng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n); n must be > 0. (The modulo bias is irrelevant here.)
  uint64_t Uniform(uint64_t n) { return Next() % n; }

  // True with probability `per_million` / 1'000'000.
  bool OneIn(uint64_t n) { return Uniform(n) == 0; }
  bool Chance(uint32_t per_million) { return Uniform(1000000) < per_million; }

 private:
  uint64_t state_;
};

}  // namespace fjord::raft

#endif  // FJORD_CONTROLLER_RAFT_PRNG_H_
