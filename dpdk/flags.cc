#include "dpdk/flags.h"

#include <memory>
#include <stdexcept>
#include <string>

#include "absl/flags/flag.h"
#include "core/log.h"
#include "core/reactor_flags.h"
#include "dpdk/device.h"
#include "dpdk/eal.h"
#include "smp/app_template.h"
#include "tcpip/native_stack_flags.h"

ABSL_FLAG(bool, dpdk_pmd, false, "run the native stack (--network-stack native) on a DPDK port");
ABSL_FLAG(int, dpdk_port_index, 0, "the DPDK port the native stack uses");
ABSL_FLAG(std::string, dpdk_args, "",
          "DPDK EAL's arguments, passed through unchanged (e.g. '--no-huge -m 256 --vdev=net_tap0,iface=dtap0')");
ABSL_FLAG(bool, dpdk_offloads, true,
          "use the checksum and segmentation offloads the DPDK port advertises (false: the stack does it all)");
ABSL_FLAG(std::string, hugepages, "", "a hugetlbfs mount for DPDK's memory (empty: EAL's choice)");

namespace reef::dpdk {
namespace {

logger& dpdk_log() {
  static logger* l = new logger("dpdk");
  return *l;
}

// The port, made before the shards and gone after them.
std::unique_ptr<dpdk_device>& the_device() {
  static auto* d = new std::unique_ptr<dpdk_device>();
  return *d;
}

std::string check_flags() {
  const bool pmd = absl::GetFlag(FLAGS_dpdk_pmd);
  const int port = absl::GetFlag(FLAGS_dpdk_port_index);
  if (port < 0 || port > 65535) return "flag --dpdk-port-index " + std::to_string(port) + ": not a port number (0 to 65535)";
  try {
    for (const std::string& a : split_eal_args(absl::GetFlag(FLAGS_dpdk_args))) {
      // (EAL would print and exit() in the middle of start-up.)
      if (a == "-h" || a == "--help" || a == "-v" || a == "--version") {
        return "flag --dpdk-args: " + a + " is not for here (dpdk-testpmd --help lists EAL's arguments)";
      }
    }
  } catch (const std::invalid_argument& e) {
    return std::string("flag --dpdk-args: ") + e.what();
  }
  if (!pmd) {
    if (!absl::GetFlag(FLAGS_dpdk_offloads)) return "flag --dpdk-offloads: DPDK is used only with --dpdk-pmd";
    if (!absl::GetFlag(FLAGS_dpdk_args).empty()) return "flag --dpdk-args: DPDK is used only with --dpdk-pmd";
    if (port != 0) return "flag --dpdk-port-index: DPDK is used only with --dpdk-pmd";
    if (!absl::GetFlag(FLAGS_hugepages).empty()) return "flag --hugepages: DPDK is used only with --dpdk-pmd";
  }
  return "";
}

void start(const smp_options& options) {
  if (!absl::GetFlag(FLAGS_dpdk_pmd)) return;
  eal_options eal;
  eal.args = split_eal_args(absl::GetFlag(FLAGS_dpdk_args));
  eal.hugepages = absl::GetFlag(FLAGS_hugepages);
  dpdk_device_options o;
  for (const cpu_info& c : options.cpus) {
    eal.cpus.push_back(c.os_index);
    o.numa_node_of_queue.push_back(static_cast<int>(c.numa_node));
  }
  o.port = static_cast<std::uint16_t>(absl::GetFlag(FLAGS_dpdk_port_index));
  o.queues = options.cpus.empty() ? 1 : static_cast<unsigned>(options.cpus.size());
  o.mtu = tcpip::native_stack_config_from_flags().tap.mtu;
  o.close_port = true;
  o.offloads = absl::GetFlag(FLAGS_dpdk_offloads);
  start_eal(eal);
  try {
    the_device() = std::make_unique<dpdk_device>(o);
  } catch (...) {
    stop_eal();
    throw;
  }
}

void stop() {
  if (dpdk_device* d = the_device().get()) {
    const port_stats s = d->stats();
    dpdk_log().info("port {}: received {} frames ({} bytes), sent {} ({} bytes); missed {}, receive errors {}, "
                        "send errors {}, no mbuf {}",
                        absl::GetFlag(FLAGS_dpdk_port_index), s.rx_frames, s.rx_bytes, s.tx_frames, s.tx_bytes,
                        s.rx_missed, s.rx_errors, s.tx_errors, s.rx_no_mbuf);
    for (std::size_t q = 0; q < s.queues.size(); ++q) {
      dpdk_log().info("port {} queue {}: received {} frames, sent {}", absl::GetFlag(FLAGS_dpdk_port_index), q,
                          s.queues[q].rx_frames, s.queues[q].tx_frames);
    }
  }
  the_device().reset();
  stop_eal();
}

[[maybe_unused]] const bool registered = [] {
  add_command_line_check(check_flags);
  add_startup_step({.start = start, .stop = stop});
  tcpip::set_native_device_provider([]() -> tcpip::device* { return the_device().get(); });
  return true;
}();

}  // namespace

dpdk_device* process_dpdk_device() noexcept { return the_device().get(); }

}  // namespace reef::dpdk
