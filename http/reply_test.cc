// The reply builder, reason phrases and the Date field's text.
#include "http/reply.h"

#include <gtest/gtest.h>
#include <time.h>

#include <cstdlib>
#include <ctime>
#include <string>

namespace reef::http {
namespace {

TEST(reply, setters_chain_and_of_gives_a_text_body) {
  reply r = reply().set_status(201).set_header("Location", "/x").write_body("text/plain", "made\n");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.headers.get_or("location", ""), "/x");
  EXPECT_EQ(r.headers.get_or("content-type", ""), "text/plain");
  EXPECT_EQ(r.content, "made\n");
  reply missing = reply::of(404);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.content, "404 Not Found\n");
}

TEST(reply, reason_phrases_and_unknown_codes) {
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(505), "HTTP Version Not Supported");
  EXPECT_EQ(reason_phrase(299), "Unknown");
  EXPECT_EQ(reason_phrase(-1), "Unknown");
}

TEST(reply, http_date_is_the_current_time_in_imf_fixdate) {
  std::string date(http_date());
  ASSERT_EQ(date.size(), 29u) << date;  // "Sun, 06 Nov 1994 08:49:37 GMT"
  std::tm tm{};
  const char* end = ::strptime(date.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  ASSERT_NE(end, nullptr) << date;
  EXPECT_EQ(*end, '\0');
  const std::time_t parsed = ::timegm(&tm);
  const std::time_t now = std::time(nullptr);
  EXPECT_LE(std::labs(static_cast<long>(now - parsed)), 2L) << date;
}

}  // namespace
}  // namespace reef::http
