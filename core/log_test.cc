#include "core/log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace reef {
namespace {

struct captured_lines {
  captured_lines() {
    // Sinks are called from any thread at once: this one locks.
    set_log_sink([this](std::string_view line) {
      std::lock_guard lock(mutex);
      lines.emplace_back(line);
    });
  }
  ~captured_lines() { set_log_sink(nullptr); }
  std::mutex mutex;
  std::vector<std::string> lines;
};

TEST(log, lines_use_the_checked_format) {
  captured_lines captured;
  logger l("format_test");
  l.info("{:#x} {:.1f} {:>3}", 255, 2.25, "a");
  ASSERT_EQ(captured.lines.size(), 1u);
  EXPECT_NE(captured.lines[0].find("format_test - 0xff 2.2   a\n"), std::string::npos) << captured.lines[0];
}

TEST(log, line_carries_level_thread_and_name) {
  captured_lines out;
  logger l("log_test_a");
  l.info("hello {}", 42);
  ASSERT_EQ(out.lines.size(), 1u);
  const std::string& line = out.lines[0];
  EXPECT_NE(line.find("INFO"), std::string::npos) << line;
  EXPECT_NE(line.find("[main] log_test_a - hello 42\n"), std::string::npos) << line;
  core_internal::log_shard_id = 3;
  l.warn("x");
  core_internal::log_shard_id = -1;
  ASSERT_EQ(out.lines.size(), 2u);
  EXPECT_NE(out.lines[1].find("WARN  [shard 3]"), std::string::npos) << out.lines[1];
}

TEST(log, levels_filter_and_can_be_set_by_name) {
  captured_lines out;
  logger l("log_test_b");
  l.debug("hidden");
  EXPECT_TRUE(out.lines.empty());
  EXPECT_TRUE(set_logger_level("log_test_b", log_level::debug));
  l.debug("shown");
  EXPECT_EQ(out.lines.size(), 1u);
  EXPECT_FALSE(set_logger_level("no_such_logger", log_level::debug));
}

TEST(log, parse_log_level_rejects_garbage) {
  EXPECT_EQ(parse_log_level("trace"), log_level::trace);
  EXPECT_EQ(parse_log_level("warn"), log_level::warn);
  EXPECT_EQ(parse_log_level(""), std::nullopt);
  EXPECT_EQ(parse_log_level("WARN"), std::nullopt);
  EXPECT_EQ(parse_log_level("warning\n"), std::nullopt);
}

TEST(log, logger_names_lists_live_loggers) {
  auto before = logger_names();
  {
    logger l("log_test_c");
    auto names = logger_names();
    EXPECT_NE(std::find(names.begin(), names.end(), "log_test_c"), names.end());
  }
  auto after = logger_names();
  EXPECT_EQ(std::find(after.begin(), after.end(), "log_test_c"), after.end());
}

TEST(log, a_sink_may_log_itself) {
  logger inner("log_test_inner");
  std::vector<std::string> lines;
  set_log_sink([&](std::string_view line) {
    lines.emplace_back(line);
    if (lines.size() == 1) inner.info("logged from the sink");
  });
  logger outer("log_test_outer");
  outer.info("first");
  set_log_sink(nullptr);
  ASSERT_EQ(lines.size(), 2u) << "no deadlock, and the sink's own line arrived";
  EXPECT_NE(lines[1].find("logged from the sink"), std::string::npos);
}

TEST(log, lines_from_many_threads_stay_whole) {
  captured_lines out;
  logger l("log_test_threads");
  constexpr int threads = 4;
  constexpr int lines_each = 200;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&l, t] {
      for (int i = 0; i < lines_each; ++i) l.info("thread {} line {} end", t, i);
    });
  }
  for (auto& w : workers) w.join();
  ASSERT_EQ(out.lines.size(), static_cast<std::size_t>(threads * lines_each));
  for (const auto& line : out.lines) {
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
    EXPECT_NE(line.find(" end\n"), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace reef
