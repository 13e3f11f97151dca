"""`reef_release`: a binary with the shared libraries it needs, in one
archive that runs on another machine.

Reef links every library of the lockfile statically where Debian ships a
static archive; the few that Debian ships only as shared libraries (and
the shared libraries those need) travel beside the binary. reef_cc_binary
links each binary with the run path `$ORIGIN/lib`, and this rule packs

    NAME/NAME          the binary
    NAME/lib/*.so.*    every shared library in its runfiles (by the
                       soname the loader looks for)

into NAME.tar.gz, without time stamps or owners, so that two builds of the
same source give the same archive. Only the C library, libm, libstdc++,
libgcc_s and the loader are left to the machine that runs it.
"""

def _reef_release_impl(ctx):
    binary = ctx.executable.binary
    name = ctx.attr.binary.label.name
    libraries = {}
    for f in ctx.attr.binary[DefaultInfo].default_runfiles.files.to_list():
        if ".so" in f.basename and f.extension != "py":
            libraries[f.basename] = f
    libraries = [libraries[k] for k in sorted(libraries.keys())]
    out = ctx.actions.declare_file(ctx.label.name + ".tar.gz")
    args = ctx.actions.args()
    args.add(out)
    args.add(name)
    args.add(binary)
    args.add_all(libraries)
    ctx.actions.run_shell(
        inputs = [binary] + libraries,
        outputs = [out],
        arguments = [args],
        command = """set -eu
out=$1 name=$2 binary=$3
shift 3
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/lib"
cp -L "$binary" "$stage/$name/$name"
for lib in "$@"; do cp -L "$lib" "$stage/$name/lib/"; done
chmod -R u=rwX,go=rX "$stage"
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
    },
    doc = "Packs a binary with the shared libraries it needs; see the file comment.",
)
