// Text formatting with `{}` placeholders, checked at compile time.
//
//   format("{} requests in {:.1f} ms", n, ms);     // "12 requests in 3.5 ms"
//   format("fd {:>4} flags {:#06x}", fd, flags);   // "fd    7 flags 0x0801"
//
// A placeholder is `{}` or `{:spec}`, taking the arguments in order; `{{`
// and `}}` stand for braces. The spec is the common subset of
// std::format's: [[fill]align][sign][#][0][width][.precision][type], with
//   align      '<' left, '>' right, '^' centre (numbers default right,
//              everything else left);
//   sign       '+' always, ' ' a space for non-negative, '-' (default);
//   '#'        a base prefix for integers (0x, 0X, 0b, 0B, 0);
//   '0'        pads numbers with zeros after the sign and prefix;
//   precision  digits after the point for floats, the most characters
//              taken from a string;
//   type       integers: d x X o b B c; floats: f F e E g G a A; strings
//              and bool: s; pointers: p. Characters print as characters
//              unless given an integer type.
// Anything else with an operator<< prints through it (width and alignment
// apply). The format string is checked against the arguments' types when
// the call is compiled: a placeholder without an argument, an argument
// without a placeholder, a stray brace, or a spec that does not fit its
// argument ("{:x}" for a string) is a compile error whose note names the
// fault (`format_string_error_more_arguments_than_placeholders`, ...). Runtime-built formats are not accepted.
//
// Thread rules: none (pure functions).
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace reef {

namespace core_internal {

/// A parsed `{:spec}`.
struct format_spec {
  char fill = ' ';
  char align = 0;  // 0: the argument's default
  char sign = '-';
  bool alternate = false;
  bool zero_pad = false;
  int width = 0;
  int precision = -1;  // -1: none
  char type = 0;       // 0: the argument's default
};

/// What a spec may say about an argument depends on its kind.
enum class format_arg_kind : std::uint8_t { integer, character, boolean, floating, string, pointer, other };

template <typename T>
constexpr format_arg_kind format_kind_of() noexcept {
  using D = std::remove_cvref_t<T>;
  if constexpr (std::is_same_v<D, bool>) {
    return format_arg_kind::boolean;
  } else if constexpr (std::is_same_v<D, char>) {
    return format_arg_kind::character;
  } else if constexpr (std::is_integral_v<D> || std::is_enum_v<D>) {
    return format_arg_kind::integer;
  } else if constexpr (std::is_floating_point_v<D>) {
    return format_arg_kind::floating;
  } else if constexpr (std::is_convertible_v<const D&, std::string_view> ||
                       std::is_same_v<std::decay_t<D>, char*> || std::is_same_v<std::decay_t<D>, const char*>) {
    return format_arg_kind::string;
  } else if constexpr (std::is_pointer_v<std::decay_t<D>> || std::is_null_pointer_v<D>) {
    return format_arg_kind::pointer;
  } else {
    return format_arg_kind::other;
  }
}

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// Parses the text between ':' and '}'. Returns nullptr, or why it is
/// malformed.
constexpr const char* parse_format_spec(std::string_view s, format_spec& spec) noexcept {
  std::size_t i = 0;
  auto is_align = [](char c) { return c == '<' || c == '>' || c == '^'; };
  if (s.size() >= 2 && is_align(s[1])) {
    if (s[0] == '{' || s[0] == '}') return "a brace cannot be the fill character";
    spec.fill = s[0];
    spec.align = s[1];
    i = 2;
  } else if (!s.empty() && is_align(s[0])) {
    spec.align = s[0];
    i = 1;
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) spec.sign = s[i++];
  if (i < s.size() && s[i] == '#') {
    spec.alternate = true;
    ++i;
  }
  if (i < s.size() && s[i] == '0') {
    spec.zero_pad = true;
    ++i;
  }
  while (i < s.size() && is_digit(s[i])) {
    spec.width = spec.width * 10 + (s[i++] - '0');
    if (spec.width > 4096) return "width above 4096";
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i == s.size() || !is_digit(s[i])) return "a '.' without a precision";
    spec.precision = 0;
    while (i < s.size() && is_digit(s[i])) {
      spec.precision = spec.precision * 10 + (s[i++] - '0');
      if (spec.precision > 4096) return "precision above 4096";
    }
  }
  if (i < s.size()) spec.type = s[i++];
  if (i != s.size()) return "unknown characters in a format spec";
  return nullptr;
}

/// Whether `spec` fits an argument of `kind`; nullptr, or why not.
constexpr const char* check_format_spec(const format_spec& spec, format_arg_kind kind) noexcept {
  const std::string_view integer_types = "dxXobBc";
  const std::string_view float_types = "fFeEgGaA";
  const bool numeric_flags = spec.sign != '-' || spec.alternate || spec.zero_pad;
  switch (kind) {
    case format_arg_kind::integer:
      if (spec.type != 0 && integer_types.find(spec.type) == std::string_view::npos) return "not an integer type";
      if (spec.precision >= 0) return "an integer takes no precision";
      return nullptr;
    case format_arg_kind::character:
      if (spec.type == 0 || spec.type == 'c') {
        return numeric_flags || spec.precision >= 0 ? "a character takes no sign, '#', '0' or precision" : nullptr;
      }
      if (integer_types.find(spec.type) == std::string_view::npos) return "not a character or integer type";
      return spec.precision >= 0 ? "an integer takes no precision" : nullptr;
    case format_arg_kind::boolean:
      if (spec.type != 0 && spec.type != 's') return "a bool takes only 's'";
      return numeric_flags || spec.precision >= 0 ? "a bool takes no sign, '#', '0' or precision" : nullptr;
    case format_arg_kind::floating:
      if (spec.type != 0 && float_types.find(spec.type) == std::string_view::npos) return "not a floating-point type";
      return nullptr;
    case format_arg_kind::string:
      if (spec.type != 0 && spec.type != 's') return "a string takes only 's'";
      return numeric_flags ? "a string takes no sign, '#' or '0'" : nullptr;
    case format_arg_kind::pointer:
      if (spec.type != 0 && spec.type != 'p') return "a pointer takes only 'p'";
      return numeric_flags || spec.precision >= 0 ? "a pointer takes no sign, '#', '0' or precision" : nullptr;
    case format_arg_kind::other:
      if (spec.type != 0) return "a value printed with operator<< takes no type";
      return numeric_flags || spec.precision >= 0 ? "a value printed with operator<< takes width and alignment only"
                                                  : nullptr;
  }
  return "unknown argument kind";
}

/// Checks `text` against arguments of `kinds`: nullptr, or what is wrong.
template <std::size_t N>
constexpr const char* check_format(std::string_view text, const std::array<format_arg_kind, N>& kinds) noexcept {
  std::size_t arg = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        ++i;
        continue;
      }
      return "a lone '}' (write '}}' for a brace)";
    }
    if (text[i] != '{') continue;
    if (i + 1 < text.size() && text[i + 1] == '{') {
      ++i;
      continue;
    }
    std::size_t close = text.find('}', i);
    if (close == std::string_view::npos) return "a '{' without its '}'";
    std::string_view inside = text.substr(i + 1, close - i - 1);
    format_spec spec;
    if (!inside.empty()) {
      if (inside[0] != ':') return "only {} and {:spec} placeholders (no positions or names)";
      if (const char* error = parse_format_spec(inside.substr(1), spec)) return error;
    }
    if (arg >= N) return "more placeholders than arguments";
    if (const char* error = check_format_spec(spec, kinds[arg])) return error;
    ++arg;
    i = close;
  }
  return arg == N ? nullptr : "more arguments than placeholders";
}

