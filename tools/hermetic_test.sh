#!/usr/bin/env bash
# Checks the three promises of the hermetic build (from .ci/run, as root):
#
#   1. Nothing of the host's reaches the build.
#      a. Every compile, archive, link and packing command of //... (and of
#         the release build) names only paths relative to the execution
#         root: no /usr/include, no /usr/lib, no absolute path at all
#         (tools/bazel aquery).
#      b. A build in a mount namespace where the host's compilers, headers,
#         start files, static archives, unversioned .so names, linker
#         scripts and .pc files are hidden, by a Bazel of its own with no
#         disk cache, so that every action runs there: //http:httpd_release
#         and the seven libraries' link tests (run).
#   2. Reproducible: that build's httpd and release archive are byte for
#      byte the ones of the project's own output base.
#   3. Self-contained: the release archive's httpd needs, by ldd, only the C
#      library, libm, libstdc++, libgcc_s and the loader from the machine;
#      unpacked and run in a mount namespace whose /usr/lib/x86_64-linux-gnu
#      holds nothing else, it serves /hello to curl. (3b: the sysroot's
#      tools, run through wrappers/, load only glibc from the host.)
#
#   tools/hermetic_test.sh [--quick]     (--quick: 1a and 3 only, a minute)
set -euo pipefail
trap 'echo "FAIL: tools/hermetic_test.sh line $LINENO: $BASH_COMMAND" >&2' ERR
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
bazel=tools/bazel
quick=0
[ "${1:-}" = --quick ] && quick=1
work=$(mktemp -d)
httpd_pid=
cleanup() {
  if [ -n "$httpd_pid" ]; then kill "$httpd_pid" 2>/dev/null || true; fi
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
say() { echo "--- hermetic_test: $*"; }

# 1a. The commands, as Bazel would run them.
say "1a: no absolute path in any compile, archive or link command"
for config in "" "--config=release"; do
  "$bazel" aquery $config --output=jsonproto \
    'mnemonic("CppCompile|CppArchive|CppLink|ReefRelease", deps(//...))' >"$work/aquery.json" 2>"$work/aquery.err" ||
    { cat "$work/aquery.err" >&2; fail "aquery $config failed"; }
  # An absolute path in any argument (-I/usr/include, -L/usr/lib, a
  # --sysroot=/ or -Wl,-rpath,/...), except the shell that runs the
  # release rule's script.
  python3 - "$work/aquery.json" "${config:-(default)}" <<'PY' || fail "aquery $config: commands name absolute paths (above)"
import json, re, sys
actions = json.load(open(sys.argv[1])).get("actions", [])
# A path after '=' or ':' anywhere, or at the start of an argument (or of
# one of -Wl's comma-separated pieces), bare or after a one- or two-letter
# option (-I/x, -L/x, -B/x, -T/x, -o/x, -MF/x) or a long one that takes a
# path.
absolute = re.compile(r"(^|[=:])/([A-Za-z0-9_.]|$)|^(-[A-Za-z]{1,2}|-isystem|-iquote|-idirafter|-imacros|-include|-isysroot)/[A-Za-z0-9_.]")
def names_absolute(arg):
    return any(absolute.search(piece) for piece in arg.split(","))
assert all(names_absolute(a) for a in ["-I/usr/include", "/usr/include", "-Wl,-rpath,/usr/lib", "--sysroot=/opt/x",
                                      "-Wl,-L/usr/lib", "-Wl,-T/x.ld", "-imacros/x.h", "-isysroot/x", "-F/x", "-L/usr/lib",
                                      "--sysroot=/", "-MF/x.d", "-I/1"])
assert not any(names_absolute(a) for a in ["-Bexternal/debian_sysroot/usr/bin", "-Wl,-rpath,$ORIGIN/../_solib_k8/x",
                                          "external/debian_sysroot/wrappers/clang", "-D__DATE__=\"redacted\""])
leaks = []
for action in actions:
    args = action.get("arguments", [])
    for i, arg in enumerate(args):
        if i == 0 and action.get("mnemonic") == "ReefRelease" and arg == "/bin/bash":
            continue
        if names_absolute(arg):
            leaks.append("%s: %s" % (action.get("mnemonic"), arg))
if len(actions) < 100:
    print("only %d commands: the query found too little" % len(actions), file=sys.stderr)
    sys.exit(1)
if leaks:
    print("\n".join(leaks[:10]), file=sys.stderr)
    sys.exit(1)
print("    %d commands %s: none names an absolute path" % (len(actions), sys.argv[2]))
PY
done

# The project's own build, which 2 compares against and 3 runs.
say "building the release archives in the project's output base"
"$bazel" build --config=release //http:httpd //http:httpd_release //http:httpd_without_dpdk_release \
  //tools/iotune:iotune_release
bin=$("$bazel" info --config=release bazel-bin 2>/dev/null)
cp "$bin/http/httpd" "$work/httpd.project"
cp "$bin/http/httpd_release.tar.gz" "$work/release.project.tar.gz"

# 3. Self-contained.
say "3: the release archives need nothing but glibc, libstdc++ and libgcc_s from the machine"
allowed='^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|/lib64/ld-linux-x86-64\.so\.2)$'
for archive in http/httpd_release http/httpd_without_dpdk_release tools/iotune/iotune_release; do
  name=$(tar -tzf "$bin/$archive.tar.gz" | sed -n 1p)  # (all of it read: no SIGPIPE under pipefail)
  name=${name%/}
  mkdir -p "$work/ship"
  tar -C "$work/ship" -xzf "$bin/$archive.tar.gz"
  unpacked="$work/ship/$name"
  [ -x "$unpacked/$name" ] || fail "$archive.tar.gz has no $name/$name"
  ldd "$unpacked/$name" >"$work/ldd" || fail "ldd $unpacked/$name failed"
  from_lib=0
  while read -r soname _ path _; do
    if [[ "$soname" =~ $allowed ]]; then continue; fi
    [ "$path" = "$unpacked/lib/$soname" ] || { cat "$work/ldd" >&2; fail "$name needs $soname from $path, not from its own lib/"; }
    from_lib=$((from_lib + 1))
  done <"$work/ldd"
  grep -q 'libc\.so\.6 => /' "$work/ldd" || { cat "$work/ldd" >&2; fail "ldd of $name shows no libc: nothing was checked"; }
  echo "    $archive.tar.gz: $from_lib libraries from its lib/ ($(ls "$unpacked/lib" | tr '\n' ' ')), the rest glibc, libstdc++, libgcc_s"
done
ship="$work/ship/httpd"
# A library directory with only what the machine is allowed to provide.
mkdir -p "$work/bare"
for lib in libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2; do
  cp -L "/usr/lib/x86_64-linux-gnu/$lib" "$work/bare/"
done
unshare -m sh -c 'mount --make-rprivate / && mount --bind "$1" /usr/lib/x86_64-linux-gnu && exec "$2" --port 0 --smp 1' \
  sh "$work/bare" "$ship/httpd" >"$work/httpd.log" 2>&1 &
httpd_pid=$!
base=
for _ in $(seq 1 100); do
  base=$(grep -o 'serving on http://[^ ]*/' "$work/httpd.log" | head -1 | sed 's/^serving on //; s|/$||') || true
  [ -n "$base" ] && break
  kill -0 "$httpd_pid" 2>/dev/null || { cat "$work/httpd.log" >&2; fail "httpd exited (log above)"; }
  sleep 0.1
done
[ -n "$base" ] || { cat "$work/httpd.log" >&2; fail "httpd did not say where it serves"; }
body=$(curl -sf --max-time 5 "$base/hello") || { cat "$work/httpd.log" >&2; fail "GET $base/hello failed"; }
[ "$body" = "Hello, world!" ] || fail "GET /hello answered '$body'"
kill -0 "$httpd_pid" 2>/dev/null || fail "httpd exited while answering"
kill "$httpd_pid"
wait "$httpd_pid" 2>/dev/null || true
httpd_pid=
echo "    GET $base/hello: $body (httpd from the archive, /usr/lib/x86_64-linux-gnu holding only $(ls "$work/bare" | tr '\n' ' '))"

# The tools the toolchain runs through wrappers/: every library they load,
# other than glibc's, is the sysroot's.
say "3b: the sysroot's tools load no library of the host's but glibc's"
sysroot=$("$bazel" info output_base 2>/dev/null)/external/debian_sysroot
for tool in usr/lib/llvm-14/bin/clang usr/bin/x86_64-linux-gnu-ld.gold usr/bin/x86_64-linux-gnu-ar \
  usr/bin/x86_64-linux-gnu-objdump usr/bin/pkgconf usr/bin/patchelf; do
  [ -x "$sysroot/$tool" ] || fail "no $tool in the sysroot"
  LD_LIBRARY_PATH="$sysroot/wrappers/lib" ldd "$sysroot/$tool" >"$work/tool.ldd" || fail "ldd $tool failed"
  while read -r soname _ path _; do
    case $soname in linux-vdso.so.1 | /lib64/ld-linux-x86-64.so.2 | libc.so.6 | libm.so.6 | libdl.so.2 | \
      libpthread.so.0 | librt.so.1 | libresolv.so.2 | libutil.so.1) continue ;;
    esac
    [[ "$path" == "$sysroot/wrappers/lib/"* ]] || fail "$tool loads $soname from $path, not from the sysroot"
  done <"$work/tool.ldd"
