// NewReno's window, segment by segment: RFC 6928's initial window, slow
// start's one segment per ACK, congestion avoidance's one segment per
// window, and what a loss and a timeout leave. CUBIC's window over time
// after a loss, against RFC 9438's formulas.
#include "tcpip/tcp_congestion.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;

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
  cc->on_ack(mss, 0us, 0us);
  EXPECT_EQ(cc->cwnd(), 11 * mss);
  cc->on_ack(5 * mss, 0us, 0us);
  EXPECT_EQ(cc->cwnd(), 12 * mss) << "at most one segment per ACK (RFC 5681 3.1)";
  cc->on_ack(0, 0us, 0us);
  EXPECT_EQ(cc->cwnd(), 12 * mss);

  cc->on_congestion(20 * mss);
  EXPECT_EQ(cc->ssthresh(), 10 * mss) << "half of what was in flight";
  EXPECT_EQ(cc->cwnd(), 10 * mss);
  EXPECT_FALSE(cc->in_slow_start());
  cc->on_recovered();
  EXPECT_EQ(cc->cwnd(), 10 * mss);

  // A window's worth of ACKs (10 segments) grows it by one segment.
  for (int i = 0; i < 9; ++i) cc->on_ack(mss, 0us, 0us);
  EXPECT_EQ(cc->cwnd(), 10 * mss);
  cc->on_ack(mss, 0us, 0us);
  EXPECT_EQ(cc->cwnd(), 11 * mss);
  for (int i = 0; i < 11; ++i) cc->on_ack(mss, 0us, 0us);
  EXPECT_EQ(cc->cwnd(), 12 * mss) << "the next needs 11 segments";
}

TEST(newreno, a_timeout_drops_to_one_segment_and_ssthresh_keeps_two) {
  auto cc = make_newreno(mss);
  cc->on_timeout(3 * mss);
  EXPECT_EQ(cc->cwnd(), mss) << "the loss window";
  EXPECT_EQ(cc->ssthresh(), 2 * mss) << "never below two segments";
  EXPECT_TRUE(cc->in_slow_start());
  cc->on_ack(mss, 0us, 0us);
  EXPECT_EQ(cc->cwnd(), 2 * mss);
  EXPECT_FALSE(cc->in_slow_start()) << "slow start ends at ssthresh: avoidance from here";
  cc->on_ack(mss, 0us, 0us);
  EXPECT_EQ(cc->cwnd(), 2 * mss);
  cc->on_ack(mss, 0us, 0us);
  EXPECT_EQ(cc->cwnd(), 3 * mss) << "a window's worth (two segments) acknowledged";
  cc->on_congestion(0);
  EXPECT_EQ(cc->ssthresh(), 2 * mss) << "nothing in flight: still two segments";
}

TEST(newreno, a_second_timeout_keeps_ssthresh_and_the_handshake_and_idle_shrink_the_start) {
  auto cc = make_newreno(mss);
  for (int i = 0; i < 20; ++i) cc->on_ack(mss, 0us, 0us);  // cwnd 30 segments
  cc->on_timeout(30 * mss);
  EXPECT_EQ(cc->ssthresh(), 15 * mss);
  cc->on_timeout(mss);
  EXPECT_EQ(cc->ssthresh(), 15 * mss) << "the retransmission timing out again does not halve it again";
  cc->on_ack(mss, 0us, 0us);
  cc->on_timeout(4 * mss);
  EXPECT_EQ(cc->ssthresh(), 2 * mss) << "after new data was acknowledged, a timeout sets it anew";

  auto lost_syn = make_newreno(mss);
  lost_syn->on_handshake_retransmitted();
  EXPECT_EQ(lost_syn->cwnd(), mss);
  auto idle = make_newreno(mss);
  for (int i = 0; i < 20; ++i) idle->on_ack(mss, 0us, 0us);
  idle->on_idle_restart();
  EXPECT_EQ(idle->cwnd(), 10 * mss) << "back to the initial window";
  lost_syn->on_idle_restart();
  EXPECT_EQ(lost_syn->cwnd(), mss) << "never grown by it";
}

TEST(newreno, the_window_saturates_rather_than_wraps) {
  auto cc = make_newreno(65535);
  for (int i = 0; i < 70000; ++i) cc->on_ack(65535, 0us, 0us);
  EXPECT_EQ(cc->cwnd(), 0xffffffffu);
}

