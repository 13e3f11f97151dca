#!/usr/bin/env python3
"""Checks the layering rules of docs/architecture.md that Bazel cannot.

1. Includes: a package includes headers only of the packages its layer may
   use (Bazel's visibility enforces the same on dependencies; this catches
   an include that slipped in through a transitive dependency).
2. Internal headers: no public header (anything outside an `internal/`
   folder) includes a header under an `internal/` folder; those are for
   their package's own sources and tests.

Usage: tools/check_layers.py [REPO_ROOT]. Prints one line per violation and
exits 1 if there is any.
"""
import os
import re
import sys

ALLOWED = {
    "core": set(),
    "memory": set(),
    "smp": {"core", "memory"},
    "fs": {"core", "smp"},
    "net": {"core", "smp"},
    "tcpip": {"core", "smp", "net"},
    "dpdk": {"core", "smp", "net", "tcpip"},
    "http": {"core", "smp", "net", "fs"},
    "apps": {"core", "memory", "smp", "fs", "net", "tcpip", "dpdk", "http"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    bad = []
    for pkg, allowed in ALLOWED.items():
        top = os.path.join(root, pkg)
        for dirpath, _, files in os.walk(top):
            for name in files:
                if not name.endswith((".h", ".cc")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                public_header = name.endswith(".h") and "/internal/" not in rel
                with open(path, errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        included = m.group(1)
                        used = included.split("/", 1)[0]
                        if used in ALLOWED and used != pkg and used not in allowed:
                            bad.append(f"{rel}:{lineno}: {pkg}/ may not include {used}/ "
                                       f"(allowed: {', '.join(sorted(allowed)) or 'none'})")
                        if public_header and "/internal/" in included:
                            bad.append(f"{rel}:{lineno}: a public header includes {included} (internal)")
    for line in bad:
        print(line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
