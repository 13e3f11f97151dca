#include "core/format.h"

#include <cmath>
#include <stdexcept>

namespace reef::core_internal {

// Never called at run time: only named in the compiler's notes.
void format_string_error_more_placeholders_than_arguments() { throw std::logic_error("format string"); }
void format_string_error_more_arguments_than_placeholders() { throw std::logic_error("format string"); }
void format_string_error_stray_brace_or_bad_placeholder() { throw std::logic_error("format string"); }
void format_string_error_spec_does_not_fit_its_argument() { throw std::logic_error("format string"); }

void pad_into(std::string& out, std::string_view body, const format_spec& spec, char default_align) {
  const std::size_t width = static_cast<std::size_t>(spec.width);
  if (body.size() >= width) {
    out.append(body);
    return;
  }
  const std::size_t fill = width - body.size();
  const char align = spec.align != 0 ? spec.align : default_align;
  const std::size_t before = align == '>' ? fill : align == '^' ? fill / 2 : 0;
  out.append(before, spec.fill);
  out.append(body);
  out.append(fill - before, spec.fill);
}

namespace {

// Sign and prefix, then zeros up to the width when '0' asks (and no
// alignment overrides it), then the digits.
void pad_number(std::string& out, std::string_view sign_and_prefix, std::string_view digits,
                const format_spec& spec) {
  if (spec.zero_pad && spec.align == 0) {
    const std::size_t len = sign_and_prefix.size() + digits.size();
    out.append(sign_and_prefix);
    if (static_cast<std::size_t>(spec.width) > len) out.append(static_cast<std::size_t>(spec.width) - len, '0');
    out.append(digits);
    return;
  }
  std::string body;
  body.reserve(sign_and_prefix.size() + digits.size());
  body.append(sign_and_prefix).append(digits);
  pad_into(out, body, spec, '>');
}

char sign_of(bool negative, const format_spec& spec) {
  if (negative) return '-';
  return spec.sign == '+' ? '+' : spec.sign == ' ' ? ' ' : 0;
}

}  // namespace

void format_integer(std::string& out, bool negative, std::uint64_t magnitude, const format_spec& spec) {
  if (spec.type == 'c') {
    const char c = static_cast<char>(magnitude);
    pad_into(out, std::string_view(&c, 1), spec, '<');
    return;
  }
  int base = 10;
  std::string_view prefix;
  switch (spec.type) {
    case 'x': base = 16; prefix = "0x"; break;
    case 'X': base = 16; prefix = "0X"; break;
    case 'o': base = 8; prefix = "0"; break;
    case 'b': base = 2; prefix = "0b"; break;
    case 'B': base = 2; prefix = "0B"; break;
    default: break;
  }
  char digits[64];
  auto r = std::to_chars(digits, digits + sizeof(digits), magnitude, base);
  std::size_t n = static_cast<std::size_t>(r.ptr - digits);
  if (spec.type == 'X') {
    for (std::size_t i = 0; i < n; ++i) {
      if (digits[i] >= 'a' && digits[i] <= 'f') digits[i] = static_cast<char>(digits[i] - 'a' + 'A');
    }
  }
  char head[4];
  std::size_t head_n = 0;
  if (char s = sign_of(negative, spec)) head[head_n++] = s;
  if (spec.alternate && !(base == 8 && magnitude == 0)) {
    for (char c : prefix) head[head_n++] = c;
  }
  pad_number(out, std::string_view(head, head_n), std::string_view(digits, n), spec);
}

void format_floating(std::string& out, double value, const format_spec& spec) {
  char buf[4096 + 400];
  std::to_chars_result r{};
  const char type = spec.type;
  const bool upper = type == 'F' || type == 'E' || type == 'G' || type == 'A';
  std::chars_format how = std::chars_format::general;
  switch (type) {
    case 'f': case 'F': how = std::chars_format::fixed; break;
    case 'e': case 'E': how = std::chars_format::scientific; break;
    case 'a': case 'A': how = std::chars_format::hex; break;
    default: break;
  }
  const bool negative = std::signbit(value);
  const double magnitude = std::fabs(value);
  if (std::isnan(value) || std::isinf(value)) {
    const char* text = std::isnan(value) ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
    std::string sign;
    if (char s = sign_of(negative, spec)) sign.push_back(s);
    format_spec no_zeros = spec;
    no_zeros.zero_pad = false;
    pad_number(out, sign, text, no_zeros);
    return;
  }
  if (type == 0 && spec.precision < 0) {
    r = std::to_chars(buf, buf + sizeof(buf), magnitude);  // the shortest exact form
  } else if (spec.precision < 0) {
    r = type == 'f' || type == 'F' || type == 'e' || type == 'E' || type == 'g' || type == 'G'
            ? std::to_chars(buf, buf + sizeof(buf), magnitude, how, 6)
            : std::to_chars(buf, buf + sizeof(buf), magnitude, how);
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), magnitude, how, spec.precision);
  }
  std::size_t n = r.ec == std::errc() ? static_cast<std::size_t>(r.ptr - buf) : 0;
  if (upper) {
    for (std::size_t i = 0; i < n; ++i) {
      if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] = static_cast<char>(buf[i] - 'a' + 'A');
    }
  }
  char head[4];
  std::size_t head_n = 0;
  if (char s = sign_of(negative, spec)) head[head_n++] = s;
  pad_number(out, std::string_view(head, head_n), std::string_view(buf, n), spec);
}

std::size_t append_literal(std::string& out, std::string_view fmt) {
  std::size_t i = 0;
  while (i < fmt.size()) {
    std::size_t brace = fmt.find_first_of("{}", i);
    if (brace == std::string_view::npos) {
      out.append(fmt.substr(i));
      return std::string_view::npos;
    }
    out.append(fmt.substr(i, brace - i));
    if (brace + 1 < fmt.size() && fmt[brace + 1] == fmt[brace]) {
      out.push_back(fmt[brace]);  // "{{" or "}}"
      i = brace + 2;
      continue;
    }
    if (fmt[brace] == '{') return brace;
    out.push_back('}');  // (a lone '}' does not pass the check)
    i = brace + 1;
  }
  return std::string_view::npos;
}

std::size_t read_placeholder(std::string_view fmt, format_spec& spec) noexcept {
  std::size_t close = fmt.find('}');
  if (close > 1) parse_format_spec(fmt.substr(2, close - 2), spec);
  return close + 1;
}

}  // namespace reef::core_internal
