#include "fs/file.h"

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "core/coroutine.h"
#include "core/io_backend.h"
#include "core/log.h"
#include "core/reactor.h"

namespace reef {

namespace {

logger fs_log("fs");

// Used where the filesystem does not report its direct-I/O alignment.
constexpr std::size_t default_dma_alignment = 4096;

std::string call_name(std::string_view call, std::string_view path) {
  std::string s(call);
  s += "(\"";
  s += path;
  s += "\")";
  return s;
}

std::system_error fs_error(int err, std::string_view call, std::string_view path) {
  return std::system_error(err, std::system_category(), call_name(call, path));
}

// A system call's result on a blocking thread: the value, or the errno.
struct call_result {
  long value = 0;
  int error = 0;
};

call_result result_of(long rc) noexcept { return rc < 0 ? call_result{rc, errno} : call_result{rc, 0}; }

bool is_power_of_two(std::size_t n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

}  // namespace

temporary_buffer<char> allocate_aligned_buffer(std::size_t size, std::size_t alignment) {
  if (!is_power_of_two(alignment)) {
    throw std::invalid_argument("allocate_aligned_buffer: alignment " + std::to_string(alignment) +
                                " is not a power of two");
  }
  if (alignment < sizeof(void*)) alignment = sizeof(void*);
  // The fewest pages: a buffer of a page or more starts a page, a smaller
  // one lies within one. The kernel accepts less (512 or even 4 bytes
  // where statx says so), but every page a transfer touches is one more
  // segment for the device: 4 KiB reads into 512-aligned buffers ran at
  // two thirds the rate of page-aligned ones on a virtio disk.
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  alignment = std::max(alignment, std::min(page, std::bit_ceil(std::max<std::size_t>(size, 1))));
  void* p = nullptr;
  if (::posix_memalign(&p, alignment, size == 0 ? 1 : size) != 0) throw std::bad_alloc();
  return temporary_buffer<char>(static_cast<char*>(p), size, make_free_deleter(p));
}

struct file::impl {
  int fd = -1;
  std::string path;
  std::string real_path;
  std::shared_ptr<io_queue> queue;  // this shard's, for the file's disk
  bool direct = false;
  std::size_t memory_alignment = 1;
  std::size_t read_alignment = 1;
  std::size_t write_alignment = 1;

  ~impl() {
    if (fd >= 0) ::close(fd);
  }

  // Refuses what the kernel would refuse with a bare EINVAL.
  void check(std::string_view call, std::uint64_t pos, const void* buffer, std::size_t len,
             std::size_t disk_alignment) const {
    auto refuse = [&](const char* what, std::uint64_t value, std::size_t alignment) {
      throw std::invalid_argument(call_name(call, path) + ": " + what + " " + std::to_string(value) +
                                  " is not a multiple of " + std::to_string(alignment));
    };
    if (pos > static_cast<std::uint64_t>(INT64_MAX) - len) {
      throw std::invalid_argument(call_name(call, path) + ": position " + std::to_string(pos) + " is past any file");
    }
    if (pos % disk_alignment != 0) refuse("position", pos, disk_alignment);
    if (len % disk_alignment != 0) refuse("length", len, disk_alignment);
    auto address = reinterpret_cast<std::uintptr_t>(buffer);
    if (address % memory_alignment != 0) refuse("buffer address", address, memory_alignment);
  }

