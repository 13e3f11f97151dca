// The resolver against a real DNS server: Debian's dnsmasq, started by the
// test on 127.0.0.1 with a few local names. Runs on both reactor backends.
#include "net/dns/dns.h"

#include <ares.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/reactor_flags.h"
#include "core/sleep.h"
#include "core/testing/test.h"
#include "net/dns/dns_flags.h"

extern char** environ;

namespace reef::dns {
namespace {

using namespace std::chrono_literals;

constexpr const char* dnsmasq_path = "/usr/sbin/dnsmasq";

// A port of 127.0.0.1 free for UDP and TCP right now.
std::uint16_t free_port() {
  for (;;) {
    int u = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(u, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
    socklen_t len = sizeof(sin);
    ::getsockname(u, reinterpret_cast<sockaddr*>(&sin), &len);
    int t = ::socket(AF_INET, SOCK_STREAM, 0);
    bool tcp_free = ::bind(t, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0;
    ::close(t);
    ::close(u);
    if (tcp_free) return ntohs(sin.sin_port);
  }
}

// dnsmasq on 127.0.0.1:<port>, answering for reef.test only, for the
// lifetime of the object.
class dns_server {
 public:
  dns_server() : _port(free_port()) {
    if (::access(dnsmasq_path, X_OK) != 0) return;
    std::vector<std::string> args = {
        dnsmasq_path,
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--port=" + std::to_string(_port),
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        "--log-facility=/dev/null",
        "--local=/reef.test/",
        "--address=/a.reef.test/127.0.0.5",
        "--host-record=b.reef.test,127.0.0.7,::7",
        "--cname=c.reef.test,b.reef.test",
    };
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&_pid, dnsmasq_path, nullptr, nullptr, argv.data(), environ) != 0) _pid = -1;
  }
  ~dns_server() {
    if (_pid > 0) {
      ::kill(_pid, SIGTERM);
      ::waitpid(_pid, nullptr, 0);
    }
  }
  bool running() const { return _pid > 0; }
  socket_address address() const { return socket_address(inet_address::parse("127.0.0.1"), _port); }

 private:
  std::uint16_t _port;
  pid_t _pid = -1;
};

dns_server* server;

resolver_options options_for(socket_address address) {
  resolver_options o;
  o.servers = {address};
  o.timeout = 500ms;
  o.tries = 2;
  o.use_hosts_file = false;
  return o;
}

// Waits (bounded) until dnsmasq answers.
future<bool> server_ready() {
  resolver_options o = options_for(server->address());
  o.timeout = 100ms;
  o.tries = 1;
  resolver r(o);
  for (int i = 0; i < 50; ++i) {
    try {
      co_await r.resolve_name("a.reef.test");
      co_return true;
    } catch (const dns_error&) {
    }
    co_await sleep(100ms);
  }
  co_return false;
}

future<bool> setup() {
  if (!server->running()) {
    ADD_FAILURE() << dnsmasq_path << " did not start (package dnsmasq-base; tools/bazel installs it)";
    co_return false;
  }
  bool ready = co_await server_ready();
  EXPECT_TRUE(ready) << "dnsmasq never answered";
  co_return ready;
}

bool has(const std::vector<inet_address>& all, const char* text) {
  return std::find(all.begin(), all.end(), inet_address::parse(text)) != all.end();
}

REEF_TEST(dns, resolves_a_name_to_its_address) {
  if (!co_await setup()) co_return;
  resolver r(options_for(server->address()));
  EXPECT_EQ(co_await r.resolve_name("a.reef.test", inet_address::family::ipv4), inet_address::parse("127.0.0.5"));
  EXPECT_EQ(co_await r.resolve_name("a.reef.test."), inet_address::parse("127.0.0.5")) << "a trailing dot";
  co_await r.close();
}

REEF_TEST(dns, get_host_by_name_gives_every_address_and_the_family_filters) {
  if (!co_await setup()) co_return;
  resolver r(options_for(server->address()));
  host both = co_await r.get_host_by_name("b.reef.test");
  EXPECT_EQ(both.addresses.size(), 2u);
  EXPECT_TRUE(has(both.addresses, "127.0.0.7"));
  EXPECT_TRUE(has(both.addresses, "::7"));
  host six = co_await r.get_host_by_name("b.reef.test", inet_address::family::ipv6);
  EXPECT_EQ(six.addresses.size(), 1u);
  EXPECT_TRUE(has(six.addresses, "::7"));
  host via_alias = co_await r.get_host_by_name("c.reef.test", inet_address::family::ipv4);
  EXPECT_EQ(via_alias.name, "b.reef.test") << "the canonical name behind the CNAME";
  EXPECT_TRUE(has(via_alias.addresses, "127.0.0.7"));
  co_await r.close();
}

REEF_TEST(dns, get_host_by_addr_finds_the_name) {
  if (!co_await setup()) co_return;
  resolver r(options_for(server->address()));
  host h = co_await r.get_host_by_addr(inet_address::parse("127.0.0.7"));
  EXPECT_EQ(h.name, "b.reef.test");
  try {
    co_await r.get_host_by_addr(inet_address::parse("127.0.0.99"));
    ADD_FAILURE() << "an address without a name had one";
  } catch (const name_not_found&) {
  }
  co_await r.close();
}

REEF_TEST(dns, nxdomain_is_name_not_found) {
  if (!co_await setup()) co_return;
  resolver r(options_for(server->address()));
  try {
    co_await r.resolve_name("nowhere.reef.test");
    ADD_FAILURE() << "resolved a name that does not exist";
  } catch (const name_not_found& e) {
    EXPECT_EQ(e.status(), ARES_ENOTFOUND);
    EXPECT_NE(std::string(e.what()).find("nowhere.reef.test"), std::string::npos) << e.what();
  }
  try {
    co_await r.resolve_name("a.reef.test", inet_address::family::ipv6);
    ADD_FAILURE() << "an IPv6 address for an IPv4-only name";
  } catch (const name_not_found&) {
  }
  co_await r.close();
}

REEF_TEST(dns, a_server_that_never_answers_is_a_timeout) {
  // A UDP socket that is bound but never read: queries vanish.
  int hole = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(hole, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  socklen_t len = sizeof(sin);
  ::getsockname(hole, reinterpret_cast<sockaddr*>(&sin), &len);
  resolver_options o = options_for(socket_address(reinterpret_cast<sockaddr*>(&sin), len));
  o.timeout = 100ms;
  o.tries = 2;
  resolver r(o);
  auto start = std::chrono::steady_clock::now();
  try {
    co_await r.resolve_name("a.reef.test");
    ADD_FAILURE() << "an answer from nowhere";
  } catch (const timeout_error& e) {
    EXPECT_EQ(e.status(), ARES_ETIMEOUT);
  } catch (const dns_error& e) {
    ADD_FAILURE() << "not a timeout: " << e.what();
  }
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 150ms) << "gave up before the tries were spent";
  EXPECT_LT(took, 5s);
  co_await r.close();
  ::close(hole);
}

REEF_TEST(dns, close_fails_pending_lookups_and_later_ones) {
  int hole = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(hole, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  socklen_t len = sizeof(sin);
  ::getsockname(hole, reinterpret_cast<sockaddr*>(&sin), &len);
  resolver r(options_for(socket_address(reinterpret_cast<sockaddr*>(&sin), len)));
  auto pending = r.resolve_name("a.reef.test");
  co_await sleep(10ms);  // the query is out, its socket watched
  co_await r.close();
  try {
    co_await std::move(pending);
    ADD_FAILURE() << "a lookup outlived close()";
  } catch (const timeout_error&) {
    ADD_FAILURE() << "closing is not a timeout";
  } catch (const dns_error& e) {
    EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos) << e.what();
  }
  try {
    co_await r.resolve_name("a.reef.test");
    ADD_FAILURE() << "a lookup after close()";
  } catch (const dns_error& e) {
    EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos) << e.what();
  }
  ::close(hole);
}

REEF_TEST(dns, garbage_names_fail_clearly_and_nothing_else_is_lost) {
  if (!co_await setup()) co_return;
  resolver r(options_for(server->address()));
  auto good = r.resolve_name("a.reef.test");
  const std::string nul("bad\0name", 8);
  for (const std::string& bad : {std::string(""), std::string("a..reef.test"), std::string(".a"),
                                 std::string(300, 'x'), nul, std::string(64, 'y') + ".test"}) {
    try {
      co_await r.resolve_name(bad);
      ADD_FAILURE() << "looked up a bad name";
    } catch (const dns_error& e) {
      EXPECT_EQ(e.status(), ARES_EBADNAME) << e.what();
      EXPECT_NE(std::string(e.what()).find("bad host name"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(co_await std::move(good), inet_address::parse("127.0.0.5")) << "a good lookup beside them";
  co_await r.close();
}

REEF_TEST(dns, many_lookups_at_once) {
  if (!co_await setup()) co_return;
  resolver r(options_for(server->address()));
  std::vector<future<inet_address>> all;
  for (int i = 0; i < 64; ++i) all.push_back(r.resolve_name(i % 2 ? "a.reef.test" : "b.reef.test", inet_address::family::ipv4));
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(co_await std::move(all[i]), inet_address::parse(i % 2 ? "127.0.0.5" : "127.0.0.7"));
  }
  co_await r.close();
}

REEF_TEST(dns, numeric_names_and_the_hosts_file_need_no_server) {
  resolver_options o;
  o.servers = {socket_address::parse("127.0.0.1:9")};  // never asked
  o.use_hosts_file = true;
  resolver r(o);
  EXPECT_EQ(co_await r.resolve_name("127.0.0.9"), inet_address::parse("127.0.0.9"));
  EXPECT_TRUE((co_await r.resolve_name("localhost")).is_loopback());
  co_await r.close();
}

REEF_TEST(dns, the_shard_resolver_uses_the_default_options) {
  if (!co_await setup()) co_return;
  set_default_options(options_for(server->address()));
  EXPECT_EQ(co_await dns::resolve_name("a.reef.test"), inet_address::parse("127.0.0.5"));
  host h = co_await dns::get_host_by_addr(inet_address::parse("127.0.0.7"));
  EXPECT_EQ(h.name, "b.reef.test");
}

TEST(dns_flags, server_lists_parse_and_garbage_is_named) {
  auto s = parse_server_list("127.0.0.1:5353,[::1]:53,10.0.0.1,::2");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0], socket_address::parse("127.0.0.1:5353"));
  EXPECT_EQ(s[1], socket_address::parse("[::1]:53"));
  EXPECT_EQ(s[2], socket_address::parse("10.0.0.1:53"));
  EXPECT_EQ(s[3], socket_address::parse("[::2]:53"));
  EXPECT_TRUE(parse_server_list("").empty());
  for (const char* bad : {"host.example", "1.2.3.4:99999", "1.2.3.4,,5.6.7.8", "[::1]", "1.2.3.4:"}) {
    try {
      parse_server_list(bad);
      ADD_FAILURE() << "parsed '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("DNS server"), std::string::npos) << e.what();
    }
  }
  const char* argv[] = {"test", "--dns-server=nonsense"};
  command_line cl = parse_command_line(2, argv);
  EXPECT_NE(cl.error.find("dns"), std::string::npos) << cl.error;
  EXPECT_NE(cl.error.find("nonsense"), std::string::npos) << cl.error;
}

class dns_environment : public ::testing::Environment {
 public:
  void SetUp() override { server = new dns_server; }
  void TearDown() override {
    delete server;
    server = nullptr;
  }
};

const auto* environment = ::testing::AddGlobalTestEnvironment(new dns_environment);

}  // namespace
}  // namespace reef::dns
