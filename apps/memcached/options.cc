#include "apps/memcached/options.h"

#include <array>
#include <utility>

namespace reef::memcached {

namespace {

struct short_flag {
  char letter;
  std::string_view name;
};

constexpr std::array<short_flag, 7> short_flags{{
    {'p', "port"},
    {'U', "udp-port"},
    {'l', "listen"},
    {'m', "memory-limit-mb"},
    {'c', "conn-limit"},
    {'I', "max-item-size"},
    {'t', "smp"},
}};

constexpr std::array<std::pair<std::string_view, std::string_view>, 2> renamed{{
    {"threads", "smp"},
    {"memory-limit", "memory-limit-mb"},
}};

}  // namespace

std::vector<std::string> translate_memcached_flags(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  out.reserve(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (i == 0 || arg == "--") {
      // The program's name; or the end of flags: the rest as it is.
      if (arg == "--") {
        out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
        break;
      }
      out.push_back(arg);
      continue;
    }
    if (arg.size() >= 2 && arg[0] == '-' && arg[1] != '-') {
      const short_flag* match = nullptr;
      for (const auto& f : short_flags) {
        if (f.letter == arg[1]) match = &f;
      }
      if (match != nullptr) {
        out.push_back("--" + std::string(match->name));
        if (arg.size() > 2) out.push_back(arg.substr(arg[2] == '=' ? 3 : 2));  // -p11211, -p=11211
        continue;
      }
    }
    if (arg.rfind("--", 0) == 0) {
      const std::string_view body = std::string_view(arg).substr(2);
      const std::size_t eq = body.find('=');
      const std::string_view name = body.substr(0, eq);
      bool done = false;
      for (const auto& [from, to] : renamed) {
        if (name == from) {
          out.push_back("--" + std::string(to) + (eq == std::string_view::npos ? "" : std::string(body.substr(eq))));
          done = true;
        }
      }
      if (done) continue;
    }
    out.push_back(arg);
  }
  return out;
}

std::optional<std::size_t> parse_size(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  std::size_t shift = 0;
  switch (text.back()) {
    case 'k':
    case 'K':
      shift = 10;
      break;
    case 'm':
    case 'M':
      shift = 20;
      break;
    case 'g':
    case 'G':
      shift = 30;
      break;
    default:
      break;
  }
  if (shift != 0) text.remove_suffix(1);
  if (text.empty() || text.size() > 13) return std::nullopt;
  std::size_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::size_t>(c - '0');
  }
  if (v > (std::size_t{1} << 40) >> shift) return std::nullopt;
  return v << shift;
}

}  // namespace reef::memcached
