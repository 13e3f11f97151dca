// DMA files in a scratch directory of the test's own (TEST_TMPDIR, on the
// disk), and on devices that refuse O_DIRECT. Runs on both reactor
// backends.
#include "fs/file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "core/coroutine.h"
#include "core/testing/test.h"
#include "fs/testing/scratch_dir.h"

namespace reef {
namespace {

using reef::testing::scratch_dir;

std::uint64_t checksum(const char* p, std::size_t n) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
  return h;
}

template <typename Exception>
future<std::string> failure_of(future<> f) {
  try {
    co_await std::move(f);
  } catch (const Exception& e) {
    co_return std::string(e.what());
  }
  co_return std::string("(no failure)");
}

future<> ignore(future<std::size_t> f) { (void)co_await std::move(f); }

REEF_TEST(file, random_aligned_writes_read_back_intact) {
  scratch_dir dir;
  file f = co_await open_file_dma(dir / "data", open_flags::rw | open_flags::create);
  EXPECT_TRUE(f.direct()) << "the test directory is on a disk that takes O_DIRECT";
  const std::size_t align = f.disk_write_dma_alignment();
  EXPECT_GE(align, 512u);
  EXPECT_EQ(align & (align - 1), 0u);
  const std::size_t blocks = 256;  // a 1 MiB file at 4 KiB
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> expected(blocks, 0);
  std::vector<bool> written(blocks, false);
  auto buf = allocate_aligned_buffer(align * 4, f.memory_dma_alignment());
  for (int round = 0; round < 200; ++round) {
    std::size_t first = rng() % blocks;
    std::size_t count = std::min<std::size_t>(1 + rng() % 4, blocks - first);
    for (std::size_t i = 0; i < count * align; ++i) buf.get_write()[i] = static_cast<char>(rng());
    std::size_t n = co_await f.dma_write(first * align, buf.get(), count * align);
    EXPECT_EQ(n, count * align);
    for (std::size_t b = 0; b < count; ++b) {
      expected[first + b] = checksum(buf.get() + b * align, align);
      written[first + b] = true;
    }
  }
  co_await f.flush();
  // Read back block by block, at every position, in another order.
  auto in = allocate_aligned_buffer(align, f.memory_dma_alignment());
  for (std::size_t k = 0; k < blocks; ++k) {
    std::size_t b = (k * 97) % blocks;
    if (!written[b]) continue;
    std::size_t n = co_await f.dma_read(b * align, in.get_write(), align);
    EXPECT_EQ(n, align);
    EXPECT_EQ(checksum(in.get(), align), expected[b]) << "block " << b;
  }
  co_await f.close();
}

REEF_TEST(file, size_truncate_allocate_and_stat) {
  scratch_dir dir;
  file f = co_await open_file_dma(dir / "sized", open_flags::rw | open_flags::create);
  EXPECT_EQ(co_await f.size(), 0u);
  co_await f.allocate(0, 1 << 20);
  EXPECT_EQ(co_await f.size(), 1u << 20) << "fallocate grows the file";
  co_await f.truncate(12345);
  EXPECT_EQ(co_await f.size(), 12345u);
  struct stat st = co_await f.stat();
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 12345);
  co_await f.close();
}

REEF_TEST(file, read_bulk_takes_any_range_and_stops_at_the_end) {
  scratch_dir dir;
  const std::size_t total = 10000;  // not a multiple of the alignment
  std::string content(total, '\0');
  for (std::size_t i = 0; i < total; ++i) content[i] = static_cast<char>('a' + i % 26);
  {
    file w = co_await open_file_dma(dir / "text", open_flags::rw | open_flags::create);
    const std::size_t align = w.disk_write_dma_alignment();
    const std::size_t padded = (total + align - 1) / align * align;
    auto buf = allocate_aligned_buffer(padded, w.memory_dma_alignment());
    std::memset(buf.get_write(), 0, padded);
    std::memcpy(buf.get_write(), content.data(), total);
    EXPECT_EQ(co_await w.dma_write(0, buf.get(), padded), padded);
    co_await w.truncate(total);  // the padding goes: the last block is partial
    co_await w.close();
  }
  file f = co_await open_file_dma(dir / "text", open_flags::ro);
  struct range {
    std::uint64_t pos;
    std::size_t len;
  };
  for (range r : {range{0, 10}, range{1, 4095}, range{4095, 2}, range{5000, 5000}, range{9990, 100},
                  range{0, total}, range{total, 10}, range{20000, 5}}) {
    auto b = co_await f.dma_read_bulk(r.pos, r.len);
    std::string want = r.pos < total ? content.substr(r.pos, r.len) : std::string();
    EXPECT_EQ(std::string(b.view()), want) << r.pos << "+" << r.len;
  }
  co_await f.close();
}

