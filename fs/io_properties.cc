#include "fs/io_properties.h"

#include "core/text.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace reef {

namespace {

constexpr auto trim = text::trim_line;

[[noreturn]] void refuse(std::size_t line, const std::string& what) {
  throw std::invalid_argument("io properties, line " + std::to_string(line) + ": " + what);
}

double parse_positive(std::size_t line, std::string_view key, std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value) || value <= 0) {
    refuse(line, std::string(key) + " '" + std::string(text) + "' is not a positive number");
  }
  return value;
}

}  // namespace

std::vector<disk_properties> parse_io_properties(std::string_view text) {
  std::vector<disk_properties> disks;
  // Which of the four numbers the current disk has (bits 0-3).
  unsigned seen = 0;
  std::size_t disk_line = 0;
  auto finish_disk = [&](std::size_t line) {
    if (!disks.empty() && seen != 0xf) {
      refuse(disk_line, "mountpoint " + disks.back().mountpoint +
                            " lacks one of read_iops, read_bandwidth, write_iops, write_bandwidth (by line " +
                            std::to_string(line) + ")");
    }
  };
  std::size_t line = 0;
  while (!text.empty()) {
    ++line;
    auto nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (auto hash = raw.find('#'); hash != std::string_view::npos) raw = raw.substr(0, hash);
    raw = trim(raw);
    if (raw.empty()) continue;
    auto space = raw.find_first_of(" \t");
    if (space == std::string_view::npos) refuse(line, "'" + std::string(raw) + "' has no value");
    std::string_view key = raw.substr(0, space);
    std::string_view value = trim(raw.substr(space));
    if (key == "mountpoint") {
      finish_disk(line);
      if (value.front() != '/') refuse(line, "mountpoint '" + std::string(value) + "' is not an absolute path");
      while (value.size() > 1 && value.back() == '/') value.remove_suffix(1);  // "/data/" is "/data"
      for (const auto& d : disks) {
        if (d.mountpoint == value) refuse(line, "mountpoint " + std::string(value) + " appears twice");
      }
      disks.push_back({std::string(value), {}});
      seen = 0;
      disk_line = line;
      continue;
    }
    if (disks.empty()) refuse(line, "'" + std::string(key) + "' before any mountpoint");
    disk_model& m = disks.back().model;
    unsigned bit;
    double* field;
    if (key == "read_iops") {
      bit = 1, field = &m.read_iops;
    } else if (key == "read_bandwidth") {
      bit = 2, field = &m.read_bandwidth;
    } else if (key == "write_iops") {
      bit = 4, field = &m.write_iops;
    } else if (key == "write_bandwidth") {
      bit = 8, field = &m.write_bandwidth;
    } else {
      refuse(line, "unknown key '" + std::string(key) + "'");
    }
    if (seen & bit) refuse(line, std::string(key) + " given twice for " + disks.back().mountpoint);
    *field = parse_positive(line, key, value);
    seen |= bit;
  }
  finish_disk(line);
  if (disks.empty()) throw std::invalid_argument("io properties: no mountpoint");
  return disks;
}

std::vector<disk_properties> read_io_properties_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::system_error(errno, std::system_category(), "read_io_properties_file(\"" + path + "\")");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return parse_io_properties(text.str());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
}

std::string format_io_properties(const std::vector<disk_properties>& disks) {
  std::ostringstream out;
  out.precision(15);
  for (const auto& d : disks) {
    out << "mountpoint " << d.mountpoint << "\n"
        << "read_iops " << d.model.read_iops << "\n"
        << "read_bandwidth " << d.model.read_bandwidth << "\n"
        << "write_iops " << d.model.write_iops << "\n"
        << "write_bandwidth " << d.model.write_bandwidth << "\n";
  }
  return out.str();
}

}  // namespace reef
