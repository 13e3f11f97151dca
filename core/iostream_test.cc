// temporary_buffer and the streams, over an in-memory source and sink.
#include "core/iostream.h"

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/coroutine.h"
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

// Records every put.
struct recording_sink final : public data_sink_impl<char> {
  explicit recording_sink(std::vector<std::string>* puts, std::vector<const char*>* addresses, bool* closed)
      : puts(puts), addresses(addresses), closed(closed) {}
  future<> put(temporary_buffer<char> b) override {
    puts->emplace_back(b.view());
    addresses->push_back(b.get());
    return make_ready_future<>();
  }
  future<> close() override {
    *closed = true;
    return make_ready_future<>();
  }
  std::size_t buffer_size() const noexcept override { return 16; }
  std::vector<std::string>* puts;
  std::vector<const char*>* addresses;
  bool* closed;
};

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

REEF_TEST(output_stream, small_writes_are_gathered_large_ones_pass) {
  std::vector<std::string> puts;
  std::vector<const char*> addresses;
  bool closed = false;
  output_stream<char> out(data_sink<char>(std::make_unique<recording_sink>(&puts, &addresses, &closed)));
  co_await out.write("abc");
  co_await out.write("def");
  EXPECT_TRUE(puts.empty()) << "gathered, not sent";
  co_await out.flush();
  EXPECT_EQ(puts, (std::vector<std::string>{"abcdef"}));
  co_await out.write(std::string(20, 'x'));  // larger than the buffer: straight on
  EXPECT_EQ(puts.size(), 2u);
  co_await out.write("0123456789");
  co_await out.write("0123456789");  // fills the 16-byte buffer on the way
  EXPECT_EQ(puts.back(), "0123456789012345");
  auto zero_copy = temporary_buffer<char>::copy_of("zero copy");
  const char* where = zero_copy.get();
  co_await out.write(std::move(zero_copy));
  EXPECT_EQ(puts.back(), "zero copy");
  EXPECT_EQ(addresses.back(), where) << "handed over as it is";
  EXPECT_EQ(puts[puts.size() - 2], "6789") << "what was gathered went first";
  co_await out.write("tail");
  co_await out.close();
  EXPECT_EQ(puts.back(), "tail");
  EXPECT_TRUE(closed);
}

}  // namespace
}  // namespace reef
