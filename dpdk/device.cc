#include "dpdk/device.h"

#include <rte_bus.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <new>
#include <stdexcept>
#include <thread>

#include "core/log.h"
#include "core/temporary_buffer.h"
#include "net/packet.h"
#include "tcpip/wire.h"

namespace reef::dpdk {

using tcpip::checksum_status;
using tcpip::received_frame;
using tcpip::tx_frame;

namespace {

logger& dpdk_log() {
  static logger* l = new logger("dpdk");
  return *l;
}

// Frames taken from or given to the driver per call.
constexpr unsigned burst = 32;
// Headers and frames up to this size are copied into an mbuf of their own:
// cheaper than attaching them.
constexpr std::size_t copy_max = 256;
// A pool's mbufs: room for a full-size frame (more for jumbo frames where
// the port cannot chain mbufs), and the packet deleter of a received one
// in the private area.
constexpr std::uint16_t mbuf_data_room = RTE_MBUF_DEFAULT_BUF_SIZE;
constexpr unsigned pool_cache = 256;

std::runtime_error port_error(std::uint16_t port, const std::string& what, int error) {
  return std::runtime_error("DPDK port " + std::to_string(port) + ": " + what +
                            (error != 0 ? std::string(": ") + ::rte_strerror(error < 0 ? -error : error) : ""));
}

// A received frame's deleter, built in its mbuf's private area: no
// allocation per frame. Releasing it returns the mbuf (and its chain) to
// the pool; the deleter's own memory goes with the mbuf, so its
// operator delete does the freeing, after the destructor is done.
class mbuf_deleter final : public deleter::impl {
 public:
  static deleter of(rte_mbuf* m) noexcept { return deleter(new (::rte_mbuf_to_priv(m)) mbuf_deleter()); }
  static void operator delete(void* p) noexcept {
    ::rte_pktmbuf_free(reinterpret_cast<rte_mbuf*>(static_cast<char*>(p) - sizeof(rte_mbuf)));
  }

 private:
  mbuf_deleter() noexcept = default;
};
constexpr std::uint16_t mbuf_priv_size = RTE_ALIGN(sizeof(mbuf_deleter), RTE_MBUF_PRIV_ALIGN);

// What a transmitted packet's attached fragments hold on to until the
// driver has sent the last of them: the packet, and DPDK's count of the
// mbufs that point into it.
struct tx_hold {
  rte_mbuf_ext_shared_info shinfo;
  packet frame;
  static void release(void*, void* opaque) noexcept { delete static_cast<tx_hold*>(opaque); }
};

// EAL lcores for the shards' threads: a thread that opens a queue is
// registered once (the mempools' per-lcore caches then serve it) and
// unregistered when its last queue goes.
thread_local unsigned registrations = 0;
thread_local bool registered_here = false;

void register_thread() noexcept {
  if (registrations++ > 0) return;
  if (::rte_lcore_id() != LCORE_ID_ANY) return;  // an EAL thread already
  if (::rte_thread_register() == 0) {
    registered_here = true;
  } else {
    // No lcore left: the pools work without their caches.
    try {
      dpdk_log().warn("no EAL lcore for this thread ({}): mbuf pools without per-thread caches",
                      ::rte_strerror(rte_errno));
    } catch (...) {
    }
  }
}

void unregister_thread() noexcept {
  if (--registrations > 0 || !registered_here) return;
  ::rte_thread_unregister();
  registered_here = false;
}

}  // namespace

std::optional<bool> hash_agrees(std::span<const std::uint8_t> frame, std::uint32_t hash,
                                const tcpip::toeplitz_hash& stack_hash, bool udp_ports) {
  if (frame.size() < 14 + 20 || tcpip::wire::get16(frame, 12) != 0x0800) return std::nullopt;
  auto ip = frame.subspan(14);
  const std::size_t ihl = static_cast<std::size_t>(ip[0] & 0x0f) * 4;
  if ((ip[0] >> 4) != 4 || ihl < 20 || ip.size() < ihl + 4) return std::nullopt;
  const std::uint8_t protocol = ip[9];
  if (protocol != 6 && (protocol != 17 || !udp_ports)) return std::nullopt;
  if ((tcpip::wire::get16(ip, 6) & 0x3fff) != 0) return std::nullopt;  // a fragment
  const std::uint32_t expected =
      stack_hash.ipv4_ports(tcpip::wire::get32(ip, 12), tcpip::wire::get32(ip, 16), tcpip::wire::get16(ip, ihl),
                            tcpip::wire::get16(ip, ihl + 2));
  return expected == hash;
}

// What the queues share with the device (and outlive it with, should a
// queue be destroyed late).
struct dpdk_device::shared {
  std::uint16_t port = 0;
  bool rss = false;
  bool rx_checksum = false;
  bool tx_ip_checksum = false;  // the port fills in IPv4 header checksums
  tcpip::toeplitz_hash stack_hash;
  bool hash_udp_ports = false;  // the port hashes UDP by its ports too
  std::atomic<int> hash_checks_left{16};
  std::atomic<bool> hash_disagrees{false};