done
echo "    clang, gold, ar, objdump, pkgconf, patchelf: glibc from the host, the rest from the sysroot"

[ "$quick" = 1 ] && { say "passed (quick)"; exit 0; }

# 1b and 2. Hide the host's toolchain and libraries, build from nothing.
say "1b, 2: a build from scratch with the host's compilers, headers and static libraries hidden"
repository_cache=$("$bazel" info repository_cache 2>/dev/null)
cat >"$work/hidden.sh" <<'EOF'
set -eu
scratch=$1
shift
mount --make-rprivate /
for dir in /usr/include /usr/local /usr/lib/gcc /usr/lib/llvm-14 /usr/share/pkgconfig; do
  if [ -d "$dir" ]; then mount -t tmpfs -o ro none "$dir"; fi
done
for tool in /usr/bin/clang* /usr/bin/gcc* /usr/bin/g++* /usr/bin/cc /usr/bin/c++ /usr/bin/cpp* /usr/bin/ld \
  /usr/bin/ld.bfd /usr/bin/ld.gold /usr/bin/ld.lld* /usr/bin/as /usr/bin/ar /usr/bin/pkg-config /usr/bin/pkgconf \
  /usr/bin/x86_64-linux-gnu-*; do
  if [ -e "$tool" ]; then mount --bind /dev/null "$tool"; fi
