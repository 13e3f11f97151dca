// Two shards saturating one disk share its capacity: each shard's queue
// draws on the disk's one token bucket, so together they go no faster than
// the model, and each gets about half. Runs on both reactor backends (the
// flags on the command line choose the shards' backend).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include "core/coroutine.h"
#include "core/when_all.h"
#include "fs/file.h"
#include "fs/io_queue.h"
#include "fs/testing/scratch_dir.h"
#include "smp/smp.h"
#include "smp/testing/shards.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

using reef::testing::two_shards;

std::atomic<std::uint64_t> completed[2];

// On this shard: 32 loops of 4 KiB reads of `path` until `until`.
future<> saturate(std::string path, steady_clock_type::time_point until) {
  file f = co_await open_file_dma(path, open_flags::ro);
  std::vector<future<>> loops;
  for (int w = 0; w < 32; ++w) {
    loops.push_back([](file f, int w, steady_clock_type::time_point until) -> future<> {
      auto buf = allocate_aligned_buffer(4096, f.memory_dma_alignment());
      for (std::uint64_t i = w; steady_clock_type::now() < until; i += 5) {
        (void)co_await f.dma_read((i % 256) * 4096, buf.get_write(), 4096);
        completed[this_shard_id()].fetch_add(1, std::memory_order_relaxed);
      }
    }(f, w, until));
  }
  co_await when_all_succeed(loops.begin(), loops.end());
  co_await f.close();
}

TEST(io_queue_smp, two_shards_share_one_disk_fairly) {
  reef::testing::scratch_dir scratch;
  const std::string dir = scratch.path();
  const std::string path = dir + "/data";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(::ftruncate(::fileno(f), 1 << 20), 0);
    std::fclose(f);
  }
  // 2000 requests a second for the disk, whatever the shards.
  set_io_properties({{dir, disk_model{2000, 1e12, 2000, 1e12}}});
  int code = smp::run(two_shards(), [&]() -> future<int> {
    const auto until = steady_clock_type::now() + 1500ms;
    co_await smp::invoke_on_all([&] { return saturate(path, until); });
    co_return 0;
  });
  EXPECT_EQ(code, 0);
  const double a = completed[0].load(), b = completed[1].load();
  EXPECT_NEAR(a / (a + b), 0.5, 0.1) << a << " and " << b << " requests";
  EXPECT_LE(a + b, 2000 * 1.5 + 200) << "together no faster than the disk's model";
  EXPECT_GE(a + b, 2000) << "and close to it";
  set_io_properties({});
}

}  // namespace
}  // namespace reef
