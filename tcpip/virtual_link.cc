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
};

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

struct virtual_link::impl {
  explicit impl(virtual_link_options o);

  // Under `mutex`: a frame from end `from` into the link.
  void carry(unsigned from, std::vector<std::uint8_t> bytes);
  // To the end the frame's destination MAC names, or to every end but
  // `from` (broadcasts, unknown addresses; with two ends: the other).
  void send_on(unsigned from, std::vector<std::uint8_t> bytes, link_clock::time_point due);
  void deliver(unsigned to, std::vector<std::uint8_t> bytes, link_clock::time_point due);
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
    // This shard's own buffers.
    for (auto& f : taken) {
      _stats.rx_frames++;
      _stats.rx_bytes += f.bytes.size();
      out.push_back(received_frame{
          packet::copy_of(std::string_view(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size())),
          f.rss_hash, checksum_status::unknown});
    }
    return taken.size();
  }

  std::size_t transmit(std::span<tx_frame> frames) override {
    for (tx_frame& t : frames) {
      REEF_ASSERT(!t.offload.ipv4_checksum && !t.offload.l4_checksum && t.offload.segment_size == 0,
                  "an offload asked of a device that offers none");
      packet& p = t.frame;
      std::vector<std::uint8_t> bytes;
      bytes.reserve(p.len());
      for (const fragment& f : p.fragments()) bytes.insert(bytes.end(), f.base, f.base + f.size);
      _stats.tx_frames++;
      _stats.tx_bytes += bytes.size();
      {
        std::lock_guard lock(_link.mutex);
        _link.carry(_side, std::move(bytes));
      }
      p = packet();  // the sender's memory goes here, on its shard
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
  const device_offloads& offered = options.offloads;
  if (offered.rx_checksum_verified || offered.tx_checksum || offered.tso || offered.lro) {
    throw std::invalid_argument("virtual link: it performs no offloads, so it cannot offer them");
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

void virtual_link::impl::carry(unsigned from, std::vector<std::uint8_t> bytes) {
  counts.carried++;
  if (bytes.size() > std::size_t{options.mtu} + ethernet_header::size) {
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
  if (twice) send_on(from, bytes, due);
  send_on(from, std::move(bytes), due);
  if (held[from]) {
    auto late = std::move(*held[from]);
    held[from].reset();
    send_on(from, std::move(late), due);
  }
}

void virtual_link::impl::send_on(unsigned from, std::vector<std::uint8_t> bytes, link_clock::time_point due) {
  if (pcap) pcap->write(bytes);
  if (ends.size() == 2) {
    deliver(1 - from, std::move(bytes), due);
    return;
  }
  // A switch: the end whose MAC it is (02:00:00:00:00:NN), or all the
  // others.
  if (bytes.size() >= 6 && bytes[0] == 0x02 && bytes[1] == 0 && bytes[2] == 0 && bytes[3] == 0 && bytes[4] == 0 &&
      bytes[5] >= 1 && bytes[5] <= ends.size()) {
    const unsigned to = bytes[5] - 1u;
    if (to != from) deliver(to, std::move(bytes), due);
    return;
  }
  for (unsigned to = 0; to < ends.size(); ++to) {
    if (to != from) deliver(to, bytes, due);
  }
}

void virtual_link::impl::deliver(unsigned to, std::vector<std::uint8_t> bytes, link_clock::time_point due) {
  auto rss = rss_hash_of(hash, bytes);
  const unsigned index = rss ? tables[to].shard_of(*rss) : 0;
  auto& q = queues[to][index];
  if (q.size() >= options.queue_frames_max) {
    counts.overflowed++;
    return;
  }
  counts.delivered++;
  q.push_back(frame_bytes{std::move(bytes), options.rss_hash ? rss : std::nullopt, due});
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
