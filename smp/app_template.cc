#include "smp/app_template.h"

#include <absl/flags/flag.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/abort_source.h"
#include "core/log.h"
#include "core/reactor.h"
#include "core/reactor_flags.h"
#include "memory/allocator.h"
#include "smp/topology.h"
#include "smp/smp.h"

ABSL_FLAG(int, smp, 0, "Number of shards (one per CPU; 0: one on every CPU allowed)");
ABSL_FLAG(std::string, cpuset, "", "CPUs the shards may run on, e.g. 0-3,8 (default: all allowed)");
ABSL_FLAG(bool, overprovisioned, false,
          "shards may outnumber the CPUs and share them (a laptop, a container, a test): shards are not "
          "pinned and sleep as soon as they are idle (--idle-poll-time-us 0)");
ABSL_FLAG(std::string, memory, "",
          "Memory for all shards together, e.g. 4G (default: the machine's, less --reserve-memory); "
          "enforced per shard by the sharded allocator (//memory:malloc_override)");
ABSL_FLAG(std::string, reserve_memory, "",
          "Memory left to the operating system when --memory is not given (default: 7% of it, at "
          "least 1.5G)");

namespace reef {

namespace {

// "4G", "512M", "64k", "1000": a byte count. Throws naming `flag`.
std::size_t parse_size(const std::string& flag, const std::string& text) {
  auto fail = [&](const std::string& why) {
    return flag_error("flag --" + flag + ": '" + text + "': " + why);
  };
  std::size_t i = 0;
  std::uint64_t value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    std::uint64_t next = value * 10 + static_cast<unsigned>(text[i] - '0');
    if (next / 10 != value) throw fail("too large");
    value = next;
    ++i;
  }
  if (i == 0) throw fail("not a size (a number with an optional k, M, G or T)");
  std::string unit = text.substr(i);
  unsigned shift = 0;
  if (unit.empty() || unit == "B") {
    shift = 0;
  } else if (unit == "k" || unit == "K" || unit == "KB" || unit == "KiB") {
    shift = 10;
  } else if (unit == "M" || unit == "MB" || unit == "MiB") {
    shift = 20;
  } else if (unit == "G" || unit == "GB" || unit == "GiB") {
    shift = 30;
  } else if (unit == "T" || unit == "TB" || unit == "TiB") {
    shift = 40;
  } else {
    throw fail("unknown unit '" + unit + "'");
  }
  if (shift > 0 && value > (UINT64_MAX >> shift)) throw fail("too large");
  return static_cast<std::size_t>(value << shift);
}

logger& app_logger() {
  static logger* l = new logger("app");
  return *l;
}

// Shard 0's stop state during run().
struct stop_state {
  abort_source signalled;
  std::size_t waiters = 0;
};
stop_state* current_stop = nullptr;

std::vector<startup_step>& startup_steps() {
  static auto* steps = new std::vector<startup_step>;
  return *steps;
}

// Runs the steps' stops, last started first, when it goes.
struct started_steps {
  std::vector<startup_step> started;
  ~started_steps() {
    for (auto it = started.rbegin(); it != started.rend(); ++it) {
      if (it->stop != nullptr) it->stop();
    }
  }
};

}  // namespace

void add_startup_step(startup_step step) { startup_steps().push_back(step); }

app_template::app_template() : app_template(config{}) {}
app_template::app_template(config cfg) : _config(std::move(cfg)) {}

future<> app_template::stop_signal() {
  REEF_ASSERT(current_stop != nullptr && this_shard_id() == 0,
              "app_template::stop_signal() outside app_template::run() on shard 0");
  stop_state* st = current_stop;
  if (st->signalled.abort_requested()) return make_ready_future<>();
  auto* p = new promise<>();
  future<> f = p->get_future();
  ++st->waiters;
  auto sub = st->signalled.subscribe([p, st] {
    --st->waiters;
    p->set_value();
    delete p;
  });
  // The subscription must live as long as the wait: keep it with the future.
  return f.finally([sub = std::make_shared<std::optional<abort_source::subscription>>(std::move(sub))] {});
}

int app_template::run(int argc, char** argv, noncopyable_function<future<>()> main) {
  return run(argc, argv, [main = std::move(main)]() mutable {
    return main().then([] { return 0; });
  });
}

