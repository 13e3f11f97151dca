// iotune: measures the disk under a directory with DMA I/O and writes the
// io-properties file (fs/io_properties.h) that --io-properties-file reads.
//
//   tools/bazel run //tools/iotune -- --evaluation-directory /var/lib/data \
//       --properties-file /etc/reef/io.conf [--file-size-mb 1024] [--duration-s 20]
//
// Four phases, each a quarter of --duration-s at most, on one scratch file of
// --file-size-mb in the directory (removed at the end): sequential writes of
// 1 MiB (4 in flight), sequential reads of 1 MiB (4 in flight), random 4 KiB
// reads (64 in flight), random 4 KiB writes (64 in flight). It prints what
// it measured and writes one disk, whose mountpoint is the directory's
// mount point. A directory whose filesystem refuses O_DIRECT is refused
// (exit status 1) with the reason; bad flags exit with status 2.
#include <absl/flags/flag.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/log.h"
#include "core/when_all.h"
#include "fs/file.h"
#include "fs/io_properties.h"
#include "smp/app_template.h"

ABSL_FLAG(std::string, evaluation_directory, "", "the directory whose disk is measured (a scratch file goes there)");
ABSL_FLAG(std::string, properties_file, "", "where to write the io-properties file");
ABSL_FLAG(int, file_size_mb, 1024, "the scratch file's size in MiB");
ABSL_FLAG(int, duration_s, 20, "the most the four measurements take together, in seconds");

