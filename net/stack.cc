#include "net/stack.h"

#include <map>
#include <mutex>
#include <stdexcept>

namespace reef {

namespace {

struct stack_registry {
  std::mutex mutex;
  std::map<std::string, network_stack_factory, std::less<>> factories;
  std::string selected = "posix";
};

stack_registry& registry() {
  static auto* r = new stack_registry;
  return *r;
}

thread_local std::unique_ptr<network_stack> this_shard_stack;

}  // namespace

void register_network_stack(std::string name, network_stack_factory factory) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  r.factories[std::move(name)] = std::move(factory);
}

std::vector<std::string> network_stack_names() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (auto& [name, f] : r.factories) names.push_back(name);
  return names;
}

void select_network_stack(std::string_view name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  if (r.factories.find(name) == r.factories.end()) {
    std::string known;
    for (auto& [n, f] : r.factories) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("no network stack '" + std::string(name) + "' (known: " +
                                (known.empty() ? "none linked" : known) + ")");
  }
  r.selected = std::string(name);
}

network_stack& this_shard_network_stack() {
  if (!this_shard_stack) {
    network_stack_factory factory;
    {
      auto& r = registry();
      std::lock_guard lock(r.mutex);
      auto it = r.factories.find(r.selected);
      if (it == r.factories.end()) {
        throw std::logic_error("no network stack '" + r.selected +
                               "' is linked (depend on //net:posix_stack)");
      }
      factory = it->second;
    }
    this_shard_stack = factory();
  }
  return *this_shard_stack;
}

server_socket listen(const socket_address& address, const listen_options& options) {
  return this_shard_network_stack().listen(address, options);
}

future<connected_socket> connect(const socket_address& address, const connect_options& options) {
  try {
    return this_shard_network_stack().connect(address, options);
  } catch (...) {
    return make_exception_future<connected_socket>(std::current_exception());
  }
}

udp_channel make_udp_channel(const socket_address& local) {
  return this_shard_network_stack().make_udp_channel(local);
}

}  // namespace reef