int app_template::run(int argc, char** argv, noncopyable_function<future<int>()> main) {
  command_line cl = parse_command_line(argc, argv);
  if (cl.help) {
    std::string text = usage(argc > 0 ? argv[0] : _config.name);
    if (!_config.description.empty()) text = _config.description + "\n\n" + text;
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  auto refuse = [&](const std::string& why) {
    std::fprintf(stderr, "%s: %s\n", argc > 0 ? argv[0] : _config.name.c_str(), why.c_str());
    return 2;
  };
  if (!cl.error.empty()) return refuse(cl.error);
  _arguments = cl.positional;

  smp_options options;
  try {
    options.reactor = reactor_options_from_flags();
    apply_log_flags();
    std::optional<unsigned> smp_count;
    int n = absl::GetFlag(FLAGS_smp);
    if (n < 0) throw flag_error("flag --smp: must not be negative");
    if (static_cast<unsigned>(n) > smp::shards_max) {
      throw flag_error("flag --smp " + std::to_string(n) + ": at most " + std::to_string(smp::shards_max) +
                               " shards");
    }
    if (n > 0) smp_count = static_cast<unsigned>(n);
    std::optional<std::vector<unsigned>> cpuset;
    std::string cpus = absl::GetFlag(FLAGS_cpuset);
    if (!cpus.empty()) cpuset = parse_cpuset(cpus);
    topology topo = topology::discover();
    const bool overprovisioned = absl::GetFlag(FLAGS_overprovisioned);
    options.cpus = select_cpus(topo, smp_count, cpuset, overprovisioned);
    if (overprovisioned) {
      // Shards that share CPUs must neither hold one (pinning) nor spin on
      // it (idle polling) while others wait for it.
      options.pin_threads = false;
      options.reactor.idle_poll_time = std::chrono::microseconds(0);
    }

    // Memory: a total split evenly across the shards, each capped.
    std::size_t physical = topo.total_memory_bytes();
    std::string memory_flag = absl::GetFlag(FLAGS_memory);
    std::string reserve_flag = absl::GetFlag(FLAGS_reserve_memory);
    std::size_t reserve = reserve_flag.empty()
                              ? std::max<std::size_t>(physical / 100 * 7, std::size_t{3} << 29)
                              : parse_size("reserve-memory", reserve_flag);
    std::size_t total;
    if (!memory_flag.empty()) {
      total = parse_size("memory", memory_flag);
      if (total == 0) throw flag_error("flag --memory: must be more than 0");
    } else {
      if (reserve >= physical) {
        throw flag_error("flag --reserve-memory: reserves all of the machine's memory");
      }
      total = physical - reserve;
    }
    std::size_t per_shard = total / options.cpus.size();
    if (per_shard < (std::size_t{16} << 20)) {
      throw flag_error("flag --memory: less than 16M per shard");
    }
    memory::allocator_config mc;
    mc.shards = static_cast<unsigned>(options.cpus.size());
    mc.limit_per_shard_bytes = per_shard;
    for (const auto& c : options.cpus) mc.numa_node_of_shard.push_back(static_cast<int>(c.numa_node));
    if (const char* why = memory::configure(mc)) {
      throw flag_error("flag --smp " + std::to_string(mc.shards) + ": " + why + " (at most " +
                               std::to_string(memory::max_shards) + " shards)");
    }
  } catch (const std::invalid_argument& e) {
    return refuse(e.what());
  }
  // Signals are shard 0's, handled below.
  options.reactor.stop_on_sigint_sigterm = false;

  started_steps steps;
  for (const startup_step& step : startup_steps()) {
    try {
      step.start(options);
    } catch (const std::invalid_argument& e) {
      return refuse(e.what());
    } catch (const std::exception& e) {
      app_logger().error("could not start: {}", e.what());
      return 1;
    }
    steps.started.push_back(step);
  }

  stop_state st;
  current_stop = &st;
  int code;
  try {
    code = smp::run(std::move(options), [&st, &main]() -> future<int> {
      auto on_signal = [&st](int signo) {
        return [&st, signo] {
          if (st.signalled.abort_requested()) return;
          app_logger().info("signal {} received: stopping", signo);
          bool someone_waits = st.waiters > 0;
          st.signalled.request_abort();
          // Nobody runs a stop path: stop the reactor; smp shuts down.
          if (!someone_waits) engine().stop();
        };
      };
      engine().handle_signal(SIGINT, on_signal(SIGINT));
      engine().handle_signal(SIGTERM, on_signal(SIGTERM));
      return main();
    });
  } catch (const std::exception& e) {
    current_stop = nullptr;
    app_logger().error("could not start: {}", e.what());
    return 1;
  }
  current_stop = nullptr;
  return code;
}

}  // namespace reef
