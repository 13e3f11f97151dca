#include "apps/memcached/protocol.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>

namespace reef::memcached {

namespace {

constexpr std::string_view bad_format = "CLIENT_ERROR bad command line format";

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

// Splits on spaces (runs of them count as one), as memcached's tokenizer
// does; tabs and other bytes belong to the tokens.
struct tokens {
  static constexpr std::size_t max = 24;  // memcached's MAX_TOKENS, less its terminator
  std::array<std::string_view, max> word;
  std::size_t count = 0;
  std::string_view rest;  // past word[max - 1], when there were more (get's keys)
};

void tokenize(std::string_view line, tokens& t) {
  t.count = 0;
  t.rest = {};
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    if (i == line.size()) break;
    if (t.count == tokens::max) {
      t.rest = line.substr(i);
      return;
    }
    std::size_t end = line.find(' ', i);
    if (end == std::string_view::npos) end = line.size();
    t.word[t.count++] = line.substr(i, end - i);
    i = end;
  }
}

// memcached's safe_strtoul into a uint32_t: a 64-bit parse, truncated.
bool parse_u32_truncating(std::string_view text, std::uint32_t& out) noexcept {
  std::uint64_t v = 0;
  if (!parse_u64(text, v)) return false;
  out = static_cast<std::uint32_t>(v);
  return true;
}

// memcached's safe_strtol into an int32_t: a long parse, truncated.
bool parse_i32_truncating(std::string_view text, std::int64_t& out) noexcept {
  std::int64_t v = 0;
  if (!parse_i64(text, v)) return false;
  out = static_cast<std::int32_t>(static_cast<std::uint32_t>(static_cast<std::uint64_t>(v)));
  return true;
}

void fail(request& req, std::string_view error, after_error then = after_error::next_line) {
  req.kind = command::none;
  req.error.assign(error);
  req.then = then;
}

bool noreply_token(std::string_view t) noexcept { return t == "noreply"; }

// get/gets/gat/gats: every key (the line may hold more than tokens::max).
void parse_keys(const tokens& t, std::size_t first, request& req) {
  for (std::size_t i = first; i < t.count; ++i) req.keys.push_back(t.word[i]);
  std::string_view rest = t.rest;
  while (!rest.empty()) {
    std::size_t i = 0;
    while (i < rest.size() && rest[i] == ' ') ++i;
    rest.remove_prefix(i);
    if (rest.empty()) break;
    std::size_t end = rest.find(' ');
    if (end == std::string_view::npos) end = rest.size();
    req.keys.push_back(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  for (std::string_view k : req.keys) {
    if (k.size() > key_length_max) return fail(req, bad_format);
  }
}

void parse_storage(const tokens& t, request& req, bool with_cas) {
  const std::size_t base = with_cas ? 6 : 5;
  if (t.count != base && t.count != base + 1) return fail(req, "ERROR");
  req.keys.push_back(t.word[1]);
  if (t.word[1].size() > key_length_max) return fail(req, bad_format);
  std::int64_t length = 0;
  if (!parse_u32_truncating(t.word[2], req.flags) || !parse_i32_truncating(t.word[3], req.exptime) ||
      !parse_i32_truncating(t.word[4], length)) {
    return fail(req, bad_format);
  }
  if (with_cas && !parse_u64(t.word[5], req.cas_unique)) return fail(req, bad_format);
  if (length < 0 || length > INT_MAX - 2) return fail(req, bad_format);
  req.bytes = static_cast<std::size_t>(length);
  req.has_data = true;
  req.noreply = t.count == base + 1 && noreply_token(t.word[base]);
}

// --- Meta commands. ------------------------------------------------------

// The flags each meta command takes.
constexpr std::string_view mg_flags = "bcfhklOqstuvNRT";
constexpr std::string_view ms_flags = "bcCFIkOqTM";
constexpr std::string_view md_flags = "bCIkOqT";
constexpr std::string_view ma_flags = "bCNJDTMqtcvOk";

bool meta_number_i32(std::string_view token, std::int64_t& out) noexcept {
  return !token.empty() && parse_i32_truncating(token, out);
}

// Parses the flags at t.word[first...]; false (with req.error) if bad.
bool parse_meta_flags(const tokens& t, std::size_t first, std::string_view allowed, request& req) {
  meta_flags& m = req.meta;
  if (!t.rest.empty()) {
    fail(req, "CLIENT_ERROR options flags are too long");
    return false;
  }
  for (std::size_t i = first; i < t.count; ++i) {
    std::string_view token = t.word[i];
    const char letter = token[0];
    const bool is_letter = (letter >= 'a' && letter <= 'z') || (letter >= 'A' && letter <= 'Z');
    if (!is_letter || allowed.find(letter) == std::string_view::npos) {
      fail(req, "CLIENT_ERROR invalid flag");
      return false;
    }
    if (m.has(letter)) {
      fail(req, "CLIENT_ERROR duplicate flag");
      return false;
    }
    m.present |= std::uint64_t{1} << meta_flags::bit(letter);
    m.order[m.order_count++] = letter;
    std::string_view value = token.substr(1);
    bool ok = true;
    switch (letter) {
      case 'O':
        if (value.size() > opaque_length_max) {
          fail(req, "CLIENT_ERROR opaque token too long");
          return false;
        }
        m.opaque = value;
        break;
      case 'N':
        ok = meta_number_i32(value, m.vivify_ttl);
        break;
      case 'R':
        ok = meta_number_i32(value, m.recache_ttl);
        break;
      case 'T':
        ok = meta_number_i32(value, m.ttl);
        break;
      case 'C':
        ok = !value.empty() && parse_u64(value, m.compare_cas);
        break;
      case 'F':
        ok = !value.empty() && parse_u32_truncating(value, m.client_flags);
        break;
      case 'D':
        ok = !value.empty() && parse_u64(value, m.delta);
        break;
      case 'J':
        ok = !value.empty() && parse_u64(value, m.initial);
        break;
      case 'M':
        ok = value.size() == 1;
        if (ok) m.mode = value[0];
        break;
      default:
        break;
    }
    if (!ok) {
      fail(req, "CLIENT_ERROR bad token in command line format");
      return false;
    }
  }
  return true;
}

// The key of a meta command: checked, and decoded with the b flag.
bool meta_key(std::string_view key, request& req) {
  if (req.meta.has('b')) {
    // Beyond the string's inline buffer, so that views stay valid when the
    // request moves.
    req.decoded_key.reserve(key_length_max + 64);
    if (!base64_decode(key, req.decoded_key) || req.decoded_key.empty()) {
      fail(req, "CLIENT_ERROR error decoding key");
      return false;
    }
    key = req.decoded_key;
  }
  if (key.size() > key_length_max) {
    fail(req, bad_format);
    return false;
  }
  req.keys.push_back(key);
  return true;
}

void parse_meta(const tokens& t, command kind, request& req) {
  if (t.count < 2) return fail(req, kind == command::meta_debug ? bad_format : "ERROR");
  if (t.word[1].size() > key_length_max) return fail(req, bad_format);
  std::size_t first_flag = 2;
  std::string_view allowed;
  switch (kind) {
    case command::meta_get:
      allowed = mg_flags;
      break;
    case command::meta_delete:
      allowed = md_flags;
      break;
    case command::meta_arithmetic:
      allowed = ma_flags;
      break;
    case command::meta_set: {
      std::int64_t length = 0;
      if (t.count < 3 || !parse_i32_truncating(t.word[2], length) || length < 0 || length > INT_MAX - 2) {
        return fail(req, bad_format);
      }
      req.bytes = static_cast<std::size_t>(length);
      req.has_data = true;
      allowed = ms_flags;
      first_flag = 3;
      break;
    }
    case command::meta_debug:
      // "me <key> [b]" ("me" alone: a bad line, not an unknown command)
      if (t.count > 3 || (t.count == 3 && t.word[2] != "b")) return fail(req, bad_format);
      if (t.count == 3) req.meta.present |= std::uint64_t{1} << meta_flags::bit('b');
      if (!meta_key(t.word[1], req)) return;
      req.kind = kind;
      return;
    default:
      return fail(req, "ERROR");
  }
  // An ms whose line is bad after its length: its data is skipped.
  const after_error then = kind == command::meta_set ? after_error::swallow : after_error::next_line;
  if (!parse_meta_flags(t, first_flag, allowed, req) || !meta_key(t.word[1], req)) {
    req.then = then;
    return;
  }
  const meta_flags& m = req.meta;
  if (kind == command::meta_set && m.mode != 0 && std::string_view("EAPRS").find(m.mode) == std::string_view::npos) {
    return fail(req, "CLIENT_ERROR invalid mode for ms M token", then);
  }
  if (kind == command::meta_arithmetic && m.mode != 0 &&
      std::string_view("I+D-").find(m.mode) == std::string_view::npos) {
    return fail(req, "CLIENT_ERROR invalid mode for ma M token");
  }
  req.noreply = m.has('q');
  req.kind = kind;
}

struct command_name {
  std::string_view name;
  command kind;
};

constexpr command_name commands[] = {
    {"get", command::get},         {"bget", command::get},      {"gets", command::gets},
    {"gat", command::gat},         {"gats", command::gats},     {"set", command::set},
    {"add", command::add},         {"replace", command::replace}, {"append", command::append},
    {"prepend", command::prepend}, {"cas", command::cas},       {"incr", command::incr},
    {"decr", command::decr},       {"delete", command::del},    {"touch", command::touch},
    {"flush_all", command::flush_all}, {"stats", command::stats}, {"version", command::version},
    {"verbosity", command::verbosity}, {"quit", command::quit}, {"shutdown", command::shutdown},
    {"mg", command::meta_get},     {"ms", command::meta_set},   {"md", command::meta_delete},
    {"ma", command::meta_arithmetic}, {"mn", command::meta_noop}, {"me", command::meta_debug},
};

}  // namespace

void request::reset() noexcept {
  kind = command::none;
  noreply = false;
  keys.clear();
  decoded_key.clear();
  flags = 0;
  exptime = 0;
  cas_unique = 0;
  delta = 0;
  bytes = 0;
  has_data = false;
  argument = {};
  meta = meta_flags{};
  error.clear();
  then = after_error::next_line;
}

bool parse_u64(std::string_view text, std::uint64_t& out) noexcept {
  std::size_t i = 0;
  while (i < text.size() && is_space(text[i])) ++i;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  const std::size_t digits_from = i;
  std::uint64_t v = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    const std::uint64_t d = static_cast<std::uint64_t>(text[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;  // ERANGE
    v = v * 10 + d;
  }
  if (i == digits_from) return false;
  for (; i < text.size(); ++i) {
    if (!is_space(text[i])) return false;
  }
  if (negative && v != 0) return false;
  out = v;
  return true;
}

bool parse_i64(std::string_view text, std::int64_t& out) noexcept {
  std::size_t i = 0;
  while (i < text.size() && is_space(text[i])) ++i;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  const std::size_t digits_from = i;
  const std::uint64_t limit = negative ? std::uint64_t{INT64_MAX} + 1 : std::uint64_t{INT64_MAX};
  std::uint64_t v = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    const std::uint64_t d = static_cast<std::uint64_t>(text[i] - '0');
    if (v > (limit - d) / 10) return false;
    v = v * 10 + d;
  }
  if (i == digits_from) return false;
  for (; i < text.size(); ++i) {
    if (!is_space(text[i])) return false;
  }
  out = negative ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
  return true;
}

void parse_request_line(std::string_view line, request& req) {
  req.reset();
  tokens t;
  tokenize(line, t);
  if (t.count == 0) return fail(req, "ERROR");
  command kind = command::none;
  for (const auto& c : commands) {
    if (c.name == t.word[0]) {
      kind = c.kind;
      break;
    }
  }
  const std::size_t n = t.count;
  switch (kind) {
    case command::get:
    case command::gets:
      if (n < 2) return fail(req, "ERROR");
      req.kind = kind;
      return parse_keys(t, 1, req);
    case command::gat:
    case command::gats:
      if (n < 2) return fail(req, "ERROR");
      if (!parse_i32_truncating(t.word[1], req.exptime)) return fail(req, "CLIENT_ERROR invalid exptime argument");
      req.kind = kind;
      return parse_keys(t, 2, req);
    case command::set:
    case command::add:
    case command::replace:
    case command::append:
    case command::prepend:
      parse_storage(t, req, false);
      if (req.error.empty()) req.kind = kind;
      return;
    case command::cas:
      parse_storage(t, req, true);
      if (req.error.empty()) req.kind = kind;
      return;
    case command::incr:
    case command::decr:
      if (n != 3 && n != 4) return fail(req, "ERROR");
      req.keys.push_back(t.word[1]);
      req.noreply = n == 4 && noreply_token(t.word[3]);
      if (t.word[1].size() > key_length_max) return fail(req, bad_format);
      if (!parse_u64(t.word[2], req.delta)) return fail(req, "CLIENT_ERROR invalid numeric delta argument");
      req.kind = kind;
      return;
    case command::del: {
      if (n < 2 || n > 4) return fail(req, "ERROR");
      req.keys.push_back(t.word[1]);
      if (n > 2) {
        // "delete <key> 0" and "noreply" are allowed; a hold time is not.
        const bool hold_is_zero = t.word[2] == "0";
        req.noreply = noreply_token(t.word[n - 1]);
        const bool valid = (n == 3 && (hold_is_zero || req.noreply)) || (n == 4 && hold_is_zero && req.noreply);
        if (!valid) return fail(req, "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
      }
      if (t.word[1].size() > key_length_max) return fail(req, bad_format);
      req.kind = kind;
      return;
    }
    case command::touch:
      if (n != 3 && n != 4) return fail(req, "ERROR");
      req.keys.push_back(t.word[1]);
      req.noreply = n == 4 && noreply_token(t.word[3]);
      if (t.word[1].size() > key_length_max) return fail(req, bad_format);
      if (!parse_i32_truncating(t.word[2], req.exptime)) return fail(req, "CLIENT_ERROR invalid exptime argument");
      req.kind = kind;
      return;
    case command::flush_all:
      if (n > 3) return fail(req, "ERROR");
      req.noreply = noreply_token(t.word[n - 1]);
      if (n == 3 || (n == 2 && !req.noreply)) {
        if (!parse_i32_truncating(t.word[1], req.exptime)) return fail(req, "CLIENT_ERROR invalid exptime argument");
      }
      req.kind = kind;
      return;
    case command::stats:
      if (n > 2) return fail(req, "ERROR");
      if (n == 2) req.argument = t.word[1];
      req.kind = kind;
      return;
    case command::version:
    case command::quit:
      // (Extra words are ignored, as memcached does.)
      req.kind = kind;
      return;
    case command::shutdown:
      return fail(req, "ERROR: shutdown not enabled");
    case command::verbosity: {
      if (n != 2 && n != 3) return fail(req, "ERROR");
      req.noreply = noreply_token(t.word[n - 1]);
      std::uint32_t level = 0;
      if (!parse_u32_truncating(t.word[1], level)) return fail(req, bad_format);
      req.flags = level;
      req.kind = kind;
      return;
    }
    case command::meta_noop:
      req.kind = kind;
      return;
    case command::meta_get:
    case command::meta_set:
    case command::meta_delete:
    case command::meta_arithmetic:
    case command::meta_debug:
      return parse_meta(t, kind, req);
    case command::none:
      break;
  }
  fail(req, "ERROR");
}

frame find_request_line(std::string_view buffer) noexcept {
  frame f;
  const std::size_t newline = buffer.find('\n');
  if (newline == std::string_view::npos) {
    // Long lines may be multi-key gets; anything else closes.
    const bool retrieval = buffer.substr(0, 4) == "get " || buffer.substr(0, 5) == "gets " ||
                           buffer.substr(0, 4) == "gat " || buffer.substr(0, 5) == "gats ";
    const std::size_t limit = retrieval ? get_line_max : line_max;
    f.state = buffer.size() > limit ? frame::status::too_long : frame::status::need_more;
    return f;
  }
  std::string_view line = buffer.substr(0, newline);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  f.line = line;
  f.state = frame::status::line;
  f.line_bytes = newline + 1;
  return f;
}

bool data_block_ends_well(std::string_view block) noexcept {
  return block.size() >= 2 && block[block.size() - 2] == '\r' && block[block.size() - 1] == '\n';
}

namespace {
constexpr char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

bool base64_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 != 0) return false;
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = in[i + j];
      if (c == '=' && i + 4 == in.size() && j >= 2) {
        v[j] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return false;  // data after padding
      v[j] = base64_value(c);
      if (v[j] < 0) return false;
    }
    const std::uint32_t bits = (static_cast<std::uint32_t>(v[0]) << 18) | (static_cast<std::uint32_t>(v[1]) << 12) |
                               (static_cast<std::uint32_t>(v[2]) << 6) | static_cast<std::uint32_t>(v[3]);
    out.push_back(static_cast<char>(bits >> 16));
    if (pad < 2) out.push_back(static_cast<char>((bits >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(bits & 0xff));
  }
  return true;
}

void base64_encode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, in.size() - i);
    std::uint32_t bits = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (n > 1) bits |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    if (n > 2) bits |= static_cast<unsigned char>(in[i + 2]);
    out.push_back(base64_alphabet[(bits >> 18) & 63]);
    out.push_back(base64_alphabet[(bits >> 12) & 63]);
    out.push_back(n > 1 ? base64_alphabet[(bits >> 6) & 63] : '=');
    out.push_back(n > 2 ? base64_alphabet[bits & 63] : '=');
  }
}

}  // namespace reef::memcached
