#include "core/io_backend.h"

#include <atomic>

namespace reef {

namespace core_internal {

namespace {
std::atomic<io_backend_factory> io_uring_factory{nullptr};
}  // namespace

void register_io_uring_backend(io_backend_factory factory) noexcept { io_uring_factory.store(factory); }

io_backend_factory io_uring_backend_factory() noexcept { return io_uring_factory.load(); }

}  // namespace core_internal

io_request io_request::read(int fd, void* buf, std::size_t len, std::int64_t offset) noexcept {
  io_request r;
  r.kind = op::read;
  r.fd = fd;
  r.buf = buf;
  r.len = len;
  r.offset = offset;
  return r;
}

io_request io_request::write(int fd, const void* buf, std::size_t len,
                             std::int64_t offset) noexcept {
  io_request r = read(fd, const_cast<void*>(buf), len, offset);
  r.kind = op::write;
  return r;
}

io_request io_request::readv(int fd, const iovec* iov, int iovcnt, std::int64_t offset) noexcept {
  io_request r;
  r.kind = op::readv;
  r.fd = fd;
  r.iov = iov;
  r.len = static_cast<std::size_t>(iovcnt);
  r.offset = offset;
  return r;
}

io_request io_request::writev(int fd, const iovec* iov, int iovcnt, std::int64_t offset) noexcept {
  io_request r = readv(fd, iov, iovcnt, offset);
  r.kind = op::writev;
  return r;
}

io_request io_request::recv(int fd, void* buf, std::size_t len, int flags) noexcept {
  io_request r;
  r.kind = op::recv;
  r.fd = fd;
  r.buf = buf;
  r.len = len;
  r.flags = flags;
  return r;
}

io_request io_request::send(int fd, const void* buf, std::size_t len, int flags) noexcept {
  io_request r = recv(fd, const_cast<void*>(buf), len, flags);
  r.kind = op::send;
  return r;
}

io_request io_request::recvmsg(int fd, msghdr* msg, int flags) noexcept {
  io_request r;
  r.kind = op::recvmsg;
  r.fd = fd;
  r.msg = msg;
  r.flags = flags;
  return r;
}

io_request io_request::sendmsg(int fd, msghdr* msg, int flags) noexcept {
  io_request r = recvmsg(fd, msg, flags);
  r.kind = op::sendmsg;
  return r;
}

io_request io_request::accept(int fd, sockaddr* addr, socklen_t* addrlen, int flags) noexcept {
  io_request r;
  r.kind = op::accept;
  r.fd = fd;
  r.addr = addr;
  r.addrlen_out = addrlen;
  r.flags = flags;
  return r;
}

io_request io_request::connect(int fd, const sockaddr* addr, socklen_t addrlen) noexcept {
  io_request r;
  r.kind = op::connect;
  r.fd = fd;
  r.addr = const_cast<sockaddr*>(addr);
  r.addrlen = addrlen;
  return r;
}

io_request io_request::fsync(int fd) noexcept {
  io_request r;
  r.kind = op::fsync;
  r.fd = fd;
  return r;
}

io_request io_request::fdatasync(int fd) noexcept {
  io_request r;
  r.kind = op::fdatasync;
  r.fd = fd;
  return r;
}

io_request io_request::poll(int fd, int events) noexcept {
  io_request r;
  r.kind = op::poll;
  r.fd = fd;
  r.flags = events;
  return r;
}

}  // namespace reef
