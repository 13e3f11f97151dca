// Files for direct (DMA) I/O: reads and writes go between aligned buffers
// and the device without the page cache, through the shard's I/O queue for
// the file's disk (fs/io_queue.h) and then the reactor's I/O backend (on
// io_uring, as submission entries; on epoll, on the reactor's
// blocking-call threads, which is the documented fallback).
//
//   file f = co_await open_file_dma("/data/log", open_flags::rw | open_flags::create);
//   auto buf = allocate_aligned_buffer(4096, f.memory_dma_alignment());
//   std::memset(buf.get_write(), 'x', buf.size());
//   co_await f.dma_write(0, buf.get(), buf.size());
//   co_await f.flush();                                  // fdatasync
//   temporary_buffer<char> back = co_await f.dma_read_bulk(10, 100);   // any range
//   co_await f.close();
//
// Alignment: a direct read or write needs its buffer address aligned to
// memory_dma_alignment(), and its position and length to
// disk_read_dma_alignment() / disk_write_dma_alignment() (from statx where
// the filesystem reports them, else 4096). A misaligned call fails with
// std::invalid_argument naming the value, before reaching the kernel.
// dma_read_bulk() takes any range: it reads the aligned range around it.
//
// A file that refuses O_DIRECT (on tmpfs before Linux 6.6, some FUSE and
// network filesystems; a character device) gets buffered I/O instead, with
// a logged line, and alignment 1; with `require_direct` the open fails.
//
// Metadata calls (open, stat, truncate, allocate, rename, listing, ...) run
// on the reactor's blocking-call threads. Errors are std::system_error
// naming the call and the path ("open_file_dma(\"/data/log\")").
//
// Thread rules: a file belongs to the shard that opened it; the operations
// in flight keep it open, and close() waits for nothing: call it after
// their futures resolve.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/function.h"
#include "core/future.h"
#include "core/temporary_buffer.h"
#include "fs/io_queue.h"

namespace reef {

/// How open_file_dma() opens: one of ro, wo, rw, with create, truncate,
/// exclusive as wanted.
enum class open_flags : int {
  ro = O_RDONLY,
  wo = O_WRONLY,
  rw = O_RDWR,
  create = O_CREAT,
  truncate = O_TRUNC,
  exclusive = O_EXCL,
};

constexpr open_flags operator|(open_flags a, open_flags b) noexcept {
  return static_cast<open_flags>(static_cast<int>(a) | static_cast<int>(b));
}

struct file_open_options {
  /// Fail (std::system_error, EINVAL) where the filesystem refuses O_DIRECT,
  /// instead of falling back to buffered I/O.
  bool require_direct = false;
  /// Permissions of a file that `create` makes (before the umask).
  mode_t mode = 0644;
};

/// `size` bytes whose address is a multiple of `alignment` (a power of two),
/// on as few pages as can hold them: a buffer of a page or more starts a
/// page, a smaller one does not cross a page boundary (each page is one
/// more segment for the device to transfer). Throws std::bad_alloc, or
/// std::invalid_argument for a bad alignment.
temporary_buffer<char> allocate_aligned_buffer(std::size_t size, std::size_t alignment);

class file {
 public:
  /// A closed file.
  file() noexcept = default;
  /// The handle is shared: copies refer to the same open file.
  file(const file&) = default;
  file& operator=(const file&) = default;
  file(file&&) noexcept = default;
  file& operator=(file&&) noexcept = default;
  ~file();

  explicit operator bool() const noexcept { return _impl != nullptr; }
  /// The path it was opened with.
  const std::string& path() const noexcept;
  /// Where the file really is: absolute, links resolved, as at the open
  /// (what the file's disk is found by).
  const std::string& real_path() const noexcept;
  /// Whether I/O bypasses the page cache (O_DIRECT).
  bool direct() const noexcept;
  std::size_t memory_dma_alignment() const noexcept;
  std::size_t disk_read_dma_alignment() const noexcept;
  std::size_t disk_write_dma_alignment() const noexcept;

  /// Reads up to `len` bytes at `pos` into `buffer`: the count (less at the
  /// end of the file). Alignment as above. The request waits its turn in
  /// the shard's I/O queue as class `cls` (fs/io_queue.h).
  future<std::size_t> dma_read(std::uint64_t pos, char* buffer, std::size_t len,
                               io_class cls = io_class::default_class());
  /// Writes `len` bytes at `pos` from `buffer`: the count. As dma_read().
  future<std::size_t> dma_write(std::uint64_t pos, const char* buffer, std::size_t len,
                                io_class cls = io_class::default_class());
  /// The bytes of [pos, pos + len), or fewer at the end of the file; any
  /// position and length.
  future<temporary_buffer<char>> dma_read_bulk(std::uint64_t pos, std::size_t len,
                                               io_class cls = io_class::default_class());

  /// fdatasync: what was written is on the device.
  future<> flush();
  future<struct stat> stat();
  future<std::uint64_t> size();
  future<> truncate(std::uint64_t length);
  /// Reserves [pos, pos + len) on the device (fallocate; the size grows).
  future<> allocate(std::uint64_t pos, std::uint64_t len);
  /// Closes it (every copy of the handle); operations afterwards, and
  /// those still waiting in the I/O queue, fail with EBADF. Closing a
  /// closed file does nothing.
  /// REQUIRES: no operation of it is in the kernel (their futures resolved).
  future<> close();

 private:
  struct impl;
  explicit file(std::shared_ptr<impl> i) noexcept : _impl(std::move(i)) {}
  future<std::size_t> dma(io_direction direction, std::uint64_t pos, char* buffer, std::size_t len, io_class cls);
  friend future<file> open_file_dma(std::string_view, open_flags, file_open_options);
  friend future<file> open_directory(std::string_view);

  std::shared_ptr<impl> _impl;
};

/// Opens `path` for direct I/O. Fails with std::system_error naming the call
/// and the path (ENOENT, EACCES, EISDIR, ...).
future<file> open_file_dma(std::string_view path, open_flags flags, file_open_options options = {});

/// Opens a directory (for flush(), which makes renames and creations in it
/// durable, and stat()).
future<file> open_directory(std::string_view path);

enum class directory_entry_type { unknown, regular, directory, link, block_device, char_device, fifo, socket };

struct directory_entry {
  std::string name;
  directory_entry_type type = directory_entry_type::unknown;
};

/// Calls `each` for every entry of the directory `path` but "." and "..",
/// one after another (each call's future resolves before the next), in the
/// order the filesystem gives. Fails if `path` cannot be read, or with what
/// `each` fails with.
future<> list_directory(std::string_view path, noncopyable_function<future<>(directory_entry)> each);

/// Removes a file, or an empty directory.
future<> remove_file(std::string_view path);
future<> rename_file(std::string_view old_path, std::string_view new_path);
/// A hard link `new_path` to `old_path`.
future<> link_file(std::string_view old_path, std::string_view new_path);
/// Whether something is at `path` (ENOENT: false; other failures throw).
future<bool> file_exists(std::string_view path);
future<> make_directory(std::string_view path, mode_t mode = 0755);

}  // namespace reef