done
# The host's library directory without what only a link reads: static
# archives, start files (crt1.o, ...), the unversioned .so names (links)
# and linker scripts, the .pc files. A *.so that is itself a library
# (libelf-0.188.so, which libelf.so.1 names) stays: programs load it.
mount -t tmpfs none "$scratch"
mkdir "$scratch/upper" "$scratch/work"
for file in /usr/lib/x86_64-linux-gnu/*.a /usr/lib/x86_64-linux-gnu/*.o /usr/lib/x86_64-linux-gnu/*.so \
  /usr/lib/x86_64-linux-gnu/pkgconfig /usr/lib/pkgconfig; do
  if [ ! -e "$file" ] && [ ! -L "$file" ]; then continue; fi
  if [[ "$file" == *.so ]] && [ ! -L "$file" ] && [ "$(head -c 4 "$file" | tail -c 3)" = ELF ]; then continue; fi
  if [ "${file%/*}" = /usr/lib/x86_64-linux-gnu ]; then mknod "$scratch/upper/${file##*/}" c 0 0; fi
done
if [ -d /usr/lib/pkgconfig ]; then mount -t tmpfs -o ro none /usr/lib/pkgconfig; fi
mount -t overlay overlay -o "lowerdir=/usr/lib/x86_64-linux-gnu,upperdir=$scratch/upper,workdir=$scratch/work" \
  /usr/lib/x86_64-linux-gnu
for gone in /usr/include/stdio.h /usr/lib/x86_64-linux-gnu/libc.so /usr/lib/x86_64-linux-gnu/crt1.o \
  /usr/lib/x86_64-linux-gnu/libc_nonshared.a; do
  if [ -e "$gone" ]; then echo "$gone is still visible" >&2; exit 1; fi
done
exec "$@"
EOF
# A Bazel of its own (--batch: no server outlives the namespace), no disk
# cache (every action runs here), and no bazel-* links in the workspace.
hidden_bazel=("$bazel" --batch --output_user_root="$work/root")
mkdir -p "$work/scratch"
unshare -m bash "$work/hidden.sh" "$work/scratch" "${hidden_bazel[@]}" test \
  --repository_cache="$repository_cache" --disk_cache= --config=release --symlink_prefix=/ \
  //http:httpd //http:httpd_release //third_party/... ||
  fail "the build with the host's toolchain hidden failed (above)"
hidden_bin=$("${hidden_bazel[@]}" info --config=release bazel-bin 2>/dev/null)

say "2: byte-identical outputs from two output bases"
same=1
for pair in "httpd.project http/httpd" "release.project.tar.gz http/httpd_release.tar.gz"; do
  read -r mine theirs <<<"$pair"
  if cmp -s "$work/$mine" "$hidden_bin/$theirs"; then
    echo "    $theirs: identical ($(sha256sum <"$work/$mine" | cut -c1-16)...)"
  else
    echo "    $theirs: DIFFERS" >&2
    same=0
  fi
done
[ "$same" = 1 ] || fail "two clean builds gave different outputs"
say "passed"
