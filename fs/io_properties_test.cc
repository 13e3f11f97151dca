// The io-properties text: what it accepts, and that garbage gets an error
// naming the line.
#include "fs/io_properties.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <system_error>

namespace reef {
namespace {

TEST(io_properties, two_disks_with_comments_and_blank_lines) {
  auto disks = parse_io_properties(
      "# written by iotune\n"
      "\n"
      "mountpoint /var/lib/data/\n"
      "read_iops 120000\n"
      "read_bandwidth 2147483648   # 2 GiB/s\n"
      "write_iops 80000\n"
      "write_bandwidth 1.5e9\n"
      "mountpoint //\r\n"
      "  write_bandwidth 100\t\n"
      "write_iops 10\n"
      "read_bandwidth 200\n"
      "read_iops 20\n");
  ASSERT_EQ(disks.size(), 2u);
  EXPECT_EQ(disks[0].mountpoint, "/var/lib/data");
  EXPECT_EQ(disks[0].model.read_iops, 120000);
  EXPECT_EQ(disks[0].model.read_bandwidth, 2147483648.0);
  EXPECT_EQ(disks[0].model.write_bandwidth, 1.5e9);
  EXPECT_EQ(disks[1].mountpoint, "/");
  EXPECT_EQ(disks[1].model.read_iops, 20);
  EXPECT_EQ(disks[1].model.write_bandwidth, 100);
}

TEST(io_properties, format_then_parse_gives_the_same) {
  std::vector<disk_properties> disks{{"/a", {1, 2, 3, 4}}, {"/b/c", {1e5, 3.25e9, 7e4, 1.125e9}}};
  auto back = parse_io_properties(format_io_properties(disks));
  ASSERT_EQ(back.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back[i].mountpoint, disks[i].mountpoint);
    EXPECT_EQ(back[i].model.read_iops, disks[i].model.read_iops);
    EXPECT_EQ(back[i].model.read_bandwidth, disks[i].model.read_bandwidth);
    EXPECT_EQ(back[i].model.write_iops, disks[i].model.write_iops);
    EXPECT_EQ(back[i].model.write_bandwidth, disks[i].model.write_bandwidth);
  }
}

TEST(io_properties, garbage_is_refused_naming_the_line) {
  const std::string full = "read_iops 1\nread_bandwidth 1\nwrite_iops 1\nwrite_bandwidth 1\n";
  struct {
    std::string text;
    std::string says;
  } cases[] = {
      {"", "no mountpoint"},
      {"# only a comment\n", "no mountpoint"},
      {"read_iops 5\n", "line 1: 'read_iops' before any mountpoint"},
      {"mountpoint /d\nread_iops 5\n", "line 1: mountpoint /d lacks one of"},
      {"mountpoint relative\n" + full, "line 1: mountpoint 'relative' is not an absolute path"},
      {"mountpoint /d\n" + full + "mountpoint /d\n" + full, "line 6: mountpoint /d appears twice"},
      {"mountpoint /d\nread_iops -3\n", "line 2: read_iops '-3' is not a positive number"},
      {"mountpoint /d\nread_iops 0\n", "line 2: read_iops '0' is not a positive number"},
      {"mountpoint /d\nread_iops 12abc\n", "line 2: read_iops '12abc' is not a positive number"},
      {"mountpoint /d\nread_iops nan\n", "line 2"},
      {"mountpoint /d\nread_iops inf\n", "line 2"},
      {"mountpoint /d\nread_iops\n", "line 2: 'read_iops' has no value"},
      {"mountpoint /d\nread_iops 1\nread_iops 2\n", "line 3: read_iops given twice"},
      {"mountpoint /d\nspeed 9000\n", "line 2: unknown key 'speed'"},
      {std::string("mountpoint /d\n\0\xff\n", 17), "line 2"},
  };
  for (const auto& c : cases) {
    try {
      parse_io_properties(c.text);
      ADD_FAILURE() << "accepted: " << c.text;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << e.what() << " for: " << c.text;
    }
  }
}

TEST(io_properties, a_missing_file_names_its_path) {
  try {
    read_io_properties_file("/nonexistent/io.conf");
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/io.conf"), std::string::npos);
  }
}

}  // namespace
}  // namespace reef
