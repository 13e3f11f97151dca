// The disk model: what a disk can do, per mount point, as iotune measures
// it and the I/O queue (fs/io_queue.h) uses it.
//
// The io-properties file is plain text, one "key value" pair a line; '#'
// starts a comment; each `mountpoint` line begins a disk, and the four
// numbers that follow describe it (all four are required, positive):
//
//   # written by iotune
//   mountpoint /var/lib/data
//   read_iops 120000           # 4 KiB random reads a second
//   read_bandwidth 2147483648  # bytes a second, sequential
//   write_iops 80000
//   write_bandwidth 1073741824
//
// Thread rules: plain values; parse on any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace reef {

struct disk_model {
  double read_iops = 0;
  double read_bandwidth = 0;  // bytes a second
  double write_iops = 0;
  double write_bandwidth = 0;  // bytes a second
};

struct disk_properties {
  std::string mountpoint;
  disk_model model;
};

/// Parses an io-properties text. Throws std::invalid_argument naming the
/// line and what is wrong with it.
std::vector<disk_properties> parse_io_properties(std::string_view text);

/// Reads and parses the file at `path`. Throws std::system_error (naming
/// the path) if it cannot be read, std::invalid_argument as above.
std::vector<disk_properties> read_io_properties_file(const std::string& path);

/// The text of `disks` in the format above (what iotune writes).
std::string format_io_properties(const std::vector<disk_properties>& disks);

}  // namespace reef
