#include "http/reply.h"

#include <time.h>

#include <chrono>
#include <ctime>

#include "core/timer.h"

namespace reef::http {

reply reply::of(int status) {
  reply r(status);
  std::string body = std::to_string(status);
  body += ' ';
  body += reason_phrase(status);
  body += '\n';
  r.write_body("text/plain", std::move(body));
  return r;
}

void reply::clear() noexcept {
  status = 200;
  headers.clear();
  if (content.capacity() > kept_content_max) {
    std::string().swap(content);
  } else {
    content.clear();
  }
  writer = nullptr;
  content_length.reset();
}

reply& reply::write_body(std::string_view content_type, std::string body) & {
  if (!headers.empty()) headers.remove("Content-Type");
  headers.add(std::string_view("Content-Type"), content_type);
  content = std::move(body);
  writer = nullptr;
  content_length.reset();
  return *this;
}

reply& reply::write_body(std::string_view content_type, body_writer w) & {
  if (!headers.empty()) headers.remove("Content-Type");
  headers.add(std::string_view("Content-Type"), content_type);
  content.clear();
  writer = std::move(w);
  content_length.reset();
  return *this;
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string_view http_date() {
  // Formatted once a second. The reactor's clock (one load) says when the
  // second is over; it lags the true time by at most one loop iteration, so
  // the text is refreshed a little early, never late by more than that.
  thread_local lowres_clock::time_point valid_until{};
  thread_local char text[32];
  thread_local std::size_t length = 0;
  const auto now = lowres_clock::now();
  if (length == 0 || now >= valid_until) {
    timespec wall{};
    ::clock_gettime(CLOCK_REALTIME, &wall);
    std::tm tm{};
    ::gmtime_r(&wall.tv_sec, &tm);
    length = std::strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    valid_until = now + std::chrono::nanoseconds(1'000'000'000 - wall.tv_nsec);
  }
  return std::string_view(text, length);
}

}  // namespace reef::http
