"""The macros every Reef BUILD file loads.

Warnings, -Werror and test settings live here so that no BUILD file repeats
them; flags that must match across the whole build (-std=c++20, sanitizers,
optimization) live in .bazelrc.
"""

# Our own code only: third-party headers come in through -isystem.
REEF_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    # std::hardware_destructive_interference_size is used on purpose: the
    # ABI note gcc attaches to it does not concern a statically built program.
    "-Wno-interference-size",
    # gcc 12 reports false positives on the unions inside future states once
    # optimizing or sanitizing; the sanitizers themselves catch real ones.
    "-Wno-maybe-uninitialized",
    # The two above are gcc's; clang (the default, see .bazelrc) ignores them.
    "-Wno-unknown-warning-option",
]

# The sanitizer configurations, for select(): `select(unless_sanitized(x, y))`
# is x in a sanitizer build and y otherwise.
REEF_SANITIZED = [
    "//tools/build_defs:asan",
    "//tools/build_defs:tsan",
    "//tools/build_defs:ubsan",
    "//tools/build_defs:fuzz",
]

def if_sanitized(then, otherwise):
    """A select() value: `then` under any sanitizer, `otherwise` without."""
    branches = {config: then for config in REEF_SANITIZED}
    branches["//conditions:default"] = otherwise
    return select(branches)

def reef_cc_library(name, copts = [], **kwargs):
    """A cc_library built with Reef's warnings."""
    native.cc_library(
        name = name,
        copts = REEF_COPTS + copts,
        **kwargs
    )

def reef_cc_binary(name, copts = [], **kwargs):
    """A cc_binary built with Reef's warnings."""
    native.cc_binary(
        name = name,
        copts = REEF_COPTS + copts,
        **kwargs
    )

def reef_cc_test(
        name,
        copts = [],
        deps = [],
        reactor_backends = False,
        linkstatic = True,
        args = [],
        size = "small",
        tags = [],
        **kwargs):
    """A GoogleTest test built with Reef's warnings.

    Args:
      name: the test's name.
      copts: extra compile flags.
      deps: dependencies; the test main comes from the deps (//core/testing
        for tests that run inside a reactor, //third_party/gtest:gtest_main
        for plain tests).
      reactor_backends: when True the same binary runs a second time as
        `<name>_epoll` with `--reactor-backend=epoll`, so that both I/O
        backends pass the same suite.
      linkstatic: link Reef's own libraries statically (fast TLS, fewer .so).
      args: arguments for the test binary.
      size: the Bazel test size.
      tags: the Bazel tags.
      **kwargs: passed to cc_test.
    """
    native.cc_test(
        name = name,
        copts = REEF_COPTS + copts,
        deps = deps,
        linkstatic = linkstatic,
        args = args,
        size = size,
        tags = tags,
        **kwargs
    )
    if reactor_backends:
        native.sh_test(
            name = name + "_epoll",
            srcs = ["//tools/build_defs:run_with_args.sh"],
            args = ["$(location :%s)" % name] + args + ["--reactor-backend=epoll"],
            data = [":" + name],
            size = size,
            tags = tags,
        )

def reef_cc_benchmark(name, srcs, deps = [], copts = [], smoke_args = [], smoke_env = {}, tags = [], **kwargs):
    """A Google Benchmark binary plus `<name>_smoke_test`, which runs it once.

    The smoke test runs every benchmark for a tiny minimum time so that a
    broken benchmark fails `bazel test //...`; real numbers come from
    `tools/bazel run //pkg:<name>` (optimized, see .bazelrc).

    Args:
      name: the benchmark binary's name.
      srcs: its sources.
      deps: its dependencies (Google Benchmark is added).
      copts: extra compile flags.
      smoke_args: extra arguments for the smoke run.
      smoke_env: environment variables for the smoke run (a smaller load).
      tags: the Bazel tags of the smoke test.
      **kwargs: passed to cc_binary.
    """
    native.cc_binary(
        name = name,
        srcs = srcs,
        copts = REEF_COPTS + copts,
        deps = deps + ["//third_party/benchmark"],
        **kwargs
    )
    native.sh_test(
        name = name + "_smoke_test",
        srcs = ["//tools/build_defs:run_with_args.sh"],
        args = ["$(location :%s)" % name, "--benchmark_min_time=0.001"] + smoke_args,
        data = [":" + name],
        env = smoke_env,
        size = "small",
        tags = tags,
    )

def reef_cc_fuzz(name, srcs, corpus, deps = [], copts = [], **kwargs):
    """A libFuzzer target plus `<name>_corpus_test`, which replays its corpus.

    Built with `--config=fuzz` (clang 14), `<name>` is a libFuzzer binary:
    `bazel-bin/<pkg>/<name> <pkg>/<name>_corpus` fuzzes, starting from the
    seed corpus. Otherwise `<name>` runs the files it is given once, and the
    corpus test runs the seed corpus in the normal test run.

    Args:
      name: the fuzz target's name.
      srcs: its sources; they define LLVMFuzzerTestOneInput.
      corpus: the seed corpus files.
      deps: its dependencies.
      copts: extra compile flags.
      **kwargs: passed to cc_binary.
    """
    native.cc_binary(
        name = name,
        testonly = True,
        srcs = srcs,
        copts = REEF_COPTS + copts,
        linkopts = select({
            "//tools/build_defs:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        deps = deps + select({
            "//tools/build_defs:fuzzing": [],
            "//conditions:default": ["//tools/build_defs:fuzz_replay_main"],
        }),
        **kwargs
    )
    native.filegroup(
        name = name + "_corpus",
        testonly = True,
        srcs = corpus,
    )
    native.sh_test(
        name = name + "_corpus_test",
        size = "small",
        srcs = ["//tools/build_defs:run_with_args.sh"],
        args = ["$(location :%s)" % name, "$(locations :%s_corpus)" % name],
        data = [":" + name, ":%s_corpus" % name],
    )
