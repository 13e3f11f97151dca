#include "tcpip/native_stack_flags.h"

#include <arpa/inet.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/string_view.h"
#include "core/log.h"
#include "core/reactor_flags.h"
#include "core/shared_future.h"
#include "smp/smp.h"

namespace reef::tcpip {
namespace {

std::optional<std::uint32_t> parse_ipv4(absl::string_view text) {
  in_addr a{};
  if (::inet_pton(AF_INET, std::string(text).c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::uint32_t netmask_of(int prefix) { return prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix); }

// An address, with an optional prefix length after a slash.
struct host_address {
  std::uint32_t address = 0xc0a87a02;  // 192.168.122.2
  int prefix = -1;                     // none given
};

// An address, or none.
struct optional_address {
  std::optional<std::uint32_t> address;
};

struct netmask {
  std::uint32_t mask = 0xffffff00;
};

struct mtu {
  int value = 0;  // the interface's
};

struct queue_weight {
  double value = 1.0;
};

bool AbslParseFlag(absl::string_view text, host_address* out, std::string* error) {
  host_address h;
  absl::string_view ip = text;
  if (auto slash = text.find('/'); slash != absl::string_view::npos) {
    ip = text.substr(0, slash);
    const std::string prefix(text.substr(slash + 1));
    char* end = nullptr;
    const long n = prefix.empty() ? -1 : std::strtol(prefix.c_str(), &end, 10);
    if (n < 1 || n > 30 || *end != '\0') {
      *error = "the prefix length after '/' is not 1 to 30";
      return false;
    }
    h.prefix = static_cast<int>(n);
  }
  auto a = parse_ipv4(ip);
  if (!a) {
    *error = "not an IPv4 address (A.B.C.D or A.B.C.D/N)";
    return false;
  }
  if (*a == 0 || (*a >> 24) == 127 || (*a >> 28) >= 0xe) {
    *error = "not an address a host can have";
    return false;
  }
  h.address = *a;
  *out = h;
  return true;
}

std::string AbslUnparseFlag(const host_address& h) {
  in_addr a{};
  a.s_addr = htonl(h.address);
  char text[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &a, text, sizeof(text));
  return std::string(text) + (h.prefix >= 0 ? "/" + std::to_string(h.prefix) : "");
}

bool AbslParseFlag(absl::string_view text, optional_address* out, std::string* error) {
  if (text.empty()) {
    out->address.reset();
    return true;
  }
  auto a = parse_ipv4(text);
  if (!a || *a == 0) {
    *error = "not an IPv4 address (A.B.C.D)";
    return false;
  }
  out->address = a;
  return true;
}

std::string AbslUnparseFlag(const optional_address& o) { return o.address ? ipv4_to_string(*o.address) : ""; }

bool AbslParseFlag(absl::string_view text, netmask* out, std::string* error) {
  auto a = parse_ipv4(text);
  const std::uint32_t host_bits = a ? ~*a : 0;
  if (!a || (host_bits & (host_bits + 1)) != 0 || *a == 0 || host_bits < 3) {
    *error = "not a netmask (a prefix of 1 to 30 bits, as 255.255.255.0)";
    return false;
  }
  out->mask = *a;
  return true;
}

std::string AbslUnparseFlag(const netmask& m) { return ipv4_to_string(m.mask); }

bool AbslParseFlag(absl::string_view text, mtu* out, std::string* error) {
  const std::string s(text);
  char* end = nullptr;
  const long n = s.empty() ? -1 : std::strtol(s.c_str(), &end, 10);
  if (n < 68 || n > 9000 || *end != '\0') {
    *error = "not an MTU (68 to 9000)";
    return false;
  }
  out->value = static_cast<int>(n);
  return true;
}

std::string AbslUnparseFlag(const mtu& m) { return m.value == 0 ? "" : std::to_string(m.value); }

bool AbslParseFlag(absl::string_view text, queue_weight* out, std::string* error) {
  const std::string s(text);
  char* end = nullptr;
  const double w = s.empty() ? -1 : std::strtod(s.c_str(), &end);
  if (!(w >= 0 && w <= 1) || *end != '\0') {
    *error = "not a weight from 0 to 1";
    return false;
  }
  out->value = w;
  return true;
}

std::string AbslUnparseFlag(const queue_weight& w) { return std::to_string(w.value); }

}  // namespace
}  // namespace reef::tcpip

ABSL_FLAG(std::string, tap_device, "tap0", "the TAP interface the native stack uses");
ABSL_FLAG(reef::tcpip::host_address, host_ipv4_addr, reef::tcpip::host_address{},
          "the native stack's IPv4 address, A.B.C.D or A.B.C.D/N (N sets the netmask)");
ABSL_FLAG(reef::tcpip::netmask, netmask_ipv4_addr, reef::tcpip::netmask{}, "the native stack's netmask");
ABSL_FLAG(reef::tcpip::optional_address, gw_ipv4_addr, reef::tcpip::optional_address{},
          "the native stack's default gateway (none if empty)");
ABSL_FLAG(reef::tcpip::queue_weight, hw_queue_weight, reef::tcpip::queue_weight{},
          "the share of its queue's flows a queue owner keeps where shards without queues lean on it (0 to 1)");
ABSL_FLAG(bool, dhcp, false, "ask a DHCP server for the native stack's address (--host-ipv4-addr is not used)");
ABSL_FLAG(reef::tcpip::mtu, native_stack_mtu, reef::tcpip::mtu{},
          "the native stack's IP MTU, 68 to 9000 (empty: the interface's)");

namespace reef::tcpip {
namespace {

// Flags that disagree: "" or what is wrong.
std::string check_flags() {
  try {
    native_stack_config c = native_stack_config_from_flags();
    if (c.tap.name.empty() || c.tap.name.size() > 15) return "flag --tap-device: an interface name of 1 to 15 bytes";
    if (c.dhcp) return "";
    const std::uint32_t mask = c.stack.ip.netmask;
    const std::uint32_t address = c.stack.ip.address;
    if ((address & ~mask) == 0 || (address | mask) == 0xffffffff) {
      return "flag --host-ipv4-addr " + ipv4_to_string(address) + ": the network's own or broadcast address";
    }
    if (auto gw = c.stack.ip.gateway) {
      if ((*gw & mask) != (address & mask) || *gw == address) {
        return "flag --gw-ipv4-addr " + ipv4_to_string(*gw) + ": not another host on the network of --host-ipv4-addr";
      }
    }
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// The process's network: made by the first shard that uses "native", on
// every shard from then on, stopped at smp's shutdown. Never destroyed
// (applications may hold channels to the end).
struct process_network {
  std::mutex mutex;
  native_device_provider provider = nullptr;
  std::unique_ptr<tap_device> tap;  // unless the provider gave a device
  std::unique_ptr<native_network> network;
  bool dhcp = false;
  std::optional<shared_future<dhcp_lease>> first_lease;  // shard 0's
};

// On shard 0: the DHCP client started once, and its first lease.
shared_future<dhcp_lease>& dhcp_started(process_network& p) {
  if (!p.first_lease) p.first_lease.emplace(p.network->start_dhcp());
  return *p.first_lease;
}

process_network& the_network() {
  static auto* n = new process_network;
  return *n;
}

native_network& network_for_this_shard() {
  auto& p = the_network();
  std::lock_guard lock(p.mutex);
  if (!p.network) {
    native_stack_config c = native_stack_config_from_flags();
    device* dev = p.provider != nullptr ? p.provider() : nullptr;
    if (dev == nullptr) {
      // A queue per shard where the interface has them; one otherwise.
      c.tap.queues = smp::count;
      try {
        p.tap = std::make_unique<tap_device>(c.tap);
      } catch (const std::system_error&) {
        if (c.tap.queues == 1) throw;
        c.tap.queues = 1;
        p.tap = std::make_unique<tap_device>(c.tap);
      }
      dev = p.tap.get();
    }
    p.network = std::make_unique<native_network>(*dev, c.stack);
    p.dhcp = c.dhcp;
    native_network* net = p.network.get();
    // Every shard: its queue polled from now on, and stopped at shutdown.
    (void)smp::invoke_on_all([net, &p] {
      net->local();
      smp::at_shutdown([net] { return net->stop_local(); });
      if (p.dhcp && this_shard_id() == 0) {
        (void)dhcp_started(p).get_future().discard_result().handle_exception([](std::exception_ptr) {});  // logged
      }
    }).handle_exception([](std::exception_ptr e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& error) {
        logger("native_stack").error("starting the native stack on every shard: {}", error.what());
      }
    });
  }
  return *p.network;
}

// What the registry holds per shard: the shard's stack of the process's
// network.
class registered_native_stack final : public network_stack {
 public:
  registered_native_stack() : _stack(network_for_this_shard().local()) {}
  const char* name() const noexcept override { return "native"; }
  future<> ready() override { return native_stack_configured(); }
  server_socket listen(const socket_address& a, const listen_options& o) override { return _stack.listen(a, o); }
  future<connected_socket> connect(const socket_address& a, const connect_options& o) override {
    return _stack.connect(a, o);
  }
  udp_channel make_udp_channel(const socket_address& local) override { return _stack.make_udp_channel(local); }

 private:
  native_stack& _stack;
};

[[maybe_unused]] const bool registered = [] {
  register_network_stack("native", [] { return std::make_unique<registered_native_stack>(); });
  add_command_line_check(check_flags);
  return true;
}();

}  // namespace

native_stack_config native_stack_config_from_flags() {
  native_stack_config c;
  c.tap.name = absl::GetFlag(FLAGS_tap_device);
  const host_address host = absl::GetFlag(FLAGS_host_ipv4_addr);
  c.stack.ip.address = host.address;
  c.stack.ip.netmask = host.prefix >= 0 ? netmask_of(host.prefix) : absl::GetFlag(FLAGS_netmask_ipv4_addr).mask;
  c.stack.ip.gateway = absl::GetFlag(FLAGS_gw_ipv4_addr).address;
  c.stack.hw_queue_weight = absl::GetFlag(FLAGS_hw_queue_weight).value;
  c.dhcp = absl::GetFlag(FLAGS_dhcp);
  if (c.dhcp) {
    c.stack.ip.address = 0;
    c.stack.ip.gateway.reset();
  }
  const int m = absl::GetFlag(FLAGS_native_stack_mtu).value;
  if (m != 0) c.tap.mtu = static_cast<std::uint16_t>(m);
  return c;
}

future<> native_stack_configured() {
  auto& p = the_network();
  if (this_shard_id() != 0) {
    return smp::submit_to(0, [] { return native_stack_configured(); });
  }
  {
    std::lock_guard lock(p.mutex);
    if (!p.network || !p.dhcp) return make_ready_future<>();
  }
  return dhcp_started(p).get_future().discard_result();
}

void set_native_device_provider(native_device_provider provider) { the_network().provider = provider; }

native_network* process_native_network() noexcept {
  auto& p = the_network();
  std::lock_guard lock(p.mutex);
  return p.network.get();
}

}  // namespace reef::tcpip
