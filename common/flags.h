// Command-line flags for Fjord's servers, with an environment fallback.
//
// Every flag `--some-name` can also be set by the environment variable
// `FJORD_SOME_NAME` (upper case, dashes become underscores), which is how Kubernetes
// manifests configure the binaries. Precedence: command line > environment >
// default. Accepted forms: `--name=value`, `--name value`, and for booleans `--name`,
// `--name=true|false`, `--noname`.
#ifndef FJORD_COMMON_FLAGS_H_
#define FJORD_COMMON_FLAGS_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"

namespace fjord {

class FlagSet {
 public:
  explicit FlagSet(std::string program, std::string summary);

  // Registers a flag bound to `target`, whose current value is the default. `name`
  // is the flag without dashes, e.g. "node-id". The target must outlive Parse.
  void String(absl::string_view name, std::string* target, absl::string_view help);
  void Int(absl::string_view name, int64_t* target, absl::string_view help);
  void Bool(absl::string_view name, bool* target, absl::string_view help);

  // Applies the environment, then `args` (argv without the program name).
  // Arguments that are not flags are appended to `positional` when it is non-null
  // and are an error otherwise. `--help` makes it return a status whose code is
  // kCancelled and whose message is Usage(). INVALID_ARGUMENT for an unknown flag or
  // a value that does not parse, naming the flag and where it came from.
  absl::Status Parse(const std::vector<std::string>& args,
                     std::vector<std::string>* positional = nullptr);

  // Help text listing every flag, its environment variable and its default.
  std::string Usage() const;

  // The environment variable that sets `name`, e.g. "FJORD_NODE_ID".
  static std::string EnvName(absl::string_view name);

 private:
  enum class Kind { kString, kInt, kBool };
  struct Flag {
    std::string name;
    Kind kind;
    void* target;
    std::string help;
    std::string default_text;
  };

  absl::Status Set(const Flag& flag, absl::string_view value,
                   absl::string_view source);
  const Flag* Find(absl::string_view name) const;

  std::string program_;
  std::string summary_;
  std::vector<Flag> flags_;
};

}  // namespace fjord

#endif  // FJORD_COMMON_FLAGS_H_
