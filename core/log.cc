#include "core/log.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>

namespace reef {

namespace {

struct registry {
  std::mutex mutex;
  std::multimap<std::string, logger*, std::less<>> loggers;
  log_level default_level = log_level::info;
  bool default_level_set = false;
  std::function<void(std::string_view)> sink;
};

registry& the_registry() {
  // Never destroyed: loggers are static objects whose destructors may run
  // after this function's statics would have been.
  static registry* r = new registry;
  return *r;
}

}  // namespace

std::string_view to_string(log_level level) noexcept {
  switch (level) {
    case log_level::error: return "error";
    case log_level::warn: return "warn";
    case log_level::info: return "info";
    case log_level::debug: return "debug";
    case log_level::trace: return "trace";
  }
  return "unknown";
}

std::optional<log_level> parse_log_level(std::string_view name) noexcept {
  for (auto level : {log_level::error, log_level::warn, log_level::info, log_level::debug,
                     log_level::trace}) {
    if (name == to_string(level)) return level;
  }
  return std::nullopt;
}

logger::logger(std::string name, log_level level) : _name(std::move(name)), _level(level) {
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  if (r.default_level_set) _level.store(r.default_level, std::memory_order_relaxed);
  r.loggers.emplace(_name, this);
}

logger::~logger() {
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  auto [first, last] = r.loggers.equal_range(_name);
  for (auto it = first; it != last; ++it) {
    if (it->second == this) {
      r.loggers.erase(it);
      break;
    }
  }
}

void logger::write(log_level level, std::string_view message) noexcept {
  try {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm parts{};
    gmtime_r(&ts.tv_sec, &parts);
    char stamp[64];
    int n = std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02d %02d:%02d:%02d.%06ld ",
                          parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour,
                          parts.tm_min, parts.tm_sec, ts.tv_nsec / 1000);
    std::string line;
    line.reserve(message.size() + _name.size() + 64);
    line.append(stamp, static_cast<std::size_t>(n));
    std::string_view level_name = to_string(level);
    for (char c : level_name) line.push_back(static_cast<char>(c - 'a' + 'A'));
    line.append(6 - level_name.size(), ' ');
    int shard = core_internal::log_shard_id;
    if (shard >= 0) {
      line.append("[shard ");
      core_internal::format_arg(line, shard, core_internal::format_spec{});
      line.append("] ");
    } else {
      line.append("[main] ");
    }
    line.append(_name).append(" - ").append(message).push_back('\n');

    registry& r = the_registry();
    std::function<void(std::string_view)> sink;
    {
      std::lock_guard lock(r.mutex);
      sink = r.sink;
    }
    // Called without the lock: a sink may log, or set levels, itself.
    if (sink) {
      sink(line);
      return;
    }
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      ssize_t w = ::write(STDERR_FILENO, p, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        return;
      }
      p += w;
      left -= static_cast<std::size_t>(w);
    }
  } catch (...) {
    // Out of memory while logging: the line is lost, the program goes on.
  }
}

bool set_logger_level(std::string_view name, log_level level) {
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  auto [first, last] = r.loggers.equal_range(name);
  for (auto it = first; it != last; ++it) it->second->set_level(level);
  return first != last;
}

void set_default_log_level(log_level level) {
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  r.default_level = level;
  r.default_level_set = true;
  for (auto& [name, l] : r.loggers) l->set_level(level);
}

std::vector<std::string> logger_names() {
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (auto& [name, l] : r.loggers) {
    if (names.empty() || names.back() != name) names.push_back(name);
  }
  return names;
}

void set_log_sink(std::function<void(std::string_view line)> sink) {
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  r.sink = std::move(sink);
}

}  // namespace reef
