// Files as core streams (core/iostream.h): sequential reads with read-ahead
// and sequential writes with write-behind, in aligned DMA blocks.
//
//   file f = co_await open_file_dma(path, open_flags::wo | open_flags::create | open_flags::truncate);
//   output_stream<char> out = make_file_output_stream(f);
//   co_await out.write("any bytes, any sizes");
//   co_await out.close();          // pads the last block, truncates to size, closes the file
//
//   input_stream<char> in = make_file_input_stream(co_await open_file_dma(path, open_flags::ro));
//   auto b = co_await in.read();   // buffer_size bytes at a time, fewer at the end
//
// Output: bytes gather in an aligned buffer of `buffer_size`; each full one
// is written at its position, with up to `write_behind` writes in flight.
// flush() writes a partial last block padded with zeros (it is written
// again, whole, when more bytes come), waits for every write and flushes
// the file (fdatasync); close() flushes, truncates the file to the bytes
// written (dropping the padding) and closes the file. A failed write fails
// the next write, flush or close.
//
// Input: reads of `buffer_size` at aligned positions, `read_ahead` more in
// flight ahead of the reader; the first and last buffers are cut to
// [offset, offset + length) and to the end of the file.
//
// Thread rules: as core/iostream.h; the file belongs to the stream's shard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "core/iostream.h"
#include "fs/file.h"

namespace reef {

struct file_input_stream_options {
  /// Bytes per read (rounded up to the file's read alignment).
  std::size_t buffer_size = 65536;
  /// Reads kept in flight beyond the one being waited for.
  unsigned read_ahead = 1;
};

struct file_output_stream_options {
  /// Bytes per write (rounded up to the file's write alignment).
  std::size_t buffer_size = 65536;
  /// Writes in flight at once, at most (at least 1).
  unsigned write_behind = 1;
};

/// Reads [offset, offset + length) of `f` (to its end by default).
input_stream<char> make_file_input_stream(file f, std::uint64_t offset = 0,
                                          std::uint64_t length = std::numeric_limits<std::uint64_t>::max(),
                                          file_input_stream_options options = {});
input_stream<char> make_file_input_stream(file f, file_input_stream_options options);

/// Writes `f` from position 0. The stream owns the file from here: close()
/// closes it.
output_stream<char> make_file_output_stream(file f, file_output_stream_options options = {});

}  // namespace reef
