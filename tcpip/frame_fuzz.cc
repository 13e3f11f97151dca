// Fuzzes the native stack's receive path: whole Ethernet frames into an
// IPv4 interface with UDP on it (ARP, IPv4 with options and fragments,
// reassembly, ICMP and its errors, UDP), through the flow steering of a
// 4-shard stack on a 2-queue device, and (their UDP data, as if for port
// 68) through the DHCP client's parser. The input is frames, each a
// 2-byte big-endian length then its bytes. Whatever comes in: no crash, no
// read out of bounds, reassembly within its cap, every frame counted,
// every frame steered to a shard that exists.
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "tcpip/dhcp_message.h"
#include "tcpip/flow_steering.h"
#include "tcpip/ipv4_interface.h"
#include "tcpip/udp.h"
#include "tcpip/virtual_link.h"

namespace {

using namespace reef;
using namespace reef::tcpip;

struct host {
  host()
      : link(),
        ip(link.end(1), link.end(1).open_queue(0),
           interface_config{.address = 0x0a000002,
                            .netmask = 0xffffff00,
                            .gateway = 0x0a000001,
                            .reassembly = {.memory_max = 256 * 1024, .fragments_max = 64}}),
        udp(ip) {
    in_addr any{};
    channel = udp.make_channel(socket_address(inet_address(any), 7));
  }
  virtual_link link;
  ipv4_interface ip;
  udp_layer udp;
  udp_channel channel;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static host* h = new host();  // one host for every input: state carries over, as on a wire
  static flow_steering* steering = [] {
    device_info info;
    info.queues = 2;
    return new flow_steering(info, {.shards = 4, .hw_queue_weight = 0.5});
  }();
  std::size_t at = 0;
  while (at + 2 <= size) {
    const std::size_t n = std::min<std::size_t>(std::size_t{data[at]} << 8 | data[at + 1], size - at - 2);
    at += 2;
    const std::span<const std::uint8_t> frame(data + at, n);
    if (steering->shard_of_frame(frame, n > 0 ? std::optional<std::uint32_t>(data[at]) : std::nullopt, 3) >= 4) {
      __builtin_trap();
    }
    if (n > 42) {
      dhcp_message m;
      (void)dhcp_message::parse(frame.subspan(42), m);  // past Ethernet, IPv4 and UDP headers
    }
    const auto before = h->ip.stats().rx_frames;
    h->ip.process(received_frame{packet::copy_of(std::string_view(reinterpret_cast<const char*>(data + at), n)),
                                 std::nullopt, checksum_status::unknown});
    at += n;
    if (h->ip.stats().rx_frames != before + 1) __builtin_trap();
    if (h->ip.reassembly().memory() > 256 * 1024) __builtin_trap();
  }
  return 0;
}
