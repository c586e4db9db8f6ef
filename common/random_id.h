// Random identifiers: topic ids, cluster ids, incarnation ids.
#ifndef FJORD_COMMON_RANDOM_ID_H_
#define FJORD_COMMON_RANDOM_ID_H_

#include <string>

namespace fjord {

// 128 random bits as 32 lowercase hex digits. Thread-safe.
std::string RandomHexId();

}  // namespace fjord

#endif  // FJORD_COMMON_RANDOM_ID_H_
