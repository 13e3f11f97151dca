#include "apps/memcached/protocol.h"

#include <gtest/gtest.h>

#include <string>

namespace reef::memcached {
namespace {

request parse(std::string_view line) {
  request r;
  parse_request_line(line, r);
  return r;
}

TEST(protocol, storage_commands_take_their_fields) {
  request r = parse("set k 5 100 3");
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.kind, command::set);
  EXPECT_EQ(r.key(), "k");
  EXPECT_EQ(r.flags, 5u);
  EXPECT_EQ(r.exptime, 100);
  EXPECT_EQ(r.bytes, 3u);
  EXPECT_TRUE(r.has_data);
  EXPECT_FALSE(r.noreply);

  r = parse("cas k 0 0 1 77 noreply");
  EXPECT_EQ(r.kind, command::cas);
  EXPECT_EQ(r.cas_unique, 77u);
  EXPECT_TRUE(r.noreply);

  // A sixth token that is not "noreply" is ignored, as memcached does.
  r = parse("append k 0 0 1 garbage");
  EXPECT_EQ(r.kind, command::append);
  EXPECT_FALSE(r.noreply);

  // Runs of spaces count as one; a leading one is allowed.
  r = parse("  add   k  1 2  3");
  EXPECT_EQ(r.kind, command::add);
  EXPECT_EQ(r.bytes, 3u);
}

TEST(protocol, numbers_follow_memcacheds_truncations) {
  // Flags are read as 64 bits and kept as 32; exptime and length as 32.
  EXPECT_EQ(parse("set a 4294967296 0 1").flags, 0u);
  EXPECT_EQ(parse("set a 4294967295 0 1").flags, 4294967295u);
  EXPECT_EQ(parse("set a 0 4294967297 1").exptime, 1);
  EXPECT_EQ(parse("set a 0 2147483648 1").exptime, INT32_MIN);
  EXPECT_EQ(parse("set a +5 0 1").flags, 5u);
  EXPECT_EQ(parse("set a -0 0 1").flags, 0u);
}

TEST(protocol, retrieval_takes_every_key) {
  request r = parse("get a b c");
  ASSERT_EQ(r.keys.size(), 3u);
  EXPECT_EQ(r.keys[2], "c");
  // More keys than memcached's token array holds.
  std::string line = "gets";
  for (int i = 0; i < 100; ++i) line += " k" + std::to_string(i);
  r = parse(line);
  ASSERT_EQ(r.keys.size(), 100u);
  EXPECT_EQ(r.keys[99], "k99");
  r = parse("gat 10 a b");
  EXPECT_EQ(r.kind, command::gat);
  EXPECT_EQ(r.exptime, 10);
  EXPECT_EQ(r.keys.size(), 2u);
  // gat with no key is a get of nothing (END), as memcached answers.
  EXPECT_EQ(parse("gat 10").kind, command::gat);
}

// Garbage in: memcached's words out, and whether the data that follows is
// read as lines, skipped, or the connection closed.
TEST(protocol, bad_lines_get_memcacheds_errors) {
  const std::string long_key(251, 'k');
  struct bad {
    std::string line;
    std::string error;
  };
  const bad cases[] = {
      {"", "ERROR"},
      {"foo", "ERROR"},
      {"GET a", "ERROR"},
      {"get", "ERROR"},
      {"set a 0 0", "ERROR"},
      {"set a 0 0 1 noreply extra", "ERROR"},
      {"set a 0 0 -1", "CLIENT_ERROR bad command line format"},
      {"set a 0 0 2147483647", "CLIENT_ERROR bad command line format"},
      {"set a abc 0 1", "CLIENT_ERROR bad command line format"},
      {"set a -1 0 1", "CLIENT_ERROR bad command line format"},
      {"set a 18446744073709551616 0 1", "CLIENT_ERROR bad command line format"},
      {"set a 0 0 1x", "CLIENT_ERROR bad command line format"},
      {"set " + long_key + " 0 0 1", "CLIENT_ERROR bad command line format"},
      {"get a " + long_key, "CLIENT_ERROR bad command line format"},
      {"cas a 0 0 1", "ERROR"},
      {"cas a 0 0 1 x", "CLIENT_ERROR bad command line format"},
      {"incr a", "ERROR"},
      {"incr a -1", "CLIENT_ERROR invalid numeric delta argument"},
      {"incr a abc", "CLIENT_ERROR invalid numeric delta argument"},
      {"incr a 1 2 3", "ERROR"},
      {"delete a 5", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"},
      {"touch a", "ERROR"},
      {"touch a abc", "CLIENT_ERROR invalid exptime argument"},
      {"gat abc a", "CLIENT_ERROR invalid exptime argument"},
      {"flush_all abc", "CLIENT_ERROR invalid exptime argument"},
      {"flush_all 1 2 3", "ERROR"},
      {"verbosity", "ERROR"},
      {"verbosity abc", "CLIENT_ERROR bad command line format"},
      {"stats a b", "ERROR"},
      {"shutdown", "ERROR: shutdown not enabled"},
      {"mg", "ERROR"},
      {"mg a v v", "CLIENT_ERROR duplicate flag"},
      {"mg a zz", "CLIENT_ERROR invalid flag"},
      {"mg a 1", "CLIENT_ERROR invalid flag"},
      {"mg a T", "CLIENT_ERROR bad token in command line format"},
      {"mg a Tx", "CLIENT_ERROR bad token in command line format"},
      {"mg a O" + std::string(33, 'o'), "CLIENT_ERROR opaque token too long"},
      {"mg " + long_key + " v", "CLIENT_ERROR bad command line format"},
      {"mg !!! b v", "CLIENT_ERROR error decoding key"},
      {"ms a", "CLIENT_ERROR bad command line format"},
      {"ms a -1", "CLIENT_ERROR bad command line format"},
      {"ms a S2", "CLIENT_ERROR bad command line format"},
      {"ma a MX", "CLIENT_ERROR invalid mode for ma M token"},
      {"me", "CLIENT_ERROR bad command line format"},
  };
  for (const bad& b : cases) {
    request r = parse(b.line);
    EXPECT_EQ(r.error, b.error) << "line: " << b.line;
    EXPECT_EQ(r.kind, command::none) << "line: " << b.line;
    EXPECT_EQ(r.then, after_error::next_line) << "line: " << b.line;
  }
  // An ms whose line goes bad after its length: its data is skipped.
  request r = parse("ms a 1 MX");
  EXPECT_EQ(r.error, "CLIENT_ERROR invalid mode for ms M token");
  EXPECT_EQ(r.then, after_error::swallow);
  EXPECT_EQ(r.bytes, 1u);
  r = parse("ms a 1 c k b");
  EXPECT_EQ(r.error, "CLIENT_ERROR error decoding key");
  EXPECT_EQ(r.then, after_error::swallow);
}

TEST(protocol, delete_allows_a_zero_hold_and_noreply) {
  EXPECT_EQ(parse("delete a 0").kind, command::del);
  EXPECT_TRUE(parse("delete a noreply").noreply);
  request r = parse("delete a 0 noreply");
  EXPECT_EQ(r.kind, command::del);
  EXPECT_TRUE(r.noreply);
}

TEST(protocol, meta_flags_keep_their_tokens_and_order) {
  request r = parse("mg key v f t s c k O123 q N30 T-1");
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.kind, command::meta_get);
  EXPECT_EQ(r.key(), "key");
  EXPECT_EQ(std::string(r.meta.order, r.meta.order_count), "vftsckOqNT");
  EXPECT_EQ(r.meta.opaque, "123");
  EXPECT_EQ(r.meta.vivify_ttl, 30);
  EXPECT_EQ(r.meta.ttl, -1);
  EXPECT_TRUE(r.noreply);
  EXPECT_TRUE(r.meta.has('v'));
  EXPECT_FALSE(r.meta.has('h'));

  r = parse("ms key 5 F7 T60 C99 MA I");
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.kind, command::meta_set);
  EXPECT_EQ(r.bytes, 5u);
  EXPECT_EQ(r.meta.client_flags, 7u);
  EXPECT_EQ(r.meta.ttl, 60);
  EXPECT_EQ(r.meta.compare_cas, 99u);
  EXPECT_EQ(r.meta.mode, 'A');
  EXPECT_TRUE(r.meta.has('I'));

