#include "tcpip/virtual_link.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/assert.h"
#include "tcpip/checksum.h"
#include "tcpip/ethernet.h"
#include "tcpip/ipv4_header.h"
#include "tcpip/wire.h"

namespace reef::tcpip {

namespace {

using link_clock = std::chrono::steady_clock;

struct frame_bytes {
  std::vector<std::uint8_t> bytes;
  std::optional<std::uint32_t> rss_hash;
  link_clock::time_point due;  // when it may be received (delay, rate)
  bool partial = false;        // its TCP/UDP checksum was left to the device: never summed
  bool merged = false;         // a TSO segment passed whole (longer than the MTU)
};

// Offsets into an IPv4 frame (Ethernet first) that carries TCP or UDP,
// or nothing where it is not one (or is cut short).
struct l4_frame {
  std::size_t ip_at = ethernet_header::size;
  std::size_t l4_at = 0;
  std::size_t end = 0;  // the datagram's end (a frame may pad)
  std::uint8_t protocol = 0;
};

std::optional<l4_frame> l4_of(std::span<const std::uint8_t> frame) {
  l4_frame f;
  if (frame.size() < f.ip_at + ipv4_header::min_size || wire::get16(frame, 12) != static_cast<std::uint16_t>(ether_type::ipv4)) {
    return std::nullopt;
  }
  const std::size_t ihl = (frame[f.ip_at] & 0x0f) * 4u;
  f.protocol = frame[f.ip_at + 9];
  f.l4_at = f.ip_at + ihl;
  f.end = f.ip_at + wire::get16(frame, f.ip_at + 2);
  const std::size_t header = f.protocol == static_cast<std::uint8_t>(ip_protocol::tcp) ? 20 : 8;
  if (ihl < ipv4_header::min_size || f.end > frame.size() || f.end < f.l4_at + header ||
      (f.protocol != static_cast<std::uint8_t>(ip_protocol::tcp) && f.protocol != static_cast<std::uint8_t>(ip_protocol::udp))) {
    return std::nullopt;
  }
  return f;
}

std::size_t checksum_field(const l4_frame& f) { return f.l4_at + (f.protocol == 17 ? 6 : 16); }

// Does what a NIC does with a checksum left to it: sums the TCP/UDP
// header and data, whose checksum field holds the pseudo header's sum.
void finish_checksum(std::span<std::uint8_t> frame) {
  auto f = l4_of(frame);
  if (!f) return;
  checksummer c;
  c.add(frame.subspan(f->l4_at, f->end - f->l4_at));
  const std::uint16_t sum = c.get();
  wire::put16(frame, checksum_field(*f), f->protocol == 17 && sum == 0 ? 0xffff : sum);
}

// The IPv4 header's and the TCP/UDP checksum, computed anew.
void compute_checksums(std::span<std::uint8_t> frame, const l4_frame& f) {
  wire::put16(frame, f.ip_at + 10, 0);
  wire::put16(frame, f.ip_at + 10, internet_checksum(frame.subspan(f.ip_at, f.l4_at - f.ip_at)));
  wire::put16(frame, checksum_field(f), 0);
  checksummer c;
  c.add_words(ipv4_pseudo_header_sum(wire::get32(frame, f.ip_at + 12), wire::get32(frame, f.ip_at + 16),
                                     static_cast<ip_protocol>(f.protocol), static_cast<std::uint16_t>(f.end - f.l4_at)));
  c.add(frame.subspan(f.l4_at, f.end - f.l4_at));
  const std::uint16_t sum = c.get();
  wire::put16(frame, checksum_field(f), f.protocol == 17 && sum == 0 ? 0xffff : sum);
}

// What a NIC's TSO does: cuts a TCP frame's data into frames of
// `segment_size` bytes, each with the headers (options too), its own
// IPv4 identifier, length and checksums, its sequence number; FIN and
// PSH on the last piece only, CWR on the first only.
std::vector<std::vector<std::uint8_t>> cut_segments(std::span<const std::uint8_t> frame, std::uint16_t segment_size) {
  std::vector<std::vector<std::uint8_t>> pieces;
  auto f = l4_of(frame);
  if (!f || f->protocol != static_cast<std::uint8_t>(ip_protocol::tcp) || segment_size == 0) return pieces;
  const std::size_t tcp_header_length = (frame[f->l4_at + 12] >> 4) * 4u;
  const std::size_t data_at = f->l4_at + tcp_header_length;
  if (tcp_header_length < 20 || data_at > f->end) return pieces;
  const std::uint32_t seq = wire::get32(frame, f->l4_at + 4);
  const std::uint16_t id = wire::get16(frame, f->ip_at + 4);
  const std::uint8_t flags = frame[f->l4_at + 13];
  const std::size_t data = f->end - data_at;
  for (std::size_t at = 0, i = 0; at < data || (data == 0 && i == 0); at += segment_size, ++i) {
    const std::size_t n = std::min<std::size_t>(segment_size, data - at);
    std::vector<std::uint8_t> piece(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(data_at));
    piece.insert(piece.end(), frame.begin() + static_cast<std::ptrdiff_t>(data_at + at),
                 frame.begin() + static_cast<std::ptrdiff_t>(data_at + at + n));
    const bool last = at + n >= data;
    std::uint8_t piece_flags = flags;
    if (!last) piece_flags &= static_cast<std::uint8_t>(~(0x01 | 0x08));  // FIN, PSH
    if (i > 0) piece_flags &= static_cast<std::uint8_t>(~0x80);            // CWR
    piece[f->l4_at + 13] = piece_flags;
    wire::put32(piece, f->l4_at + 4, seq + static_cast<std::uint32_t>(at));
    wire::put16(piece, f->ip_at + 2, static_cast<std::uint16_t>(data_at - f->ip_at + n));
    wire::put16(piece, f->ip_at + 4, static_cast<std::uint16_t>(id + i));
    l4_frame pf = *f;
    pf.end = piece.size();
    compute_checksums(piece, pf);
    pieces.push_back(std::move(piece));
    if (last) break;
  }
  return pieces;
}

// The RSS hash a NIC computes for `frame`: IPv4 with the ports for TCP and
// UDP (not for fragments, whose later pieces carry no ports), the
// addresses for other IPv4, none for the rest.
std::optional<std::uint32_t> rss_hash_of(const toeplitz_hash& hash, std::span<const std::uint8_t> frame) {
  auto eth = ethernet_header::parse(frame);
  if (!eth || eth->type != static_cast<std::uint16_t>(ether_type::ipv4)) return std::nullopt;
  auto payload = frame.subspan(ethernet_header::size);
  ipv4_header ip;
  if (ipv4_header::parse(payload, ip, true) != ipv4_error::none) return std::nullopt;
  // (The ports within the datagram, not in the frame's padding.)
  const bool ports = (ip.protocol == static_cast<std::uint8_t>(ip_protocol::tcp) ||
                      ip.protocol == static_cast<std::uint8_t>(ip_protocol::udp)) &&
                     !ip.is_fragment() && ip.total_length >= std::size_t{ip.header_length} + 4;
  if (!ports) return hash.ipv4(ip.source, ip.destination);
  return hash.ipv4_ports(ip.source, ip.destination, wire::get16(payload, ip.header_length),
                         wire::get16(payload, ip.header_length + 2u));
}

class pcap_file {
 public:
  explicit pcap_file(const std::string& path) : _f(std::fopen(path.c_str(), "wb")) {
    if (_f == nullptr) throw std::invalid_argument("virtual link: cannot create the pcap file " + path);
    // The classic format: magic, version 2.4, no time zone, snap length,
    // link type 1 (Ethernet); native byte order (the magic says which).
    struct {
      std::uint32_t magic = 0xa1b2c3d4;
      std::uint16_t major = 2;
      std::uint16_t minor = 4;
      std::int32_t zone = 0;
      std::uint32_t sigfigs = 0;
      std::uint32_t snap_length = 262144;
      std::uint32_t link_type = 1;
    } header;
    static_assert(sizeof(header) == 24);
    std::fwrite(&header, sizeof(header), 1, _f);
  }
  ~pcap_file() { std::fclose(_f); }
  pcap_file(const pcap_file&) = delete;
  pcap_file& operator=(const pcap_file&) = delete;

