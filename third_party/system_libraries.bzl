"""The system libraries Reef builds against, one repository each.

Each comes from a Debian -dev package pinned in third_party/debian.lock,
unpacked into @debian_sysroot, and is reached by first-party code only
through its //third_party/<lib> alias.
"""

load("//third_party/debian:libraries.bzl", "sysroot_library_repository")
load("//third_party/debian:sysroot.bzl", "reef_sysroot")

def reef_dependencies():
    """Declares every repository Reef's targets use: the sysroot with its
    toolchain, and the libraries. A workspace that depends on @reef calls
    it (see examples/consumer)."""
    reef_sysroot()
    reef_system_libraries()

def reef_system_libraries():
    sysroot_library_repository(
        name = "system_liburing",
        libraries = {"liburing": ["liburing"]},
    )
    sysroot_library_repository(
        name = "system_absl",
        libraries = {
            "flags": ["absl_flags", "absl_flags_parse", "absl_flags_usage"],
            "strings": ["absl_strings", "absl_str_format"],
        },
    )
    sysroot_library_repository(
        name = "system_gtest",
        libraries = {
            "gtest": ["gtest"],
            "gmock": ["gmock"],
            "gtest_main": ["gtest_main"],
        },
    )
    sysroot_library_repository(
        name = "system_benchmark",
        libraries = {"benchmark": ["benchmark"]},
    )
    sysroot_library_repository(
        name = "system_hwloc",
        libraries = {"hwloc": ["hwloc"]},
    )
    sysroot_library_repository(
        name = "system_c_ares",
        libraries = {"c_ares": ["libcares"]},
    )
    sysroot_library_repository(
        name = "system_dpdk",
        libraries = {"dpdk": ["libdpdk"]},
        # libpcap.a defines bpf_validate, as librte_bpf.a does.
        shared_libraries = ["pcap"],
    )
