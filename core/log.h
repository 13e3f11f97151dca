// Named loggers with levels.
//
//   static reef::logger log("reactor");
//   log.info("started {} pollers on backend {}", n, name);
//
// Each line carries a timestamp, the level, the shard (or "main" on a thread
// that is not a shard) and the logger's name, and is written to stderr with
// one write(2), so lines from different threads never interleave. The
// format is core/format.h's: `{}` or `{:spec}` per argument, checked against
// the arguments when the call is compiled.
//
// Levels are per logger and can be changed at run time by name (the
// `--logger-log-level name=level` and `--default-log-level` flags of
// core/reactor_flags.h do that). Thread rules: a logger may be used from any
// thread; loggers are normally static objects and must outlive their use.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/format.h"

namespace reef {

/// How much a logger says, most severe first.
enum class log_level : std::uint8_t { error, warn, info, debug, trace };

/// "error", "warn", "info", "debug", "trace".
std::string_view to_string(log_level level) noexcept;

/// Parses one of the names above; nullopt for anything else.
std::optional<log_level> parse_log_level(std::string_view name) noexcept;

namespace core_internal {

/// The shard id printed on this thread's lines; -1 for a thread that is not
/// a shard. Set by the reactor.
inline thread_local int log_shard_id = -1;

}  // namespace core_internal

/// A named source of log lines. Registers itself by name for the lifetime
/// of the object so that its level can be set by name.
class logger {
 public:
  explicit logger(std::string name, log_level level = log_level::info);
  ~logger();
  logger(const logger&) = delete;
  logger& operator=(const logger&) = delete;

  const std::string& name() const noexcept { return _name; }
  log_level level() const noexcept { return _level.load(std::memory_order_relaxed); }
  void set_level(log_level level) noexcept { _level.store(level, std::memory_order_relaxed); }
  bool is_enabled(log_level level) const noexcept { return level <= this->level(); }

  /// One line at `level`: `fmt` (checked when compiled, see
  /// core/format.h) with the arguments; nothing is formatted when the
  /// level is off.
  template <typename... A>
  void log(log_level level, format_string<A...> fmt, const A&... a) {
    if (is_enabled(level)) write(level, format<A...>(fmt, a...));
  }
  template <typename... A>
  void error(format_string<A...> fmt, const A&... a) { log<A...>(log_level::error, fmt, a...); }
  template <typename... A>
  void warn(format_string<A...> fmt, const A&... a) { log<A...>(log_level::warn, fmt, a...); }
  template <typename... A>
  void info(format_string<A...> fmt, const A&... a) { log<A...>(log_level::info, fmt, a...); }
  template <typename... A>
  void debug(format_string<A...> fmt, const A&... a) { log<A...>(log_level::debug, fmt, a...); }
  template <typename... A>
  void trace(format_string<A...> fmt, const A&... a) { log<A...>(log_level::trace, fmt, a...); }

  /// Writes one formatted line, whatever the level.
  void write(log_level level, std::string_view message) noexcept;

 private:
  std::string _name;
  std::atomic<log_level> _level;
};

/// Sets the level of the logger called `name`; false if there is none.
bool set_logger_level(std::string_view name, log_level level);

/// Sets the level of every logger, and of loggers created later.
void set_default_log_level(log_level level);

/// The names of the loggers that exist now, sorted.
std::vector<std::string> logger_names();

/// Where lines go: a function given each complete line (with its newline),
/// or, when empty (the default), stderr. For tests and embedding. The
/// function is called from whatever thread logs, possibly several at once
/// (it must be thread-safe), and may itself log.
void set_log_sink(std::function<void(std::string_view line)> sink);

}  // namespace reef
