#include "fs/io_flags.h"

#include <absl/flags/flag.h>

#include <exception>
#include <optional>
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

// --io-model: four numbers for every file no io-properties disk covers.
struct io_model_choice {
  std::string text;
  std::optional<disk_model> model;
};

bool AbslParseFlag(absl::string_view text, io_model_choice* out, std::string* error) {
  out->text = std::string(text);
  out->model.reset();
  if (text.empty()) return true;
  std::string as_file = "mountpoint /\n";
  const char* keys[] = {"read_iops", "read_bandwidth", "write_iops", "write_bandwidth"};
  std::size_t at = 0;
  for (int i = 0; i < 4; ++i) {
    auto comma = text.find(',', at);
    if ((i < 3) != (comma != absl::string_view::npos)) {
      *error = "want READ_IOPS,READ_BANDWIDTH,WRITE_IOPS,WRITE_BANDWIDTH (four numbers)";
      return false;
    }
    as_file += std::string(keys[i]) + " " + std::string(text.substr(at, comma - at)) + "\n";
    at = comma + 1;
  }
  try {
    out->model = parse_io_properties(as_file).front().model;
  } catch (const std::exception& e) {
    std::string why = e.what();
    auto colon = why.rfind(": ");
    *error = colon == std::string::npos ? why : why.substr(colon + 2);
    return false;
  }
  return true;
}

std::string AbslUnparseFlag(const io_model_choice& choice) { return choice.text; }

void apply_io_flags();

}  // namespace
}  // namespace reef

ABSL_FLAG(reef::io_properties_choice, io_properties_file, reef::io_properties_choice{},
          "the disk models for the I/O queues (written by tools/iotune); none: the queues do not limit")
    .OnUpdate([] { reef::apply_io_flags(); });
ABSL_FLAG(reef::io_model_choice, io_model, reef::io_model_choice{},
          "READ_IOPS,READ_BANDWIDTH,WRITE_IOPS,WRITE_BANDWIDTH (bandwidths in bytes a second): the disk model "
          "of every file that no --io-properties-file disk covers")
    .OnUpdate([] { reef::apply_io_flags(); });

namespace reef {
namespace {

void apply_io_flags() {
  auto disks = absl::GetFlag(FLAGS_io_properties_file).disks;
  const auto model = absl::GetFlag(FLAGS_io_model).model;
  bool root_covered = false;
  for (const auto& d : disks) root_covered |= d.mountpoint == "/";
  if (model && !root_covered) disks.push_back({"/", *model});
  set_io_properties(std::move(disks));
}

}  // namespace

std::string io_properties_file_flag() { return absl::GetFlag(FLAGS_io_properties_file).path; }

}  // namespace reef
