// A fresh directory for one test, under the test's TEST_TMPDIR (on the
// disk; /tmp outside Bazel), removed with everything in it at the end.
//
//   scratch_dir dir;
//   file f = co_await open_file_dma(dir / "data", open_flags::rw | open_flags::create);
#pragma once

#include <cerrno>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace reef::testing {

class scratch_dir {
 public:
  scratch_dir() {
    const char* base = std::getenv("TEST_TMPDIR");
    // mkdtemp's template: it replaces the six X's with a unique name.
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/reef_scratch_XXXXXX";
    std::vector<char> p(pattern.begin(), pattern.end());
    p.push_back('\0');
    if (::mkdtemp(p.data()) == nullptr) throw std::system_error(errno, std::system_category(), "mkdtemp");
    _path = p.data();
  }
  ~scratch_dir() { (void)std::system(("rm -rf '" + _path + "'").c_str()); }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  /// A path inside it.
  std::string operator/(std::string_view name) const { return _path + "/" + std::string(name); }
  const std::string& path() const noexcept { return _path; }

 private:
  std::string _path;
};

}  // namespace reef::testing
