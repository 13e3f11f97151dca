// memcached's ASCII protocol: one request line at a time, parsed into a
// request, with memcached 1.6's rules and error words.
//
//   request req;
//   parse_request_line("set k 0 0 5", req);   // req.kind == command::set, req.bytes == 5
//   parse_request_line("bogus", req);         // req.error == "ERROR"
//
// The reference is memcached 1.6's protocol.txt (Debian's memcached
// package, /usr/share/doc/memcached/protocol.txt.gz) and, where that is
// silent, what memcached 1.6.18 answers (apps/memcached/conformance_test.py
// sends the same bytes to both). The line comes without its "\r\n" (or
// "\n"); a storage command's data block follows it on the wire, `bytes`
// long plus "\r\n", and is not the parser's business (see frame_request).
//
// Thread rules: none; the functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace reef::memcached {

/// The longest key (memcached's KEY_MAX_LENGTH).
inline constexpr std::size_t key_length_max = 250;
/// The longest opaque token of a meta command.
inline constexpr std::size_t opaque_length_max = 32;
/// A request line longer than this with no newline closes the connection,
/// as memcached does; retrieval lines ("get k1 k2 ...") may be longer, up
/// to get_line_max.
inline constexpr std::size_t line_max = 2048;
inline constexpr std::size_t get_line_max = 256 * 1024;

enum class command : std::uint8_t {
  none,  // not parsed, or an error (see request::error)
  get,
  gets,
  gat,
  gats,
  set,
  add,
  replace,
  append,
  prepend,
  cas,
  incr,
  decr,
  del,  // "delete"
  touch,
  flush_all,
  stats,
  version,
  verbosity,
  quit,
  shutdown,
  meta_get,     // mg
  meta_set,     // ms
  meta_delete,  // md
  meta_arithmetic,  // ma
  meta_noop,    // mn
  meta_debug,   // me
};

/// What the server does after replying with request::error.
enum class after_error : std::uint8_t {
  next_line,  // read the next line (a storage command's data, if any, is then read as lines)
  swallow,    // skip `bytes` + 2 of data first
  close,      // close the connection
};

/// The meta commands' flags: which were given (one bit per letter), their
/// tokens, and the return flags in the order asked.
struct meta_flags {
  static constexpr unsigned bit(char letter) noexcept {
    return letter >= 'a' && letter <= 'z' ? static_cast<unsigned>(letter - 'a')
                                           : static_cast<unsigned>(letter - 'A') + 26;
  }
  bool has(char letter) const noexcept { return (present >> bit(letter)) & 1; }

  std::uint64_t present = 0;
  std::string_view opaque;        // O
  std::int64_t vivify_ttl = 0;    // N (mg, ma)
  std::int64_t recache_ttl = 0;   // R (mg)
  std::int64_t ttl = 0;           // T
  std::uint64_t compare_cas = 0;  // C
  std::uint32_t client_flags = 0; // F (ms)
  std::uint64_t delta = 1;        // D (ma)
  std::uint64_t initial = 0;      // J (ma)
  char mode = 0;                  // M (ms: E A P R S; ma: I + D -)
  // The flags that shape the reply, in the order they came (at most one
  // of each letter).
  char order[52] = {};
  std::uint8_t order_count = 0;
};

struct request {
  command kind = command::none;
  bool noreply = false;
  /// get/gets/gat/gats: every key; other keyed commands: keys[0]. Views
  /// into the line, or into decoded_key (a meta command's base64 key).
  std::vector<std::string_view> keys;
  std::string decoded_key;
  std::uint32_t flags = 0;
  std::int64_t exptime = 0;    // also gat/touch's, and flush_all's delay
  std::uint64_t cas_unique = 0;
  std::uint64_t delta = 0;     // incr/decr
  /// A storage command's data block, without its "\r\n".
  std::size_t bytes = 0;
  bool has_data = false;
  /// stats: its argument ("settings", "items", ...), empty for general.
  std::string_view argument;
  meta_flags meta;
  /// Non-empty: the reply line (without "\r\n"), and what follows it.
  std::string error;
  after_error then = after_error::next_line;

  request() = default;
  // Views point into decoded_key, whose memory moves with it (it is
  // never short enough for the string to keep it inline); a copy would
  // point into the original.
  request(request&&) noexcept = default;
  request& operator=(request&&) noexcept = default;
  request(const request&) = delete;
  request& operator=(const request&) = delete;

  const std::string_view& key() const noexcept { return keys.front(); }
  /// Clears everything, keeping the keys' memory.
  void reset() noexcept;
};

/// Parses one request line (no "\r\n"). On return, either req.kind names
/// the command, or req.error holds memcached's reply ("ERROR",
/// "CLIENT_ERROR bad command line format", ...). Views in `req` point into
/// `line`.
void parse_request_line(std::string_view line, request& req);

/// Where the next request line ends in `buffer` (bytes a connection has
/// read).
struct frame {
  enum class status : std::uint8_t {
    need_more,  // no complete line yet; read more
    line,       // `line` is the next request line
    too_long,   // no newline within the limit: close the connection
  };
  status state = status::need_more;
  std::string_view line;       // without its "\r\n" or "\n"
  std::size_t line_bytes = 0;  // the line with its newline
};

/// Finds the next request line at the start of `buffer`.
frame find_request_line(std::string_view buffer) noexcept;

/// Checks a storage command's data block: the `bytes` bytes must be
/// followed by "\r\n". `block` holds bytes + 2.
bool data_block_ends_well(std::string_view block) noexcept;

/// Base64 (RFC 4648, with padding) for meta commands' b flag.
bool base64_decode(std::string_view in, std::string& out);
void base64_encode(std::string_view in, std::string& out);

/// memcached's number rules: decimal digits, leading spaces allowed,
/// nothing but whitespace after; unsigned values refuse a minus sign.
bool parse_u64(std::string_view text, std::uint64_t& out) noexcept;
bool parse_i64(std::string_view text, std::int64_t& out) noexcept;

}  // namespace reef::memcached
