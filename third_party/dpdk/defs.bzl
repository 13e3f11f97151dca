"""DPDK's compile flags that Bazel cannot propagate (-include, -march)."""

load("@system_dpdk//:defs.bzl", "COPTS")

DPDK_COPTS = COPTS["dpdk"]