  explicit shared(const tcpip::toeplitz_key& key) : stack_hash(key) {}

  // The first hashed frames' hashes against the stack's; on the first
  // that disagrees, the stack steers by its own from then on.
  void check_hash(std::span<const std::uint8_t> head, std::uint32_t hash) noexcept {
    auto agrees = hash_agrees(head, hash, stack_hash, hash_udp_ports);
    if (!agrees) return;
    if (!*agrees) {
      if (!hash_disagrees.exchange(true)) {
        try {
          dpdk_log().warn("port {}: the port's RSS hash differs from the stack's: the stack steers flows itself",
                          port);
        } catch (...) {
        }
      }
      return;
    }
    hash_checks_left.fetch_sub(1, std::memory_order_relaxed);
  }
};

namespace {

class dpdk_queue final : public tcpip::device_queue {
 public:
  dpdk_queue(std::shared_ptr<dpdk_device::shared> shared, std::uint16_t queue, rte_mempool* pool, bool zero_copy)
      : _shared(std::move(shared)), _port(_shared->port), _queue(queue), _pool(pool), _zero_copy(zero_copy) {
    _pending.reserve(pending_max);
    register_thread();
    _low_mark = std::min<unsigned>(pool->size / 4, 1024);
  }

  ~dpdk_queue() override {
    // What the ring does not take now is not sent.
    flush();
    for (rte_mbuf* m : _pending) ::rte_pktmbuf_free(m);
    _pending.clear();
    // This thread's cache of the pool goes back to it (the device frees a
    // pool only when every mbuf is back).
    if (::rte_lcore_id() != LCORE_ID_ANY) {
      if (rte_mempool_cache* cache = ::rte_mempool_default_cache(_pool, ::rte_lcore_id())) {
        ::rte_mempool_cache_flush(cache, _pool);
      }
    }
    unregister_thread();
  }

  std::size_t receive(std::vector<received_frame>& out, std::size_t max) override {
    flush();
    std::array<rte_mbuf*, burst> mbufs;
    const std::uint16_t n =
        ::rte_eth_rx_burst(_port, _queue, mbufs.data(), static_cast<std::uint16_t>(std::min<std::size_t>(max, burst)));
    if (n == 0) return 0;
    // The pool running low (received buffers held up the stack): copy,
    // and give the mbufs back at once. Counting a pool's mbufs walks every
    // lcore's cache: the count is taken again once a quarter of the
    // margin has been lent since, or while copying.
    if (_copy || _lent_since_count >= _low_mark / 4) {
      _available_at_count = ::rte_mempool_avail_count(_pool);
      _lent_since_count = 0;
    }
    _copy = _available_at_count < _low_mark + _lent_since_count;
    const bool copy = _copy;
    if (!copy) _lent_since_count += n;
    const bool use_hash = _shared->rss && !_shared->hash_disagrees.load(std::memory_order_relaxed);
    std::size_t taken = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = mbufs[i];
      try {
        received_frame f;
        f.frame = frame_of(m, copy);
        if (use_hash && (m->ol_flags & RTE_MBUF_F_RX_RSS_HASH) != 0) {
          if (_shared->hash_checks_left.load(std::memory_order_relaxed) > 0) check_hash(f, m->hash.rss);
          if (!_shared->hash_disagrees.load(std::memory_order_relaxed)) f.rss_hash = m->hash.rss;
        }
        if (_shared->rx_checksum) f.checksum = checksum_of(m->ol_flags);
        _stats.rx_bytes += f.frame.len();
        out.push_back(std::move(f));
        ++taken;
      } catch (...) {
        // No memory for the copy or the packet: the frame is dropped.
        ++_stats.rx_dropped;
      }
    }
    _stats.rx_frames += taken;
    return taken;
  }

  std::size_t transmit(std::span<tx_frame> frames) override {
    std::size_t taken = 0;
    for (tx_frame& f : frames) {
      if (_pending.size() >= pending_max) {
        flush();
        if (_pending.size() >= pending_max) break;  // the ring is full: the caller counts the rest
      }
      const std::size_t bytes = f.frame.len();
      rte_mbuf* m = mbufs_of(f);
      if (m == nullptr) break;  // no mbuf: as a full ring
      _pending.push_back(m);
      _stats.tx_bytes += bytes;
      ++taken;
      if (_pending.size() >= burst) flush();
    }
    _stats.tx_frames += taken;
    _stats.tx_refused += frames.size() - taken;
    return taken;
  }

