#include "dpdk/eal.h"

#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "core/reactor.h"

namespace reef::dpdk {
namespace {

enum class eal_state { never, running, stopped };
std::atomic<eal_state> state{eal_state::never};
// EAL's runtime files (its socket, its memory maps' names) when their
// prefix is this process's own: removed when EAL stops, or fails to start.
std::string* own_runtime_dir = nullptr;

void remove_own_runtime_dir() noexcept {
  if (own_runtime_dir == nullptr || own_runtime_dir->empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(*own_runtime_dir, ignored);
  own_runtime_dir->clear();
}

bool names_one_of(const std::vector<std::string>& args, std::initializer_list<std::string_view> options) {
  for (const std::string& a : args) {
    for (std::string_view o : options) {
      if (a == o || (a.size() > o.size() && a.compare(0, o.size(), o) == 0 && (a[o.size()] == '=' || o.size() == 2))) {
        return true;
      }
    }
  }
  return false;
}

std::string joined(const std::vector<std::string>& args) {
  std::string out;
  for (const std::string& a : args) out += (out.empty() ? "" : " ") + a;
  return out;
}

}  // namespace

std::vector<std::string> split_eal_args(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  bool in_argument = false;
  char quote = 0;
  for (char c : text) {
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        current += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_argument = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_argument) out.push_back(std::move(current));
      current.clear();
      in_argument = false;
    } else {
      current += c;
      in_argument = true;
    }
  }
  if (quote != 0) throw std::invalid_argument(std::string("a quote (") + quote + ") is left open");
  if (in_argument) out.push_back(std::move(current));
  return out;
}

std::vector<std::string> eal_arguments(const eal_options& options) {
  std::vector<std::string> args = options.args;
  // (Short options take their value glued or as the next argument.)
  if (!names_one_of(args, {"-l", "-c", "--lcores"}) && !options.cpus.empty()) {
    std::string cpus;
    for (unsigned c : options.cpus) cpus += (cpus.empty() ? "" : ",") + std::to_string(c);
    args.push_back("--lcores=0@(" + cpus + ")");
  }
  if (!names_one_of(args, {"--file-prefix"})) args.push_back("--file-prefix=reef-" + std::to_string(::getpid()));
  if (!options.hugepages.empty() && !names_one_of(args, {"--huge-dir"})) {
    args.push_back("--huge-dir=" + options.hugepages);
  }
  return args;
}

void start_eal(const eal_options& options) {
  eal_state expected = eal_state::never;
  if (!state.compare_exchange_strong(expected, eal_state::running)) {
    throw std::logic_error("DPDK's EAL was started before in this process");
  }
  // rte_eal_init keeps pointers into its arguments: they live as long as
  // the process.
  static std::vector<std::string>* kept = new std::vector<std::string>();
  *kept = eal_arguments(options);
  kept->insert(kept->begin(), "reef");
  static std::vector<char*>* argv = new std::vector<char*>();
  argv->clear();
  for (std::string& a : *kept) argv->push_back(a.data());
  argv->push_back(nullptr);

  // Drivers that take a free real-time signal as they probe (net_tap's
  // "a frame came" signal) must leave the reactors' own alone: the
  // reactors install their handlers later and would take the signal
  // from under the driver (net_tap then stopped receiving). Marked taken
  // here (ignored until a reactor sets its handler).
  for (int signo : reactor_signals()) {
    struct sigaction current {};
    if (::sigaction(signo, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      struct sigaction ignore {};
      ignore.sa_handler = SIG_IGN;
      ::sigaction(signo, &ignore, nullptr);
    }
  }
  // EAL pins the calling thread to its main lcore's CPUs; the thread's
  // own setting comes back after.
  cpu_set_t affinity;
  CPU_ZERO(&affinity);
  const bool have_affinity = ::pthread_getaffinity_np(::pthread_self(), sizeof(affinity), &affinity) == 0;
  const int rc = ::rte_eal_init(static_cast<int>(argv->size() - 1), argv->data());
  const int error = rte_errno;
  if (have_affinity) ::pthread_setaffinity_np(::pthread_self(), sizeof(affinity), &affinity);
  if (!names_one_of(options.args, {"--file-prefix"})) {
    const char* dir = ::rte_eal_get_runtime_dir();
    const std::string mine = "reef-" + std::to_string(::getpid());
    if (dir != nullptr && std::string_view(dir).ends_with(mine)) own_runtime_dir = new std::string(dir);
  }
  if (rc < 0) {
    remove_own_runtime_dir();
    // (DPDK cannot start EAL twice in a process, even after a failure.)
    state.store(eal_state::stopped);
    throw std::runtime_error("DPDK's EAL did not start with '" + joined(*kept) + "': " + ::rte_strerror(error) +
                             " (EAL's own lines above say more)");
  }
}

bool eal_running() noexcept { return state.load() == eal_state::running; }

void stop_eal() noexcept {
  eal_state expected = eal_state::running;
  if (state.compare_exchange_strong(expected, eal_state::stopped)) {
    ::rte_eal_cleanup();
    remove_own_runtime_dir();
  }
}

}  // namespace reef::dpdk