  void write(std::span<const std::uint8_t> frame) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
    const std::uint32_t record[4] = {static_cast<std::uint32_t>(us / 1'000'000),
                                     static_cast<std::uint32_t>(us % 1'000'000),
                                     static_cast<std::uint32_t>(frame.size()), static_cast<std::uint32_t>(frame.size())};
    std::fwrite(record, sizeof(record), 1, _f);
    std::fwrite(frame.data(), 1, frame.size(), _f);
    std::fflush(_f);
  }

 private:
  std::FILE* _f;
};

}  // namespace

class end_device;

// Buffers a frame may have, as a NIC's descriptors bound them (what each
// end's device_info says).
constexpr unsigned link_segments_max = 32;

struct virtual_link::impl {
  explicit impl(virtual_link_options o);

  // The frames that go onto the link for one the stack transmitted: the
  // offloads it asked for done as a NIC would (not under the mutex: the
  // work is the sender's). With faults, frames go as a wire carries
  // them: cut to the MTU, every checksum complete (a corrupted byte is
  // then caught). Without, as veth passes them: a segment for TSO whole
  // where the ends merge segments (LRO), a checksum left to the device
  // left undone where the ends take it as checked.
  void prepare(std::vector<std::uint8_t> bytes, const tx_offload& offload, std::vector<frame_bytes>& out) const;
  // Under `mutex`: a frame from end `from` into the link.
  void carry(unsigned from, frame_bytes frame);
  // To the end the frame's destination MAC names, or to every end but
  // `from` (broadcasts, unknown addresses; with two ends: the other).
  void send_on(unsigned from, std::vector<std::uint8_t> bytes, link_clock::time_point due, bool partial = false);
  void deliver(unsigned to, std::vector<std::uint8_t> bytes, link_clock::time_point due, bool partial);
  // Calls the notifications deliver() collected (not under the mutex).
  void notify_now();
  // Faults in the direction away from end `from`.
  bool happens(unsigned from, double probability) {
    return probability > 0 && std::uniform_real_distribution<>(0, 1)(random[from]) < probability;
  }
  unsigned queues_of(unsigned end) const {
    return options.queues_per_end.empty() ? options.queues : options.queues_per_end[end];
  }