REEF_TEST(file, misaligned_calls_name_the_value) {
  scratch_dir dir;
  file f = co_await open_file_dma(dir / "a", open_flags::rw | open_flags::create);
  if (!f.direct()) co_return;  // (alignment 1: nothing to refuse)
  const std::size_t align = f.disk_write_dma_alignment();
  auto buf = allocate_aligned_buffer(align * 2, f.memory_dma_alignment());
  auto what = co_await failure_of<std::invalid_argument>(ignore(f.dma_write(100, buf.get(), align)));
  EXPECT_NE(what.find("position 100 is not a multiple of"), std::string::npos) << what;
  what = co_await failure_of<std::invalid_argument>(ignore(f.dma_read(0, buf.get_write(), 100)));
  EXPECT_NE(what.find("length 100"), std::string::npos) << what;
  what = co_await failure_of<std::invalid_argument>(ignore(f.dma_read(0, buf.get_write() + 1, align)));
  EXPECT_NE(what.find("buffer address"), std::string::npos) << what;
  EXPECT_NE(what.find(dir / "a"), std::string::npos) << "names the file: " << what;
  EXPECT_EQ(co_await f.size(), 0u) << "nothing reached the file";
  EXPECT_THROW(allocate_aligned_buffer(10, 3), std::invalid_argument);
  co_await f.close();
}

// A transfer into a buffer that crosses one page boundary more than it
// must costs the device one more segment (a third of a virtio disk's read
// rate, measured): buffers lie on as few pages as can hold them, whatever
// smaller alignment the filesystem accepts.
TEST(allocate_aligned_buffer, uses_the_fewest_pages) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  std::vector<temporary_buffer<char>> kept;  // none reuses another's memory
  for (int i = 0; i < 32; ++i) {
    for (std::size_t size : {std::size_t(4096), std::size_t(8192), std::size_t(4096 + 512)}) {
      auto buf = allocate_aligned_buffer(size, 512);
      const auto address = reinterpret_cast<std::uintptr_t>(buf.get());
      EXPECT_EQ(address % page, 0u) << size << " bytes at " << address;
      kept.push_back(std::move(buf));
    }
    for (std::size_t size : {std::size_t(1), std::size_t(100), std::size_t(512), std::size_t(3000)}) {
      auto buf = allocate_aligned_buffer(size, 8);
      const auto address = reinterpret_cast<std::uintptr_t>(buf.get());
      EXPECT_EQ(address / page, (address + size - 1) / page) << size << " bytes at " << address << " cross a page";
      EXPECT_EQ(address % 8, 0u);
      kept.push_back(std::move(buf));
    }
  }
}

REEF_TEST(file, errors_name_the_call_the_path_and_errno) {
  scratch_dir dir;
  auto open_error = [](std::string path, open_flags flags) -> future<std::error_code> {
    try {
      (void)co_await open_file_dma(path, flags);
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("open_file_dma(\"" + path + "\")"), std::string::npos) << e.what();
      co_return e.code();
    }
    co_return std::error_code();
  };
  EXPECT_EQ((co_await open_error(dir / "missing", open_flags::ro)).value(), ENOENT);
  EXPECT_EQ((co_await open_error(dir / "missing/deeper", open_flags::rw | open_flags::create)).value(), ENOENT);
  EXPECT_EQ((co_await open_error(dir.path(), open_flags::rw)).value(), EISDIR);
  EXPECT_EQ((co_await open_error(dir.path(), open_flags::ro)).value(), EISDIR) << "a directory is no DMA file";
  (void)co_await open_file_dma(dir / "once", open_flags::wo | open_flags::create);
  EXPECT_EQ((co_await open_error(dir / "once", open_flags::wo | open_flags::create | open_flags::exclusive)).value(),
            EEXIST);
  EXPECT_EQ((co_await open_error(dir / "once/below", open_flags::ro)).value(), ENOTDIR);

  // ENOSPC: /dev/full refuses every write (and O_DIRECT, so it is buffered).
  file full = co_await open_file_dma("/dev/full", open_flags::wo);
  auto buf = allocate_aligned_buffer(4096, 4096);
  try {
    (void)co_await full.dma_write(0, buf.get(), 4096);
    ADD_FAILURE() << "wrote to /dev/full";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOSPC);
    EXPECT_NE(std::string(e.what()).find("dma_write(\"/dev/full\")"), std::string::npos) << e.what();
  }
  co_await full.close();

  // A closed file refuses everything with EBADF.
  file f = co_await open_file_dma(dir / "closing", open_flags::rw | open_flags::create);
  file copy = f;
  co_await f.close();
  co_await f.close();  // twice: nothing
  try {
    (void)co_await copy.size();
    ADD_FAILURE() << "stat of a closed file";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
  }
  auto closed = co_await failure_of<std::system_error>(ignore(copy.dma_read(0, buf.get_write(), 4096)));
  EXPECT_NE(closed.find("dma_read"), std::string::npos) << closed;
}

