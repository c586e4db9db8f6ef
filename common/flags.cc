#include "common/flags.h"

#include <cstdlib>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace fjord {

FlagSet::FlagSet(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void FlagSet::String(absl::string_view name, std::string* target,
                     absl::string_view help) {
  flags_.push_back({std::string(name), Kind::kString, target, std::string(help),
                    *target});
}

void FlagSet::Int(absl::string_view name, int64_t* target, absl::string_view help) {
  flags_.push_back({std::string(name), Kind::kInt, target, std::string(help),
                    absl::StrCat(*target)});
}

void FlagSet::Bool(absl::string_view name, bool* target, absl::string_view help) {
  flags_.push_back({std::string(name), Kind::kBool, target, std::string(help),
                    *target ? "true" : "false"});
}

std::string FlagSet::EnvName(absl::string_view name) {
  return absl::StrCat("FJORD_", absl::AsciiStrToUpper(absl::StrReplaceAll(
                                    name, {{"-", "_"}})));
}

const FlagSet::Flag* FlagSet::Find(absl::string_view name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

absl::Status FlagSet::Set(const Flag& flag, absl::string_view value,
                          absl::string_view source) {
  switch (flag.kind) {
    case Kind::kString:
      *static_cast<std::string*>(flag.target) = std::string(value);
      return absl::OkStatus();
    case Kind::kInt: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", flag.name, " (from ", source,
                         ") expects an integer, got \"", value, "\""));
      }
      *static_cast<int64_t*>(flag.target) = v;
      return absl::OkStatus();
    }
    case Kind::kBool: {
      bool v;
      if (!absl::SimpleAtob(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", flag.name, " (from ", source,
                         ") expects true or false, got \"", value, "\""));
      }
      *static_cast<bool*>(flag.target) = v;
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown flag kind");
}

absl::Status FlagSet::Parse(const std::vector<std::string>& args,
                            std::vector<std::string>* positional) {
  for (const Flag& f : flags_) {
    std::string env = EnvName(f.name);
    if (const char* v = std::getenv(env.c_str()); v != nullptr) {
      if (absl::Status s = Set(f, v, env); !s.ok()) return s;
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      return absl::CancelledError(Usage());
    }
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      if (positional == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("unexpected argument \"", arg, "\"; see --help"));
      }
      positional->emplace_back(arg);
      continue;
    }
    absl::string_view body = arg.substr(2);
    absl::string_view name = body;
    std::optional<absl::string_view> value;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
    }
    const Flag* flag = Find(name);
    if (flag == nullptr && !value && name.substr(0, 2) == "no") {
      const Flag* negated = Find(name.substr(2));
      if (negated != nullptr && negated->kind == Kind::kBool) {
        *static_cast<bool*>(negated->target) = false;
        continue;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, "; see --help"));
    }
    if (!value) {
      if (flag->kind == Kind::kBool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value"));
      }
    }
    if (absl::Status s = Set(*flag, *value, "the command line"); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("usage: ", program_, " [flags]\n\n", summary_,
                                 "\n\nflags (each also read from its environment "
                                 "variable):\n");
  for (const Flag& f : flags_) {
    absl::StrAppend(&out, "  --", f.name, "  [", EnvName(f.name), "]\n      ",
                    f.help, " (default: \"", f.default_text, "\")\n");
  }
  return out;
}

}  // namespace fjord
