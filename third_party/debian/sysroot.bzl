"""The build's sysroot: every package of third_party/debian.lock, unpacked.

`debian_sysroot(name = "debian_sysroot", lockfile = "//third_party:debian.lock")`
makes a repository whose root is the packages' files, as they would lie under
`/` once installed (`usr/include`, `usr/lib/x86_64-linux-gnu`, `lib`, ...).
For each package of the lockfile it

1. takes the .deb from Bazel's repository cache by its SHA-256, if a build
   on this machine fetched it before (no network, no apt);
2. otherwise fetches it with `apt-get download NAME:ARCH=VERSION` (no root:
   apt reads the host's package lists, or, where there are none, lists of
   its own that it fetches into this repository), checks its SHA-256
   against the lockfile (a mismatch fails, naming the package), and puts
   it in the repository cache;
3. unpacks it with `dpkg-deb -x` (no maintainer scripts run).

The host needs apt-get, dpkg-deb and sha256sum, nothing else: no -dev
package, no compiler. `BUILD.bazel` of the repository comes from
`build_file`. `sysroot_id` holds the lockfile's SHA-256 on its first line
and the hashes of how this rule prepares the tree (the unpacking script,
the tool wrappers and their libraries) after it: every compile and link reads it, so all of
them run again when a pin, or the preparation, changes. (Bazel does not
look inside the tree's directories.)

After unpacking, the tree is made to stand on its own (see _UNPACK), and
`wrappers/` gets the scripts through which the toolchain runs the
sysroot's clang, binutils and pkgconf (see _WRAPPER).
"""

def _entries(ctx, text):
    entries = []
    for number, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(" ")
        if len(fields) != 4 or len(fields[3]) != 64:
            fail("%s line %d: want 'name version architecture sha256', got '%s'" %
                 (ctx.attr.lockfile, number + 1, line))
        entries.append(struct(name = fields[0], version = fields[1], arch = fields[2], sha256 = fields[3]))
    return entries

def _deb_name(entry):
    # What apt-get download names the file: an epoch's ':' as '%3a'.
    return "%s_%s_%s.deb" % (entry.name, entry.version.replace(":", "%3a"), entry.arch)

def _run(ctx, args, what, working_directory = "", quiet = True):
    result = ctx.execute(args, working_directory = working_directory, quiet = quiet, timeout = 1200)
    if result.return_code != 0:
        fail("%s failed (%s):\n%s%s" % (what, " ".join(args), result.stdout, result.stderr))
    return result

def _apt_options(ctx):
    """apt options for lists of our own, fetched once (the host has none)."""
    state = ctx.path("_apt")
    options = [
        "-o",
        "Dir::State::Lists=%s/lists" % state,
        "-o",
        "Dir::Cache=%s/cache" % state,
        "-o",
        "Debug::NoLocking=1",
    ]
    _run(ctx, ["mkdir", "-p", "%s/lists/partial" % state, "%s/cache/archives/partial" % state], "making apt's directories")
    ctx.report_progress("fetching Debian's package lists (apt-get update, into the repository)")
    _run(ctx, ["apt-get", "-qq"] + options + ["update"], "apt-get update (lists of our own)", quiet = False)
    return options

def _download(ctx, entries, apt_options):
    """apt-get download of entries' .debs into _fetch, in one call."""
    specs = ["%s:%s=%s" % (e.name, e.arch, e.version) for e in entries]
    return ctx.execute(["apt-get", "-qq"] + apt_options + ["download"] + specs, working_directory = "_fetch", timeout = 3600)

def _fetch(ctx, misses):
    """Fetches the .debs of `misses` (pairs of a lockfile entry and where
    its .deb goes) that the repository cache did not have."""
    ctx.report_progress("apt-get download of %d packages" % len(misses))
    _run(ctx, ["mkdir", "-p", "_fetch"], "making _fetch")
    entries = [entry for entry, _ in misses]
    result = _download(ctx, entries, [])
    if result.return_code != 0:
        # No lists on the host (a fresh machine, never `apt-get update`d),
        # or out of date: lists of our own.
        result = _download(ctx, entries, _apt_options(ctx))
    if result.return_code != 0:
        fail("third_party/debian.lock: apt-get download failed (is every pinned version still in the archive? " +
             "tools/update_debian_lock.sh pins the current ones):\n%s%s" % (result.stdout, result.stderr))
    for entry, deb in misses:
        fetched = "_fetch/%s.deb" % entry.sha256  # (a file: URL would decode the name's '%3a')
        _run(ctx, ["mv", "_fetch/" + _deb_name(entry), fetched], "finding %s's .deb" % entry.name)
        got = _run(ctx, ["sha256sum", fetched], "sha256sum").stdout.split(" ")[0]
        if got != entry.sha256:
            fail(("third_party/debian.lock: package %s %s (%s): the .deb apt-get downloaded has SHA-256 %s, " +
                  "the lockfile says %s. Refusing it.") % (entry.name, entry.version, entry.arch, got, entry.sha256))

        # Through Bazel's downloader, which checks the hash again and keeps
        # the file in the repository cache for every later fetch on this
        # machine.
        ctx.download(
            url = ["file://%s" % ctx.path(fetched)],
            output = deb,
            sha256 = entry.sha256,
            canonical_id = "reef-debian " + _deb_name(entry),
        )
        ctx.delete(fetched)

