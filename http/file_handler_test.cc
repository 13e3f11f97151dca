// The static-file handler's pieces: ranges, content types, HTTP dates. The
// handler itself is tested end to end against httpd (httpd_test.sh).
#include "http/file_handler.h"

#include <gtest/gtest.h>

namespace reef::http {
namespace {

TEST(parse_range, single_ranges_of_every_form) {
  byte_range r;
  ASSERT_EQ(parse_range("bytes=0-9", 100, r), range_outcome::partial);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 9u);
  ASSERT_EQ(parse_range("bytes=90-", 100, r), range_outcome::partial);
  EXPECT_EQ(r.first, 90u);
  EXPECT_EQ(r.last, 99u);
  ASSERT_EQ(parse_range("bytes=-10", 100, r), range_outcome::partial);
  EXPECT_EQ(r.first, 90u);
  EXPECT_EQ(r.last, 99u);
  ASSERT_EQ(parse_range("bytes=-500", 100, r), range_outcome::partial) << "more than there is: all of it";
  EXPECT_EQ(r.first, 0u);
  ASSERT_EQ(parse_range("bytes=50-5000", 100, r), range_outcome::partial) << "the end is clamped";
  EXPECT_EQ(r.last, 99u);
  ASSERT_EQ(parse_range(" bytes= 3 - 4 ", 100, r), range_outcome::partial);
  EXPECT_EQ(r.first, 3u);
  EXPECT_EQ(r.last, 4u);
}

TEST(parse_range, past_the_end_is_unsatisfiable_and_garbage_is_ignored) {
  byte_range r;
  EXPECT_EQ(parse_range("bytes=100-", 100, r), range_outcome::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=200-300", 100, r), range_outcome::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=-0", 100, r), range_outcome::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=0-0", 0, r), range_outcome::unsatisfiable) << "an empty file has no bytes";
  for (const char* ignored : {"", "bytes", "bytes=", "bytes=-", "bytes=5-2", "bytes=a-b", "bytes=1-2,4-5",
                              "items=0-1", "bytes=99999999999999999999999-", "bytes=0x10-", "bytes=1-2-3"}) {
    EXPECT_EQ(parse_range(ignored, 100, r), range_outcome::whole) << ignored;
  }
}

TEST(content_type_for, known_extensions_and_the_rest) {
  EXPECT_EQ(content_type_for("/srv/www/index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("a/b/PHOTO.JPG"), "image/jpeg");
  EXPECT_EQ(content_type_for("data.json"), "application/json");
  EXPECT_EQ(content_type_for("archive.tar.gz"), "application/gzip");
  EXPECT_EQ(content_type_for("README"), "application/octet-stream");
  EXPECT_EQ(content_type_for("dir.d/file"), "application/octet-stream") << "a dot in a directory is no extension";
  EXPECT_EQ(content_type_for("file."), "application/octet-stream");
}

TEST(http_date, formats_imf_fixdate_and_parses_the_three_forms) {
  EXPECT_EQ(format_http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777) << "RFC 850, obsolete but accepted";
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), 784111777) << "asctime, obsolete but accepted";
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMX"), std::nullopt);
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT trailing"), std::nullopt);
  EXPECT_EQ(parse_http_date("yesterday"), std::nullopt);
  EXPECT_EQ(parse_http_date(""), std::nullopt);
  EXPECT_EQ(parse_http_date(std::string(29, '\0')), std::nullopt);
}

}  // namespace
}  // namespace reef::http
