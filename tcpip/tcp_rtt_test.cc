// RFC 6298's estimator worked through by hand: the first sample, the
// smoothing, the minimum and maximum, back-off and its end.
#include "tcpip/tcp_rtt.h"

#include <gtest/gtest.h>

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;

TEST(tcp_rtt, starts_at_one_second_and_takes_the_first_sample_whole) {
  tcp_rtt_estimator rtt;
  EXPECT_EQ(rtt.rto(), 1s) << "RFC 6298 2.1";
  EXPECT_FALSE(rtt.has_sample());
  rtt.sample(100ms);
  EXPECT_EQ(rtt.srtt(), 100ms);
  EXPECT_EQ(rtt.rttvar(), 50ms);
  EXPECT_EQ(rtt.rto(), 300ms) << "100 + 4 * 50";
}

TEST(tcp_rtt, smooths_later_samples_by_the_rfcs_gains) {
  tcp_rtt_estimator rtt;
  rtt.sample(100ms);
  rtt.sample(200ms);
  // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5.
  EXPECT_EQ(rtt.rttvar(), 62500us);
  EXPECT_EQ(rtt.srtt(), 112500us);
  EXPECT_EQ(rtt.rto(), 362500us);
}

TEST(tcp_rtt, the_minimum_and_the_granularity_bound_it_below) {
  tcp_rtt_estimator rtt({.min_rto = 200ms});
  for (int i = 0; i < 50; ++i) rtt.sample(1ms);
  EXPECT_EQ(rtt.rto(), 200ms) << "a LAN's 1 ms round trips still wait 200 ms";
  tcp_rtt_estimator fine({.min_rto = 0ms, .granularity = 5ms});
  for (int i = 0; i < 50; ++i) fine.sample(10ms);
  EXPECT_EQ(fine.rttvar(), 0ms) << "steady samples: no variance left";
  EXPECT_EQ(fine.rto(), 15ms) << "SRTT + G when 4 RTTVAR is below G";
}

TEST(tcp_rtt, timeouts_double_it_up_to_the_maximum_until_a_new_sample) {
  tcp_rtt_estimator rtt({.max_rto = 10s});
  rtt.sample(100ms);
  rtt.back_off();
  EXPECT_EQ(rtt.rto(), 600ms);
  rtt.back_off();
  EXPECT_EQ(rtt.rto(), 1200ms);
  for (int i = 0; i < 10; ++i) rtt.back_off();
  EXPECT_EQ(rtt.rto(), 10s) << "capped";
  EXPECT_EQ(rtt.backoffs(), 12u);
  rtt.sample(100ms);
  EXPECT_EQ(rtt.backoffs(), 0u);
  EXPECT_LT(rtt.rto(), 1s) << "a new measurement ends the back-off";
  rtt.sample(-5ms);  // a clock that went back reads as 0
  EXPECT_GE(rtt.srtt(), 0ms);
}

}  // namespace
}  // namespace reef::tcpip
