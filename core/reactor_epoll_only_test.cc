// A program that links the reactor without //core:io_uring_backend (nor
// liburing) has the epoll backend only, and says so when io_uring is asked
// for.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/log.h"
#include "core/reactor.h"

namespace reef {
namespace {

TEST(reactor, without_the_io_uring_library_it_runs_on_epoll_and_says_why) {
  std::vector<std::string> lines;
  set_log_sink([&](std::string_view line) { lines.emplace_back(line); });
  {
    reactor r(reactor_options{.backend = reactor_backend::io_uring, .stop_on_sigint_sigterm = false});
    EXPECT_EQ(std::string(r.io().name()), "epoll");
    EXPECT_EQ(r.options().backend, reactor_backend::epoll);
  }
  set_log_sink(nullptr);
  bool said = false;
  for (const auto& l : lines) said |= l.find("//core:io_uring_backend") != std::string::npos;
  EXPECT_TRUE(said) << "no line names the missing library";
}

}  // namespace
}  // namespace reef
