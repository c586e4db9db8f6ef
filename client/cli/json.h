// Minimal JSON output for the CLI's -o json mode.
#ifndef FJORD_CLIENT_CLI_JSON_H_
#define FJORD_CLIENT_CLI_JSON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace fjord::cli {

// `s` as a quoted JSON string. Quote, backslash and control characters are
// escaped (\n, \t, ... or \u00XX); valid UTF-8 passes through unchanged; each
// byte that is not part of a valid UTF-8 sequence (records hold arbitrary
// bytes) becomes U+FFFD, so the output is always valid JSON and valid UTF-8.
std::string JsonString(absl::string_view s);

// Builds one JSON value by appending; commas and colons are placed for you.
// Misuse (a value where a key is due) is not checked. Not thread-safe.
//
//   JsonWriter w;
//   w.BeginObject().Key("n").Int(1).Key("xs").BeginArray().Int(2).EndArray()
//    .EndObject();
//   w.str() == R"({"n":1,"xs":[2]})"
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(absl::string_view key);
  JsonWriter& String(absl::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  const std::string& str() const { return out_; }

 private:
  // Writes the comma a new element needs.
  void Separate();

  std::string out_;
  // Per open container: whether it already has an element.
  std::vector<bool> has_element_;
  // The next value completes a key/value pair (no comma before it).
  bool after_key_ = false;
};

}  // namespace fjord::cli

#endif  // FJORD_CLIENT_CLI_JSON_H_