  // Polled: the shard never sleeps.
  void on_arrival(noncopyable_function<void()>) override {}
  bool polled() const noexcept override { return true; }

  void flush() noexcept override {
    if (_pending.empty()) return;
    const std::uint16_t n = ::rte_eth_tx_burst(_port, _queue, _pending.data(), static_cast<std::uint16_t>(_pending.size()));
    _pending.erase(_pending.begin(), _pending.begin() + n);
  }

 private:
  static constexpr std::size_t pending_max = 1024;

  void check_hash(const received_frame& f, std::uint32_t hash) noexcept {
    const fragment& first = f.frame.fragments().front();
    _shared->check_hash(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(first.base), first.size),
                        hash);
  }

  static checksum_status checksum_of(std::uint64_t flags) noexcept {
    switch (flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) {
      case RTE_MBUF_F_RX_L4_CKSUM_GOOD:
      case RTE_MBUF_F_RX_L4_CKSUM_NONE:  // (not filled in, the data intact: a local peer's)
        return checksum_status::good;
      case RTE_MBUF_F_RX_L4_CKSUM_BAD:
        return checksum_status::bad;
      default:
        return checksum_status::unknown;
    }
  }

  // A received mbuf chain as a packet: its segments lent (the head's
  // deleter frees the chain), or copied when `copy` (or when the mbuf has
  // no room for the deleter: another program's pool).
  packet frame_of(rte_mbuf* m, bool copy) {
    if (copy || ::rte_pktmbuf_priv_size(m->pool) < sizeof(mbuf_deleter)) {
      struct free_on_exit {
        rte_mbuf* m;
        ~free_on_exit() { ::rte_pktmbuf_free(m); }
      } release{m};
      temporary_buffer<char> bytes(m->pkt_len);
      std::size_t at = 0;
      for (rte_mbuf* s = m; s != nullptr; s = s->next) {
        std::memcpy(bytes.get_write() + at, rte_pktmbuf_mtod(s, char*), s->data_len);
        at += s->data_len;
      }
      return packet(std::move(bytes));
    }
    deleter d = mbuf_deleter::of(m);
    packet p(fragment{rte_pktmbuf_mtod(m, char*), m->data_len}, std::move(d));
    for (rte_mbuf* s = m->next; s != nullptr; s = s->next) {
      p.append(packet(fragment{rte_pktmbuf_mtod(s, char*), s->data_len}, deleter()));
    }
    return p;
  }

  // The mbufs for a frame to transmit: headers copied, the rest attached
  // (zero copy) or copied; the offloads asked for set. nullptr when the
  // pool is empty.
  rte_mbuf* mbufs_of(tx_frame& f) noexcept {
    rte_mbuf* head = ::rte_pktmbuf_alloc(_pool);
    if (head == nullptr) return nullptr;
    const tcpip::tx_offload& o = f.offload;
    const bool offload = o.l4_checksum || o.segment_size != 0;
    const std::size_t header_bytes = offload ? std::size_t{o.l2_length} + o.l3_length + o.l4_length : 0;
    const std::size_t total = f.frame.len();
    // How much goes into the head mbuf by copy.
    std::size_t copied;
    if (!_zero_copy || total <= copy_max) {
      copied = total;
    } else {
      const std::size_t first = f.frame.fragments().front().size;
      // (At least the Ethernet header: no driver sees an empty first
      // segment.)
      copied = first <= copy_max ? std::max(first, header_bytes) : std::max<std::size_t>(header_bytes, 64);
    }
    if (!copy_into(head, f.frame, 0, copied) || (copied < total && !attach_rest(head, f.frame, copied))) {
      ::rte_pktmbuf_free(head);
      return nullptr;
    }
    if (offload) set_offloads(head, o);
    return head;
  }

  // Copies bytes [from, from + n) of `p` to the end of `head`'s chain,
  // adding mbufs as they fill.
  bool copy_into(rte_mbuf* head, const packet& p, std::size_t from, std::size_t n) noexcept {
    rte_mbuf* tail = ::rte_pktmbuf_lastseg(head);
    std::size_t skipped = 0;
    for (const fragment& frag : p.fragments()) {
      if (n == 0) break;
      if (skipped + frag.size <= from) {
        skipped += frag.size;
        continue;
      }
      const char* at = frag.base + (from > skipped ? from - skipped : 0);
      std::size_t left = std::min<std::size_t>(frag.base + frag.size - at, n);
      skipped += frag.size;
      from += left;
      n -= left;
      while (left > 0) {
        if (::rte_pktmbuf_tailroom(tail) == 0) {
          rte_mbuf* more = ::rte_pktmbuf_alloc(_pool);
          if (more == nullptr) return false;
          tail->next = more;
          tail = more;
          ++head->nb_segs;
        }
        const std::size_t chunk = std::min<std::size_t>(left, ::rte_pktmbuf_tailroom(tail));
        std::memcpy(rte_pktmbuf_mtod_offset(tail, char*, tail->data_len), at, chunk);
        tail->data_len = static_cast<std::uint16_t>(tail->data_len + chunk);
        head->pkt_len += static_cast<std::uint32_t>(chunk);
        at += chunk;
        left -= chunk;
      }
    }
    return true;
  }

