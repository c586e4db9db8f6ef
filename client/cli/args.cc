#include "client/cli/args.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

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
            "replicas per partition (default: min(3, brokers))"},
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
       "Print records, one per line, from every partition (or one), or "
       "from the partitions a consumer group assigns.",
       {
           {"group", "G", false,
            "consume as a member of group G: share the topic's partitions "
            "with its other consumers, start at the group's committed "
            "offsets, commit positions (every 5 s and on exit)"},
           {"from-beginning", "", false,
            "start at the log start (default: the end); with --group, only "
            "where the group has no committed offset"},
           {"partition", "P", false,
            "read only partition P (not with --group)"},
           {"offset", "O", false, "with --partition: start at offset O"},
           {"max-messages", "N", false, "exit after N records"},
           {"timeout-ms", "T", false,
            "exit after T ms without a new record (default: never)"},
           {"print-key", "", false,
            "print key<SEP>value (a null key prints "
            "as 'null')"},
           key_sep_consume,
           {"group-instance-id", "ID", false,
            "with --group: static member id (its partitions wait for it to "
            "come back)"},
           {"session-timeout-ms", "MS", false,
            "with --group: session timeout (default: the broker's)"},
           {"assignor", "uniform|range", false,
            "with --group: partition assignor (default uniform)"},
       }},
      {"group list",
       {},
       "List consumer groups (asks every broker): state, members, "
       "coordinator.",
       {}},
      {"group describe",
       {"G"},
       "Show a group's state and members, and per partition the committed "
       "offset, log end, lag and owner.",
       {}},
      {"group reset-offsets",
       {"G"},
       "Set a group's committed offsets (only while it has no members); "
       "prints the new offsets.",
       {{"topic", "TOPIC[:P,P...]", true,
         "a topic (all partitions, or those listed); repeatable"},
        {"all-topics", "", false,
         "every topic the group has committed offsets for"},
        {"to-earliest", "", false, "to the log start"},
        {"to-latest", "", false, "to the log end"},
        {"to-offset", "O", false,
         "to offset O (clamped to the log start / end)"},
        {"to-datetime", "YYYY-MM-DDTHH:MM:SS[.mmm][Z]", false,
         "to the first record at or after that time (local time without Z)"},
        {"shift-by", "N", false,
         "move the committed offsets by N (may be negative; clamped)"},
        {"dry-run", "", false, "only print the new offsets"},
        {"execute", "", false, "apply them (the default; for Kafka users)"}}},
      {"group delete",
       {"G"},
       "Delete a group and its committed offsets (only while it has no "
       "members).",
       {}},
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

absl::StatusOr<TopicPartitionsSpec> ParseTopicPartitions(
    absl::string_view value) {
  TopicPartitionsSpec out;
  const size_t colon = value.find(':');
  out.topic = std::string(value.substr(0, colon));
  if (out.topic.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--topic: want TOPIC[:P,P...], got '", value, "'"));
  }
  if (colon == absl::string_view::npos) return out;
  for (absl::string_view p : absl::StrSplit(value.substr(colon + 1), ',')) {
    int32_t n = 0;
    if (!absl::SimpleAtoi(p, &n) || n < 0) {
      return absl::InvalidArgumentError(absl::StrCat("--topic: bad partition '",
                                                     p, "' in '", value,
                                                     "': want TOPIC[:P,P...]"));
    }
    out.partitions.push_back(n);
  }
  std::sort(out.partitions.begin(), out.partitions.end());
  out.partitions.erase(
      std::unique(out.partitions.begin(), out.partitions.end()),
      out.partitions.end());
  return out;
}

absl::StatusOr<int64_t> ParseDateTime(absl::string_view value,
                                      absl::TimeZone local) {
  absl::string_view text = value;
  absl::TimeZone zone = local;
  if (absl::ConsumeSuffix(&text, "Z")) zone = absl::UTCTimeZone();
  absl::Time t;
  std::string error;
  // %E*S takes optional fractional seconds; at most milliseconds count.
  const size_t dot = text.find('.');
  if (dot != absl::string_view::npos &&
      (text.size() - dot - 1 < 1 || text.size() - dot - 1 > 3)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--to-datetime: want YYYY-MM-DDTHH:MM:SS[.mmm][Z], got '", value, "'"));
  }
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*S", text, zone, &t, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--to-datetime: want YYYY-MM-DDTHH:MM:SS[.mmm][Z], got '", value, "'"));
  }
  return absl::ToUnixMillis(t);
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
  if (spec->path == "consume" && inv.Has("group")) {
    if (inv.Has("partition") || inv.Has("offset")) {
      return absl::InvalidArgumentError(
          "--partition and --offset cannot be combined with --group (the "
          "group assigns partitions and starts at its committed offsets)");
    }
    if (inv.Get("group").empty()) {
      return absl::InvalidArgumentError("--group must not be empty");
    }
    if (inv.Has("assignor") && inv.Get("assignor") != "uniform" &&
        inv.Get("assignor") != "range") {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad --assignor '", inv.Get("assignor"), "': want uniform or range"));
    }
  }
  if (spec->path == "consume" && !inv.Has("group")) {
    for (const char* flag :
         {"group-instance-id", "session-timeout-ms", "assignor"}) {
      if (inv.Has(flag)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", flag, " needs --group"));
      }
    }
  }
  if (spec->path == "group reset-offsets") {
    if (inv.Has("topic") == inv.Has("all-topics")) {
      return absl::InvalidArgumentError(
          "group reset-offsets needs either --topic or --all-topics");
    }
    int specs = 0;
    for (const char* flag :
         {"to-earliest", "to-latest", "to-offset", "to-datetime", "shift-by"}) {
      if (inv.Has(flag)) ++specs;
    }
    if (specs != 1) {
      return absl::InvalidArgumentError(
          "group reset-offsets needs exactly one of --to-earliest, "
          "--to-latest, --to-offset, --to-datetime, --shift-by");
    }
    if (inv.Has("dry-run") && inv.Has("execute")) {
      return absl::InvalidArgumentError(
          "--dry-run and --execute cannot be combined");
    }
  }
  if (inv.Has("key-separator") && inv.Get("key-separator").empty()) {
    return absl::InvalidArgumentError("--key-separator must not be empty");
  }
  return inv;
}

}  // namespace fjord::cli
