#include "common/random_id.h"

#include "absl/random/random.h"
#include "absl/strings/escaping.h"

namespace fjord {

std::string RandomHexId() {
  absl::BitGen gen;
  std::string bytes(16, '\0');
  for (char& c : bytes) c = static_cast<char>(absl::Uniform<uint8_t>(gen));
  return absl::BytesToHexString(bytes);
}

}  // namespace fjord
