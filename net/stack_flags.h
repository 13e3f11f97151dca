// The --network-stack flag: which registered stack (net/stack.h) the shards
// use. Linking this target defines the flag; parsing the command line
// (core/reactor_flags.h) selects the stack, and a name that is not
// registered is a parse error naming the flag and the known stacks.
//
//   --network-stack posix        (the default)
//
// Thread rules: the flag is parsed on the main thread before shards start.
#pragma once

#include <string>

namespace reef {

/// The stack --network-stack names ("posix" unless given).
std::string network_stack_flag();

}  // namespace reef
