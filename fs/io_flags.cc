#include "fs/io_flags.h"

#include <absl/flags/flag.h>

#include <exception>
#include <string>
#include <vector>

#include "fs/io_properties.h"
#include "fs/io_queue.h"

namespace reef {
namespace {

// A file name; parsing it reads and checks the file.
struct io_properties_choice {
  std::string path;
  std::vector<disk_properties> disks;
};

bool AbslParseFlag(absl::string_view text, io_properties_choice* out, std::string* error) {
  out->path = std::string(text);
  out->disks.clear();
  if (text.empty()) return true;
  try {
    out->disks = read_io_properties_file(out->path);
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
  return true;
}

std::string AbslUnparseFlag(const io_properties_choice& choice) { return choice.path; }

}  // namespace
}  // namespace reef

ABSL_FLAG(reef::io_properties_choice, io_properties_file, reef::io_properties_choice{},
          "the disk models for the I/O queues (written by tools/iotune); none: the queues do not limit")
    .OnUpdate([] { reef::set_io_properties(absl::GetFlag(FLAGS_io_properties_file).disks); });

namespace reef {

std::string io_properties_file_flag() { return absl::GetFlag(FLAGS_io_properties_file).path; }

}  // namespace reef
