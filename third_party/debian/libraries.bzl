"""A repository rule that wraps a library of the sysroot (@debian_sysroot).

`sysroot_library_repository(name = "system_x", libraries = {"x": ["libx"]})`
asks the sysroot's pkgconf, on the sysroot's .pc files, for each module's
static flags (`--static`: the whole closure of what the library needs) and
writes a repository with one `cc_library` per key:

- each `-lNAME` (or `-l:FILE`) becomes a `cc_import` of a file of the
  sysroot, linked into this repository: the static archive where Debian
  ships one (inside `-Wl,--whole-archive`: `alwayslink`, which DPDK's
  drivers need, since they register themselves from constructors), the
  shared library otherwise, or where `shared_libraries` asks for it. A
  shared library brings the shared libraries it needs in turn (read from
  its ELF header), so that a test finds all of them beside it, never the
  host's; and the static archive of a library that is also linked shared
  that way is left out (one copy of a library). An archive that appears
  inside `--whole-archive` anywhere in the repository is linked whole;
- the C library's and the compiler's own libraries (`-lpthread`, `-lm`,
  `-lstdc++`, ...) stay `linkopts`: they come from the sysroot at link
  time and from the machine that runs the program at run time;
- `-D` goes to `defines`; each `-I` other than the sysroot's `usr/include`
  (which the compiler searches anyway) is linked into the repository and
  added to `includes`; any other compile flag (DPDK's `-include
  rte_config.h -march=corei7`), which a library cannot propagate, is written
  to `defs.bzl` as `COPTS` for //third_party/<lib> to re-export.

Nothing is read from the host: the flags, the headers and the files
linked all come from @debian_sysroot.
"""

# The C library's and the compiler's libraries: linked as -lNAME.
_TOOLCHAIN_LIBRARIES = ["c", "m", "dl", "pthread", "rt", "stdc++", "gcc_s", "gcc", "util", "resolv"]

# Shared libraries found by the loader on any machine: never copied.
_SYSTEM_SONAMES = [
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libresolv.so.2",
    "libutil.so.1",
    "libstdc++.so.6",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
]

_LIBRARY_DIRS = [
    "usr/lib/x86_64-linux-gnu",
    "lib/x86_64-linux-gnu",
    "usr/lib/gcc/x86_64-linux-gnu/12",
]

def _run(ctx, args, what, environment = {}):
    result = ctx.execute(args, environment = environment)
    if result.return_code != 0:
        fail("%s failed (%s):\n%s%s" % (what, " ".join([str(a) for a in args]), result.stdout, result.stderr))
    return result.stdout

def _words(text):
    return [w for w in text.replace("\n", " ").replace("\t", " ").split(" ") if w]

def _pkgconf(ctx, sysroot, args):
    # In an empty environment: no PKG_CONFIG_* of the caller's applies.
    libdir = "%s/usr/lib/x86_64-linux-gnu/pkgconfig:%s/usr/lib/pkgconfig:%s/usr/share/pkgconfig" % (sysroot, sysroot, sysroot)
    return _words(_run(
        ctx,
        [
            "env",
            "-i",
            "PKG_CONFIG_LIBDIR=" + libdir,
            "PKG_CONFIG_SYSROOT_DIR=%s" % sysroot,
            sysroot.get_child("wrappers").get_child("pkgconf"),
            "--static",
        ] + args,
        "pkgconf " + " ".join(args),
    ))

def _find(ctx, sysroot, dirs, file):
    """`file` in the first of `dirs` (relative to the sysroot) that has it."""
    for d in dirs:
        p = ctx.path("%s/%s/%s" % (sysroot, d, file))
        if p.exists:
            return p
    return None

def _needed(ctx, sysroot, path):
    """The DT_NEEDED names of a shared library, read with the sysroot's objdump."""
    out = _run(ctx, [sysroot.get_child("wrappers").get_child("objdump"), "-p", path], "objdump -p %s" % path)
    needed = []
    for line in out.splitlines():
        fields = _words(line)
        if len(fields) == 2 and fields[0] == "NEEDED":
            needed.append(fields[1])
    return needed