  r = parse("ma n D5 J3 N0 MD v");
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.meta.delta, 5u);
  EXPECT_EQ(r.meta.initial, 3u);
  EXPECT_EQ(r.meta.mode, 'D');

  r = parse("mg YWJj b k v");
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.key(), "abc");

  EXPECT_EQ(parse("mn").kind, command::meta_noop);
  EXPECT_EQ(parse("me k").kind, command::meta_debug);
}

TEST(protocol, request_lines_end_at_a_newline_with_or_without_cr) {
  frame f = find_request_line("get a\r\nget b\n");
  EXPECT_EQ(f.state, frame::status::line);
  EXPECT_EQ(f.line, "get a");
  EXPECT_EQ(f.line_bytes, 7u);
  f = find_request_line("get b\nrest");
  EXPECT_EQ(f.line, "get b");
  EXPECT_EQ(f.line_bytes, 6u);
  EXPECT_EQ(find_request_line("get a").state, frame::status::need_more);
  // A line that never ends: past 2048 bytes it closes, unless it is a
  // retrieval, which may carry many keys.
  EXPECT_EQ(find_request_line(std::string(3000, 'x')).state, frame::status::too_long);
  EXPECT_EQ(find_request_line("get " + std::string(3000, 'x')).state, frame::status::need_more);
  EXPECT_EQ(find_request_line("get " + std::string(get_line_max, 'x')).state, frame::status::too_long);
  EXPECT_TRUE(data_block_ends_well("abc\r\n"));
  EXPECT_FALSE(data_block_ends_well("abcd\r"));
  EXPECT_FALSE(data_block_ends_well("\n"));
}