  // Attaches bytes [from, end) of the frame as external buffers, which
  // hold the frame until the driver frees the last of them.
  bool attach_rest(rte_mbuf* head, packet& p, std::size_t from) noexcept {
    tx_hold* hold = new (std::nothrow) tx_hold;
    if (hold == nullptr) return false;
    hold->shinfo.free_cb = &tx_hold::release;
    hold->shinfo.fcb_opaque = hold;
    // The pieces, then the mbufs that carry them (a piece of up to
    // 64 KiB - 1 per mbuf: their lengths are 16-bit).
    struct piece {
      char* base;
      std::uint16_t size;
    };
    std::array<piece, 64> pieces;
    std::size_t count = 0;
    std::size_t skipped = 0;
    for (const fragment& frag : p.fragments()) {
      std::size_t start = from > skipped ? std::min(from - skipped, frag.size) : 0;
      skipped += frag.size;
      while (start < frag.size) {
        if (count == pieces.size()) {
          delete hold;
          return false;
        }
        const std::size_t size = std::min<std::size_t>(frag.size - start, UINT16_MAX);
        pieces[count++] = piece{frag.base + start, static_cast<std::uint16_t>(size)};
        start += size;
      }
    }
    std::array<rte_mbuf*, 64> mbufs;
    if (::rte_pktmbuf_alloc_bulk(_pool, mbufs.data(), static_cast<unsigned>(count)) != 0) {
      delete hold;
      return false;
    }
    hold->frame = std::move(p);  // (the fragments' bytes stay where they are)
    ::rte_mbuf_ext_refcnt_set(&hold->shinfo, static_cast<std::uint16_t>(count));
    rte_mbuf* tail = ::rte_pktmbuf_lastseg(head);
    for (std::size_t i = 0; i < count; ++i) {
      rte_mbuf* m = mbufs[i];
      ::rte_pktmbuf_attach_extbuf(m, pieces[i].base, static_cast<rte_iova_t>(reinterpret_cast<std::uintptr_t>(pieces[i].base)),
                                  pieces[i].size, &hold->shinfo);
      m->data_len = pieces[i].size;
      tail->next = m;
      tail = m;
      ++head->nb_segs;
      head->pkt_len += pieces[i].size;
    }
    return true;
  }

  // The offloads a frame asks for, in DPDK's terms: its pseudo header's
  // sum in the L4 checksum (DPDK's rule: without the length when
  // segmenting), and with TSO a zero IPv4 checksum for the port to fill
  // in each piece.
  void set_offloads(rte_mbuf* head, const tcpip::tx_offload& o) noexcept {
    head->l2_len = o.l2_length;
    head->l3_len = o.l3_length;
    head->l4_len = o.l4_length;
    std::uint64_t flags = RTE_MBUF_F_TX_IPV4;
    auto* ip = rte_pktmbuf_mtod_offset(head, rte_ipv4_hdr*, o.l2_length);
    const bool udp = o.l4_checksum_at == 6;
    flags |= udp ? RTE_MBUF_F_TX_UDP_CKSUM : RTE_MBUF_F_TX_TCP_CKSUM;
    if (o.segment_size != 0) {
      flags |= RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IP_CKSUM;
      head->tso_segsz = o.segment_size;
      ip->hdr_checksum = 0;
    } else if (o.ipv4_checksum && _shared->tx_ip_checksum) {
      flags |= RTE_MBUF_F_TX_IP_CKSUM;
      ip->hdr_checksum = 0;
    }
    head->ol_flags |= flags;
    auto* sum = rte_pktmbuf_mtod_offset(head, rte_be16_t*, o.l2_length + o.l3_length + o.l4_checksum_at);
    *sum = ::rte_ipv4_phdr_cksum(ip, head->ol_flags);
  }

  std::shared_ptr<dpdk_device::shared> _shared;
  std::uint16_t _port;
  std::uint16_t _queue;
  rte_mempool* _pool;
  bool _zero_copy;
  unsigned _low_mark;
  unsigned _available_at_count = 0;  // the pool's free mbufs when last counted
  unsigned _lent_since_count = 0;    // received frames lent since (not copied)
  bool _copy = true;                 // the pool ran low: received frames are copied (until counted)
  std::vector<rte_mbuf*> _pending;  // made, not yet taken by the ring
};

}  // namespace

