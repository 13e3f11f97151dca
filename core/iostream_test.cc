// temporary_buffer and the streams, over an in-memory source and sink.
#include "core/iostream.h"

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <memory>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/log.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef {
namespace {

// Hands out the given pieces, one per get(), then end of stream.
class pieces_source final : public data_source_impl<char> {
 public:
  explicit pieces_source(std::vector<std::string> pieces) : _pieces(pieces.begin(), pieces.end()) {}
  future<temporary_buffer<char>> get() override {
    if (_pieces.empty()) return make_ready_future<temporary_buffer<char>>();
    auto b = temporary_buffer<char>::copy_of(_pieces.front());
    _pieces.pop_front();
    return make_ready_future<temporary_buffer<char>>(std::move(b));
  }

 private:
  std::deque<std::string> _pieces;
};

input_stream<char> stream_of(std::vector<std::string> pieces) {
  return input_stream<char>(data_source<char>(std::make_unique<pieces_source>(std::move(pieces))));
}

TEST(temporary_buffer, share_slice_and_trim_without_copying) {
  auto b = temporary_buffer<char>::copy_of("GET / HTTP/1.1");
  auto method = b.share(0, 3);
  EXPECT_EQ(method.view(), "GET");
  EXPECT_EQ(method.get(), b.get()) << "a shared slice is the same memory";
  b.trim_front(4);
  EXPECT_EQ(b.view(), "/ HTTP/1.1");
  auto path = std::move(b).prefix(1);
  EXPECT_EQ(path.view(), "/");
  auto copy = method.clone();
  EXPECT_NE(copy.get(), method.get());
  EXPECT_EQ(copy, method);
}

TEST(temporary_buffer, the_deleter_runs_when_the_last_view_goes) {
  int released = 0;
  {
    static char storage[8] = "abcdefg";
    temporary_buffer<char> a(storage, 7, make_deleter([&] { ++released; }));
    auto b = a.share(2, 3);
    { auto c = a.share(); }
    EXPECT_EQ(released, 0);
    a = temporary_buffer<char>();
    EXPECT_EQ(released, 0) << "b still views the memory";
    EXPECT_EQ(b.view(), "cde");
  }
  EXPECT_EQ(released, 1);
}

REEF_TEST(input_stream, read_up_to_never_copies_and_keeps_the_rest) {
  auto in = stream_of({"hello world"});
  auto a = co_await in.read_up_to(5);
  EXPECT_EQ(a.view(), "hello");
  auto b = co_await in.read_up_to(100);
  EXPECT_EQ(b.view(), " world");
  EXPECT_EQ(b.get(), a.get() + 5) << "the rest is the same memory";
  auto end = co_await in.read();
  EXPECT_TRUE(end.empty());
  EXPECT_TRUE(in.eof());
}

REEF_TEST(input_stream, read_exactly_joins_pieces_and_stops_at_end) {
  auto in = stream_of({"ab", "cde", "fghij"});
  EXPECT_EQ((co_await in.read_exactly(4)).view(), "abcd");
  EXPECT_EQ((co_await in.read_exactly(2)).view(), "ef");
  EXPECT_EQ((co_await in.read_exactly(10)).view(), "ghij") << "fewer only at end of stream";
  EXPECT_TRUE((co_await in.read_exactly(1)).empty());
}

REEF_TEST(input_stream, consume_can_stop_mid_buffer) {
  auto in = stream_of({"line one\nline", " two\nrest"});
  std::string first_line;
  co_await in.consume([&](temporary_buffer<char> b) -> future<consumption_result<char>> {
    auto v = b.view();
    auto nl = v.find('\n');
    if (nl == std::string_view::npos) {
      first_line += v;
      return make_ready_future<consumption_result<char>>(continue_consuming{});
    }
    first_line += v.substr(0, nl);
    b.trim_front(nl + 1);
    return make_ready_future<consumption_result<char>>(stop_consuming<char>{std::move(b)});
  });
  EXPECT_EQ(first_line, "line one");
  auto rest = co_await in.read();
  EXPECT_EQ(rest.view(), "line") << "what the consumer left comes back";
}

REEF_TEST(input_stream, consume_sees_the_end_once) {
  auto in = stream_of({"abc"});
  int calls = 0, empty_calls = 0;
  co_await in.consume([&](temporary_buffer<char> b) {
    ++calls;
    if (b.empty()) ++empty_calls;
    return make_ready_future<consumption_result<char>>(continue_consuming{});
  });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(empty_calls, 1);
}

REEF_TEST(input_stream, skip_across_pieces) {
  auto in = stream_of({"12", "345", "6789"});
  co_await in.skip(4);
  EXPECT_EQ((co_await in.read_exactly(3)).view(), "567");
  co_await in.skip(100);
  EXPECT_TRUE((co_await in.read()).empty());
}

// Records every put; a gathered put (several buffers) is one entry, its
// pieces joined with '|'. Each put resolves at once, or, with `hold`, when
// the test releases it.
struct recording_sink final : public data_sink_impl<char> {
  std::vector<std::string> puts;
  std::vector<const char*> addresses;
  std::deque<promise<>> held;
  bool hold = false;
  bool closed = false;
  std::exception_ptr fail_with;

  future<> put(temporary_buffer<char> b) override {
    puts.emplace_back(b.view());
    addresses.push_back(b.get());
    return outcome();
  }
  future<> put(std::vector<temporary_buffer<char>> bufs) override {
    std::string joined;
    for (auto& b : bufs) {
      if (!joined.empty()) joined += '|';
      joined += b.view();
      addresses.push_back(b.get());
    }
    puts.push_back(std::move(joined));
    return outcome();
  }
  future<> close() override {
    closed = true;
    return make_ready_future<>();
  }
  std::size_t buffer_size() const noexcept override { return 16; }

  future<> outcome() {
    if (fail_with) return make_exception_future<>(fail_with);
    if (!hold) return make_ready_future<>();
    held.emplace_back();
    return held.back().get_future();
  }
  void release_all() {
    while (!held.empty()) {
      held.front().set_value();
      held.pop_front();
    }
  }
};

// An output_stream over a recording_sink that the test keeps looking at.
struct recorded_output {
  recording_sink* sink = new recording_sink;
  output_stream<char> out;
  explicit recorded_output(output_stream_options options = {})
      : out(data_sink<char>(std::unique_ptr<recording_sink>(sink)), 0, options) {}
};

REEF_TEST(output_stream, small_writes_are_gathered_large_ones_pass) {
  recorded_output r;
  auto& puts = r.sink->puts;
  co_await r.out.write("abc");
  co_await r.out.write("def");
  EXPECT_TRUE(puts.empty()) << "gathered, not sent";
  EXPECT_EQ(r.out.bytes_put(), 0u);
  co_await r.out.flush();
  EXPECT_EQ(puts, (std::vector<std::string>{"abcdef"}));
  EXPECT_EQ(r.out.bytes_put(), 6u);
  co_await r.out.write(std::string(20, 'x'));  // larger than the buffer: straight on
  EXPECT_EQ(puts.size(), 2u);
  co_await r.out.write("0123456789");
  co_await r.out.write("0123456789");  // fills the 16-byte buffer on the way
  EXPECT_EQ(puts.back(), "0123456789012345");
  co_await r.out.write("tail");
  co_await r.out.close();
  EXPECT_EQ(puts.back(), "6789tail");
  EXPECT_EQ(r.out.bytes_put(), 6u + 20 + 24);
  EXPECT_TRUE(r.sink->closed);
}

REEF_TEST(output_stream, zero_copy_buffers_leave_with_what_is_gathered_in_one_put) {
  recorded_output r;
  co_await r.out.write("head:");
  auto body = temporary_buffer<char>::copy_of("zero copy");
  const char* where = body.get();
  co_await r.out.write(std::move(body));
  EXPECT_TRUE(r.sink->puts.empty()) << "14 bytes queued, under the 16-byte buffer";
  co_await r.out.write("!");
  co_await r.out.flush();
  EXPECT_EQ(r.sink->puts, (std::vector<std::string>{"head:|zero copy|!"})) << "one gathered put, in order";
  EXPECT_EQ(r.sink->addresses[1], where) << "the buffer is handed over as it is";
  auto big = temporary_buffer<char>::copy_of("a buffer longer than sixteen bytes");
  co_await r.out.write(std::move(big));
  EXPECT_EQ(r.sink->puts.size(), 2u) << "a full buffer's worth goes at once";
  co_await r.out.close();
}

REEF_TEST(output_stream, write_copies_the_callers_bytes_before_returning) {
  recorded_output r;
  r.sink->hold = true;  // the sink takes its time, as a socket on io_uring does
  co_await r.out.write("0123456789");
  std::vector<char> caller(30);
  for (std::size_t i = 0; i < caller.size(); ++i) caller[i] = static_cast<char>('a' + i % 26);
  const std::string expected = "0123456789" + std::string(caller.begin(), caller.end());
  auto written = r.out.write(caller.data(), caller.size());  // fills the buffer: a put is pending
  std::fill(caller.begin(), caller.end(), 'X');               // the caller's memory is gone
  caller.clear();
  caller.shrink_to_fit();
  EXPECT_FALSE(written.available()) << "the sink holds the first put";
  r.sink->release_all();
  co_await std::move(written);
  auto flushed = r.out.flush();
  r.sink->release_all();
  co_await std::move(flushed);
  std::string sent;
  for (auto& p : r.sink->puts) sent += p;
  sent.erase(std::remove(sent.begin(), sent.end(), '|'), sent.end());  // gathered puts' joints
  EXPECT_EQ(sent, expected) << "what was sent is what the caller wrote";
  co_await r.out.close();
}

REEF_TEST(output_stream, batch_flushes_send_many_flushes_in_one_put) {
  recorded_output r(output_stream_options{.batch_flushes = true});
  for (int i = 0; i < 3; ++i) {
    co_await r.out.write("r");
    auto f = r.out.flush();
    EXPECT_TRUE(f.available()) << "a batched flush returns at once";
    co_await std::move(f);
  }
  EXPECT_TRUE(r.sink->puts.empty()) << "nothing sent before the batch runs";
  co_await yield();
  co_await yield();
  EXPECT_EQ(r.sink->puts, (std::vector<std::string>{"rrr"})) << "one send for the three flushes";
  co_await r.out.write("s");
  co_await r.out.flush();
  co_await r.out.close();
  EXPECT_EQ(r.sink->puts.back(), "s") << "close() waits for the batched flush";
  EXPECT_TRUE(r.sink->closed);
}

REEF_TEST(output_stream, a_failed_batched_flush_fails_the_next_operation) {
  recorded_output r(output_stream_options{.batch_flushes = true});
  r.sink->fail_with = std::make_exception_ptr(std::runtime_error("peer gone"));
  co_await r.out.write("r");
  co_await r.out.flush();
  co_await yield();
  co_await yield();
  bool failed = false;
  try {
    co_await r.out.write("more");
  } catch (const std::runtime_error& e) {
    failed = std::string_view(e.what()) == "peer gone";
  }
  EXPECT_TRUE(failed) << "the background failure reaches the writer";
  co_await r.out.close();
  EXPECT_TRUE(r.sink->closed);
}

TEST(output_stream, destroying_one_with_unflushed_bytes_warns) {
  std::vector<std::string> lines;
  set_log_sink([&](std::string_view line) { lines.emplace_back(line); });
  testing::run_in_reactor([]() -> future<> {
    recorded_output r;
    co_await r.out.write("lost");
  });
  set_log_sink(nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("4 unflushed bytes"), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace reef