namespace reef {
namespace {

logger iotune_log("iotune");

using clock_type = std::chrono::steady_clock;

// The mount point of `dir`: its highest ancestor on the same device.
std::string mount_point_of(const std::string& dir) {
  char* real = ::realpath(dir.c_str(), nullptr);
  std::string path = real != nullptr ? real : dir;
  std::free(real);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path;
  const dev_t device = st.st_dev;
  while (path != "/") {
    std::string parent = path.substr(0, path.find_last_of('/'));
    if (parent.empty()) parent = "/";
    if (::stat(parent.c_str(), &st) != 0 || st.st_dev != device) break;
    path = parent;
  }
  return path;
}

struct phase_result {
  std::uint64_t requests = 0;
  std::uint64_t bytes = 0;
  double seconds = 0;
};

// `depth` loops of `block`-byte requests until `blocks` are done or the
// time is up; sequential positions shared in order, or random ones.
future<phase_result> run_phase(file f, bool write, bool sequential, std::size_t block, unsigned depth,
                               std::uint64_t blocks, clock_type::duration limit) {
  phase_result r;
  std::uint64_t next = 0;
  const auto start = clock_type::now();
  const auto until = start + limit;
  std::vector<future<>> loops;
  for (unsigned d = 0; d < depth; ++d) {
    loops.push_back([](file f, bool write, bool sequential, std::size_t block, std::uint64_t blocks,
                       clock_type::time_point until, std::uint64_t& next, phase_result& r, unsigned seed) -> future<> {
      auto buf = allocate_aligned_buffer(block, f.memory_dma_alignment());
      std::fill(buf.get_write(), buf.get_write() + block, static_cast<char>(seed));
      std::mt19937_64 rng(seed);
      while (clock_type::now() < until) {
        std::uint64_t index;
        if (sequential) {
          if (next >= blocks) break;
          index = next++;
        } else {
          index = rng() % blocks;
        }
        std::size_t n = write ? co_await f.dma_write(index * block, buf.get(), block)
                              : co_await f.dma_read(index * block, buf.get_write(), block);
        ++r.requests;
        r.bytes += n;
      }
    }(f, write, sequential, block, blocks, until, next, r, d + 1));
  }
  co_await when_all_succeed(loops.begin(), loops.end());
  r.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  co_return r;
}

future<int> run_iotune() {
  const std::string dir = absl::GetFlag(FLAGS_evaluation_directory);
  const std::string out = absl::GetFlag(FLAGS_properties_file);
  const int size_mb = absl::GetFlag(FLAGS_file_size_mb);
  const int duration_s = absl::GetFlag(FLAGS_duration_s);
  if (dir.empty() || out.empty()) {
    iotune_log.error("--evaluation-directory and --properties-file are required");
    co_return 2;
  }
  if (size_mb < 8 || size_mb > 1024 * 1024) {
    iotune_log.error("--file-size-mb {}: from 8 to 1048576", size_mb);
    co_return 2;
  }
  if (duration_s < 1 || duration_s > 3600) {
    iotune_log.error("--duration-s {}: from 1 to 3600", duration_s);
    co_return 2;
  }
  const std::string scratch = dir + "/iotune-scratch-" + std::to_string(::getpid());
  file f;
  try {
    f = co_await open_file_dma(scratch, open_flags::rw | open_flags::create | open_flags::exclusive,
                               file_open_options{.require_direct = true});
  } catch (const std::exception& e) {
    iotune_log.error("cannot measure {}: {}", dir, e.what());
    co_return 1;
  }
  const std::uint64_t size = std::uint64_t(size_mb) << 20;
  const auto quarter = std::chrono::duration_cast<clock_type::duration>(std::chrono::seconds(duration_s)) / 4;
  constexpr std::size_t big = 1 << 20, small = 4096;
  std::exception_ptr failed;
  disk_model m;
  try {
    co_await f.allocate(0, size);
    auto seq_write = co_await run_phase(f, true, true, big, 4, size / big, quarter);
    co_await f.flush();
    // Reads and random writes stay within what was written.
    const std::uint64_t written = std::max<std::uint64_t>(seq_write.bytes, 8 * big);
    auto seq_read = co_await run_phase(f, false, true, big, 4, written / big, quarter);
    auto rand_read = co_await run_phase(f, false, false, small, 64, written / small, quarter);
    auto rand_write = co_await run_phase(f, true, false, small, 64, written / small, quarter);
    co_await f.flush();
    m.write_bandwidth = seq_write.bytes / seq_write.seconds;
    m.read_bandwidth = seq_read.bytes / seq_read.seconds;
    m.read_iops = rand_read.requests / rand_read.seconds;
    m.write_iops = rand_write.requests / rand_write.seconds;
    std::printf("directory %s (mount point %s), scratch file %d MiB\n", dir.c_str(), mount_point_of(dir).c_str(),
                size_mb);
    std::printf("  sequential write: %.0f MB/s (%.1f s)\n", m.write_bandwidth / 1e6, seq_write.seconds);
    std::printf("  sequential read:  %.0f MB/s (%.1f s)\n", m.read_bandwidth / 1e6, seq_read.seconds);
    std::printf("  random 4K read:   %.0f IOPS (%.1f s)\n", m.read_iops, rand_read.seconds);
    std::printf("  random 4K write:  %.0f IOPS (%.1f s)\n", m.write_iops, rand_write.seconds);
  } catch (...) {
    failed = std::current_exception();
  }
  co_await f.close();
  try {
    co_await remove_file(scratch);
  } catch (const std::exception& e) {
    iotune_log.warn("{}", e.what());
  }
  if (failed) {
    try {
      std::rethrow_exception(failed);
    } catch (const std::exception& e) {
      iotune_log.error("measuring {} failed: {}", dir, e.what());
    }
    co_return 1;
  }
  std::ofstream file_out(out);
  file_out << "# written by iotune: " << dir << ", " << size_mb << " MiB, " << duration_s << " s\n"
           << format_io_properties({{mount_point_of(dir), m}});
  file_out.close();
  if (!file_out) {
    iotune_log.error("cannot write {}", out);
    co_return 1;
  }
  std::printf("wrote %s\n", out.c_str());
  co_return 0;
}

}  // namespace
}  // namespace reef

int main(int argc, char** argv) {
  reef::app_template app({.name = "iotune",
                          .description = "Measures a directory's disk with DMA I/O and writes an io-properties file."});
  return app.run(argc, argv, [] { return reef::run_iotune(); });
}
