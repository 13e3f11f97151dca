// Command-line flags, Seastar style, on Abseil flags.
//
// Flags are written with dashes, as in Seastar (`--task-quota-ms 0.5` or
// `--task-quota-ms=0.5`); Abseil names them with underscores, and either
// spelling is accepted. This target defines the reactor's flags:
//
//   --reactor-backend io_uring|epoll     (default io_uring)
//   --task-quota-ms MS                   (default 0.5)
//   --blocked-reactor-notify-ms MS       (stall report threshold, default 200)
//   --blocking-threads N                 (threads for run_blocking, default 2)
//   --poll-mode                          (never sleep: poll continuously)
//   --default-log-level LEVEL            (error|warn|info|debug|trace)
//   --logger-log-level NAME=LEVEL[,...]
//
// Programs define their own flags with ABSL_FLAG and parse everything with
// parse_command_line(). Main thread, before the reactor starts.
#pragma once

#include <string>
#include <vector>

#include "core/reactor.h"

namespace reef {

/// What parse_command_line() found.
struct command_line {
  /// Arguments that are not flags (and everything after `--`).
  std::vector<std::string> positional;
  /// `--help` was given: usage() has the text to print.
  bool help = false;
  /// Empty, or what was wrong (naming the flag): the program should print
  /// it and exit with status 2.
  std::string error;
};

/// Sets the Abseil flags named in argv[1..argc). Stops at the first bad
/// argument: an unknown flag, a missing value, or a value the flag's type
/// refuses.
command_line parse_command_line(int argc, const char* const* argv);

/// Adds a check that parse_command_line() runs once every flag is parsed,
/// for what no single flag can say alone (a gateway off the host's
/// network): it returns "" or what is wrong, naming the flags. Register
/// before main() (a static initializer of the flags' library).
void add_command_line_check(std::string (*check)());

/// The flags of this program (not Abseil's own), one per line, with their
/// help and default, dashes in names.
std::string usage(const std::string& program);

/// The reactor options the flags ask for. Throws std::invalid_argument
/// naming the flag when a value is out of range.
reactor_options reactor_options_from_flags();

/// Applies --default-log-level and --logger-log-level. Throws
/// std::invalid_argument naming the flag for an unknown level or a
/// malformed entry (an unknown logger name is not an error: loggers may be
/// created later).
void apply_log_flags();

}  // namespace reef