def _import_file(ctx, state, path, whole):
    """The name of the cc_import of `path`, linked into lib/. An archive
    seen inside --whole-archive anywhere is linked whole everywhere."""
    file = path.basename
    if file not in state.imports:
        ctx.symlink(path, "lib/" + file)
        state.imports[file] = "import_%d" % len(state.imports)
        state.whole[file] = False
    state.whole[file] = state.whole[file] or whole
    return file

def _stem(file):
    """libdbus-1.so.3 and libdbus-1.a: libdbus-1."""
    if ".so" in file:
        return file[:file.index(".so")]
    return file[:-len(".a")] if file.endswith(".a") else file

def _soname(ctx, sysroot, path):
    for line in _run(ctx, [sysroot.get_child("wrappers").get_child("objdump"), "-p", path], "objdump -p %s" % path).splitlines():
        fields = _words(line)
        if len(fields) == 2 and fields[0] == "SONAME":
            return fields[1]
    return None

def _shared_closure(ctx, state, sysroot, path):
    """cc_imports of the shared libraries `path` needs, and of those they
    need, breadth first (Starlark has no recursion: a work list)."""
    order = []
    seen = {}
    work = [path]
    for _ in range(1000):
        if not work:
            break
        current = work.pop(0)
        for soname in _needed(ctx, sysroot, current):
            if soname in _SYSTEM_SONAMES or soname in seen:
                continue
            seen[soname] = True
            dep = _find(ctx, sysroot, _LIBRARY_DIRS, soname)
            if not dep:
                fail("%s needs %s, which no package of third_party/debian.lock has" % (current.basename, soname))
            order.append(dep)
            work.append(dep.realpath)
    return [_import_file(ctx, state, dep, False) for dep in order]

