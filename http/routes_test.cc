// Routes: exact paths, parameters, the rest-of-path wildcard, 404/405,
// HEAD, handler failures, and bad patterns.
#include "http/routes.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "core/coroutine.h"
#include "core/testing/test.h"

namespace reef::http {
namespace {

request make(std::string method, std::string path) {
  request r;
  r.method = std::move(method);
  r.path = std::move(path);
  return r;
}

routes sample() {
  routes r;
  r.add("GET", "/", [](request&) { return reply().write_body("text/plain", "root"); });
  r.add("GET", "/hello", [](request&) { return reply().write_body("text/plain", "hello"); });
  r.add("POST", "/hello", [](request&) { return reply(201); });
  r.add("GET", "/user/{id}", [](request& req) -> future<reply> {
    co_return reply().write_body("text/plain", "user " + std::string(req.param("id")));
  });
  r.add("GET", "/user/{id}/post/{post}", [](request& req) {
    return reply().write_body("text/plain", std::string(req.param("id")) + "/" + std::string(req.param("post")));
  });
  r.add("GET", "/static/{path*}", [](request& req) {
    return reply().write_body("text/plain", "file [" + std::string(req.param("path")) + "]");
  });
  r.add("GET", "/throws", [](request&) -> reply { throw std::runtime_error("boom"); });
  r.add("GET", "/fails", [](request&) -> future<reply> {
    return make_exception_future<reply>(std::runtime_error("late boom"));
  });
  return r;
}

future<reply> handle(routes& r, std::string method, std::string path) {
  request req = make(std::move(method), std::move(path));
  co_return co_await r.handle(req);
}

REEF_TEST(routes, exact_paths_and_methods) {
  routes r = sample();
  EXPECT_EQ((co_await handle(r, "GET", "/")).content, "root");
  EXPECT_EQ((co_await handle(r, "GET", "/hello")).content, "hello");
  EXPECT_EQ((co_await handle(r, "POST", "/hello")).status, 201);
}

REEF_TEST(routes, parameters_and_the_rest_of_the_path) {
  routes r = sample();
  EXPECT_EQ((co_await handle(r, "GET", "/user/42")).content, "user 42");
  EXPECT_EQ((co_await handle(r, "GET", "/user/a b")).content, "user a b");
  EXPECT_EQ((co_await handle(r, "GET", "/user/7/post/9")).content, "7/9");
  EXPECT_EQ((co_await handle(r, "GET", "/static/css/site.css")).content, "file [css/site.css]");
  EXPECT_EQ((co_await handle(r, "GET", "/static/")).content, "file []");
  // A parameter matches one non-empty segment.
  EXPECT_EQ((co_await handle(r, "GET", "/user/")).status, 404);
  EXPECT_EQ((co_await handle(r, "GET", "/user/1/2")).status, 404);
  EXPECT_EQ((co_await handle(r, "GET", "/static")).status, 404);
}

REEF_TEST(routes, unknown_paths_are_404_and_other_methods_405_with_allow) {
  routes r = sample();
  reply missing = co_await handle(r, "GET", "/nope");
  EXPECT_EQ(missing.status, 404);
  reply wrong = co_await handle(r, "DELETE", "/hello");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers.get("allow"), "GET, HEAD, POST");
  reply wrong_param = co_await handle(r, "PUT", "/user/3");
  EXPECT_EQ(wrong_param.status, 405);
  EXPECT_EQ(wrong_param.headers.get("allow"), "GET, HEAD");
}

REEF_TEST(routes, head_is_answered_by_get) {
  routes r = sample();
  reply h = co_await handle(r, "HEAD", "/hello");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.content, "hello") << "the server drops the body; the length stays";
}

REEF_TEST(routes, a_failing_handler_is_500_and_the_routes_stay_usable) {
  routes r = sample();
  EXPECT_EQ((co_await handle(r, "GET", "/throws")).status, 500);
  EXPECT_EQ((co_await handle(r, "GET", "/fails")).status, 500);
  EXPECT_EQ((co_await handle(r, "GET", "/hello")).status, 200);
}

// A handler may fill in the reply it is given; one that throws half-way
// leaves nothing of what it set in the 500.
REEF_TEST(routes, a_handler_may_fill_in_the_reply_it_is_given) {
  routes r;
  r.add("GET", "/fill/{n}", [](request& req, reply& rep) {
    EXPECT_EQ(rep.status, 200);
    EXPECT_TRUE(rep.headers.empty());
    EXPECT_TRUE(rep.content.empty());
    rep.set_status(202).set_header("X-N", std::string(req.param("n")));
    rep.write_body("text/plain", "n=" + std::string(req.param("n")));
  });
  r.add("GET", "/half", [](request&, reply& rep) {
    rep.set_header("X-Half", "set");
    rep.write_body("text/plain", "half");
    throw std::runtime_error("boom");
  });
  reply filled = co_await handle(r, "GET", "/fill/7");
  EXPECT_EQ(filled.status, 202);
  EXPECT_EQ(filled.headers.get_or("x-n", ""), "7");
  EXPECT_EQ(filled.headers.get_or("content-type", ""), "text/plain");
  EXPECT_EQ(filled.content, "n=7");
  reply failed = co_await handle(r, "GET", "/half");
  EXPECT_EQ(failed.status, 500);
  EXPECT_FALSE(failed.headers.contains("x-half"));
  EXPECT_EQ(failed.content, "500 Internal Server Error\n");
}

TEST(routes, bad_patterns_and_duplicates_are_refused) {
  routes r;
  r.add("GET", "/a", [](request&) { return reply(); });
  for (auto [method, pattern] : std::initializer_list<std::pair<const char*, const char*>>{
           {"GET", "/a"},             // already there
           {"GET", "a"},              // no leading slash
           {"GET", ""},               //
           {"", "/b"},                // no method
           {"G ET", "/b"},            //
           {"GET", "/b/{}"},          // empty name
           {"GET", "/b/{x*}/c"},      // rest not last
           {"GET", "/b/x{y}"},        // braces inside a segment
           {"GET", "/b/{x{y}}"},      //
       }) {
    try {
      r.add(method, pattern, [](request&) { return reply(); });
      ADD_FAILURE() << "accepted " << method << " " << pattern;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("route"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace reef::http