  virtual_link_options options;
  toeplitz_hash hash;
  // Per end: its redirection table (ends may have different queue counts).
  std::vector<redirection_table> tables;
  mutable std::mutex mutex;
  // One generator per sending end: each direction's faults follow the
  // seed whatever the others do (with one thread driving each end).
  std::vector<std::mt19937_64> random;
  std::optional<pcap_file> pcap;
  virtual_link_stats counts;
  // Per end: its receive queues; a frame it sent that is held back for
  // reordering; and when its rate limit lets its next frame go.
  std::vector<std::vector<std::deque<frame_bytes>>> queues;
  std::vector<std::optional<std::vector<std::uint8_t>>> held;
  std::vector<link_clock::time_point> free_at;
  // Receive polls since a frame was held: a frame held back goes after
  // the next frame, or after this many polls of another end (a delay,
  // so that a poller between sends still sees frames out of order).
  std::vector<unsigned> held_polls;
  static constexpr unsigned hold_polls = 16;
  // Per end and queue: the owner's arrival notification, and whether it
  // is armed (receive() found the queue empty). Notifications are called
  // after the mutex is released: `to_notify` collects them meanwhile.
  std::vector<std::vector<noncopyable_function<void()>>> notify;
  std::vector<std::vector<bool>> armed;
  std::vector<noncopyable_function<void()>*> to_notify;
  // Held while a notification is called or replaced: an owner that clears
  // its notification (stopping) waits out a call in progress.
  std::mutex notify_mutex;
  std::vector<std::unique_ptr<end_device>> ends;
};

class end_queue final : public device_queue {
 public:
  end_queue(virtual_link::impl& link, unsigned side, unsigned index) : _link(link), _side(side), _index(index) {}