# Unpacks every .deb, then makes the tree stand on its own, since two kinds
# of file in it name the host's files:
#
# - an absolute symbolic link (`usr/lib/x86_64-linux-gnu/libz.so ->
#   /lib/...`, the loader's `/lib64/ld-linux-x86-64.so.2`) becomes a
#   relative one inside the sysroot;
# - a linker script (`libc.so`: `GROUP ( /lib/x86_64-linux-gnu/libc.so.6
#   /usr/lib/x86_64-linux-gnu/libc_nonshared.a ... )`; `libm.a` is one too)
#   names files by absolute path, which gold takes from the host: it puts
#   the sysroot in front only when the script lies inside the sysroot, and
#   in a sandbox the script is reached through a symbolic link from outside
#   it. Each path becomes the bare file name, which gold looks for in the
#   library search path: the sysroot's directories. Scripts are found by
#   what they say, whatever their name, and none may name an absolute path
#   afterwards.
_UNPACK = """set -euo pipefail
for deb in "$@"; do dpkg-deb -x "$deb" . || { echo "dpkg-deb -x $deb failed" >&2; exit 1; }; done
find . -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
  target=$(readlink "$link")
  ln -sfn "$(realpath -s -m --relative-to="$(dirname "$link")" ".$target")" "$link"
done
script='^[[:space:]]*(GROUP|INPUT)[[:space:]]*[(]'
dirs=()
for dir in usr/lib lib; do if [ -d "$dir" ]; then dirs+=("$dir"); fi; done
# grep through xargs: a batch without a match (grep's 1) is no error; a
# read error (grep's 2) is.
grep_files() {
  xargs -0 -r sh -c 'grep "$@"; [ $? -le 1 ] || exit 255' grep "$@" || [ $? = 123 ]
}
: >_scripts
if [ ${#dirs[@]} -gt 0 ]; then
  find "${dirs[@]}" -type f -size -4k -print0 | grep_files -lZE "$script" >_scripts
fi
xargs -0 -r sed -i -E 's@([[:space:](",])/[^[:space:])",]*/([^/[:space:])",]+)@\\1\\2@g' <_scripts
left=$(grep_files -HE '(^|[[:space:](",=])/[^*]' <_scripts)
if [ -n "$left" ]; then
  printf '%s\\n' "$left" >&2
  echo "the linker scripts above still name absolute paths" >&2
  exit 1
fi
rm _scripts
"""

# The toolchain's programs are the sysroot's (clang, binutils, pkgconf),
# run by the host's loader with the host's C library (any Debian 12 has
# the same glibc) and every other library they need from the sysroot:
# wrappers/lib links to the sysroot's shared libraries except glibc's,
# and each wrapper puts it on LD_LIBRARY_PATH. A wrapper finds the
# sysroot from the path it was called by, so that clang, called by a
# path relative to the execution root, puts relative paths (its own
# headers, the sysroot's) into what it writes.
_WRAPPER = """#!/bin/bash
# Runs the sysroot's {tool} (see //third_party/debian:sysroot.bzl).
here=$(cd "${{BASH_SOURCE[0]%/*}}" && pwd)
root=${{0%/wrappers/*}}
export LD_LIBRARY_PATH="$here/lib"
exec "$root/{path}" {args}"$@"
"""

_WRAPPED_TOOLS = {
    # name: (path in the sysroot, arguments before the caller's)
    "clang": ("usr/lib/llvm-14/bin/clang", ""),
    "cpp": ("usr/lib/llvm-14/bin/clang", "-E "),
    "ar": ("usr/bin/x86_64-linux-gnu-ar", ""),
    "ld": ("usr/bin/x86_64-linux-gnu-ld.gold", ""),
    "nm": ("usr/bin/x86_64-linux-gnu-nm", ""),
    "objcopy": ("usr/bin/x86_64-linux-gnu-objcopy", ""),
    "objdump": ("usr/bin/x86_64-linux-gnu-objdump", ""),
    "strip": ("usr/bin/x86_64-linux-gnu-strip", ""),
    "dwp": ("usr/bin/x86_64-linux-gnu-dwp", ""),
    "pkgconf": ("usr/bin/pkgconf", ""),
    "patchelf": ("usr/bin/patchelf", ""),
}

