#include "net/dns/dns_flags.h"

#include <stdexcept>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/string_view.h"
#include "net/dns/dns.h"

namespace reef::dns {

std::vector<socket_address> parse_server_list(std::string_view text) {
  std::vector<socket_address> servers;
  if (text.empty()) return servers;
  std::size_t at = 0;
  for (;;) {
    std::size_t comma = text.find(',', at);
    std::string_view entry = text.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at);
    try {
      // With a port ("1.2.3.4:53", "[::1]:53"), or an address alone.
      bool has_port = entry.size() > 0 && (entry.front() == '[' || entry.find(':') == entry.rfind(':')) &&
                      entry.find(':') != std::string_view::npos;
      servers.push_back(has_port ? socket_address::parse(entry)
                                 : socket_address(inet_address::parse(entry), 53));
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument("not a DNS server address[:port]: '" + std::string(entry) + "'");
    }
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  return servers;
}

namespace {

// The flag's value: the text, checked when parsed.
struct server_list {
  std::string text;
};

bool AbslParseFlag(absl::string_view text, server_list* out, std::string* error) {
  try {
    parse_server_list(std::string_view(text.data(), text.size()));
  } catch (const std::invalid_argument& e) {
    *error = e.what();
    return false;
  }
  out->text = std::string(text);
  return true;
}

std::string AbslUnparseFlag(const server_list& list) { return list.text; }

void apply() noexcept;

}  // namespace
}  // namespace reef::dns

ABSL_FLAG(reef::dns::server_list, dns_server, reef::dns::server_list{},
          "DNS servers to ask, ADDR[:PORT][,...] (default: those of /etc/resolv.conf)")
    .OnUpdate(reef::dns::apply);

namespace reef::dns {
namespace {

void apply() noexcept {
  resolver_options options = default_options();
  options.servers = parse_server_list(absl::GetFlag(FLAGS_dns_server).text);  // checked when parsed
  set_default_options(std::move(options));
}

}  // namespace
}  // namespace reef::dns