  std::size_t receive(std::vector<received_frame>& out, std::size_t max) override {
    std::vector<frame_bytes> taken;
    {
      std::lock_guard lock(_link.mutex);
      // Polling counts as time passing: a frame held back for reordering
      // with nothing after it goes now.
      for (unsigned from = 0; from < _link.ends.size(); ++from) {
        if (from != _side && _link.held[from] && ++_link.held_polls[from] >= virtual_link::impl::hold_polls) {
          auto bytes = std::move(*_link.held[from]);
          _link.held[from].reset();
          _link.send_on(from, std::move(bytes), link_clock::now() + _link.options.faults.delay);
        }
      }
      auto& q = _link.queues[_side][_index];
      const auto now = q.empty() ? link_clock::time_point() : link_clock::now();
      while (!q.empty() && taken.size() < max && q.front().due <= now) {
        taken.push_back(std::move(q.front()));
        q.pop_front();
      }
      if (!q.empty() && taken.empty()) {
        // Frames not due yet (delay, rate): the notification keeps the
        // owner polling until they are.
        _link.to_notify.push_back(&_link.notify[_side][_index]);
      } else if (taken.empty()) {
        _link.armed[_side][_index] = true;
      }
    }
    _link.notify_now();
    // This shard's own buffers. (A frame whose checksum was left to the
    // device comes as checked, as veth passes one on.)
    for (auto& f : taken) {
      _stats.rx_frames++;
      _stats.rx_bytes += f.bytes.size();
      out.push_back(received_frame{
          packet::copy_of(std::string_view(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size())),
          f.rss_hash, f.partial ? checksum_status::good : checksum_status::unknown});
    }
    return taken.size();
  }

  std::size_t transmit(std::span<tx_frame> frames) override {
    const device_offloads& offered = _link.options.offloads;
    std::vector<frame_bytes> ready;
    for (tx_frame& t : frames) {
      REEF_ASSERT((!t.offload.ipv4_checksum && !t.offload.l4_checksum) || offered.tx_checksum,
                  "a checksum offload asked of a link that offers none");
      REEF_ASSERT(t.offload.segment_size == 0 || offered.tso, "TSO asked of a link that offers none");
      REEF_ASSERT(t.frame.nr_frags() <= link_segments_max, "a frame of more pieces than the link takes");
      packet& p = t.frame;
      std::vector<std::uint8_t> bytes;
      bytes.reserve(p.len());
      for (const fragment& f : p.fragments()) bytes.insert(bytes.end(), f.base, f.base + f.size);
      _stats.tx_frames++;
      _stats.tx_bytes += bytes.size();
      p = packet();  // the sender's memory goes here, on its shard
      ready.clear();
      _link.prepare(std::move(bytes), t.offload, ready);
      std::lock_guard lock(_link.mutex);
      for (auto& f : ready) _link.carry(_side, std::move(f));
    }
    _link.notify_now();
    return frames.size();
  }

  void on_arrival(noncopyable_function<void()> notify) override {
    std::lock_guard lock(_link.notify_mutex);
    _link.notify[_side][_index] = std::move(notify);
  }

 private:
  virtual_link::impl& _link;
  unsigned _side;
  unsigned _index;
};

class end_device final : public device {
 public:
  end_device(virtual_link::impl& link, unsigned side) : _link(link), _side(side), _opened(link.queues_of(side)) {
    _info.mac.bytes = {0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(side + 1)};
    _info.mtu = link.options.mtu;
    _info.tx_segments_max = link_segments_max;
    _info.queues = link.queues_of(side);
    _info.offloads = link.options.offloads;
    _info.rss_hash = link.options.rss_hash;
    _info.rss_key = link.options.advertised_rss_key.value_or(link.options.rss_key);
    _info.redirection = link.tables[side].entries();
  }
  const device_info& info() const noexcept override { return _info; }
  std::unique_ptr<device_queue> open_queue(unsigned index) override {
    std::lock_guard lock(_link.mutex);
    if (index >= _info.queues || _opened[index]) {
      throw std::invalid_argument("virtual link: queue " + std::to_string(index) + " of " +
                                  std::to_string(_info.queues) + " is not there or already open");
    }
    _opened[index] = true;
    return std::make_unique<end_queue>(_link, _side, index);
  }

