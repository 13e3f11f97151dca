#include "core/reactor_flags.h"

#include <absl/flags/commandlineflag.h>
#include <absl/flags/flag.h>
#include <absl/flags/reflection.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string_view>

#include "core/log.h"

ABSL_FLAG(std::string, reactor_backend, "io_uring",
          "I/O backend of the reactor: io_uring or epoll (io_uring falls back to epoll, with a "
          "logged reason, if the kernel refuses it)");
ABSL_FLAG(double, task_quota_ms, 0.5,
          "How long a batch of tasks runs before yielding to timers and I/O, in milliseconds");
ABSL_FLAG(double, blocked_reactor_notify_ms, 200,
          "Report a stall (with a backtrace) when a loop iteration takes longer than this many "
          "milliseconds of CPU time");
ABSL_FLAG(int, blocking_threads, 2, "Threads that run blocking calls (run_blocking)");
ABSL_FLAG(bool, poll_mode, false,
          "Poll for work continuously instead of sleeping when idle (lowest latency; uses a "
          "whole core per shard)");
ABSL_FLAG(int, idle_poll_time_us, 200,
          "Keep polling this many microseconds after the last work before sleeping (a sleeping "
          "CPU wakes slowly on virtual machines; costs that much CPU after each burst of work)");
ABSL_FLAG(std::string, default_log_level, "info",
          "Level of every logger: error, warn, info, debug or trace");
ABSL_FLAG(std::vector<std::string>, logger_log_level, {},
          "Levels of single loggers, as NAME=LEVEL[,NAME=LEVEL...]");

namespace reef {

namespace {

std::string dashed(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

std::string underscored(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

bool abseil_internal(const absl::CommandLineFlag& flag) {
  std::string file = flag.Filename();
  return file.find("absl/") != std::string::npos;
}

std::vector<std::string (*)()>& command_line_checks() {
  static auto* checks = new std::vector<std::string (*)()>;
  return *checks;
}

}  // namespace

void add_command_line_check(std::string (*check)()) { command_line_checks().push_back(check); }

command_line parse_command_line(int argc, const char* const* argv) {
  command_line out;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) out.positional.emplace_back(argv[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      out.positional.emplace_back(arg);
      continue;
    }
    std::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string_view name = body;
    std::optional<std::string_view> value;
    if (auto eq = body.find('='); eq != std::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
    }
    if (name == "help" || name == "h") {
      out.help = true;
      continue;
    }
    std::string key = underscored(name);
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(key);
    std::string negated_value;
    if (flag == nullptr && key.rfind("no", 0) == 0 && !value) {
      absl::CommandLineFlag* positive = absl::FindCommandLineFlag(key.substr(2));
      if (positive != nullptr && positive->IsOfType<bool>()) {
        flag = positive;
        negated_value = "false";
        value = negated_value;
      }
    }
    if (flag == nullptr || abseil_internal(*flag)) {
      out.error = "unknown flag --" + dashed(name);
      return out;
    }
    if (!value) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        out.error = "flag --" + dashed(name) + " needs a value";
        return out;
      }
    }
    std::string why;
    if (!flag->ParseFrom(absl::string_view(value->data(), value->size()), &why)) {
      out.error = "flag --" + dashed(name) + ": bad value '" + std::string(*value) + "': " + why;
      return out;
    }
  }
  if (!out.help) {
    for (auto* check : command_line_checks()) {
      out.error = check();
      if (!out.error.empty()) return out;
    }
  }
  return out;
}

std::string usage(const std::string& program) {
  std::map<std::string, const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!abseil_internal(*flag)) flags.emplace(dashed(std::string_view(name.data(), name.size())), flag);
  }
  std::string out = "Usage: " + program + " [flags]\n\nFlags:\n";
  for (const auto& [name, flag] : flags) {
    out += "  --" + name + "  " + flag->Help() + " (default: " + flag->DefaultValue() + ")\n";
  }
  return out;
}

reactor_options reactor_options_from_flags() {
  reactor_options opts;
  std::string backend = absl::GetFlag(FLAGS_reactor_backend);
  if (backend == "io_uring") {
    opts.backend = reactor_backend::io_uring;
  } else if (backend == "epoll") {
    opts.backend = reactor_backend::epoll;
  } else {
    throw std::invalid_argument("flag --reactor-backend: '" + backend +
                                "' is not io_uring or epoll");
  }
  double quota_ms = absl::GetFlag(FLAGS_task_quota_ms);
  if (!(quota_ms >= 0.001 && quota_ms <= 1000)) {
    throw std::invalid_argument("flag --task-quota-ms: must be between 0.001 and 1000");
  }
  opts.task_quota = std::chrono::microseconds(static_cast<long>(std::lround(quota_ms * 1000)));
  double stall_ms = absl::GetFlag(FLAGS_blocked_reactor_notify_ms);
  if (!(stall_ms >= 1 && stall_ms <= 3'600'000)) {
    throw std::invalid_argument("flag --blocked-reactor-notify-ms: must be between 1 and 3600000");
  }
  opts.stall_threshold = std::chrono::milliseconds(static_cast<long>(std::lround(stall_ms)));
  int threads = absl::GetFlag(FLAGS_blocking_threads);
  if (threads < 1 || threads > 64) {
    throw std::invalid_argument("flag --blocking-threads: must be between 1 and 64");
  }
  opts.blocking_threads_max = static_cast<std::size_t>(threads);
  opts.poll_mode = absl::GetFlag(FLAGS_poll_mode);
  int idle_poll_us = absl::GetFlag(FLAGS_idle_poll_time_us);
  if (idle_poll_us < 0 || idle_poll_us > 1'000'000) {
    throw std::invalid_argument("flag --idle-poll-time-us: must be between 0 and 1000000");
  }
  opts.idle_poll_time = std::chrono::microseconds(idle_poll_us);
  return opts;
}

void apply_log_flags() {
  std::string level_name = absl::GetFlag(FLAGS_default_log_level);
  auto level = parse_log_level(level_name);
  if (!level) {
    throw std::invalid_argument("flag --default-log-level: '" + level_name +
                                "' is not error, warn, info, debug or trace");
  }
  set_default_log_level(*level);
  for (const std::string& entry : absl::GetFlag(FLAGS_logger_log_level)) {
    auto eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw std::invalid_argument("flag --logger-log-level: '" + entry + "' is not NAME=LEVEL");
    }
    auto one = parse_log_level(std::string_view(entry).substr(eq + 1));
    if (!one) {
      throw std::invalid_argument("flag --logger-log-level: '" + entry.substr(eq + 1) +
                                  "' is not error, warn, info, debug or trace");
    }
    set_logger_level(entry.substr(0, eq), *one);
  }
}

}  // namespace reef
