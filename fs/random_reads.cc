// random_reads: 4 KiB random reads of a file through fs (DMA, the shard's
// I/O queue, the reactor's backend) at a fixed depth for a fixed time, on
// one shard; prints "iops N p50_us N p99_us N". The fs side of
// tools/bench/fs_vs_fio.sh.
//
//   bazel-bin/fs/random_reads --smp 1 --file /data/big --depth 32 --duration-s 10
#include <absl/flags/flag.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/log.h"
#include "core/when_all.h"
#include "fs/file.h"
#include "fs/io_flags.h"
#include "smp/app_template.h"

ABSL_FLAG(std::string, file, "", "the file to read (at least 4 KiB)");
ABSL_FLAG(int, depth, 32, "reads in flight");
ABSL_FLAG(int, duration_s, 10, "how long to read, in seconds");

namespace reef {
namespace {

logger bench_log("random_reads");

future<int> run() {
  const std::string path = absl::GetFlag(FLAGS_file);
  const int depth = absl::GetFlag(FLAGS_depth);
  const int seconds = absl::GetFlag(FLAGS_duration_s);
  if (path.empty() || depth < 1 || depth > 4096 || seconds < 1 || seconds > 3600) {
    bench_log.error("--file is required; --depth 1-4096; --duration-s 1-3600");
    co_return 2;
  }
  file f = co_await open_file_dma(path, open_flags::ro);
  const std::uint64_t blocks = co_await f.size() / 4096;
  if (blocks == 0) {
    bench_log.error("{} is smaller than 4 KiB", path);
    co_return 1;
  }
  using clock_type = std::chrono::steady_clock;
  const auto start = clock_type::now();
  const auto until = start + std::chrono::seconds(seconds);
  std::vector<std::vector<std::uint32_t>> latencies(depth);  // ns, per loop
  std::vector<future<>> loops;
  for (int d = 0; d < depth; ++d) {
    loops.push_back([](file f, std::uint64_t blocks, clock_type::time_point until, std::vector<std::uint32_t>& out,
                       unsigned seed) -> future<> {
      auto buf = allocate_aligned_buffer(4096, f.memory_dma_alignment());
      std::mt19937_64 rng(seed);
      while (clock_type::now() < until) {
        const auto t0 = clock_type::now();
        (void)co_await f.dma_read((rng() % blocks) * 4096, buf.get_write(), 4096);
        out.push_back(static_cast<std::uint32_t>(
            std::min<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count(),
                                   UINT32_MAX)));
      }
    }(f, blocks, until, latencies[d], d + 1));
  }
  co_await when_all_succeed(loops.begin(), loops.end());
  const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  std::vector<std::uint32_t> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, std::size_t(p * all.size()))] / 1e3; };
  std::printf("iops %.0f p50_us %.1f p99_us %.1f\n", all.size() / elapsed, pct(0.50), pct(0.99));
  co_await f.close();
  co_return 0;
}

}  // namespace
}  // namespace reef

int main(int argc, char** argv) {
  reef::app_template app({.name = "random_reads", .description = "4 KiB random reads through fs at a fixed depth."});
  return app.run(argc, argv, [] { return reef::run(); });
}