TEST(protocol, numbers_as_memcached_reads_them) {
  std::uint64_t u = 0;
  EXPECT_TRUE(parse_u64("18446744073709551615", u));
  EXPECT_EQ(u, UINT64_MAX);
  EXPECT_FALSE(parse_u64("18446744073709551616", u));
  EXPECT_TRUE(parse_u64(" 12", u));
  EXPECT_EQ(u, 12u);
  EXPECT_TRUE(parse_u64("100 \r\n", u));
  EXPECT_FALSE(parse_u64("12a", u));
  EXPECT_FALSE(parse_u64("-1", u));
  EXPECT_FALSE(parse_u64("", u));
  EXPECT_FALSE(parse_u64(" ", u));
  std::int64_t i = 0;
  EXPECT_TRUE(parse_i64("-9223372036854775808", i));
  EXPECT_EQ(i, INT64_MIN);
  EXPECT_FALSE(parse_i64("9223372036854775808", i));
}

TEST(protocol, base64_round_trips_and_refuses_garbage) {
  std::string out;
  for (const std::string& text : {std::string(), std::string("a"), std::string("ab"), std::string("abc"), std::string("abcd"), std::string("\0\xff\x10", 3)}) {
    std::string encoded, decoded;
    base64_encode(text, encoded);
    ASSERT_TRUE(base64_decode(encoded, decoded)) << encoded;
    EXPECT_EQ(decoded, text);
  }
  EXPECT_FALSE(base64_decode("abc", out));
  EXPECT_FALSE(base64_decode("a===", out));
  EXPECT_FALSE(base64_decode("ab=c", out));
  EXPECT_FALSE(base64_decode("a!bc", out));
}

}  // namespace
}  // namespace reef::memcached