REEF_TEST(file, where_o_direct_is_refused_io_is_buffered_unless_direct_is_required) {
  // Character devices refuse O_DIRECT, as tmpfs before Linux 6.6 and some
  // FUSE and network filesystems do; the fallback is the same.
  file zero = co_await open_file_dma("/dev/zero", open_flags::ro);
  EXPECT_FALSE(zero.direct());
  EXPECT_EQ(zero.disk_read_dma_alignment(), 1u) << "buffered I/O takes any position and length";
  auto back = co_await zero.dma_read_bulk(3, 5);
  EXPECT_EQ(back.view(), std::string_view("\0\0\0\0\0", 5));
  co_await zero.close();
  file null = co_await open_file_dma("/dev/null", open_flags::wo);
  EXPECT_EQ(co_await null.dma_write(3, "hello", 5), 5u);
  co_await null.close();
  try {
    (void)co_await open_file_dma("/dev/zero", open_flags::ro, file_open_options{.require_direct = true});
    ADD_FAILURE() << "opened without O_DIRECT";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
    EXPECT_NE(std::string(e.what()).find("open_file_dma(\"/dev/zero\"): the filesystem refuses O_DIRECT"),
              std::string::npos)
        << e.what();
  }
}

REEF_TEST(directory, create_list_rename_link_remove) {
  scratch_dir dir;
  co_await make_directory(dir / "sub");
  for (const char* name : {"a", "b", "c"}) {
    file f = co_await open_file_dma(dir / name, open_flags::wo | open_flags::create);
    co_await f.close();
  }
  co_await rename_file(dir / "c", dir / "sub/c2");
  co_await link_file(dir / "a", dir / "a-link");
  EXPECT_TRUE(co_await file_exists(dir / "sub/c2"));
  EXPECT_FALSE(co_await file_exists(dir / "c"));
  EXPECT_FALSE(co_await file_exists(dir / "a/below")) << "ENOTDIR is 'no'";
  std::vector<std::string> names;
  bool sub_is_directory = false;
  co_await list_directory(dir.path(), [&](directory_entry e) {
    names.push_back(e.name);
    if (e.name == "sub") sub_is_directory = e.type == directory_entry_type::directory;
    return make_ready_future<>();
  });
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "a-link", "b", "sub"}));
  EXPECT_TRUE(sub_is_directory);
  file d = co_await open_directory(dir.path());
  co_await d.flush();  // the renames are durable
  co_await d.close();
  co_await remove_file(dir / "a-link");
  co_await remove_file(dir / "sub/c2");
  co_await remove_file(dir / "sub");  // an empty directory
  EXPECT_FALSE(co_await file_exists(dir / "sub"));
}

REEF_TEST(directory, a_large_directory_is_listed_whole) {
  scratch_dir dir;
  for (int i = 0; i < 3000; ++i) {  // more than one getdents64 batch
    file f = co_await open_file_dma(dir / ("entry-with-a-long-name-" + std::to_string(i)),
                                    open_flags::wo | open_flags::create);
    co_await f.close();
  }
  std::size_t seen = 0;
  co_await list_directory(dir.path(), [&](directory_entry) {
    ++seen;
    return make_ready_future<>();
  });
  EXPECT_EQ(seen, 3000u);
}

REEF_TEST(directory, failures_name_the_call_and_path) {
  scratch_dir dir;
  auto what = co_await failure_of<std::system_error>(remove_file(dir / "nothing"));
  EXPECT_NE(what.find("remove_file(\"" + (dir / "nothing") + "\")"), std::string::npos) << what;
  what = co_await failure_of<std::system_error>(rename_file(dir / "x", dir / "y"));
  EXPECT_NE(what.find("rename_file(\""), std::string::npos) << what;
  what = co_await failure_of<std::system_error>(make_directory(dir.path()));
  EXPECT_NE(what.find("make_directory"), std::string::npos) << what;
  what = co_await failure_of<std::system_error>(
      list_directory(dir / "nothing", [](directory_entry) { return make_ready_future<>(); }));
  EXPECT_NE(what.find("list_directory"), std::string::npos) << what;
  co_await make_directory(dir / "full");
  file f = co_await open_file_dma(dir / "full/x", open_flags::wo | open_flags::create);
  co_await f.close();
  what = co_await failure_of<std::system_error>(remove_file(dir / "full"));
  EXPECT_NE(what.find("remove_file"), std::string::npos) << "a directory with something in it: " << what;
  // A callback's failure ends the listing and comes out of it.
  what = co_await failure_of<std::runtime_error>(list_directory(dir.path(), [](directory_entry) {
    return make_exception_future<>(std::runtime_error("stop here"));
  }));
  EXPECT_EQ(what, "stop here");
}

}  // namespace
}  // namespace reef