 private:
  virtual_link::impl& _link;
  unsigned _side;
  device_info _info;
  std::vector<bool> _opened;
};

virtual_link::impl::impl(virtual_link_options o) : options(std::move(o)), hash(options.rss_key) {
  if (options.ends < 2 || options.ends > 254) throw std::invalid_argument("virtual link: 2 to 254 ends");
  if (!options.queues_per_end.empty() && options.queues_per_end.size() != options.ends) {
    throw std::invalid_argument("virtual link: queues_per_end has " + std::to_string(options.queues_per_end.size()) +
                                " entries for " + std::to_string(options.ends) + " ends");
  }
  for (double p : {options.faults.loss, options.faults.duplicate, options.faults.reorder, options.faults.corrupt}) {
    if (!(p >= 0 && p <= 1)) throw std::invalid_argument("virtual link: a fault's probability is not in [0, 1]");
  }
  if (options.faults.delay.count() < 0) throw std::invalid_argument("virtual link: a negative delay");
  for (unsigned end = 0; end < options.ends; ++end) {
    const unsigned q = queues_of(end);
    if (q == 0) throw std::invalid_argument("virtual link: 0 queues");
    std::size_t size = 1;
    while (size < q) size *= 2;
    tables.emplace_back(q, std::max<std::size_t>(size, 128));
    // Ends 0 and 1 keep the generators they always had (old seeds
    // reproduce old runs).
    const std::uint64_t seed = end == 0 ? options.faults.seed
                                        : options.faults.seed ^ (0x9e3779b97f4a7c15ull * end);
    random.emplace_back(seed);
  }
  if (!options.pcap_path.empty()) pcap.emplace(options.pcap_path);
  queues.resize(options.ends);
  held.resize(options.ends);
  free_at.resize(options.ends);
  held_polls.assign(options.ends, 0);
  notify.resize(options.ends);
  armed.resize(options.ends);
  for (unsigned side = 0; side < options.ends; ++side) {
    queues[side].resize(queues_of(side));
    notify[side].resize(queues_of(side));
    armed[side].assign(queues_of(side), false);
    ends.push_back(std::make_unique<end_device>(*this, side));
  }
}

void virtual_link::impl::prepare(std::vector<std::uint8_t> bytes, const tx_offload& offload,
                                 std::vector<frame_bytes>& out) const {
  const link_faults& f = options.faults;
  const bool faults = f.loss > 0 || f.duplicate > 0 || f.reorder > 0 || f.corrupt > 0;
  const device_offloads& offered = options.offloads;
  auto ip = l4_of(bytes);
  if (offload.ipv4_checksum && ip) {
    wire::put16(bytes, ip->ip_at + 10, 0);
    wire::put16(bytes, ip->ip_at + 10, internet_checksum(std::span(bytes).subspan(ip->ip_at, ip->l4_at - ip->ip_at)));
  }
  const bool longer = ip && offload.segment_size != 0 && ip->end - ip->l4_at > offload.l4_length &&
                      ip->end - ip->l4_at - std::size_t{offload.l4_length} > offload.segment_size;
  if (longer && (faults || !offered.lro)) {
    auto pieces = cut_segments(bytes, offload.segment_size);
    // (A frame that is not TCP goes on whole, and is dropped as too
    // long where it is: counted.)
    if (!pieces.empty()) {
      for (auto& piece : pieces) out.push_back(frame_bytes{std::move(piece), {}, {}, false});
      return;
    }
  }
  const bool partial = offload.l4_checksum && ip && !faults && offered.rx_checksum_verified;
  if (offload.l4_checksum && !partial) finish_checksum(bytes);
  frame_bytes frame{std::move(bytes), {}, {}, partial};
  frame.merged = longer && offered.lro && !faults;
  out.push_back(std::move(frame));
}

