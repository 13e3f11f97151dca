// Fuzzes the request framing and parser, and runs what parses against a
// cache: whatever the bytes, nothing crashes, and every request either
// parses or gets an error line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "apps/memcached/cache.h"
#include "apps/memcached/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace reef::memcached;
  static cache* c = [] {
    auto* made = new cache({.memory_bytes = 1 << 20, .item_size_max = 64 * 1024});
    made->set_clock(1'800'000'000'000);
    return made;
  }();
  std::string_view wire(reinterpret_cast<const char*>(data), size);
  request req;
  std::string line, reply;
  while (!wire.empty()) {
    const frame f = find_request_line(wire);
    if (f.state != frame::status::line) break;
    line.assign(f.line);
    wire.remove_prefix(f.line_bytes);
    parse_request_line(line, req);
    if (!req.error.empty()) {
      if (req.kind != command::none) __builtin_trap();
      if (req.then == after_error::swallow) wire.remove_prefix(std::min(wire.size(), req.bytes + 2));
      continue;
    }
    if (req.kind == command::none) __builtin_trap();
    std::string_view block;
    if (req.has_data) {
      if (wire.size() < req.bytes + 2) break;
      block = wire.substr(0, req.bytes + 2);
      wire.remove_prefix(req.bytes + 2);
      if (!data_block_ends_well(block)) continue;
    }
    reply.clear();
    switch (req.kind) {
      case command::get:
      case command::gets:
      case command::gat:
      case command::gats:
        for (std::string_view k : req.keys) c->retrieve(req, k, reply);
        break;
      case command::flush_all:
        c->flush_all(req.exptime);
        break;
      case command::stats:
      case command::version:
      case command::verbosity:
      case command::quit:
      case command::meta_noop:
        break;
      default:
        if (req.has_data && !c->fits(req.key().size(), req.bytes)) break;
        c->execute(req, req.has_data ? block.substr(0, req.bytes) : std::string_view(), reply);
    }
  }
  return 0;
}
