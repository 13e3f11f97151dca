#!/usr/bin/env bash
# Installs the host programs of third_party/host_tools.txt (package=version
# per line) that are missing: Bazel, and the outside tools Reef's tests and
# benchmarks talk to (curl, wrk, nginx, ip, ...). Root, apt-get; one
# `apt-get update`, then one `apt-get install`; quick when nothing is
# missing. Says which installed versions differ from the pins.
#
# The build itself needs none of these but Bazel: its compiler, headers and
# libraries come from third_party/debian.lock, which tools/bazel fetches
# without root.
#
#   tools/install_host_tools.sh          (.ci/run runs it first)
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pins="$top/third_party/host_tools.txt"

say() { printf 'tools/install_host_tools.sh: %s\n' "$*" >&2; }

check_packages() {
  local line pkg want have missing=() differ=()
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%%#*}
    line=${line//[[:space:]]/}
    [ -n "$line" ] || continue
    pkg=${line%%=*}
    want=${line#*=}
    have=$(dpkg-query -W -f='${db:Status-Abbrev}${Version}' "$pkg" 2>/dev/null || true)
    if [[ "$have" != ii* ]]; then
      missing+=("$pkg=$want")
    elif [ "${have:3}" != "$want" ]; then
      differ+=("$pkg: pinned $want, installed ${have:3}")
    fi
  done <"$pins"

  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${#missing[@]} missing Debian package(s): ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
      say "not root: cannot install them. Run as root, or: sudo apt-get install ${missing[*]%%=*}"
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || { say "apt-get update failed"; exit 1; }
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
      # A pinned version may have left the archive (a point release): take
      # the current one and say so. These are tools the tests run, not
      # inputs of the build, whose pins are in third_party/debian.lock.
      say "the pinned versions could not be installed; trying the archive's current versions"
      apt-get install -y -qq --no-install-recommends "${missing[@]%%=*}" >&2 ||
        { say "apt-get install failed for: ${missing[*]}"; exit 1; }
    fi
    check_packages
    return
  fi
  if [ ${#differ[@]} -gt 0 ]; then
    say "installed versions differ from third_party/host_tools.txt:"
    local d
    for d in "${differ[@]}"; do say "  $d"; done
  fi
}

check_packages
