// NewReno's window, segment by segment: RFC 6928's initial window, slow
// start's one segment per ACK, congestion avoidance's one segment per
// window, and what a loss and a timeout leave.
#include "tcpip/tcp_congestion.h"

#include <gtest/gtest.h>

namespace reef::tcpip {
namespace {

constexpr std::uint32_t mss = 1000;

TEST(newreno, starts_with_rfc_6928s_window) {
  EXPECT_EQ(congestion_control::initial_window(1460), 14600u);
  EXPECT_EQ(congestion_control::initial_window(536), 5360u) << "ten small segments";
  EXPECT_EQ(congestion_control::initial_window(9000), 18000u) << "two jumbo ones";
  auto cc = make_newreno(1460);
  EXPECT_EQ(cc->name(), "newreno");
  EXPECT_EQ(cc->cwnd(), 14600u);
  EXPECT_TRUE(cc->in_slow_start());
}

TEST(newreno, slow_start_grows_a_segment_per_ack_then_avoidance_one_per_window) {
  auto cc = make_newreno(mss);
  ASSERT_EQ(cc->cwnd(), 10 * mss);
  cc->on_ack(mss);
  EXPECT_EQ(cc->cwnd(), 11 * mss);
  cc->on_ack(5 * mss);
  EXPECT_EQ(cc->cwnd(), 12 * mss) << "at most one segment per ACK (RFC 5681 3.1)";
  cc->on_ack(0);
  EXPECT_EQ(cc->cwnd(), 12 * mss);

  cc->on_congestion(20 * mss);
  EXPECT_EQ(cc->ssthresh(), 10 * mss) << "half of what was in flight";
  EXPECT_EQ(cc->cwnd(), 10 * mss);
  EXPECT_FALSE(cc->in_slow_start());
  cc->on_recovered();
  EXPECT_EQ(cc->cwnd(), 10 * mss);

  // A window's worth of ACKs (10 segments) grows it by one segment.
  for (int i = 0; i < 9; ++i) cc->on_ack(mss);
  EXPECT_EQ(cc->cwnd(), 10 * mss);
  cc->on_ack(mss);
  EXPECT_EQ(cc->cwnd(), 11 * mss);
  for (int i = 0; i < 11; ++i) cc->on_ack(mss);
  EXPECT_EQ(cc->cwnd(), 12 * mss) << "the next needs 11 segments";
}

TEST(newreno, a_timeout_drops_to_one_segment_and_ssthresh_keeps_two) {
  auto cc = make_newreno(mss);
  cc->on_timeout(3 * mss);
  EXPECT_EQ(cc->cwnd(), mss) << "the loss window";
  EXPECT_EQ(cc->ssthresh(), 2 * mss) << "never below two segments";
  EXPECT_TRUE(cc->in_slow_start());
  cc->on_ack(mss);
  EXPECT_EQ(cc->cwnd(), 2 * mss);
  EXPECT_FALSE(cc->in_slow_start()) << "slow start ends at ssthresh: avoidance from here";
  cc->on_ack(mss);
  EXPECT_EQ(cc->cwnd(), 2 * mss);
  cc->on_ack(mss);
  EXPECT_EQ(cc->cwnd(), 3 * mss) << "a window's worth (two segments) acknowledged";
  cc->on_congestion(0);
  EXPECT_EQ(cc->ssthresh(), 2 * mss) << "nothing in flight: still two segments";
}

TEST(newreno, a_second_timeout_keeps_ssthresh_and_the_handshake_and_idle_shrink_the_start) {
  auto cc = make_newreno(mss);
  for (int i = 0; i < 20; ++i) cc->on_ack(mss);  // cwnd 30 segments
  cc->on_timeout(30 * mss);
  EXPECT_EQ(cc->ssthresh(), 15 * mss);
  cc->on_timeout(mss);
  EXPECT_EQ(cc->ssthresh(), 15 * mss) << "the retransmission timing out again does not halve it again";
  cc->on_ack(mss);
  cc->on_timeout(4 * mss);
  EXPECT_EQ(cc->ssthresh(), 2 * mss) << "after new data was acknowledged, a timeout sets it anew";

  auto lost_syn = make_newreno(mss);
  lost_syn->on_handshake_retransmitted();
  EXPECT_EQ(lost_syn->cwnd(), mss);
  auto idle = make_newreno(mss);
  for (int i = 0; i < 20; ++i) idle->on_ack(mss);
  idle->on_idle_restart();
  EXPECT_EQ(idle->cwnd(), 10 * mss) << "back to the initial window";
  lost_syn->on_idle_restart();
  EXPECT_EQ(lost_syn->cwnd(), mss) << "never grown by it";
}

TEST(newreno, the_window_saturates_rather_than_wraps) {
  auto cc = make_newreno(65535);
  for (int i = 0; i < 70000; ++i) cc->on_ack(65535);
  EXPECT_EQ(cc->cwnd(), 0xffffffffu);
}

}  // namespace
}  // namespace reef::tcpip
