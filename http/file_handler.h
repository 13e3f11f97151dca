// Static files: a handler that serves the files under a directory through
// fs (DMA reads, streamed; the shard's I/O queue).
//
//   routes.add("GET", "/file/{path*}", serve_directory("/srv/www"));
//
// The file is the route's `{path*}` under the root. The request's path has
// its dot segments resolved and encoded slashes refused already (the
// parser); what remains to refuse is a symbolic link that leads out of the
// root: 403. A missing file is 404, and so is a directory or anything that
// is not a regular file.
//
// Replies carry Content-Type (by extension), Content-Length and
// Last-Modified. If-Modified-Since at or after the file's time gives 304. A
// single byte range (`Range: bytes=a-b`, `a-`, `-n`) gives 206 with
// Content-Range, an unsatisfiable one 416; several ranges, or a range with
// If-Range, get the whole file (200), as RFC 9110 allows. The file's
// containment and size are checked again on the opened file, so a link
// swapped in after the look-up does not lead out.
//
// Thread rules: the handler belongs to the routes it is added to.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "http/routes.h"

namespace reef::http {

/// A handler serving the files under `root`, named by the route parameter
/// `param`.
handler serve_directory(std::string root, std::string param = "path");

/// The Content-Type for a file name, by its extension
/// ("application/octet-stream" if unknown).
std::string_view content_type_for(std::string_view name) noexcept;

/// An inclusive byte range of a representation.
struct byte_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};

enum class range_outcome {
  whole,           // no range, or one this server ignores (several, malformed): 200
  partial,         // one satisfiable range: 206
  unsatisfiable,   // one range past the end: 416
};

/// Reads a Range field's value against a representation of `size` bytes.
range_outcome parse_range(std::string_view value, std::uint64_t size, byte_range& out) noexcept;

/// An HTTP date, or nullopt: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"),
/// or the obsolete RFC 850 and asctime forms.
std::optional<std::time_t> parse_http_date(std::string_view text) noexcept;
/// `t` as an IMF-fixdate.
std::string format_http_date(std::time_t t);

}  // namespace reef::http