// Acknowledges a window's worth of segments a round trip, `rounds`
// times, from `now`; the time at the end.
std::chrono::microseconds run_rounds(congestion_control& cc, std::chrono::microseconds now,
                                     std::chrono::microseconds rtt, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    const std::uint32_t segments = cc.cwnd() / cc.mss();
    for (std::uint32_t i = 0; i < segments; ++i) cc.on_ack(cc.mss(), now, rtt);
    now += rtt;
  }
  return now;
}

TEST(cubic, is_the_default_shape_slow_start_as_newreno_and_a_loss_keeps_70_percent) {
  auto cc = make_cubic(mss);
  EXPECT_EQ(cc->name(), "cubic");
  EXPECT_EQ(cc->cwnd(), 10 * mss);
  cc->on_ack(5 * mss, 0us, 0us);
  EXPECT_EQ(cc->cwnd(), 11 * mss) << "slow start: a segment per ACK at most";
  for (int i = 0; i < 89; ++i) cc->on_ack(mss, 0us, 0us);
  ASSERT_EQ(cc->cwnd(), 100 * mss);
  cc->on_congestion(100 * mss);
  EXPECT_EQ(cc->cwnd(), 70 * mss) << "beta = 0.7";
  EXPECT_EQ(cc->ssthresh(), 70 * mss);
  cc->on_recovered();
  EXPECT_EQ(cc->cwnd(), 70 * mss);
}

TEST(cubic, the_window_climbs_back_to_its_peak_in_k_seconds_and_then_probes_past_it) {
  auto cc = make_cubic(mss);
  for (int i = 0; i < 90; ++i) cc->on_ack(mss, 0us, 0us);
  cc->on_congestion(100 * mss);  // W_max = 100 segments, cwnd 70
  // K = cbrt(W_max (1 - beta) / C) = cbrt(75) = 4.22 s.
  const double k = std::cbrt(100 * (1 - 0.7) / 0.4);
  const auto rtt = 100ms;
  std::chrono::microseconds now = 1s;
  // Half way to K: concave, most of the way back already.
  now = run_rounds(*cc, now, rtt, 21);
  const double half = 0.4 * std::pow(2.1 + 0.1 - k, 3) + 100;
  EXPECT_NEAR(cc->cwnd() / double(mss), half, 3.0) << "W_cubic(t + RTT) at t = 2.1 s";
  // At K, the plateau: about W_max.
  now = run_rounds(*cc, now, rtt, 21);
  EXPECT_NEAR(cc->cwnd() / double(mss), 100.0, 3.0);
  const std::uint32_t at_peak = cc->cwnd();
  // Past it the convex part grows faster and faster.
  now = run_rounds(*cc, now, rtt, 20);
  const std::uint32_t later = cc->cwnd();
  run_rounds(*cc, now, rtt, 10);
  EXPECT_GT(later, at_peak);
  EXPECT_GT(cc->cwnd() - later, later - at_peak) << "10 rounds past the first 20 grow more than those 20";
}

TEST(cubic, a_loss_below_the_last_peak_remembers_a_lower_one_and_short_rtts_grow_like_reno) {
  auto cc = make_cubic(mss);
  for (int i = 0; i < 90; ++i) cc->on_ack(mss, 0us, 0us);
  cc->on_congestion(100 * mss);  // peak 100, cwnd 70
  cc->on_congestion(70 * mss);   // below the peak: fast convergence
  EXPECT_EQ(cc->cwnd(), 49 * mss);
  // W_max = 70 * (1 + 0.7) / 2 = 59.5: K = cbrt(59.5 - 49) / 0.4) = 2.97 s.
  // With a 1 ms round trip, W_cubic barely moves in 200 rounds; the
  // Reno-friendly estimate (alpha = 0.53 a round) leads.
  const std::uint32_t before = cc->cwnd();
  run_rounds(*cc, 0us, 1ms, 200);
  const double reno_like = 49 + 200 * 3 * (1 - 0.7) / (1 + 0.7);
  EXPECT_NEAR(cc->cwnd() / double(mss), reno_like, 6.0);
  EXPECT_GT(cc->cwnd(), before);
}

TEST(cubic, a_timeout_leaves_one_segment_and_a_repeat_keeps_ssthresh) {
  auto cc = make_cubic(mss);
  for (int i = 0; i < 90; ++i) cc->on_ack(mss, 0us, 0us);
  cc->on_timeout(100 * mss);
  EXPECT_EQ(cc->cwnd(), mss);
  EXPECT_EQ(cc->ssthresh(), 70 * mss);
  cc->on_timeout(mss);
  EXPECT_EQ(cc->ssthresh(), 70 * mss);
  EXPECT_TRUE(cc->in_slow_start());
}

}  // namespace
}  // namespace reef::tcpip
