"""The system libraries Reef builds against, one repository each.

Each comes from a Debian -dev package pinned in debian_packages.txt and is
reached by first-party code only through its //third_party/<lib> alias.
"""

load("//third_party:pkg_config.bzl", "pkg_config_repository")

def reef_system_libraries():
    pkg_config_repository(
        name = "system_liburing",
        libraries = {"liburing": ["liburing"]},
    )
    pkg_config_repository(
        name = "system_absl",
        libraries = {
            "flags": ["absl_flags", "absl_flags_parse", "absl_flags_usage"],
            "strings": ["absl_strings", "absl_str_format"],
        },
    )
    pkg_config_repository(
        name = "system_gtest",
        libraries = {
            "gtest": ["gtest"],
            "gmock": ["gmock"],
            "gtest_main": ["gtest_main"],
        },
    )
    pkg_config_repository(
        name = "system_benchmark",
        libraries = {"benchmark": ["benchmark"]},
    )
    pkg_config_repository(
        name = "system_hwloc",
        libraries = {"hwloc": ["hwloc"]},
    )
    pkg_config_repository(
        name = "system_c_ares",
        libraries = {"c_ares": ["libcares"]},
    )
    pkg_config_repository(
        name = "system_dpdk",
        libraries = {"dpdk": ["libdpdk"]},
    )
