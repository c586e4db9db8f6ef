// Command-line parsing for the `fjord` CLI.
//
// Grammar: fjord [GLOBAL...] COMMAND [SUBCOMMAND] [ARG | FLAG]...
// Global flags (--bootstrap, -o/--output, -h/--help) may appear anywhere; a
// command's own flags come after its command words. Flags take `--name value`
// or
// `--name=value`; boolean flags take no value. `--` ends flag parsing.
#ifndef FJORD_CLIENT_CLI_ARGS_H_
#define FJORD_CLIENT_CLI_ARGS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fjord::cli {

struct FlagSpec {
  // Without dashes, e.g. "partitions".
  std::string name;
  // Placeholder for the value in usage ("N"); empty for a boolean flag.
  std::string value_name;
  // May be given more than once (values accumulate).
  bool repeated = false;
  std::string help;
};

struct CommandSpec {
  // Command words, e.g. "topic create".
  std::string path;
  // Positional arguments, in order, e.g. {"NAME"}; all required.
  std::vector<std::string> positionals;
  std::string summary;
  std::vector<FlagSpec> flags;
};

// Every command the CLI knows, in help order.
const std::vector<CommandSpec>& Commands();

// The result of parsing a command line.
struct Invocation {
  // From --bootstrap, else the FJORD_BOOTSTRAP value given to the parser, else
  // 127.0.0.1:9092.
  std::string bootstrap;
  // -o json / --output json.
  bool json = false;
  // --help / -h was given: print help for `command` (the whole CLI when empty,
  // or a command group such as "topic").
  bool help = false;
  // The resolved command path ("topic create"), empty with top-level --help.
  std::string command;
  // Positional arguments after the command words.
  std::vector<std::string> args;
  // Command flags by name; boolean flags map to {"true"}.
  std::map<std::string, std::vector<std::string>> flags;

  bool Has(absl::string_view name) const;
  // The last value of `name`, or `fallback` when absent.
  std::string Get(absl::string_view name,
                  absl::string_view fallback = "") const;
  // All values of a repeated flag.
  std::vector<std::string> GetAll(absl::string_view name) const;
};

// Parses `args` (argv without the program name). `env_bootstrap` is the value
// of FJORD_BOOTSTRAP ("" when unset). Errors (INVALID_ARGUMENT, one line,
// naming the offender): unknown command or flag, missing flag value, missing or
// extra positional, a non-repeated flag given twice, bad -o value, and command
// rules (consume: --offset needs --partition; --group excludes --partition and
// --offset; --group-instance-id, --session-timeout-ms and --assignor need
// --group; group reset-offsets: --topic or --all-topics, and exactly one of
// the --to-* / --shift-by specs).
absl::StatusOr<Invocation> ParseCommandLine(
    const std::vector<std::string>& args, absl::string_view env_bootstrap);

// Help for the whole CLI, or for `command` (a full path or a group such as
// "topic").
std::string Usage(absl::string_view command = "");

// A --topic value of group reset-offsets: "TOPIC" (every partition) or
// "TOPIC:P,P...".
struct TopicPartitionsSpec {
  std::string topic;
  // Sorted, without duplicates; empty means every partition.
  std::vector<int32_t> partitions;
};
absl::StatusOr<TopicPartitionsSpec> ParseTopicPartitions(
    absl::string_view value);

// A --to-datetime value, YYYY-MM-DDTHH:MM:SS[.mmm][Z] (without Z: in `local`),
// as milliseconds since the Unix epoch.
absl::StatusOr<int64_t> ParseDateTime(
    absl::string_view value, absl::TimeZone local = absl::LocalTimeZone());

// Parses a whole decimal integer within [min, max] given to --`flag`.
absl::StatusOr<int64_t> ParseIntFlag(absl::string_view flag,
                                     absl::string_view value, int64_t min,
                                     int64_t max);

}  // namespace fjord::cli

#endif  // FJORD_CLIENT_CLI_ARGS_H_
