// Fuzzes the io-properties parser: any text either parses into disks that
// are complete (an absolute mountpoint, four positive finite numbers) and
// that format and parse back the same, or is refused with
// std::invalid_argument. Nothing else may happen.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "fs/io_properties.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<reef::disk_properties> disks;
  try {
    disks = reef::parse_io_properties(text);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  for (const auto& d : disks) {
    const auto& m = d.model;
    for (double v : {m.read_iops, m.read_bandwidth, m.write_iops, m.write_bandwidth}) {
      if (!(std::isfinite(v) && v > 0)) std::abort();
    }
    if (d.mountpoint.empty() || d.mountpoint.front() != '/') std::abort();
  }
  auto again = reef::parse_io_properties(reef::format_io_properties(disks));
  if (again.size() != disks.size()) std::abort();
  for (std::size_t i = 0; i < disks.size(); ++i) {
    if (again[i].mountpoint != disks[i].mountpoint) std::abort();
  }
  return 0;
}
