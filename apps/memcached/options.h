// memcached's command line, in Reef's: the short flags memcached's users
// type (-p 11211 -U 0 -l 127.0.0.1 -m 64 -c 1024 -I 1m -t 4) become the
// long flags the application template parses.
//
//   std::vector<std::string> args = translate_memcached_flags({"memcached", "-p", "11211", "-t4"});
//   // {"memcached", "--port", "11211", "--smp", "4"}
//
// Thread rules: none; pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace reef::memcached {

/// Rewrites memcached's short flags (-p, -U, -l, -m, -c, -I, -t, each with
/// its value as the next argument or attached: -p11211) and long ones that
/// Reef names differently (--threads, --memory-limit) into Reef's flags.
/// Everything else passes through unchanged (so the application
/// template's flags work as in every Reef program, and a bad one is
/// reported by it).
std::vector<std::string> translate_memcached_flags(const std::vector<std::string>& args);

/// A size as memcached's -I takes it: bytes, or with a k, m or g suffix
/// (either case). nullopt if it is not one, or above 2^40.
std::optional<std::size_t> parse_size(std::string_view text) noexcept;

}  // namespace reef::memcached
