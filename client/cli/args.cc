#include "client/cli/args.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fjord::cli {
namespace {

constexpr absl::string_view kDefaultBootstrap = "127.0.0.1:9092";

std::vector<CommandSpec> MakeCommands() {
  const FlagSpec key_sep_consume{"key-separator", "SEP", false,
                                 "separator printed between key and value "
                                 "(default: a tab)"};
  return {
      {"cluster describe",
       {},
       "Show the cluster id, controller and brokers.",
       {}},
      {"topic create",
       {"NAME"},
       "Create a topic.",
       {
           {"partitions", "N", false, "number of partitions (default 1)"},
           {"replication-factor", "R", false,
            "replicas per partition (default: the broker's)"},
           {"config", "KEY=VALUE", true, "topic config; repeatable"},
       }},
      {"topic list",
       {},
       "List topic names.",
       {{"include-internal", "", false, "also list internal (__) topics"}}},
      {"topic describe",
       {"NAME"},
       "Show a topic's partitions: leader, replicas, ISR and offsets.",
       {}},
      {"topic delete", {"NAME"}, "Delete a topic and its data.", {}},
      {"produce",
       {"TOPIC"},
       "Send one record per stdin line; exit 0 only when every line was "
       "acknowledged.",
       {
           {"key-separator", "SEP", false,
            "split each line at the first SEP into key and value (a line "
            "without SEP is an error)"},
           {"acks", "0|1|all", false,
            "acknowledgement to wait for (default all)"},
           {"partition", "P", false, "send every record to partition P"},
       }},
      {"consume",
       {"TOPIC"},
       "Print records, one per line, from every partition (or one).",
       {
           {"group", "G", false, "consumer group (not available yet)"},
           {"from-beginning", "", false,
            "start at the log start (default: the end)"},
           {"partition", "P", false, "read only partition P"},
           {"offset", "O", false, "with --partition: start at offset O"},
           {"max-messages", "N", false, "exit after N records"},
           {"timeout-ms", "T", false,
            "exit after T ms without a new record (default: never)"},
           {"print-key", "", false,
            "print key<SEP>value (a null key prints "
            "as 'null')"},
           key_sep_consume,
       }},
      {"group list", {}, "List consumer groups (not available yet).", {}},
      {"group describe", {"G"}, "Describe a group (not available yet).", {}},
      {"group reset-offsets",
       {"G"},
       "Reset a group's offsets (not available yet).",
       {{"topic", "TOPIC", false, "topic"},
        {"to-earliest", "", false, "to the log start"},
        {"to-latest", "", false, "to the log end"},
        {"to-offset", "O", false, "to offset O"}}},
  };
}

const CommandSpec* FindCommand(absl::string_view path) {
  for (const CommandSpec& c : Commands()) {
    if (c.path == path) return &c;
  }
  return nullptr;
}

// Whether some command path starts with `prefix` followed by a space.
bool IsGroup(absl::string_view prefix) {
  for (const CommandSpec& c : Commands()) {
    if (absl::StartsWith(c.path, absl::StrCat(prefix, " "))) return true;
  }
  return false;
}

std::vector<std::string> Subcommands(absl::string_view group) {
  std::vector<std::string> out;
  const std::string prefix = absl::StrCat(group, " ");
  for (const CommandSpec& c : Commands()) {
    if (absl::StartsWith(c.path, prefix)) {
      out.push_back(c.path.substr(prefix.size()));
    }
  }
  return out;
}

std::string FlagUsage(const FlagSpec& f) {
  std::string s = absl::StrCat("--", f.name);
  if (!f.value_name.empty()) absl::StrAppend(&s, " ", f.value_name);
  return s;
}

std::string CommandLine(const CommandSpec& c) {
  std::string s = absl::StrCat("fjord ", c.path);
  for (const auto& p : c.positionals) absl::StrAppend(&s, " ", p);
  for (const auto& f : c.flags) {
    absl::StrAppend(&s, " [", FlagUsage(f), "]", f.repeated ? "..." : "");
  }
  return s;
}

constexpr absl::string_view kGlobalHelp =
    "Global flags (anywhere on the line):\n"
    "  --bootstrap HOST:PORT,...  brokers to contact (default: "
    "$FJORD_BOOTSTRAP, "
    "else 127.0.0.1:9092)\n"
    "  -o, --output text|json     output format (default text)\n"
    "  -h, --help                 show help\n";

}  // namespace

