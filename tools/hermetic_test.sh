#!/usr/bin/env bash
# Checks the three promises of the hermetic build (from .ci/run, as root):
#
#   1. Nothing of the host's reaches the build.
#      a. Every compile, archive and link command of //... (and of the
#         release build) names only paths relative to the execution root:
#         no /usr/include, no /usr/lib, no absolute path at all (tools/bazel
#         aquery).
#      b. A build in a mount namespace where the host's compilers, headers,
#         static libraries and .pc files are hidden, in an output root of
#         its own with no disk cache, so that every action runs there:
#         //http:httpd_release and the seven libraries' link tests (run).
#   2. Reproducible: that build's httpd and release archive are byte for
#      byte the ones of the project's own output base.
#   3. Self-contained: the release archive's httpd needs, by ldd, only the C
#      library, libm, libstdc++, libgcc_s and the loader from the machine;
#      unpacked and run in a mount namespace whose /usr/lib/x86_64-linux-gnu
#      holds nothing else, it serves /hello to curl.
#
#   tools/hermetic_test.sh [--quick]     (--quick: 1a and 3 only)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
bazel=tools/bazel
quick=0
[ "${1:-}" = --quick ] && quick=1
work=$(mktemp -d)
httpd_pid=
cleanup() {
  [ -n "$httpd_pid" ] && kill "$httpd_pid" 2>/dev/null
  if [ -d "$work/root" ]; then
    (cd "$top" && "$bazel" --output_user_root="$work/root" shutdown >/dev/null 2>&1) || true
  fi
  chmod -R u+w "$work" 2>/dev/null
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
absolute = re.compile(r"(^|[=,:]|^-(I|L|B|isystem|iquote|idirafter|include))/[A-Za-z]")
assert all(absolute.search(a) for a in ["-I/usr/include", "/usr/include", "-Wl,-rpath,/usr/lib", "--sysroot=/opt/x"])
leaks = []
for action in actions:
    args = action.get("arguments", [])
    for i, arg in enumerate(args):
        if i == 0 and action.get("mnemonic") == "ReefRelease" and arg == "/bin/bash":
            continue
        if absolute.search(arg):
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
say "building //http:httpd_release in the project's output base"
"$bazel" build --config=release //http:httpd //http:httpd_release
bin=$("$bazel" info --config=release bazel-bin 2>/dev/null)
cp "$bin/http/httpd" "$work/httpd.project"
cp "$bin/http/httpd_release.tar.gz" "$work/release.project.tar.gz"

# 3. Self-contained.
say "3: the release archive runs with none of the seven libraries installed"
mkdir -p "$work/ship"
tar -C "$work/ship" -xzf "$work/release.project.tar.gz"
ship="$work/ship/httpd"
[ -x "$ship/httpd" ] || fail "the archive has no httpd/httpd"
ldd "$ship/httpd" >"$work/ldd" || fail "ldd $ship/httpd failed"
cat "$work/ldd" | sed 's/^/    /'
allowed='^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|/lib64/ld-linux-x86-64\.so\.2)$'
while read -r soname _ path _; do
  soname=${soname%%[[:space:]]*}
  if [[ "$soname" =~ $allowed ]]; then continue; fi
  [ "$path" = "$ship/lib/$soname" ] || fail "httpd needs $soname from $path, not from its own lib/"
done <"$work/ldd"
# A library directory with only what the machine is allowed to provide.
mkdir -p "$work/bare"
for lib in libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2; do
  cp -L "/usr/lib/x86_64-linux-gnu/$lib" "$work/bare/"
done
port=$((20000 + RANDOM % 20000))
unshare -m sh -c 'mount --make-rprivate / && mount --bind "$1" /usr/lib/x86_64-linux-gnu && exec "$2" --port "$3" --smp 1' \
  sh "$work/bare" "$ship/httpd" "$port" >"$work/httpd.log" 2>&1 &
httpd_pid=$!
body=
for _ in $(seq 1 50); do
  if body=$(curl -sf --max-time 2 "http://127.0.0.1:$port/hello" 2>/dev/null); then break; fi
  kill -0 "$httpd_pid" 2>/dev/null || { cat "$work/httpd.log" >&2; fail "httpd exited (log above)"; }
  sleep 0.2
done
[ "$body" = "Hello, world!" ] || { cat "$work/httpd.log" >&2; fail "GET /hello answered '$body'"; }
kill "$httpd_pid"
wait "$httpd_pid" 2>/dev/null || true
httpd_pid=
echo "    GET /hello: $body (httpd from the archive, /usr/lib/x86_64-linux-gnu holding only $(ls "$work/bare" | tr '\n' ' '))"

[ "$quick" = 1 ] && { say "passed (quick)"; exit 0; }

# 1b and 2. Hide the host's toolchain and libraries, build from nothing.
say "1b, 2: a build from scratch with the host's compilers, headers and static libraries hidden"
repository_cache=$("$bazel" info repository_cache 2>/dev/null)
cat >"$work/hidden.sh" <<'EOF'
set -eu
mount --make-rprivate /
for dir in /usr/include /usr/local /usr/lib/gcc /usr/lib/llvm-14 /usr/lib/x86_64-linux-gnu/pkgconfig /usr/share/pkgconfig; do
  [ -d "$dir" ] && mount -t tmpfs -o ro none "$dir"
done
for tool in /usr/bin/clang* /usr/bin/gcc* /usr/bin/g++* /usr/bin/cc /usr/bin/c++ /usr/bin/cpp* /usr/bin/ld \
  /usr/bin/ld.bfd /usr/bin/ld.gold /usr/bin/ld.lld* /usr/bin/as /usr/bin/ar /usr/bin/pkg-config /usr/bin/pkgconf \
  /usr/bin/x86_64-linux-gnu-*; do
  [ -e "$tool" ] && mount --bind /dev/null "$tool"
done
for archive in /usr/lib/x86_64-linux-gnu/*.a; do
  mount --bind /dev/null "$archive"
done
[ ! -e /usr/include/stdio.h ] || { echo "the host's headers are still visible" >&2; exit 1; }
exec "$@"
EOF
unshare -m bash "$work/hidden.sh" "$bazel" --output_user_root="$work/root" test \
  --repository_cache="$repository_cache" --disk_cache= --config=release \
  //http:httpd //http:httpd_release //third_party/... ||
  fail "the build with the host's toolchain hidden failed (above)"
hidden_bin=$("$bazel" --output_user_root="$work/root" info --config=release bazel-bin 2>/dev/null)

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
