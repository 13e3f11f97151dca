// Reply heads: what goes on the wire, and the last head's memory (a head
// the same as the last is copied whole; anything that differs is written
// anew, also after a head that ran out of memory half-way).
#include "http/reply_head.h"

#include <gtest/gtest.h>

#include <new>
#include <optional>
#include <string>

#include "core/testing/alloc_counter.h"
#include "http/reply.h"

namespace reef::http {
namespace {

constexpr std::string_view date1 = "Mon, 30 Nov 2026 12:00:00 GMT";
constexpr std::string_view date2 = "Mon, 30 Nov 2026 12:00:01 GMT";

header_list text_plain() {
  header_list h;
  h.add("Content-Type", "text/plain");
  return h;
}

struct head {
  int status = 200;
  std::string_view date = date1;
  header_list fields = text_plain();
  std::optional<std::size_t> length = 14;
  bool chunked = false;
  connection_line connection = connection_line::none;
};

std::string write(reply_head_writer& w, const head& h) {
  std::string out;
  w.append(out, h.status, h.date, h.fields, h.length, h.chunked, h.connection);
  return out;
}

std::string expected(const head& h) {
  std::string s = "HTTP/1.1 " + std::to_string(h.status) + " " + std::string(reason_phrase(h.status)) +
                  "\r\nDate: " + std::string(h.date) + "\r\nServer: Reef\r\n";
  for (const auto& [name, value] : h.fields) s += name + ": " + value + "\r\n";
  if (h.chunked) {
    s += "Transfer-Encoding: chunked\r\n";
  } else if (h.length && !bodiless_status(h.status)) {
    s += "Content-Length: " + std::to_string(*h.length) + "\r\n";
  }
  if (h.connection == connection_line::close) s += "Connection: close\r\n";
  if (h.connection == connection_line::keep_alive) s += "Connection: keep-alive\r\n";
  return s + "\r\n";
}

TEST(reply_head, writes_the_status_line_date_server_fields_and_framing) {
  reply_head_writer w("Reef");
  std::string out = "before|";
  w.append(out, 200, date1, text_plain(), 14, false, connection_line::none);
  EXPECT_EQ(out, "before|HTTP/1.1 200 OK\r\nDate: Mon, 30 Nov 2026 12:00:00 GMT\r\nServer: Reef\r\n"
                 "Content-Type: text/plain\r\nContent-Length: 14\r\n\r\n");
}

TEST(reply_head, each_change_to_a_head_shows_and_repeats_are_the_same) {
  reply_head_writer w("Reef");
  std::vector<head> heads(12);
  heads[2].status = 404;
  heads[3].status = 404;
  heads[4].date = date2;
  heads[5].fields.add("X-Id", "1");
  heads[6].fields.add("X-Id", "2");
  heads[7].length = 15;
  heads[8].length = std::nullopt;
  heads[9].chunked = true;
  heads[10].connection = connection_line::close;
  heads[11].connection = connection_line::keep_alive;
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < heads.size(); ++i) {
      EXPECT_EQ(write(w, heads[i]), expected(heads[i])) << "head " << i << ", round " << round;
      EXPECT_EQ(write(w, heads[i]), expected(heads[i])) << "head " << i << " again, round " << round;
    }
  }
}

TEST(reply_head, framing_fields_and_line_breaks_are_left_out) {
  reply_head_writer w("Reef");
  header_list fields = text_plain();
  fields.add("content-length", "99");
  fields.add("Transfer-Encoding", "gzip");
  fields.add("CONNECTION", "upgrade");
  fields.add("X-Bad", "a\r\nSet-Cookie: x=1");
  fields.add("X-Bad\n", "a");
  std::string out;
  w.append(out, 200, date1, fields, 3, false, connection_line::none);
  head h;
  h.length = 3;
  EXPECT_EQ(out, expected(h));
  h.status = 304;  // never a body: no Content-Length
  EXPECT_EQ(write(w, h), "HTTP/1.1 304 Not Modified\r\nDate: Mon, 30 Nov 2026 12:00:00 GMT\r\nServer: Reef\r\n"
                         "Content-Type: text/plain\r\n\r\n");
}

// Runs `f` with every allocation failing; whether it threw bad_alloc.
template <typename F>
bool out_of_memory(F f) {
  bool threw = false;
  {
    testing::allocation_failure_scope no_memory;
    try {
      f();
    } catch (const std::bad_alloc&) {
      threw = true;
    }
  }
  return threw;
}

TEST(reply_head, a_head_that_ran_out_of_memory_is_not_remembered) {
  reply_head_writer w("Reef");
  head ok;
  head missing;
  missing.status = 404;
  // The first head fails while its status line is built.
  ASSERT_TRUE(out_of_memory([&] { write(w, ok); }));
  EXPECT_EQ(write(w, ok), expected(ok));
  // A head with a new status line fails after the line was built (the
  // head's own string has no room).
  ASSERT_TRUE(out_of_memory([&] { write(w, missing); }));
  EXPECT_EQ(write(w, missing), expected(missing));
  EXPECT_EQ(write(w, ok), expected(ok));
  // The same, for one that differs in a field only.
  head other = ok;
  other.fields.add("X-Id", "7");
  ASSERT_TRUE(out_of_memory([&] { write(w, other); }));
  EXPECT_EQ(write(w, other), expected(other));
  EXPECT_EQ(write(w, ok), expected(ok));
}

TEST(reply_head, a_trimmed_writer_still_writes_the_same_heads) {
  reply_head_writer w("Reef");
  head big;
  big.fields.add("X-Big", std::string(2 * reply_head_writer::kept_max, 'b'));
  EXPECT_EQ(write(w, big), expected(big));
  w.trim();
  EXPECT_EQ(write(w, big), expected(big));
  head ok;
  EXPECT_EQ(write(w, ok), expected(ok));
  w.trim();
  EXPECT_EQ(write(w, ok), expected(ok));
}

}  // namespace
}  // namespace reef::http
