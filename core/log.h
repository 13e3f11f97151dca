// Named loggers with levels.
//
//   static reef::logger log("reactor");
//   log.info("started {} pollers on backend {}", n, name);
//
// Each line carries a timestamp, the level, the shard (or "main" on a thread
// that is not a shard) and the logger's name, and is written to stderr with
// one write(2), so lines from different threads never interleave. `{}` in
// the format is replaced by the next argument (anything with an `operator<<`
// or a number, string or pointer).
//
// Levels are per logger and can be changed at run time by name (the
// `--logger-log-level name=level` and `--default-log-level` flags of
// core/reactor_flags.h do that). Thread rules: a logger may be used from any
// thread; loggers are normally static objects and must outlive their use.
#pragma once

#include <atomic>
#include <charconv>
#include <cstdint>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace reef {

/// How much a logger says, most severe first.
enum class log_level : std::uint8_t { error, warn, info, debug, trace };

/// "error", "warn", "info", "debug", "trace".
std::string_view to_string(log_level level) noexcept;

/// Parses one of the names above; nullopt for anything else.
std::optional<log_level> parse_log_level(std::string_view name) noexcept;

namespace internal {

/// The shard id printed on this thread's lines; -1 for a thread that is not
/// a shard. Set by the reactor.
inline thread_local int log_shard_id = -1;

inline void append_arg(std::string& out, std::string_view s) { out.append(s); }
inline void append_arg(std::string& out, const char* s) { out.append(s != nullptr ? s : "(null)"); }
inline void append_arg(std::string& out, const std::string& s) { out.append(s); }
inline void append_arg(std::string& out, char c) { out.push_back(c); }
inline void append_arg(std::string& out, bool b) { out.append(b ? "true" : "false"); }
inline void append_arg(std::string& out, const void* p) {
  char buf[2 + 16];
  auto r = std::to_chars(buf, buf + sizeof(buf), reinterpret_cast<std::uintptr_t>(p), 16);
  out.append("0x").append(buf, r.ptr);
}

template <typename T>
void append_arg(std::string& out, const T& v) {
  if constexpr (std::is_integral_v<T> || std::is_floating_point_v<T>) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, r.ptr);
  } else if constexpr (std::is_enum_v<T>) {
    append_arg(out, static_cast<std::underlying_type_t<T>>(v));
  } else {
    std::ostringstream os;
    os << v;
    out.append(os.str());
  }
}

inline void format_to(std::string& out, std::string_view fmt) { out.append(fmt); }

template <typename A, typename... R>
void format_to(std::string& out, std::string_view fmt, const A& a, const R&... rest) {
  auto pos = fmt.find("{}");
  if (pos == std::string_view::npos) {
    out.append(fmt);
    return;
  }
  out.append(fmt.substr(0, pos));
  append_arg(out, a);
  format_to(out, fmt.substr(pos + 2), rest...);
}

}  // namespace internal

/// `fmt` with each `{}` replaced by the next argument.
template <typename... A>
std::string format(std::string_view fmt, const A&... a) {
  std::string out;
  out.reserve(fmt.size() + 16 * sizeof...(A));
  internal::format_to(out, fmt, a...);
  return out;
}

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

  template <typename... A>
  void log(log_level level, std::string_view fmt, const A&... a) {
    if (is_enabled(level)) write(level, format(fmt, a...));
  }
  template <typename... A>
  void error(std::string_view fmt, const A&... a) { log(log_level::error, fmt, a...); }
  template <typename... A>
  void warn(std::string_view fmt, const A&... a) { log(log_level::warn, fmt, a...); }
  template <typename... A>
  void info(std::string_view fmt, const A&... a) { log(log_level::info, fmt, a...); }
  template <typename... A>
  void debug(std::string_view fmt, const A&... a) { log(log_level::debug, fmt, a...); }
  template <typename... A>
  void trace(std::string_view fmt, const A&... a) { log(log_level::trace, fmt, a...); }

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
