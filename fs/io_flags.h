// The --io-properties-file flag: the disk models (fs/io_properties.h) the
// shards' I/O queues use. Linking this target defines the flag; parsing the
// command line reads and checks the file, and a file that cannot be read or
// parsed is a parse error naming the flag, the file and the line.
//
//   --io-properties-file /etc/reef/io.conf     (written by tools/iotune)
//
// Without it the queues do not limit (fs/io_queue.h).
//
// Thread rules: the flag is parsed on the main thread before shards start.
#pragma once

#include <string>

namespace reef {

/// The file --io-properties-file names ("" unless given).
std::string io_properties_file_flag();

}  // namespace reef