dpdk_device::dpdk_device(dpdk_device_options options) : _options(std::move(options)) {
  const std::uint16_t port = _options.port;
  if (::rte_eth_dev_count_avail() == 0) {
    throw port_error(port, "there is no DPDK port (no device probed: check --dpdk-args' --vdev or -a)", 0);
  }
  if (!::rte_eth_dev_is_valid_port(port)) {
    throw port_error(port, "no such port (there are " + std::to_string(::rte_eth_dev_count_avail()) + ")", 0);
  }
  rte_eth_dev_info dev{};
  if (int rc = ::rte_eth_dev_info_get(port, &dev); rc != 0) throw port_error(port, "no device information", rc);
  _driver = dev.driver_name != nullptr ? dev.driver_name : "";
  unsigned queues =
      std::max(1u, std::min({_options.queues, unsigned{dev.max_rx_queues}, unsigned{dev.max_tx_queues}}));
  // net_tap reads its queues only after a signal that a frame came. Its
  // receive stalled (an ARP request waited for seconds), first seen on a
  // second queue; the cause found was the signal, which net_tap took from
  // the reactors (start_eal now keeps theirs apart). Until two queues are
  // shown to hold up, one: the other shards get their frames through the
  // stack's forwarding.
  if (_driver == "net_tap") queues = 1;
  int socket = ::rte_eth_dev_socket_id(port);
  if (socket < 0) socket = SOCKET_ID_ANY;

  // Zero copy only with drivers known to read memory by its virtual
  // address with the CPU and to be done with a frame's mbufs inside the
  // send call, on the sending thread (see device.h). Not bonding or
  // failsafe (their members may be NICs), virtio-user, vhost or memif
  // (they map DPDK's memory alone, and free sent mbufs later).
  const bool copies_as_it_sends =
      _driver == "net_tap" || _driver == "net_af_packet" || _driver == "net_null" || _driver == "net_pcap";
  _zero_copy_tx = copies_as_it_sends && (dev.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) != 0;

  _shared = std::make_shared<shared>(tcpip::default_toeplitz_key);
  _shared->port = port;

  rte_eth_conf conf{};
  if (_options.offloads) {
    const std::uint64_t rx_checks = RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
    if ((dev.rx_offload_capa & rx_checks) == rx_checks) {
      conf.rxmode.offloads |= rx_checks;
      _shared->rx_checksum = true;
      _info.offloads.rx_checksum_verified = true;
    }
    // (Not on net_tap: its software checksum in DPDK 22.11 goes wrong
    // over a chain of segments of odd lengths, which a chunked reply
    // makes; and its software TSO refuses full-size segments, counting
    // the Ethernet header against the IP MTU. Both seen here.)
    // (Both TCP and UDP: the stack leaves either to a device that says
    // it sums.)
    const std::uint64_t l4_sums = RTE_ETH_TX_OFFLOAD_TCP_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    if ((dev.tx_offload_capa & l4_sums) == l4_sums && _driver != "net_tap") {
      conf.txmode.offloads |= l4_sums;
      _info.offloads.tx_checksum = true;
      if ((dev.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0) {
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
        _shared->tx_ip_checksum = true;
        // TSO: the port cuts, and sums each piece's headers; the
        // segments come attached (zero copy).
        if ((dev.tx_offload_capa & RTE_ETH_TX_OFFLOAD_TCP_TSO) != 0 && _zero_copy_tx) {
          conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_TCP_TSO;
          _info.offloads.tso = true;
        }
      }
    }
  }
  if ((dev.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) != 0) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;

  // The MTU, and mbufs a frame fits: a chain where the port chains them
  // both ways, one mbuf otherwise (a bigger one for jumbo frames).
  std::uint16_t mtu = 1500;
  if (::rte_eth_dev_get_mtu(port, &mtu) != 0 || mtu == 0) mtu = 1500;
  if (_options.mtu) mtu = *_options.mtu;
  conf.rxmode.mtu = mtu;  // (0 would set the port back to 1500)
  const unsigned frame_max = mtu + 18u;  // (Ethernet header and a VLAN tag)
  std::uint16_t data_room = mbuf_data_room;
  if (frame_max > mbuf_data_room - RTE_PKTMBUF_HEADROOM) {
    if ((dev.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER) != 0 &&
        (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) != 0) {
      conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
    } else {
      data_room = static_cast<std::uint16_t>(RTE_ALIGN(frame_max + RTE_PKTMBUF_HEADROOM, 64));
    }
  }

  // RSS over several queues, with the stack's key and a table like the
  // stack's.
  const std::uint64_t hash_types =
      dev.flow_type_rss_offloads & (RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP);
  std::vector<std::uint8_t> key;
  if (queues > 1 && (hash_types & RTE_ETH_RSS_NONFRAG_IPV4_TCP) != 0) {
    key.assign(std::max<std::size_t>(dev.hash_key_size, tcpip::toeplitz_key_size), 0);
    std::copy(tcpip::default_toeplitz_key.begin(), tcpip::default_toeplitz_key.end(), key.begin());
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = key.data();
    conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<std::uint8_t>(key.size());
    conf.rx_adv_conf.rss_conf.rss_hf = hash_types;
    _shared->hash_udp_ports = (hash_types & RTE_ETH_RSS_NONFRAG_IPV4_UDP) != 0;
    if ((dev.rx_offload_capa & RTE_ETH_RX_OFFLOAD_RSS_HASH) != 0) conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_RSS_HASH;
  }

  if (int rc = ::rte_eth_dev_configure(port, static_cast<std::uint16_t>(queues), static_cast<std::uint16_t>(queues), &conf);
      rc != 0) {
    throw port_error(port, "the driver (" + _driver + ") refused the configuration of " + std::to_string(queues) +
                               " queue pairs with MTU " + std::to_string(mtu),
                     rc);
  }
  // Drivers that apply an MTU only when it is set (net_tap: its kernel
  // interface's) are told again; one that cannot set it takes it as it is.
  if (_options.mtu) {
    if (int rc = ::rte_eth_dev_set_mtu(port, *_options.mtu); rc != 0 && rc != -ENOTSUP) {
      throw port_error(port, "the MTU " + std::to_string(*_options.mtu) + " refused", rc);
    }
  }
  std::uint16_t rx_ring = _options.rx_ring;
  std::uint16_t tx_ring = _options.tx_ring;
  if (int rc = ::rte_eth_dev_adjust_nb_rx_tx_desc(port, &rx_ring, &tx_ring); rc != 0) {
    throw port_error(port, "no ring sizes the driver takes", rc);
  }

  // A pool per queue, on its shard's node: the receive ring, the transmit
  // ring and what waits for it, the frames the stack holds, and the
  // per-lcore caches.
  static std::atomic<unsigned> pools_made{0};
  const unsigned pool_size = 2 * (rx_ring + tx_ring) + 4096 + 2 * pool_cache;
  for (unsigned q = 0; q < queues; ++q) {
    const int node = q < _options.numa_node_of_queue.size() ? _options.numa_node_of_queue[q] : socket;
    const std::string name = "reef" + std::to_string(pools_made.fetch_add(1)) + "_p" + std::to_string(port) + "q" +
                             std::to_string(q);
    rte_mempool* pool = ::rte_pktmbuf_pool_create(name.c_str(), pool_size, pool_cache, mbuf_priv_size, data_room, node);
    if (pool == nullptr && node != SOCKET_ID_ANY) {
      // (Without hugepages EAL's memory is all on one node.)
      dpdk_log().warn("port {}: no memory for queue {}'s pool on NUMA node {}: taking it from any node", port, q, node);
      pool = ::rte_pktmbuf_pool_create(name.c_str(), pool_size, pool_cache, mbuf_priv_size, data_room, SOCKET_ID_ANY);
    }
    if (pool == nullptr) {
      const int error = rte_errno;
      for (rte_mempool* p : _pools) ::rte_mempool_free(p);
      throw port_error(port, "no memory for queue " + std::to_string(q) + "'s pool of " + std::to_string(pool_size) +
                                 " mbufs (" + std::to_string(pool_size * (data_room + 128 + mbuf_priv_size) >> 20) +
                                 " MiB; give EAL more with -m)",
                       error);
    }
    _pools.push_back(pool);
  }
  // From here a failure stops the port (and closes it where the caller
  // asked for that), then frees the pools its rings no longer hold; a
  // pool with mbufs still out stays (a port that did not close, or an
  // open one's receive rings, hold them).
  auto release = [this, port]() noexcept {
    if (_promiscuous_set) ::rte_eth_promiscuous_disable(port);
    _promiscuous_set = false;
    bool stopped = true;
    if (_started) stopped = ::rte_eth_dev_stop(port) == 0;
    _started = false;
    const bool closed = stopped && _options.close_port && ::rte_eth_dev_close(port) == 0;
    for (rte_mempool* p : _pools) {
      if (closed || ::rte_mempool_full(p) != 0) ::rte_mempool_free(p);
    }
    _pools.clear();
  };
  auto fail = [&](const std::string& what, int rc) {
    release();
    return port_error(port, what, rc);
  };
  for (unsigned q = 0; q < queues; ++q) {
    const int node = q < _options.numa_node_of_queue.size() ? _options.numa_node_of_queue[q] : socket;
    rte_eth_rxconf rxconf = dev.default_rxconf;
    rxconf.offloads = conf.rxmode.offloads;
    if (int rc = ::rte_eth_rx_queue_setup(port, static_cast<std::uint16_t>(q), rx_ring, static_cast<unsigned>(node),
                                          &rxconf, _pools[q]);
        rc != 0) {
      throw fail("receive queue " + std::to_string(q) + " refused", rc);
    }
    rte_eth_txconf txconf = dev.default_txconf;
    txconf.offloads = conf.txmode.offloads;
    if (int rc = ::rte_eth_tx_queue_setup(port, static_cast<std::uint16_t>(q), tx_ring, static_cast<unsigned>(node),
                                          &txconf);
        rc != 0) {
      throw fail("transmit queue " + std::to_string(q) + " refused", rc);
    }
  }
  if (int rc = ::rte_eth_dev_start(port); rc != 0) throw fail("the port did not start", rc);
  _started = true;
  try {
    finish_start(dev, conf, key, queues, mtu);
  } catch (...) {
    release();
    throw;
  }
}

void dpdk_device::finish_start(const rte_eth_dev_info& dev, const rte_eth_conf& conf, const std::vector<std::uint8_t>& key,
                               unsigned queues, std::uint16_t mtu) {
  const std::uint16_t port = _options.port;
  // Promiscuous: the stack checks the MAC itself, and may take one of its
  // own (below). Turned off at the end only if it was off before.
  const bool was_promiscuous = ::rte_eth_promiscuous_get(port) == 1;
  const bool promiscuous = was_promiscuous || ::rte_eth_promiscuous_enable(port) == 0;
  _promiscuous_set = promiscuous && !was_promiscuous;

  if (!key.empty()) {
    // The redirection table: hashes spread over the queues in turn, as the
    // stack's own table does.
    std::vector<rte_eth_rss_reta_entry64> reta((dev.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE);
    std::vector<std::uint16_t> entries;
    const bool power_of_two = dev.reta_size >= queues && (dev.reta_size & (dev.reta_size - 1)) == 0;
    if (power_of_two) entries = tcpip::redirection_table(queues, dev.reta_size).entries();
    for (std::size_t i = 0; i < entries.size(); ++i) {
      reta[i / RTE_ETH_RETA_GROUP_SIZE].mask |= std::uint64_t{1} << (i % RTE_ETH_RETA_GROUP_SIZE);
      reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] = entries[i];
    }
    if (power_of_two && ::rte_eth_dev_rss_reta_update(port, reta.data(), dev.reta_size) == 0) {
      _info.rss_hash = (conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_RSS_HASH) != 0;
      _info.redirection = std::move(entries);
      _shared->rss = _info.rss_hash;
    } else {
      dpdk_log().warn("port {}: its RSS redirection table could not be set: the stack steers flows itself", port);
    }
  }

  rte_ether_addr mac{};
  ::rte_eth_macaddr_get(port, &mac);
  std::copy(std::begin(mac.addr_bytes), std::end(mac.addr_bytes), _info.mac.bytes.begin());
  if (_options.mac) {
    _info.mac = *_options.mac;
  } else if (_info.mac == tcpip::ethernet_address() || _info.mac.is_multicast()) {
    // A port without an address of its own (net_ring): a locally
    // administered one, by port number.
    _info.mac = tcpip::ethernet_address{{0x02, 0x52, 0x45, 0x45, 0x50, static_cast<std::uint8_t>(port)}};
  } else if ((_driver == "net_tap" || _driver == "net_af_packet") && promiscuous) {
    // The port's MAC is a kernel interface's own (net_tap gives it the
    // port's; af_packet reads an interface): the stack takes another, a
    // locally administered one, so that the kernel does not take its
    // frames for its own. (The port is promiscuous.)
    _info.mac.bytes[0] |= 0x02;
    _info.mac.bytes[5] ^= 0x01;
  }
  _info.mtu = mtu;
  _info.queues = queues;
  _info.offloads.lro = false;
  const unsigned seg_max = std::min<unsigned>(dev.tx_desc_lim.nb_seg_max != 0 ? dev.tx_desc_lim.nb_seg_max : 64,
                                              dev.tx_desc_lim.nb_mtu_seg_max != 0 ? dev.tx_desc_lim.nb_mtu_seg_max : 64);
  // (A frame's pieces, plus the head mbuf its headers are copied to.)
  _info.tx_segments_max = std::clamp<unsigned>(std::min(seg_max, 33u), 2, 33) - 1;

  // The link, a bounded wait.
  rte_eth_link link{};
  const auto deadline = std::chrono::steady_clock::now() + _options.link_wait;
  for (;;) {
    ::rte_eth_link_get_nowait(port, &link);
    if (link.link_status == RTE_ETH_LINK_UP || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  dpdk_log().info(
      "port {} ({}): {} queue pair(s), link {} {}, MTU {}, MAC {}; offloads: "
      "rx checksum {}, tx checksum {}, TSO {}; RSS {}; transmit {}",
      port, _driver, queues, link.link_status == RTE_ETH_LINK_UP ? "up" : "still down",
      link.link_status == RTE_ETH_LINK_UP ? std::to_string(link.link_speed) + " Mbit/s" : "-", mtu,
      _info.mac.to_string(), _info.offloads.rx_checksum_verified ? "on" : "off", _info.offloads.tx_checksum ? "on" : "off",
      _info.offloads.tso ? "on" : "off", _info.rss_hash ? "by the port" : "by the stack",
      _zero_copy_tx ? "without copies" : "by copy");
}

dpdk_device::~dpdk_device() {
  if (_started) {
    // Frames still in the receive rings (net_ring: another port's
    // mbufs) go back to their pools.
    std::array<rte_mbuf*, burst> mbufs;
    for (std::uint16_t q = 0; q < _info.queues; ++q) {
      for (int i = 0; i < 1024; ++i) {
        const std::uint16_t n = ::rte_eth_rx_burst(_options.port, q, mbufs.data(), burst);
        if (n == 0) break;
        for (std::uint16_t k = 0; k < n; ++k) ::rte_pktmbuf_free(mbufs[k]);
      }
    }
    if (_promiscuous_set) ::rte_eth_promiscuous_disable(_options.port);  // (an interface as it was)
    ::rte_eth_dev_stop(_options.port);
    if (_options.close_port) ::rte_eth_dev_close(_options.port);
  }
  // A pool with mbufs out (a frame still held, or in another port's ring)
  // stays: freeing it would pull memory from under them.
  for (rte_mempool* p : _pools) {
    if (::rte_mempool_full(p) != 0) {
      ::rte_mempool_free(p);
    } else {
      dpdk_log().debug("port {}: pool {} kept: {} mbufs still out", _options.port, p->name,
                       p->size - ::rte_mempool_avail_count(p));
    }
  }
}

std::unique_ptr<tcpip::device_queue> dpdk_device::open_queue(unsigned index) {
  if (index >= _info.queues) {
    throw std::invalid_argument("DPDK port " + std::to_string(_options.port) + ": no queue " + std::to_string(index) +
                                " (it has " + std::to_string(_info.queues) + ")");
  }
  return std::make_unique<dpdk_queue>(_shared, static_cast<std::uint16_t>(index), _pools[index], _zero_copy_tx);
}

bool dpdk_device::hash_disagrees() const noexcept { return _shared->hash_disagrees.load(); }

std::uint32_t dpdk_device::link_speed_mbps() const noexcept {
  rte_eth_link link{};
  if (::rte_eth_link_get_nowait(_options.port, &link) != 0 || link.link_status != RTE_ETH_LINK_UP) return 0;
  return link.link_speed;
}

port_stats dpdk_device::stats() const {
  rte_eth_stats s{};
  port_stats out;
  if (::rte_eth_stats_get(_options.port, &s) != 0) return out;
  out.rx_frames = s.ipackets;
  out.rx_bytes = s.ibytes;
  out.tx_frames = s.opackets;
  out.tx_bytes = s.obytes;
  out.rx_missed = s.imissed;
  out.rx_errors = s.ierrors;
  out.tx_errors = s.oerrors;
  out.rx_no_mbuf = s.rx_nombuf;
  for (unsigned q = 0; q < _info.queues && q < RTE_ETHDEV_QUEUE_STAT_CNTRS; ++q) {
    out.queues.push_back({s.q_ipackets[q], s.q_ibytes[q], s.q_opackets[q], s.q_obytes[q], s.q_errors[q]});
  }
  return out;
}

std::vector<std::pair<std::string, std::uint64_t>> dpdk_device::extended_stats() const {
  const int n = ::rte_eth_xstats_get_names(_options.port, nullptr, 0);
  if (n <= 0) return {};
  std::vector<rte_eth_xstat_name> names(static_cast<std::size_t>(n));
  std::vector<rte_eth_xstat> values(static_cast<std::size_t>(n));
  const int got_names = ::rte_eth_xstats_get_names(_options.port, names.data(), static_cast<unsigned>(n));
  const int got = ::rte_eth_xstats_get(_options.port, values.data(), static_cast<unsigned>(n));
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (int i = 0; i < std::min(got, got_names); ++i) {
    if (values[i].id < static_cast<std::uint64_t>(got_names)) out.emplace_back(names[values[i].id].name, values[i].value);
  }
  return out;
}

}  // namespace reef::dpdk