void virtual_link::impl::carry(unsigned from, frame_bytes frame) {
  counts.carried++;
  std::vector<std::uint8_t>& bytes = frame.bytes;
  const std::size_t most = frame.merged ? ethernet_header::size + ipv4_header::max_datagram
                                        : std::size_t{options.mtu} + ethernet_header::size;
  if (bytes.size() > most) {
    counts.too_long++;
    return;
  }
  if (happens(from, options.faults.loss)) {
    counts.lost++;
    return;
  }
  if (!bytes.empty() && happens(from, options.faults.corrupt)) {
    counts.corrupted++;
    bytes[std::uniform_int_distribution<std::size_t>(0, bytes.size() - 1)(random[from])] ^=
        static_cast<std::uint8_t>(1u << std::uniform_int_distribution<>(0, 7)(random[from]));
  }
  // The sender's rate: this frame leaves when the ones before it have.
  auto due = link_clock::now();
  if (options.faults.rate_bytes_per_second > 0) {
    due = std::max(due, free_at[from]);
    free_at[from] = due + std::chrono::nanoseconds(bytes.size() * 1'000'000'000ull /
                                                   options.faults.rate_bytes_per_second);
  }
  due += options.faults.delay;
  const bool twice = happens(from, options.faults.duplicate);
  if (twice) counts.duplicated++;
  if (!held[from] && happens(from, options.faults.reorder)) {
    counts.reordered++;
    if (twice) send_on(from, bytes, due);
    held[from] = std::move(bytes);
    held_polls[from] = 0;
    return;
  }
  if (twice) send_on(from, bytes, due, frame.partial);
  send_on(from, std::move(bytes), due, frame.partial);
  if (held[from]) {
    auto late = std::move(*held[from]);
    held[from].reset();
    send_on(from, std::move(late), due);
  }
}

void virtual_link::impl::send_on(unsigned from, std::vector<std::uint8_t> bytes, link_clock::time_point due,
                                 bool partial) {
  if (pcap) pcap->write(bytes);
  if (ends.size() == 2) {
    deliver(1 - from, std::move(bytes), due, partial);
    return;
  }
  // A switch: the end whose MAC it is (02:00:00:00:00:NN), or all the
  // others.
  if (bytes.size() >= 6 && bytes[0] == 0x02 && bytes[1] == 0 && bytes[2] == 0 && bytes[3] == 0 && bytes[4] == 0 &&
      bytes[5] >= 1 && bytes[5] <= ends.size()) {
    const unsigned to = bytes[5] - 1u;
    if (to != from) deliver(to, std::move(bytes), due, partial);
    return;
  }
  for (unsigned to = 0; to < ends.size(); ++to) {
    if (to != from) deliver(to, bytes, due, partial);
  }
}

void virtual_link::impl::deliver(unsigned to, std::vector<std::uint8_t> bytes, link_clock::time_point due,
                                 bool partial) {
  auto rss = rss_hash_of(hash, bytes);
  const unsigned index = rss ? tables[to].shard_of(*rss) : 0;
  auto& q = queues[to][index];
  if (q.size() >= options.queue_frames_max) {
    counts.overflowed++;
    return;
  }
  counts.delivered++;
  q.push_back(frame_bytes{std::move(bytes), options.rss_hash ? rss : std::nullopt, due, partial});
  if (armed[to][index]) {
    armed[to][index] = false;
    to_notify.push_back(&notify[to][index]);  // (called if set, under notify_mutex)
  }
}

void virtual_link::impl::notify_now() {
  std::vector<noncopyable_function<void()>*> now;
  {
    std::lock_guard lock(mutex);
    now.swap(to_notify);
  }
  if (now.empty()) return;
  std::lock_guard lock(notify_mutex);
  for (auto* n : now) {
    if (*n) (*n)();
  }
}

virtual_link::virtual_link(virtual_link_options options) : _impl(std::make_unique<impl>(std::move(options))) {}
virtual_link::~virtual_link() = default;

device& virtual_link::end(unsigned side) {
  if (side >= _impl->ends.size()) {
    throw std::invalid_argument("virtual link: end " + std::to_string(side) + " of " +
                                std::to_string(_impl->ends.size()));
  }
  return *_impl->ends[side];
}

virtual_link_stats virtual_link::stats() const {
  std::lock_guard lock(_impl->mutex);
  return _impl->counts;
}

}  // namespace reef::tcpip
