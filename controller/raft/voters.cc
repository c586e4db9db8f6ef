#include "controller/raft/voters.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace fjord::raft {
namespace {

absl::Status Bad(absl::string_view item, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "--controller-quorum-voters: bad voter \"", item, "\": ", why,
      " (want ID@HOST:PORT,... e.g. 1@127.0.0.1:9093)"));
}

}  // namespace

absl::StatusOr<std::vector<Voter>> ParseVoters(absl::string_view spec) {
  spec = absl::StripAsciiWhitespace(spec);
  if (spec.empty()) {
    return absl::InvalidArgumentError(
        "--controller-quorum-voters: empty (want ID@HOST:PORT,... e.g. "
        "1@127.0.0.1:9093)");
  }
  std::vector<Voter> out;
  std::set<uint64_t> ids;
  std::set<std::string> addresses;
  for (absl::string_view item : absl::StrSplit(spec, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) return Bad(item, "empty item");
    const size_t at = item.find('@');
    if (at == absl::string_view::npos) return Bad(item, "missing '@'");
    absl::string_view id_text = item.substr(0, at);
    absl::string_view address = item.substr(at + 1);
    uint64_t id = 0;
    if (!absl::SimpleAtoi(id_text, &id) || id == 0 ||
        id_text.find_first_not_of("0123456789") != absl::string_view::npos) {
      return Bad(item, "the id must be a positive integer");
    }
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) return Bad(item, "missing ':PORT'");
    absl::string_view host = address.substr(0, colon);
    absl::string_view port_text = address.substr(colon + 1);
    if (host.empty() || host == "[]") return Bad(item, "missing host");
    if (host.front() == '['
            ? host.back() != ']'
            : host.find_first_of("[]:@ ") != absl::string_view::npos) {
      return Bad(item, "malformed host (IPv6 addresses go in brackets)");
    }
    int port = 0;
    if (port_text.empty() ||
        port_text.find_first_not_of("0123456789") != absl::string_view::npos ||
        !absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535) {
      return Bad(item, "the port must be a number in 1..65535");
    }
    if (!ids.insert(id).second) return Bad(item, "duplicate id");
    if (!addresses.insert(std::string(address)).second) {
      return Bad(item, "duplicate address");
    }
    out.push_back(Voter{NodeId(id), std::string(address)});
  }
  return out;
}

std::string FormatVoters(const std::vector<Voter>& voters) {
  return absl::StrJoin(voters, ",", [](std::string* out, const Voter& v) {
    absl::StrAppend(out, v.id.value(), "@", v.address);
  });
}

}  // namespace fjord::raft