const std::vector<CommandSpec>& Commands() {
  static const auto* commands = new std::vector<CommandSpec>(MakeCommands());
  return *commands;
}

bool Invocation::Has(absl::string_view name) const {
  return flags.find(std::string(name)) != flags.end();
}

std::string Invocation::Get(absl::string_view name,
                            absl::string_view fallback) const {
  auto it = flags.find(std::string(name));
  if (it == flags.end() || it->second.empty()) return std::string(fallback);
  return it->second.back();
}

std::vector<std::string> Invocation::GetAll(absl::string_view name) const {
  auto it = flags.find(std::string(name));
  return it == flags.end() ? std::vector<std::string>() : it->second;
}

absl::StatusOr<int64_t> ParseIntFlag(absl::string_view flag,
                                     absl::string_view value, int64_t min,
                                     int64_t max) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(value, &n) || n < min || n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": want an integer in [", min, ", ", max,
                     "], got '", value, "'"));
  }
  return n;
}

std::string Usage(absl::string_view command) {
  std::string out;
  if (command.empty()) {
    absl::StrAppend(&out,
                    "Usage: fjord [--bootstrap HOST:PORT,...] [-o json] "
                    "COMMAND [ARGS]\n\nCommands:\n");
    for (const CommandSpec& c : Commands()) {
      std::string head = absl::StrCat("  ", c.path);
      for (const auto& p : c.positionals) absl::StrAppend(&head, " ", p);
      head.resize(std::max<size_t>(head.size() + 1, 28), ' ');
      absl::StrAppend(&out, head, c.summary, "\n");
    }
    absl::StrAppend(&out, "\n", kGlobalHelp,
                    "\nRun 'fjord COMMAND --help' for a command's flags.\n");
    return out;
  }
  if (const CommandSpec* c = FindCommand(command)) {
    absl::StrAppend(&out, "Usage: ", CommandLine(*c), "\n\n", c->summary, "\n");
    if (!c->flags.empty()) absl::StrAppend(&out, "\nFlags:\n");
    for (const FlagSpec& f : c->flags) {
      std::string head = absl::StrCat("  ", FlagUsage(f));
      head.resize(std::max<size_t>(head.size() + 1, 28), ' ');
      absl::StrAppend(&out, head, f.help, "\n");
    }
    absl::StrAppend(&out, "\n", kGlobalHelp);
    return out;
  }
  absl::StrAppend(&out, "Usage:\n");
  for (const CommandSpec& c : Commands()) {
    if (absl::StartsWith(c.path, absl::StrCat(command, " "))) {
      absl::StrAppend(&out, "  ", CommandLine(c), "\n      ", c.summary, "\n");
    }
  }
  absl::StrAppend(&out, "\n", kGlobalHelp);
  return out;
}

