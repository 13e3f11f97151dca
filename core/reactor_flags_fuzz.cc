// Fuzzes the command-line parser: the input is an argv whose arguments are
// separated by NUL bytes. Whatever comes in, parsing and turning the flags
// into options must end in a value or a clear error, never a crash.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/reactor_flags.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args{"fuzz"};
  std::string current;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current.push_back(static_cast<char>(data[i]));
    }
  }
  args.push_back(current);
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  reef::command_line cl = reef::parse_command_line(static_cast<int>(argv.size()), argv.data());
  if (!cl.error.empty() && cl.error.find("flag") == std::string::npos) __builtin_trap();
  try {
    (void)reef::reactor_options_from_flags();
    reef::apply_log_flags();
  } catch (const std::invalid_argument& e) {
    // A clear error must name the flag.
    if (std::string(e.what()).find("flag --") == std::string::npos) __builtin_trap();
  }
  return 0;
}
