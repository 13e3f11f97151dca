"""`reef_release`: a binary with the shared libraries it needs, in one
archive that runs on another machine.

Reef links every library of the lockfile statically where Debian ships a
static archive; the few that Debian ships only as shared libraries (and
the shared libraries those need) travel beside the binary. This rule packs

    NAME/NAME          the binary, its run path set to `$ORIGIN/lib` alone
                       (not Bazel's `_solib_*` directories)
    NAME/lib/*.so.*    every shared library in its runfiles, by the soname
                       the loader looks for, as Debian built it

into NAME.tar.gz, without time stamps or owners, so that two builds of the
same source give the same archive. The run path is set with the
sysroot's patchelf (as DT_RPATH, which also serves what the libraries
load), and the rule fails if the binary or a library needs
(by its ELF header, read with the sysroot's objdump) anything that is
neither in lib/ nor one of what every machine has: the C library, libm,
libstdc++, libgcc_s and the loader.
"""

# What the machine that runs a released binary provides.
_MACHINE_LIBRARIES = [
    "libc.so.6",
    "libm.so.6",
    "libstdc++.so.6",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
]

def _is_shared_library(file):
    return file.basename.endswith(".so") or ".so." in file.basename

def _reef_release_impl(ctx):
    binary = ctx.executable.binary
    name = ctx.attr.binary.label.name
    libraries = {}
    for f in ctx.attr.binary[DefaultInfo].default_runfiles.files.to_list():
        if _is_shared_library(f):
            libraries[f.basename] = f
    libraries = [libraries[k] for k in sorted(libraries.keys())]
    wrappers = [f for f in ctx.files._sysroot if f.basename == "wrappers"]
    if len(wrappers) != 1:
        fail("@debian_sysroot//:everything has no wrappers/ directory")
    out = ctx.actions.declare_file(ctx.label.name + ".tar.gz")
    args = ctx.actions.args()
    args.add(out)
    args.add(name)
    args.add(wrappers[0].path)
    args.add(" ".join(_MACHINE_LIBRARIES))
    args.add(binary)
    args.add_all(libraries)
    ctx.actions.run_shell(
        inputs = [binary] + libraries + ctx.files._sysroot,
        outputs = [out],
        arguments = [args],
        command = """set -euo pipefail
out=$1 name=$2 tools=$3 machine=" $4 " binary=$5
shift 5
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/lib"
cp -L "$binary" "$stage/$name/$name"
for lib in "$@"; do cp -L "$lib" "$stage/$name/lib/"; done
chmod -R u=rwX,go=rX "$stage"
# The binary looks in lib/ beside it and nowhere else (not in Bazel's
# _solib_* directories). DT_RPATH, not DT_RUNPATH: it also serves the
# libraries the libraries load. The libraries themselves are not touched.
"$tools/patchelf" --force-rpath --set-rpath '$ORIGIN/lib' "$stage/$name/$name"
# Everything any of them needs is in lib/ or on every machine.
for file in "$stage/$name/$name" "$stage/$name/lib/"*; do
  [ -e "$file" ] || continue
  dynamic=$("$tools/objdump" -p "$file")
  needs=$(awk '$1 == "NEEDED" { print $2 }' <<<"$dynamic")
  if [ "$file" = "$stage/$name/$name" ] && [[ $'\n'"$needs"$'\n' != *$'\n'libc.so.6$'\n'* ]]; then
    echo "reef_release: objdump -p $name names no libc.so.6: cannot check what it needs" >&2
    exit 1
  fi
  for needed in $needs; do
    if [[ "$machine" != *" $needed "* ]] && [ ! -e "$stage/$name/lib/$needed" ]; then
      echo "reef_release: ${file##*/} needs $needed, which is neither in lib/ nor on every machine" >&2
      exit 1
    fi
  done
done
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$stage" -cf - "$name" | gzip -n -9 >"$out"
""",
        mnemonic = "ReefRelease",
        progress_message = "Packing %s with its shared libraries" % name,
    )
    return [DefaultInfo(files = depset([out]))]

reef_release = rule(
    implementation = _reef_release_impl,
    attrs = {
        "binary": attr.label(
            mandatory = True,
            executable = True,
            cfg = "target",
            doc = "A reef_cc_binary.",
        ),
        "_sysroot": attr.label(
            default = Label("@debian_sysroot//:everything"),
            doc = "The sysroot's tools: patchelf and objdump, through wrappers/.",
        ),
    },
    doc = "Packs a binary with the shared libraries it needs; see the file comment.",
)
