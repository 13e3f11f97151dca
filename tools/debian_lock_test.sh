#!/usr/bin/env bash
# Checks third_party/debian/sysroot.bzl, the repository rule that fetches
# the lockfile's packages, in a scratch workspace with a lockfile of one
# small package and a Bazel of its own (its own output root and repository
# cache, so nothing here touches the project's):
#
#   1. a wrong SHA-256 fails the build, naming the package;
#   2. the right one fetches it (apt-get download), unpacks it, and writes
#      sysroot_id (the lockfile's hash);
#   3. a second fetch takes the .deb from the repository cache: with apt
#      made to fail, it still unpacks.
#
# Run as root (as in CI), it runs Bazel as `nobody`: the fetch needs no root.
#
#   tools/debian_lock_test.sh      (from .ci/run)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
bazel_real=${BAZEL_REAL:-/usr/bin/bazel-4}
as_builder=()
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  as_builder=(setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$work/home")
fi
cleanup() {
  (cd "$work/ws" 2>/dev/null && "${as_builder[@]}" "$bazel_real" --output_user_root="$work/root" shutdown >/dev/null 2>&1) || true
  chmod -R u+w "$work" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# A package small enough to fetch in a moment, as the real lockfile pins it.
line=$(grep -E '^lsb-base ' "$top/third_party/debian.lock") || fail "lsb-base is not in third_party/debian.lock"
read -r name version arch sha <<<"$line"

mkdir -p "$work/ws/third_party/debian"
cp "$top/third_party/debian/sysroot.bzl" "$work/ws/third_party/debian/"
touch "$work/ws/third_party/debian/BUILD.bazel" "$work/ws/BUILD.bazel"
echo 'exports_files(["sysroot_id"])' >"$work/ws/sysroot.BUILD"
cat >"$work/ws/WORKSPACE" <<'WS'
workspace(name = "debian_lock_test")

load("//third_party/debian:sysroot.bzl", "debian_sysroot")

debian_sysroot(
    name = "sysroot",
    build_file = "//:sysroot.BUILD",
    lockfile = "//:debian.lock",
)
WS
if [ ${#as_builder[@]} -gt 0 ]; then
  chmod 755 "$work"
  mkdir -p "$work/home" "$work/root" "$work/cache"
  chown -R nobody:nogroup "$work/home" "$work/root" "$work/cache" "$work/ws"
  echo "running Bazel as nobody: fetching the packages needs no root"
fi
cd "$work/ws"
run_bazel() {
  "${as_builder[@]}" "$bazel_real" --output_user_root="$work/root" build --repository_cache="$work/cache" @sysroot//:sysroot_id 2>&1
}

# 1. A wrong hash.
wrong=$(printf '%s' "$sha" | tr '0-9a-f' '1-9a-f0')
echo "$name $version $arch $wrong" >debian.lock
if out=$(run_bazel); then fail "a wrong SHA-256 was accepted"; fi
grep -q "package $name $version ($arch)" <<<"$out" || fail "the mismatch does not name the package: $(tail -20 <<<"$out")"
grep -q "$wrong" <<<"$out" || fail "the mismatch does not say the lockfile's hash: $(tail -20 <<<"$out")"
echo "ok: a wrong SHA-256 fails, naming $name"

# 2. The right one.
echo "$name $version $arch $sha" >debian.lock
out=$(run_bazel) || fail "fetching $name: $(tail -20 <<<"$out")"
root=$("${as_builder[@]}" "$bazel_real" --output_user_root="$work/root" info output_base 2>/dev/null)/external/sysroot
[ -n "$(find "$root/usr" "$root/lib" -type f 2>/dev/null | head -1)" ] || fail "nothing of $name was unpacked in $root"
[ "$(head -1 "$root/sysroot_id")" = "$(sha256sum debian.lock | cut -d' ' -f1)" ] || fail "sysroot_id does not start with the lockfile's hash"
echo "ok: $name fetched, checked and unpacked"

# 3. From the repository cache, apt unreachable.
mkdir -p "$work/bin"
printf '#!/bin/sh\necho "apt-get must not run: $*" >&2\nexit 1\n' >"$work/bin/apt-get"
chmod +x "$work/bin/apt-get"
"${as_builder[@]}" "$bazel_real" --output_user_root="$work/root" shutdown >/dev/null 2>&1
out=$("${as_builder[@]}" env PATH="$work/bin:$PATH" "$bazel_real" --output_user_root="$work/root" sync --only=sysroot --repository_cache="$work/cache" 2>&1) ||
  fail "a second fetch needed apt: $(tail -20 <<<"$out")"
[ -n "$(find "$root/usr" "$root/lib" -type f 2>/dev/null | head -1)" ] || fail "the second fetch unpacked nothing"
echo "ok: a second fetch takes the .deb from the repository cache"
