// Proves //third_party/liburing compiles and links: a ring is set up and a
// no-op goes round it.
#include <liburing.h>

#include <gtest/gtest.h>

namespace {

TEST(liburing, nop_round_trip) {
  io_uring ring;
  int rc = io_uring_queue_init(4, &ring, 0);
  if (rc < 0) GTEST_SKIP() << "io_uring unavailable here: " << -rc;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  ASSERT_NE(sqe, nullptr);
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data64(sqe, 42);
  ASSERT_EQ(io_uring_submit(&ring), 1);
  io_uring_cqe* cqe = nullptr;
  ASSERT_EQ(io_uring_wait_cqe(&ring, &cqe), 0);
  EXPECT_EQ(io_uring_cqe_get_data64(cqe), 42u);
  EXPECT_EQ(cqe->res, 0);
  io_uring_cqe_seen(&ring, cqe);
  io_uring_queue_exit(&ring);
}

}  // namespace
