#include "net/stack_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/string_view.h"
#include "net/stack.h"

namespace reef {
namespace {

// A stack name; parsing it checks that a stack of that name is registered.
struct network_stack_choice {
  std::string name = "posix";
};

bool AbslParseFlag(absl::string_view text, network_stack_choice* out, std::string* error) {
  auto names = network_stack_names();
  for (const auto& n : names) {
    if (n == text) {
      out->name = std::string(text);
      return true;
    }
  }
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  *error = "no network stack '" + std::string(text) + "' (known: " + (known.empty() ? "none linked" : known) + ")";
  return false;
}

std::string AbslUnparseFlag(const network_stack_choice& choice) { return choice.name; }

}  // namespace
}  // namespace reef

ABSL_FLAG(reef::network_stack_choice, network_stack, reef::network_stack_choice{},
          "the network stack the shards use (posix, or native where linked)")
    .OnUpdate([] { reef::select_network_stack(absl::GetFlag(FLAGS_network_stack).name); });

namespace reef {

std::string network_stack_flag() { return absl::GetFlag(FLAGS_network_stack).name; }

}  // namespace reef
