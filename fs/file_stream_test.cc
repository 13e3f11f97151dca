// File streams over DMA files in the test's scratch directory. Runs on both
// reactor backends.
#include "fs/file_stream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include "core/coroutine.h"
#include "core/testing/test.h"
#include "fs/testing/scratch_dir.h"

namespace reef {
namespace {

using reef::testing::scratch_dir;

std::string pattern(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
  return s;
}

future<std::string> read_all(input_stream<char> in) {
  std::string all;
  for (;;) {
    auto b = co_await in.read();
    if (b.empty()) break;
    all.append(b.view());
  }
  co_await in.close();
  co_return all;
}

future<> write_in_pieces(output_stream<char>& out, const std::string& data) {
  // Odd sizes: some smaller than a block, some spanning several.
  for (std::size_t at = 0, i = 0; at < data.size(); ++i) {
    std::size_t n = std::min<std::size_t>(data.size() - at, 1 + (i * 7919) % 200000);
    co_await out.write(data.data() + at, n);
    at += n;
  }
}

REEF_TEST(file_stream, odd_writes_make_a_file_of_exactly_those_bytes) {
  scratch_dir dir;
  for (unsigned write_behind : {1u, 4u}) {
    const std::string data = pattern((3 << 20) + 123);  // the last block is partial
    std::string path = dir / ("out" + std::to_string(write_behind));
    {
      file f = co_await open_file_dma(path, open_flags::wo | open_flags::create | open_flags::truncate);
      auto out = make_file_output_stream(f, file_output_stream_options{.buffer_size = 65536, .write_behind = write_behind});
      co_await write_in_pieces(out, data);
      co_await out.close();
    }
    file f = co_await open_file_dma(path, open_flags::ro);
    EXPECT_EQ(co_await f.size(), data.size()) << "the padding of the last block is gone";
    for (unsigned read_ahead : {0u, 1u, 4u}) {
      std::string back = co_await read_all(
          make_file_input_stream(f, file_input_stream_options{.buffer_size = 32768, .read_ahead = read_ahead}));
      EXPECT_TRUE(back == data) << "write_behind " << write_behind << ", read_ahead " << read_ahead;
    }
    co_await f.close();
  }
}

REEF_TEST(file_stream, flush_in_the_middle_pads_and_later_bytes_continue_the_block) {
  scratch_dir dir;
  file f = co_await open_file_dma(dir / "log", open_flags::rw | open_flags::create);
  auto out = make_file_output_stream(f, file_output_stream_options{.buffer_size = 8192});
  co_await out.write("first line\n");
  co_await out.flush();
  file reader = co_await open_file_dma(dir / "log", open_flags::ro);
  std::uint64_t padded = co_await reader.size();
  EXPECT_EQ(padded % reader.disk_read_dma_alignment(), 0u) << "the flushed block is padded";
  auto seen = co_await reader.dma_read_bulk(0, 11);
  EXPECT_EQ(seen.view(), "first line\n") << "flushed bytes are in the file";
  co_await out.write("second line\n");
  co_await out.write(pattern(20000));
  co_await out.close();
  std::string back = co_await read_all(make_file_input_stream(reader));
  EXPECT_TRUE(back == "first line\nsecond line\n" + pattern(20000));
  EXPECT_EQ(co_await reader.size(), back.size());
  co_await reader.close();
}

REEF_TEST(file_stream, flushing_often_leaves_exactly_the_bytes_written) {
  scratch_dir dir;
  std::string written;
  {
    auto out = make_file_output_stream(co_await open_file_dma(dir / "flushed", open_flags::wo | open_flags::create),
                                       file_output_stream_options{.buffer_size = 8192});
    for (int i = 0; i < 40; ++i) {
      std::string piece = pattern(1 + i * 997 % 5000);
      co_await out.write(piece);
      written += piece;
      co_await out.flush();
      if (i % 3 == 0) co_await out.flush();  // twice in a row: nothing more
    }
    co_await out.close();
  }
  file f = co_await open_file_dma(dir / "flushed", open_flags::ro);
  EXPECT_EQ(co_await f.size(), written.size());
  EXPECT_TRUE(co_await read_all(make_file_input_stream(f)) == written);
  co_await f.close();
}

REEF_TEST(file_stream, input_windows_at_any_offset_and_length) {
  scratch_dir dir;
  const std::string data = pattern(100000);
  {
    auto out = make_file_output_stream(co_await open_file_dma(dir / "w", open_flags::wo | open_flags::create));
    co_await out.write(data);
    co_await out.close();
  }
  file f = co_await open_file_dma(dir / "w", open_flags::ro);
  struct window {
    std::uint64_t offset;
    std::uint64_t length;
  };
  for (window w : {window{0, 1}, window{1, 4095}, window{4095, 4097}, window{50000, 100000}, window{99999, 5},
                   window{100000, 10}, window{200000, 10}, window{12345, 0}}) {
    std::string back = co_await read_all(
        make_file_input_stream(f, w.offset, w.length, file_input_stream_options{.buffer_size = 4096, .read_ahead = 2}));
    std::string want = w.offset < data.size() ? data.substr(w.offset, w.length) : std::string();
    EXPECT_TRUE(back == want) << w.offset << "+" << w.length << ": " << back.size() << " bytes";
  }
  co_await f.close();
}

REEF_TEST(file_stream, an_empty_file_reads_as_the_end_and_writes_as_nothing) {
  scratch_dir dir;
  auto out = make_file_output_stream(co_await open_file_dma(dir / "empty", open_flags::wo | open_flags::create));
  co_await out.close();
  file f = co_await open_file_dma(dir / "empty", open_flags::ro);
  EXPECT_EQ(co_await f.size(), 0u);
  EXPECT_EQ(co_await read_all(make_file_input_stream(f)), "");
  co_await f.close();
}

REEF_TEST(file_stream, a_failing_write_fails_the_stream_with_the_errno) {
  // /dev/full refuses every write with ENOSPC.
  auto out = make_file_output_stream(co_await open_file_dma("/dev/full", open_flags::wo),
                                     file_output_stream_options{.buffer_size = 4096, .write_behind = 2});
  std::error_code failure;
  try {
    co_await out.write(pattern(64 * 1024));  // full blocks: writes in the background
    co_await out.flush();
  } catch (const std::system_error& e) {
    failure = e.code();
    EXPECT_NE(std::string(e.what()).find("/dev/full"), std::string::npos) << e.what();
  }
  EXPECT_EQ(failure.value(), ENOSPC);
  try {
    co_await out.close();
  } catch (const std::system_error&) {
  }
}

REEF_TEST(file_stream, reading_a_closed_file_fails_with_ebadf) {
  scratch_dir dir;
  file f = co_await open_file_dma(dir / "x", open_flags::rw | open_flags::create);
  co_await f.close();
  auto in = make_file_input_stream(f);
  try {
    (void)co_await in.read();
    ADD_FAILURE() << "read a closed file";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
  }
  co_await in.close();
}

}  // namespace
}  // namespace reef
