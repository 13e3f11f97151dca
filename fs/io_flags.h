// The --io-properties-file and --io-model flags: the disk models
// (fs/io_properties.h) the shards' I/O queues use. Linking this target
// defines the flags; parsing the command line reads and checks the file, and
// a file that cannot be read or parsed is a parse error naming the flag, the
// file and the line.
//
//   --io-properties-file /etc/reef/io.conf     (written by tools/iotune)
//   --io-model 100000,2e9,80000,1e9             (read IOPS, read bytes/s, write IOPS, write bytes/s)
//
// --io-model applies to every file no disk of the file covers. Without
// either the queues do not limit (fs/io_queue.h).
//
// Thread rules: the flag is parsed on the main thread before shards start.
#pragma once

#include <string>

namespace reef {

/// The file --io-properties-file names ("" unless given).
std::string io_properties_file_flag();

}  // namespace reef