def _sysroot_library_repository_impl(ctx):
    sysroot = ctx.path(ctx.attr.sysroot_id).dirname
    prefix = str(sysroot)
    state = struct(imports = {}, whole = {})
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    extra_copts = {}
    include_dirs = {}

    for target, modules in ctx.attr.libraries.items():
        cflags = _pkgconf(ctx, sysroot, ["--cflags"] + modules)
        libs = _pkgconf(ctx, sysroot, ["--libs"] + modules)
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
                if not key.startswith(prefix + "/"):
                    fail("pkgconf %s: %s is outside the sysroot" % (" ".join(modules), flag))
                if key == prefix + "/usr/include":
                    pass  # the compiler's own
                elif key not in include_dirs:
                    link = "include/%d" % len(include_dirs)
                    ctx.symlink(path, link)
                    include_dirs[key] = link
                if key in include_dirs:
                    includes.append(include_dirs[key])
            elif flag == "-include" and i + 1 < len(cflags):
                copts += [flag, cflags[i + 1]]
                i += 1
            else:
                copts.append(flag)
            i += 1
        extra_copts[target] = copts

        # The link line, in order: (import name or None, linkopt or None).
        dirs = []
        whole = False
        linked_whole = {}
        items = []
        for flag in libs:
            if flag == "-Wl,--whole-archive":
                whole = True
            elif flag == "-Wl,--no-whole-archive":
                whole = False
            elif flag.startswith("-L"):
                d = str(ctx.path(flag[2:]).realpath)
                if not d.startswith(prefix + "/"):
                    fail("pkgconf %s: %s is outside the sysroot" % (" ".join(modules), flag))
                dirs.append(d[len(prefix) + 1:])
            elif flag.startswith("-l"):
                lib = flag[2:]
                if lib in _TOOLCHAIN_LIBRARIES:
                    items.append((None, "-l" + lib))
                    continue
                if lib.startswith(":"):
                    candidates = [lib[1:]]
                elif lib in ctx.attr.shared_libraries:
                    candidates = ["lib%s.so" % lib]
                else:
                    candidates = ["lib%s.a" % lib, "lib%s.so" % lib]
                found = None
                for candidate in candidates:
                    found = _find(ctx, sysroot, dirs + _LIBRARY_DIRS, candidate)
                    if found:
                        break
                if not found:
                    fail("pkgconf %s asks for %s, which no package of third_party/debian.lock has (add its -dev package to third_party/debian/packages.in)" %
                         (" ".join(modules), flag))
                if found.basename.endswith(".a"):
                    if whole:
                        linked_whole[found.basename] = True
                    elif found.basename in linked_whole:
                        continue  # all of it is in this target already
                    items.append((_import_file(ctx, state, found, whole), None))
                else:
                    # By its soname, the name the program will look for.
                    real = found.realpath
                    soname = _soname(ctx, sysroot, real)
                    named = _find(ctx, sysroot, _LIBRARY_DIRS, soname) if soname else None
                    if not named:
                        fail("%s: no soname, or no file by its soname (%s) in the sysroot" % (found, soname))
                    items.append((_import_file(ctx, state, named, False), None))
                    for dep in _shared_closure(ctx, state, sysroot, real):
                        items.append((dep, None))
            elif flag in ["-Wl,--as-needed", "-Wl,--push-state,--as-needed", "-Wl,--pop-state"]:
                # Bazel links with --no-as-needed; a library that is listed
                # is meant.
                pass
            elif flag.startswith("-Wl,") or flag == "-pthread":
                items.append((None, flag))
            else:
                fail("pkgconf %s: cannot place link flag %s" % (" ".join(modules), flag))

        # Each library once, at its last place: later ones need earlier
        # ones. A static archive of a library that is also linked shared
        # (libdbus-1.a, where libpcap.so needs libdbus-1.so.3) is left
        # out: one copy of a library, not two.
        shared = {_stem(f): True for f, _ in items if f and ".so" in f}
        deps = []
        linkopts = []
        for index, (dep, opt) in enumerate(items):
            if dep and (dep, None) not in items[index + 1:]:
                if dep.endswith(".a") and _stem(dep) in shared and dep not in linked_whole:
                    continue
                deps.append(state.imports[dep])
            if opt and (None, opt) not in items[index + 1:]:
                linkopts.append(opt)

        hdrs = ["glob([%r], allow_empty = True)" % (d + "/**") for d in includes]
        build += [
            "cc_library(",
            "    name = %r," % target,
            "    hdrs = %s," % (" + ".join(hdrs) if hdrs else "[]"),
            "    defines = %r," % defines,
            "    includes = %r," % includes,
            "    linkopts = %r," % linkopts,
            "    deps = %r," % [":" + d for d in deps],
            ")",
            "",
        ]
    for file, name in state.imports.items():
        build.extend([
            "cc_import(",
            "    name = %r," % name,
            "    %s = %r," % ("shared_library" if ".so" in file else "static_library", "lib/" + file),
            "    alwayslink = %s," % state.whole[file],
            ")",
            "",
        ])
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD.bazel", "\n".join(build))
    ctx.file("defs.bzl", '"""Compile flags pkgconf asks for that a cc_library cannot propagate."""\n\nCOPTS = %r\n' % extra_copts)

sysroot_library_repository = repository_rule(
    implementation = _sysroot_library_repository_impl,
    attrs = {
        "libraries": attr.string_list_dict(
            mandatory = True,
            doc = "Target name -> pkgconf modules it links.",
        ),
        "shared_libraries": attr.string_list(
            doc = "Libraries (-lNAME's NAME) to link shared even where a static archive exists.",
        ),
        "sysroot_id": attr.label(
            default = Label("@debian_sysroot//:sysroot_id"),
            allow_single_file = True,
            doc = "A file at the sysroot's top; the repository is rebuilt when it changes.",
        ),
    },
    doc = "Wraps a library of @debian_sysroot; see the file comment.",
)