  void check_open(std::string_view call) const {
    if (fd < 0) throw fs_error(EBADF, call, path);
  }
};

file::~file() = default;

const std::string& file::path() const noexcept {
  static const std::string none;
  return _impl ? _impl->path : none;
}
const std::string& file::real_path() const noexcept {
  static const std::string none;
  return _impl ? _impl->real_path : none;
}
bool file::direct() const noexcept { return _impl && _impl->direct; }
std::size_t file::memory_dma_alignment() const noexcept { return _impl ? _impl->memory_alignment : 1; }
std::size_t file::disk_read_dma_alignment() const noexcept { return _impl ? _impl->read_alignment : 1; }
std::size_t file::disk_write_dma_alignment() const noexcept { return _impl ? _impl->write_alignment : 1; }

future<std::size_t> file::dma(io_direction direction, std::uint64_t pos, char* buffer, std::size_t len,
                              io_class cls) {
  const char* call = direction == io_direction::read ? "dma_read" : "dma_write";
  if (!_impl) return make_exception_future<std::size_t>(fs_error(EBADF, call, ""));
  try {
    _impl->check_open(call);
    _impl->check(call, pos, buffer, len,
                 direction == io_direction::read ? _impl->read_alignment : _impl->write_alignment);
  } catch (...) {
    return make_exception_future<std::size_t>(std::current_exception());
  }
  const auto at = static_cast<std::int64_t>(pos);
  const io_request req = direction == io_direction::read ? io_request::read(_impl->fd, buffer, len, at)
                                                         : io_request::write(_impl->fd, buffer, len, at);
  // The request may wait in the queue: if the file was closed meanwhile,
  // its descriptor number may be another file's by now.
  return _impl->queue
      ->submit(cls, direction, len,
               [i = _impl, req] {
                 return i->fd == req.fd ? engine().io().submit(req) : make_ready_future<long>(-EBADF);
               })
      .then([i = _impl, call](long rc) -> future<std::size_t> {
        if (rc < 0) return make_exception_future<std::size_t>(fs_error(static_cast<int>(-rc), call, i->path));
        return make_ready_future<std::size_t>(static_cast<std::size_t>(rc));
      });
}

future<std::size_t> file::dma_read(std::uint64_t pos, char* buffer, std::size_t len, io_class cls) {
  return dma(io_direction::read, pos, buffer, len, cls);
}

future<std::size_t> file::dma_write(std::uint64_t pos, const char* buffer, std::size_t len, io_class cls) {
  // The kernel only reads the buffer of a write.
  return dma(io_direction::write, pos, const_cast<char*>(buffer), len, cls);
}

future<temporary_buffer<char>> file::dma_read_bulk(std::uint64_t pos, std::size_t len, io_class cls) {
  if (!_impl) throw fs_error(EBADF, "dma_read_bulk", "");
  auto i = _impl;  // the file stays open while this runs
  const std::size_t align = i->read_alignment;
  const std::uint64_t start = pos / align * align;
  const std::uint64_t end = (pos + len + align - 1) / align * align;
  auto buf = allocate_aligned_buffer(static_cast<std::size_t>(end - start), i->memory_alignment);
  std::size_t got = 0;
  while (got < buf.size()) {
    std::size_t n = co_await file(i).dma_read(start + got, buf.get_write() + got, buf.size() - got, cls);
    if (n == 0) break;  // the end of the file
    got += n;
    // A short read that is not aligned is the end of the file: the next
    // direct read would be misaligned.
    if (got % align != 0) break;
  }
  const std::size_t front = static_cast<std::size_t>(pos - start);
  if (got <= front) co_return temporary_buffer<char>();
  buf.trim(std::min(got, front + len));
  buf.trim_front(front);
  co_return buf;
}

future<> file::flush() {
  if (!_impl || _impl->fd < 0) return make_exception_future<>(fs_error(EBADF, "flush", path()));
  return engine().io().submit(io_request::fdatasync(_impl->fd)).then([i = _impl](long rc) {
    if (rc < 0) return make_exception_future<>(fs_error(static_cast<int>(-rc), "flush", i->path));
    return make_ready_future<>();
  });
}

future<struct stat> file::stat() {
  if (!_impl || _impl->fd < 0) return make_exception_future<struct stat>(fs_error(EBADF, "stat", path()));
  struct result {
    struct stat st {};
    int error = 0;
  };
  return run_blocking([fd = _impl->fd] {
           result r;
           if (::fstat(fd, &r.st) < 0) r.error = errno;
           return r;
         })
      .then([i = _impl](result r) {
        if (r.error != 0) return make_exception_future<struct stat>(fs_error(r.error, "stat", i->path));
        return make_ready_future<struct stat>(r.st);
      });
}

future<std::uint64_t> file::size() {
  return stat().then([](struct stat st) { return static_cast<std::uint64_t>(st.st_size); });
}

future<> file::truncate(std::uint64_t length) {
  if (!_impl || _impl->fd < 0) return make_exception_future<>(fs_error(EBADF, "truncate", path()));
  return run_blocking([fd = _impl->fd, length] { return result_of(::ftruncate(fd, static_cast<off_t>(length))); })
      .then([i = _impl](call_result r) {
        if (r.error != 0) return make_exception_future<>(fs_error(r.error, "truncate", i->path));
        return make_ready_future<>();
      });
}

future<> file::allocate(std::uint64_t pos, std::uint64_t len) {
  if (!_impl || _impl->fd < 0) return make_exception_future<>(fs_error(EBADF, "allocate", path()));
  return run_blocking([fd = _impl->fd, pos, len] {
           return result_of(::fallocate(fd, 0, static_cast<off_t>(pos), static_cast<off_t>(len)));
         })
      .then([i = _impl](call_result r) {
        if (r.error != 0) return make_exception_future<>(fs_error(r.error, "allocate", i->path));
        return make_ready_future<>();
      });
}

future<> file::close() {
  if (_impl && _impl->fd >= 0) {
    int fd = std::exchange(_impl->fd, -1);
    if (::close(fd) < 0 && errno != EINTR) return make_exception_future<>(fs_error(errno, "close", _impl->path));
  }
  return make_ready_future<>();
}

namespace {

struct opened {
  int fd = -1;
  int error = 0;
  std::string real_path;  // links resolved (the disk is found by it)
  bool direct = false;
  bool fell_back = false;
  std::size_t memory_alignment = default_dma_alignment;
  std::size_t offset_alignment = default_dma_alignment;
};

// On a blocking thread: open, falling back from O_DIRECT if allowed, and
// learn the direct-I/O alignment.
opened open_for_dma(const std::string& path, int flags, mode_t mode, bool require_direct) {
  opened o;
  // Open as asked, then ask for O_DIRECT: a filesystem that refuses it
  // refuses the fcntl, after create/exclusive/truncate have had their one
  // effect (opening with O_DIRECT would create the file and then fail).
  o.fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (o.fd < 0) {
    o.error = errno;
    return o;
  }
  struct stat st {};
  if (::fstat(o.fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(o.fd);
    o.fd = -1;
    o.error = EISDIR;
    return o;
  }
  char link[64];
  std::snprintf(link, sizeof(link), "/proc/self/fd/%d", o.fd);
  char real[PATH_MAX];
  ssize_t n = ::readlink(link, real, sizeof(real) - 1);
  o.real_path = n > 0 ? std::string(real, static_cast<std::size_t>(n)) : path;
  const int status = ::fcntl(o.fd, F_GETFL);
  if (status >= 0 && ::fcntl(o.fd, F_SETFL, status | O_DIRECT) == 0) {
    o.direct = true;
  } else if (require_direct) {
    ::close(o.fd);
    o.fd = -1;
    o.error = EINVAL;
    // What this call made, it takes away (only `exclusive` says it made it).
    if ((flags & O_CREAT) && (flags & O_EXCL)) ::unlink(path.c_str());
    return o;
  } else {
    o.fell_back = true;
  }
  if (!o.direct) {
    o.memory_alignment = 1;
    o.offset_alignment = 1;
    return o;
  }
  struct statx sx {};
  if (::statx(o.fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) &&
      sx.stx_dio_mem_align != 0 && sx.stx_dio_offset_align != 0) {
    o.memory_alignment = sx.stx_dio_mem_align;
    o.offset_alignment = sx.stx_dio_offset_align;
  }
  return o;
}

}  // namespace

future<file> open_file_dma(std::string_view path_view, open_flags flags, file_open_options options) {
  std::string path(path_view);
  opened o = co_await run_blocking([path, flags, options] {
    return open_for_dma(path, static_cast<int>(flags), options.mode, options.require_direct);
  });
  if (o.fd < 0) {
    if (o.error == EINVAL && options.require_direct) {
      throw std::system_error(EINVAL, std::system_category(),
                              call_name("open_file_dma", path) + ": the filesystem refuses O_DIRECT");
    }
    throw fs_error(o.error, "open_file_dma", path);
  }
  if (o.fell_back) {
    fs_log.info("{}: O_DIRECT is refused here; using buffered I/O", path);
  }
  auto i = std::make_shared<file::impl>();
  i->fd = o.fd;
  i->queue = io_queue_for(o.real_path);
  i->real_path = std::move(o.real_path);
  i->path = std::move(path);
  i->direct = o.direct;
  i->memory_alignment = o.memory_alignment;
  i->read_alignment = o.offset_alignment;
  i->write_alignment = o.offset_alignment;
  co_return file(std::move(i));
}

future<file> open_directory(std::string_view path_view) {
  std::string path(path_view);
  call_result r = co_await run_blocking(
      [path] { return result_of(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); });
  if (r.error != 0) throw fs_error(r.error, "open_directory", path);
  auto i = std::make_shared<file::impl>();
  i->fd = static_cast<int>(r.value);
  i->queue = io_queue_for(path);
  i->path = std::move(path);
  co_return file(std::move(i));
}

namespace {

directory_entry_type type_of(unsigned char d_type) noexcept {
  switch (d_type) {
    case DT_REG: return directory_entry_type::regular;
    case DT_DIR: return directory_entry_type::directory;
    case DT_LNK: return directory_entry_type::link;
    case DT_BLK: return directory_entry_type::block_device;
    case DT_CHR: return directory_entry_type::char_device;
    case DT_FIFO: return directory_entry_type::fifo;
    case DT_SOCK: return directory_entry_type::socket;
    default: return directory_entry_type::unknown;
  }
}

// The layout getdents64 writes (not in glibc's headers).
struct linux_dirent64 {
  ino64_t d_ino;
  off64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

struct entries_batch {
  std::vector<directory_entry> entries;
  int error = 0;
};

// On a blocking thread: the next entries of the open directory `fd`
// (empty at the end).
entries_batch read_entries(int fd) {
  entries_batch b;
  alignas(linux_dirent64) char buffer[32768];
  long n = ::syscall(SYS_getdents64, fd, buffer, sizeof(buffer));
  if (n < 0) {
    b.error = errno;
    return b;
  }
  for (long at = 0; at < n;) {
    auto* d = reinterpret_cast<linux_dirent64*>(buffer + at);
    std::string_view name(d->d_name);
    if (name != "." && name != "..") b.entries.push_back({std::string(name), type_of(d->d_type)});
    at += d->d_reclen;
  }
  return b;
}

}  // namespace

future<> list_directory(std::string_view path_view, noncopyable_function<future<>(directory_entry)> each) {
  std::string path(path_view);
  call_result r = co_await run_blocking(
      [path] { return result_of(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); });
  if (r.error != 0) throw fs_error(r.error, "list_directory", path);
  const int fd = static_cast<int>(r.value);
  std::exception_ptr failed;
  try {
    for (;;) {
      entries_batch b = co_await run_blocking([fd] { return read_entries(fd); });
      if (b.error != 0) throw fs_error(b.error, "list_directory", path);
      if (b.entries.empty()) break;
      for (auto& e : b.entries) co_await each(std::move(e));
    }
  } catch (...) {
    failed = std::current_exception();
  }
  ::close(fd);
  if (failed) std::rethrow_exception(failed);
}

namespace {

// Runs `call` (returning -1 and errno on failure) on a blocking thread.
template <typename Call>
future<> blocking_call(std::string_view name, std::string path, Call call) {
  call_result r = co_await run_blocking([call = std::move(call)] { return result_of(call()); });
  if (r.error != 0) throw fs_error(r.error, name, path);
}

}  // namespace

future<> remove_file(std::string_view path) {
  std::string p(path);
  return blocking_call("remove_file", p, [p] { return ::remove(p.c_str()); });
}

future<> rename_file(std::string_view old_path, std::string_view new_path) {
  std::string from(old_path), to(new_path);
  return blocking_call("rename_file", from + "\", \"" + to, [from, to] { return ::rename(from.c_str(), to.c_str()); });
}

future<> link_file(std::string_view old_path, std::string_view new_path) {
  std::string from(old_path), to(new_path);
  return blocking_call("link_file", from + "\", \"" + to, [from, to] { return ::link(from.c_str(), to.c_str()); });
}

future<bool> file_exists(std::string_view path_view) {
  std::string path(path_view);
  call_result r = co_await run_blocking([path] { return result_of(::access(path.c_str(), F_OK)); });
  if (r.error == 0) co_return true;
  if (r.error == ENOENT || r.error == ENOTDIR) co_return false;
  throw fs_error(r.error, "file_exists", path);
}

future<> make_directory(std::string_view path, mode_t mode) {
  std::string p(path);
  return blocking_call("make_directory", p, [p, mode] { return ::mkdir(p.c_str(), mode); });
}

}  // namespace reef