// Not constexpr: a format string that fails its check calls one of these
// while being compiled, which stops the compilation; the compiler's note
// names the function, and so the fault.
void format_string_error_more_placeholders_than_arguments();
void format_string_error_more_arguments_than_placeholders();
void format_string_error_stray_brace_or_bad_placeholder();
void format_string_error_spec_does_not_fit_its_argument();

constexpr void format_string_error(const char* why) {
  const std::string_view w = why;
  if (w == "more placeholders than arguments") {
    format_string_error_more_placeholders_than_arguments();
  } else if (w == "more arguments than placeholders") {
    format_string_error_more_arguments_than_placeholders();
  } else if (w.starts_with("a lone") || w.starts_with("a '{'") || w.starts_with("only {}")) {
    format_string_error_stray_brace_or_bad_placeholder();
  } else {
    format_string_error_spec_does_not_fit_its_argument();
  }
}

template <typename... A>
constexpr const char* check_format_for(std::string_view text) noexcept {
  return check_format(text, std::array<format_arg_kind, sizeof...(A)>{format_kind_of<A>()...});
}

// --- Formatting at run time (the string was checked when compiled). -------

void pad_into(std::string& out, std::string_view body, const format_spec& spec, char default_align);
void format_integer(std::string& out, bool negative, std::uint64_t magnitude, const format_spec& spec);
void format_floating(std::string& out, double value, const format_spec& spec);

