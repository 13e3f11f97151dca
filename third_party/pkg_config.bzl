"""A repository rule that wraps a system library found with pkg-config.

`pkg_config_repository(name = "system_x", libraries = {"x": ["libx"]})` asks
pkg-config for each module's flags and writes a repository with one
`cc_library` per key: `-l`/`-L`/`-Wl` go to `linkopts`, `-D` to `defines`, each
`-I` directory is linked into the repository and added to `includes`, and any
other compile flag (e.g. DPDK's `-include rte_config.h -march=...`), which
Bazel cannot propagate from a library, is written to `defs.bzl` as `COPTS` for
the wrapper in //third_party/<lib> to re-export. BUILD files never hard-code
`-l` lists, and a missing package fails with pkg-config's own message.
"""

def _run_pkg_config(ctx, args):
    result = ctx.execute(["pkg-config"] + args)
    if result.return_code != 0:
        fail("pkg-config %s failed (is the Debian -dev package installed? tools/bazel installs third_party/debian_packages.txt):\n%s" %
             (" ".join(args), result.stderr))
    return [f for f in result.stdout.replace("\n", " ").replace("\t", " ").split(" ") if f]

def _pkg_config_repository_impl(ctx):
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    extra_copts = {}
    include_dirs = {}
    for target, modules in ctx.attr.libraries.items():
        cflags = _run_pkg_config(ctx, ["--cflags"] + modules)
        libs = _run_pkg_config(ctx, ["--libs"] + modules)
        defines = []
        includes = []
        copts = []
        i = 0
        for _ in range(len(cflags)):
            if i >= len(cflags):
                break
            flag = cflags[i]
            if flag.startswith("-D"):
                defines.append(flag[2:])
            elif flag.startswith("-I"):
                path = ctx.path(flag[2:]).realpath
                key = str(path)
                if key not in include_dirs:
                    link = "include/%d" % len(include_dirs)
                    ctx.symlink(path, link)
                    include_dirs[key] = link
                includes.append(include_dirs[key])
            elif flag == "-include" and i + 1 < len(cflags):
                copts += [flag, cflags[i + 1]]
                i += 1
            else:
                copts.append(flag)
            i += 1
        extra_copts[target] = copts
        hdrs = ["glob([%r], allow_empty = True)" % (d + "/**") for d in includes]
        build += [
            "cc_library(",
            "    name = %r," % target,
            "    hdrs = %s," % (" + ".join(hdrs) if hdrs else "[]"),
            "    defines = %r," % defines,
            "    includes = %r," % includes,
            "    linkopts = %r," % libs,
            ")",
            "",
        ]
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD.bazel", "\n".join(build))
    ctx.file("defs.bzl", '"""Compile flags pkg-config asks for that a cc_library cannot propagate."""\n\nCOPTS = %r\n' % extra_copts)

pkg_config_repository = repository_rule(
    implementation = _pkg_config_repository_impl,
    attrs = {
        "libraries": attr.string_list_dict(
            mandatory = True,
            doc = "Target name -> pkg-config modules it links.",
        ),
    },
    environ = ["PKG_CONFIG_PATH"],
    local = True,
    doc = "Wraps system libraries found with pkg-config; see the file comment.",
)
