// Addresses: parsing, printing, comparing, hashing, and garbage.
#include "net/api.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <string>
#include <unordered_set>

namespace reef {
namespace {

// A server_socket that does not listen (never did, or was moved from)
// fails accept() as a closed one does, rather than crashing: an accept
// loop that outlives its socket ends.
TEST(server_socket, one_that_does_not_listen_fails_accept) {
  server_socket none;
  EXPECT_FALSE(none);
  none.abort_accept();
  future<accept_result> f = none.accept();
  ASSERT_TRUE(f.failed());
  try {
    f.get();
    ADD_FAILURE() << "accept() on an empty server_socket succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNABORTED) << e.what();
  }
  EXPECT_NO_THROW(none.close().get());
}

TEST(inet_address, parses_and_prints_ipv4_and_ipv6) {
  EXPECT_EQ(inet_address::parse("127.0.0.1").to_string(), "127.0.0.1");
  EXPECT_TRUE(inet_address::parse("127.0.0.1").is_ipv4());
  EXPECT_TRUE(inet_address::parse("127.1.2.3").is_loopback());
  EXPECT_EQ(inet_address::parse("::1").to_string(), "::1");
  EXPECT_FALSE(inet_address::parse("::1").is_ipv4());
  EXPECT_TRUE(inet_address::parse("::1").is_loopback());
  EXPECT_EQ(inet_address::parse("FE80:0:0::1").to_string(), "fe80::1");
  EXPECT_TRUE(inet_address::parse("0.0.0.0").is_any());
  EXPECT_TRUE(inet_address::parse("::").is_any());
  EXPECT_TRUE(inet_address().is_any());
  EXPECT_FALSE(inet_address::parse("10.0.0.1").is_loopback());
}

TEST(inet_address, refuses_garbage_naming_the_text) {
  for (const char* bad : {"", "1.2.3", "1.2.3.256", "localhost", "::g", "1.2.3.4 ", "1:2:3:4:5:6:7:8:9",
                          "\xff\xfe", "127.0.0.1:80"}) {
    try {
      inet_address::parse(bad);
      ADD_FAILURE() << "parsed '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST(inet_address, compares_and_hashes) {
  auto a = inet_address::parse("10.0.0.1");
  auto b = inet_address::parse("10.0.0.2");
  auto c = inet_address::parse("::1");
  EXPECT_EQ(a, inet_address::parse("10.0.0.1"));
  EXPECT_FALSE(a == b);
  EXPECT_TRUE(a < b);
  EXPECT_FALSE(b < a);
  EXPECT_TRUE(a < c) << "IPv4 sorts before IPv6";
  EXPECT_FALSE(inet_address::parse("0.0.0.1") == inet_address::parse("::1"));
  std::unordered_set<inet_address> set{a, b, c, inet_address::parse("10.0.0.1")};
  EXPECT_EQ(set.size(), 3u);
  EXPECT_EQ(std::hash<inet_address>()(a), std::hash<inet_address>()(inet_address::parse("10.0.0.1")));
}

TEST(socket_address, parses_and_prints) {
  auto a = socket_address::parse("127.0.0.1:10000");
  EXPECT_EQ(a.port(), 10000);
  EXPECT_EQ(a.address(), inet_address::parse("127.0.0.1"));
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_EQ(a.length(), sizeof(sockaddr_in));
  EXPECT_EQ(a.to_string(), "127.0.0.1:10000");
  auto b = socket_address::parse("[::1]:80");
  EXPECT_EQ(b.port(), 80);
  EXPECT_EQ(b.family(), AF_INET6);
  EXPECT_EQ(b.to_string(), "[::1]:80");
  EXPECT_EQ(socket_address::parse("0.0.0.0:0").port(), 0);
  EXPECT_EQ(socket_address::parse("1.2.3.4:65535").port(), 65535);
  EXPECT_EQ(socket_address().to_string(), "0.0.0.0:0");
}

TEST(socket_address, round_trips_through_a_kernel_address) {
  auto a = socket_address::parse("[fe80::2]:443");
  socket_address copy(a.as_sockaddr(), a.length());
  EXPECT_EQ(copy, a);
  EXPECT_EQ(copy.to_string(), "[fe80::2]:443");
}

TEST(socket_address, refuses_garbage_naming_the_text) {
  for (const char* bad : {"", ":", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536",
                          "127.0.0.1:123456", "127.0.0.1:-1", "::1:80", "[::1]", "[::1]80", "[::1:80",
                          "host:80", "[127.0.0.1:80", "1.2.3.4:8 0", "\x01\x02:1"}) {
    try {
      socket_address::parse(bad);
      ADD_FAILURE() << "parsed '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos) << e.what();
    }
  }
}

TEST(socket_address, compares_and_hashes) {
  auto a = socket_address::parse("10.0.0.1:1");
  auto b = socket_address::parse("10.0.0.1:2");
  EXPECT_FALSE(a == b);
  EXPECT_EQ(a, socket_address(inet_address::parse("10.0.0.1"), 1));
  std::unordered_set<socket_address> set{a, b, socket_address::parse("10.0.0.1:1")};
  EXPECT_EQ(set.size(), 2u);
}

}  // namespace
}  // namespace reef