_LINK_LIBRARIES = """set -eu
mkdir -p wrappers/lib
for dir in usr/lib/llvm-14/lib usr/lib/x86_64-linux-gnu lib/x86_64-linux-gnu; do
  for lib in "$dir"/*.so "$dir"/*.so.*; do
    [ -e "$lib" ] || continue
    name=${lib##*/}
    case $name in
      # glibc's, which must be the loader's own: the host's.
      ld-linux*|libc.so*|libm.so*|libmvec.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|\
      libutil.so*|libanl.so*|libnss_*|libBrokenLocale.so*|libthread_db.so*|libc_malloc_debug.so*|\
      libmemusage.so*|libpcprofile.so*|libnsl.so*) continue ;;
    esac
    [ -e "wrappers/lib/$name" ] || ln -s "../../$lib" "wrappers/lib/$name"
  done
done
"""

def _write_wrappers(ctx):
    for tool, (path, args) in _WRAPPED_TOOLS.items():
        ctx.file("wrappers/" + tool, _WRAPPER.format(tool = tool, path = path, args = args), executable = True)

    # gcov: coverage needs the network's coverage tools (see
    # //third_party/remote_coverage_tools); say so rather than run the host's.
    ctx.file("wrappers/no_coverage", """#!/bin/sh
echo "coverage is not supported by Reef's offline toolchain" >&2
exit 1
""", executable = True)
    ctx.file("_link_libraries.sh", _LINK_LIBRARIES, executable = True)
    _run(ctx, ["bash", "_link_libraries.sh"], "linking the tools' libraries")

def _debian_sysroot_impl(ctx):
    lock_text = ctx.read(ctx.attr.lockfile)
    entries = _entries(ctx, lock_text)
    if not entries:
        fail("%s lists no packages" % ctx.attr.lockfile)
    debs = []
    misses = []
    for entry in entries:
        deb = "_debs/%s.deb" % entry.sha256

        # The repository cache, by hash: the URL is never reached on a hit.
        cached = ctx.download(
            url = ["file:///nonexistent/reef-debian-cache/%s.deb" % entry.sha256],
            output = deb,
            sha256 = entry.sha256,
            canonical_id = "reef-debian " + _deb_name(entry),
            allow_fail = True,
        )
        if not cached.success:
            misses.append((entry, deb))
        debs.append(deb)
    if misses:
        _fetch(ctx, misses)

    ctx.report_progress("unpacking %d packages" % len(debs))
    ctx.file("_unpack.sh", _UNPACK, executable = True)
    _run(ctx, ["bash", "_unpack.sh"] + debs, "unpacking the packages")
    _write_wrappers(ctx)

    # The lockfile's hash first, then what this rule does to the files.
    ids = _run(ctx, ["sha256sum", ctx.path(ctx.attr.lockfile), "_unpack.sh", "_link_libraries.sh"] +
                    ["wrappers/" + tool for tool in sorted(_WRAPPED_TOOLS.keys())], "sha256sum").stdout
    ctx.file("sysroot_id", "\n".join([line.split(" ")[0] for line in ids.splitlines()]) + "\n")
    for scratch in ["_debs", "_fetch", "_apt", "_unpack.sh", "_link_libraries.sh"]:
        ctx.delete(scratch)
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.template("BUILD.bazel", ctx.attr.build_file, executable = False)

debian_sysroot = repository_rule(
    implementation = _debian_sysroot_impl,
    attrs = {
        "lockfile": attr.label(mandatory = True, allow_single_file = True, doc = "third_party/debian.lock"),
        "build_file": attr.label(mandatory = True, allow_single_file = True, doc = "The repository's BUILD.bazel."),
    },
    doc = "Fetches, checks and unpacks the lockfile's Debian packages; see the file comment.",
)

def reef_sysroot():
    """Declares @debian_sysroot, Reef's sysroot and toolchain, and registers
    the toolchain; a workspace that builds Reef's targets calls it (through
    reef_dependencies(), as Reef's own WORKSPACE does)."""
    debian_sysroot(
        name = "debian_sysroot",
        build_file = Label("//third_party/debian:sysroot.BUILD"),
        lockfile = Label("//third_party:debian.lock"),
    )
    native.register_toolchains("@debian_sysroot//:cc_toolchain")
