#include "http/file_handler.h"

#include <sys/stat.h>
#include <time.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <string>
#include <system_error>
#include <utility>

#include "core/coroutine.h"
#include "core/log.h"
#include "core/reactor.h"
#include "fs/file.h"
#include "fs/file_stream.h"
#include "core/text.h"

namespace reef::http {

namespace {

logger file_log("http-file");

// realpath() as a string, or "" with errno set.
std::string real_path(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (real == nullptr) return {};
  std::string out(real);
  std::free(real);
  return out;
}

// Whether `path` (absolute, links resolved) is under `root` (likewise).
bool inside(const std::string& root, const std::string& path) {
  if (root == "/") return path.size() > 1 && path.front() == '/';
  return path.size() > root.size() + 1 && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/';
}

struct lookup {
  int error = 0;     // errno of realpath/stat
  bool outside = false;
  std::string real;  // the file, links resolved
  struct stat st {};
};

// On a blocking thread: where `path` really is, and what it is.
lookup look_up(const std::string& root_real, const std::string& path) {
  lookup l;
  l.real = real_path(path);
  if (l.real.empty()) {
    l.error = errno;
    return l;
  }
  if (!inside(root_real, l.real)) {
    l.outside = true;
    return l;
  }
  if (::stat(l.real.c_str(), &l.st) != 0) l.error = errno;
  return l;
}

future<> stream_file(file f, std::uint64_t offset, std::uint64_t length, output_stream<char>& out) {
  auto in = make_file_input_stream(f, offset, length, file_input_stream_options{.buffer_size = 65536, .read_ahead = 1});
  std::exception_ptr failed;
  try {
    for (;;) {
      auto b = co_await in.read();
      if (b.empty()) break;
      co_await out.write(std::move(b));
    }
  } catch (...) {
    failed = std::current_exception();
  }
  co_await in.close();
  if (failed) std::rethrow_exception(failed);
}

reply status_reply(int status) { return reply::of(status); }

future<reply> serve_file(std::string root_real, std::string relative, std::optional<std::string> range,
                         std::optional<std::string> if_modified_since, bool if_range) {
  if (relative.empty()) co_return status_reply(404);  // the directory itself
  lookup l = co_await run_blocking([root_real, path = root_real + "/" + relative] { return look_up(root_real, path); });
  if (l.outside) {
    file_log.debug("refused {}: it leads out of {}", relative, root_real);
    co_return status_reply(403);
  }
  if (l.error == ENOENT || l.error == ENOTDIR || l.error == ENAMETOOLONG || l.error == ELOOP) {
    co_return status_reply(404);
  }
  if (l.error == EACCES) co_return status_reply(403);
  if (l.error != 0) {
    throw std::system_error(l.error, std::system_category(), "serve_directory: realpath/stat(\"" + relative + "\")");
  }
  if (!S_ISREG(l.st.st_mode)) co_return status_reply(404);

  auto size = static_cast<std::uint64_t>(l.st.st_size);
  const std::time_t modified = l.st.st_mtim.tv_sec;
  if (if_modified_since) {
    if (auto since = parse_http_date(*if_modified_since); since && modified <= *since) {
      reply r(304);
      r.set_header("Last-Modified", format_http_date(modified));
      co_return r;
    }
  }
  byte_range br{0, size == 0 ? 0 : size - 1};
  // With If-Range the client holds some version and wants the rest of it;
  // without validators to compare, the whole file is the safe answer.
  range_outcome outcome = range && !if_range ? parse_range(*range, size, br) : range_outcome::whole;
  if (outcome == range_outcome::unsatisfiable) {
    reply r = reply::of(416);
    r.set_header("Content-Range", "bytes */" + std::to_string(size));
    co_return r;
  }
  file f;
  try {
    f = co_await open_file_dma(l.real, open_flags::ro);
  } catch (const std::system_error& e) {
    if (e.code().value() == EACCES) co_return status_reply(403);
    if (e.code().value() == ENOENT) co_return status_reply(404);
    throw;
  }
  // What was opened, not what was looked up: a link swapped in since the
  // look-up does not lead out, and the size is the open file's.
  if (!inside(root_real, f.real_path())) {
    co_await f.close();
    co_return status_reply(403);
  }
  struct stat opened = co_await f.stat();
  if (!S_ISREG(opened.st_mode)) {
    co_await f.close();
    co_return status_reply(404);
  }
  if (static_cast<std::uint64_t>(opened.st_size) != size) {
    // It changed in between: the whole file, as it is now.
    size = static_cast<std::uint64_t>(opened.st_size);
    outcome = range_outcome::whole;
    br = byte_range{0, size == 0 ? 0 : size - 1};
  }
  const std::uint64_t offset = outcome == range_outcome::partial ? br.first : 0;
  const std::uint64_t length = outcome == range_outcome::partial ? br.last - br.first + 1 : size;
  reply r(outcome == range_outcome::partial ? 206 : 200);
  r.set_header("Last-Modified", format_http_date(modified));
  r.set_header("Accept-Ranges", "bytes");
  if (outcome == range_outcome::partial) {
    r.set_header("Content-Range",
                 "bytes " + std::to_string(br.first) + "-" + std::to_string(br.last) + "/" + std::to_string(size));
  }
  r.write_body(
      content_type_for(l.real),
      [f, offset, length](output_stream<char>& out) { return stream_file(f, offset, length, out); },
      static_cast<std::size_t>(length));
  co_return r;
}

std::uint64_t parse_number(std::string_view s, bool& ok) noexcept {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  ok = !s.empty() && ec == std::errc() && end == s.data() + s.size();
  return v;
}

using text::trim;

}  // namespace

handler serve_directory(std::string root, std::string param) {
  std::string root_real = real_path(root);
  if (root_real.empty()) {
    throw std::system_error(errno, std::system_category(), "serve_directory(\"" + root + "\")");
  }
  return [root_real = std::move(root_real), param = std::move(param)](request& req) {
    std::optional<std::string> range, since;
    if (auto v = req.headers.get("range")) range = std::string(*v);
    if (auto v = req.headers.get("if-modified-since")) since = std::string(*v);
    return serve_file(root_real, std::string(req.param(param)), std::move(range), std::move(since),
                      req.headers.get("if-range").has_value());
  };
}

std::string_view content_type_for(std::string_view name) noexcept {
  auto dot = name.find_last_of("./");
  if (dot == std::string_view::npos || name[dot] != '.') return "application/octet-stream";
  std::string_view ext = name.substr(dot + 1);
  struct type {
    std::string_view ext, mime;
  };
  static constexpr type types[] = {
      {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},   {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json"},         {"txt", "text/plain; charset=utf-8"},
      {"md", "text/markdown; charset=utf-8"},
      {"xml", "application/xml"},           {"svg", "image/svg+xml"},
      {"png", "image/png"},                 {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},               {"gif", "image/gif"},
      {"webp", "image/webp"},               {"ico", "image/x-icon"},
      {"wasm", "application/wasm"},         {"pdf", "application/pdf"},
      {"zip", "application/zip"},           {"gz", "application/gzip"},
      {"mp4", "video/mp4"},                 {"webm", "video/webm"},
      {"mp3", "audio/mpeg"},                {"woff", "font/woff"},
      {"woff2", "font/woff2"},              {"csv", "text/csv; charset=utf-8"},
  };
  for (const auto& t : types) {
    if (ext.size() == t.ext.size()) {
      bool same = true;
      for (std::size_t i = 0; i < ext.size() && same; ++i) {
        char c = ext[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        same = c == t.ext[i];
      }
      if (same) return t.mime;
    }
  }
  return "application/octet-stream";
}

range_outcome parse_range(std::string_view value, std::uint64_t size, byte_range& out) noexcept {
  value = trim(value);
  constexpr std::string_view unit = "bytes=";
  if (value.substr(0, unit.size()) != unit) return range_outcome::whole;  // another unit: ignored
  std::string_view spec = trim(value.substr(unit.size()));
  if (spec.find(',') != std::string_view::npos) return range_outcome::whole;  // several ranges
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return range_outcome::whole;
  std::string_view first_text = trim(spec.substr(0, dash)), last_text = trim(spec.substr(dash + 1));
  bool ok_first = false, ok_last = false;
  if (first_text.empty()) {
    // "-n": the last n bytes.
    std::uint64_t n = parse_number(last_text, ok_last);
    if (!ok_last) return range_outcome::whole;
    if (n == 0 || size == 0) return range_outcome::unsatisfiable;
    out.first = n >= size ? 0 : size - n;
    out.last = size - 1;
    return range_outcome::partial;
  }
  std::uint64_t first = parse_number(first_text, ok_first);
  if (!ok_first) return range_outcome::whole;
  std::uint64_t last = UINT64_MAX;
  if (!last_text.empty()) {
    last = parse_number(last_text, ok_last);
    if (!ok_last || last < first) return range_outcome::whole;  // malformed: ignored
  }
  if (first >= size) return range_outcome::unsatisfiable;
  out.first = first;
  out.last = last >= size ? size - 1 : last;
  return range_outcome::partial;
}

std::optional<std::time_t> parse_http_date(std::string_view text) noexcept {
  // IMF-fixdate, and the two obsolete forms a recipient must accept
  // (RFC 9110, 5.6.7): RFC 850 and asctime.
  if (text.size() < 24 || text.size() > 40 || text.find('\0') != std::string_view::npos) return std::nullopt;
  char buf[41];
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  for (const char* format : {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* end = ::strptime(buf, format, &tm);
    if (end != nullptr && *end == '\0') return ::timegm(&tm);
  }
  return std::nullopt;
}

std::string format_http_date(std::time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::size_t n = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

}  // namespace reef::http
