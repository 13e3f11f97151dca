// The resolver's command-line flag. Linking this target defines it;
// parsing the command line (core/reactor_flags.h) sets the options of the
// shards' default resolvers (net/dns/dns.h), and a malformed value is a
// parse error naming the flag.
//
//   --dns-server ADDR[:PORT][,...]   servers to ask, in order (port 53 if
//                                    none; IPv6 as [::1]:53); default: those
//                                    of /etc/resolv.conf
//
// Thread rules: parsed on the main thread before shards start.
#pragma once

#include <string_view>
#include <vector>

#include "net/api.h"

namespace reef::dns {

/// Parses a --dns-server value. Throws std::invalid_argument naming the
/// entry that is wrong.
std::vector<socket_address> parse_server_list(std::string_view text);

}  // namespace reef::dns