absl::StatusOr<Invocation> ParseCommandLine(
    const std::vector<std::string>& args, absl::string_view env_bootstrap) {
  Invocation inv;
  inv.bootstrap =
      std::string(env_bootstrap.empty() ? kDefaultBootstrap : env_bootstrap);
  std::string words;  // Command words seen so far.
  const CommandSpec* spec = nullptr;
  bool flags_done = false;

  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool is_flag = !flags_done && arg.size() > 1 && arg[0] == '-';
    if (!is_flag) {
      if (spec != nullptr) {
        inv.args.push_back(arg);
        continue;
      }
      const std::string candidate =
          words.empty() ? arg : absl::StrCat(words, " ", arg);
      if (const CommandSpec* c = FindCommand(candidate)) {
        spec = c;
        words = candidate;
      } else if (words.empty() && IsGroup(candidate)) {
        words = candidate;
      } else if (words.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown command '", arg, "' (see 'fjord --help')"));
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown command '", candidate, "': want one of ",
                         absl::StrJoin(Subcommands(words), ", ")));
      }
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    // Split "--name=value"; "-o" is the only short flag with a value.
    std::string name, value;
    bool has_value = false;
    if (arg == "-h") {
      name = "help";
    } else if (arg == "-o") {
      name = "output";
    } else if (absl::StartsWith(arg, "--")) {
      const size_t eq = arg.find('=');
      name =
          arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        has_value = true;
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag '", arg, "'"));
    }
    if (name == "help") {
      inv.help = true;
      continue;
    }
    const FlagSpec* flag = nullptr;
    static const FlagSpec kBootstrap{"bootstrap", "HOST:PORT,...", false, ""};
    static const FlagSpec kOutput{"output", "FORMAT", false, ""};
    if (name == "bootstrap") {
      flag = &kBootstrap;
    } else if (name == "output") {
      flag = &kOutput;
    } else if (spec != nullptr) {
      for (const FlagSpec& f : spec->flags) {
        if (f.name == name) flag = &f;
      }
    }
    if (flag == nullptr) {
      if (inv.help) continue;  // Help wins over mistakes after it.
      return absl::InvalidArgumentError(
          spec == nullptr
              ? absl::StrCat("unknown flag '", arg, "' (see 'fjord --help')")
              : absl::StrCat("unknown flag '", arg, "' for 'fjord ", spec->path,
                             "' (see 'fjord ", spec->path, " --help')"));
    }
    const bool boolean = flag->value_name.empty();
    if (boolean) {
      if (has_value && value != "true" && value != "false") {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " takes no value"));
      }
      if (has_value && value == "false") {
        inv.flags.erase(name);
        continue;
      }
      value = "true";
    } else if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--", name, " needs a value (", flag->value_name, ")"));
      }
      value = args[++i];
    }
    if (flag == &kBootstrap) {
      inv.bootstrap = value;
      continue;
    }
    if (flag == &kOutput) {
      if (value == "json") {
        inv.json = true;
      } else if (value == "text") {
        inv.json = false;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("bad output format '", value, "': want json or text"));
      }
      continue;
    }
    auto& values = inv.flags[name];
    if (!values.empty() && !flag->repeated && !boolean) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " given more than once"));
    }
    if (boolean) values.clear();
    values.push_back(value);
  }

  if (inv.help) {
    inv.command = words;
    return inv;
  }
  if (spec == nullptr) {
    if (words.empty()) {
      return absl::InvalidArgumentError(
          "no command given (see 'fjord --help')");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "'fjord ", words,
        "' needs a subcommand: ", absl::StrJoin(Subcommands(words), ", ")));
  }
  inv.command = spec->path;
  if (inv.args.size() < spec->positionals.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'fjord ", spec->path, "' needs ", spec->positionals[inv.args.size()],
        " (see 'fjord ", spec->path, " --help')"));
  }
  if (inv.args.size() > spec->positionals.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument '", inv.args[spec->positionals.size()],
        "' for 'fjord ", spec->path, "'"));
  }
  if (spec->path == "consume" && inv.Has("offset") && !inv.Has("partition")) {
    return absl::InvalidArgumentError("--offset needs --partition");
  }
  if (spec->path == "consume" && inv.Has("offset") &&
      inv.Has("from-beginning")) {
    return absl::InvalidArgumentError(
        "--offset and --from-beginning cannot be combined");
  }
  if (inv.Has("key-separator") && inv.Get("key-separator").empty()) {
    return absl::InvalidArgumentError("--key-separator must not be empty");
  }
  return inv;
}

}  // namespace fjord::cli