template <typename T>
void format_arg(std::string& out, const T& v, const format_spec& spec) {
  using D = std::remove_cvref_t<T>;
  constexpr format_arg_kind kind = format_kind_of<D>();
  if constexpr (kind == format_arg_kind::boolean) {
    pad_into(out, v ? "true" : "false", spec, '<');
  } else if constexpr (kind == format_arg_kind::character) {
    if (spec.type == 0 || spec.type == 'c') {
      pad_into(out, std::string_view(&v, 1), spec, '<');
    } else {
      format_integer(out, false, static_cast<unsigned char>(v), spec);
    }
  } else if constexpr (kind == format_arg_kind::integer) {
    if constexpr (std::is_enum_v<D>) {
      format_arg(out, static_cast<std::underlying_type_t<D>>(v), spec);
    } else if constexpr (std::is_signed_v<D>) {
      const bool negative = v < 0;
      const auto magnitude = negative ? std::uint64_t(0) - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
      format_integer(out, negative, magnitude, spec);
    } else {
      format_integer(out, false, static_cast<std::uint64_t>(v), spec);
    }
  } else if constexpr (kind == format_arg_kind::floating) {
    format_floating(out, static_cast<double>(v), spec);
  } else if constexpr (kind == format_arg_kind::string) {
    std::string_view s;
    if constexpr (std::is_pointer_v<D>) {
      s = v != nullptr ? std::string_view(v) : std::string_view("(null)");
    } else {
      s = std::string_view(v);
    }
    if (spec.precision >= 0 && s.size() > static_cast<std::size_t>(spec.precision)) {
      s = s.substr(0, static_cast<std::size_t>(spec.precision));
    }
    pad_into(out, s, spec, '<');
  } else if constexpr (kind == format_arg_kind::pointer) {
    char buf[2 + 16] = {'0', 'x'};
    auto r = std::to_chars(buf + 2, buf + sizeof(buf), reinterpret_cast<std::uintptr_t>(v), 16);
    pad_into(out, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)), spec, '>');
  } else {
    std::ostringstream os;
    os << v;
    pad_into(out, os.str(), spec, '<');
  }
}

// Appends the literal text up to the next placeholder (braces unescaped);
// returns where the placeholder starts, or npos.
std::size_t append_literal(std::string& out, std::string_view fmt);

// Parses the placeholder at the front of `fmt` ("{}" or "{:spec}", already
// checked) into `spec`; returns its length.
std::size_t read_placeholder(std::string_view fmt, format_spec& spec) noexcept;

inline void format_to(std::string& out, std::string_view fmt) { append_literal(out, fmt); }

template <typename A, typename... R>
void format_to(std::string& out, std::string_view fmt, const A& a, const R&... rest) {
  std::size_t at = append_literal(out, fmt);
  if (at == std::string_view::npos) return;  // (the check makes this unreachable)
  fmt.remove_prefix(at);
  format_spec spec;
  fmt.remove_prefix(read_placeholder(fmt, spec));
  format_arg(out, a, spec);
  format_to(out, fmt, rest...);
}

}  // namespace core_internal

/// A format string checked, when the call is compiled, against arguments
/// of types `A...` (see the file comment).
template <typename... A>
class basic_format_string {
 public:
  template <typename S>
    requires std::is_convertible_v<const S&, std::string_view>
  consteval basic_format_string(const S& s) : _text(s) {  // NOLINT: implicit on purpose
    if (const char* why = core_internal::check_format_for<A...>(_text)) core_internal::format_string_error(why);
  }
  constexpr std::string_view get() const noexcept { return _text; }

 private:
  std::string_view _text;
};

/// The format-string parameter type of a call with arguments `A...`.
template <typename... A>
using format_string = basic_format_string<std::type_identity_t<A>...>;

/// `fmt` with each placeholder replaced by the next argument, formatted as
/// its spec says.
template <typename... A>
std::string format(format_string<A...> fmt, const A&... a) {
  std::string out;
  out.reserve(fmt.get().size() + 16 * sizeof...(A));
  core_internal::format_to(out, fmt.get(), a...);
  return out;
}

}  // namespace reef
