#!/usr/bin/env python3
"""Checks that every code block in a Markdown file is the code it names.

A block is preceded by `<!-- snippet: PATH NAME -->`; PATH (relative to the
Markdown file's folder) holds the code between `// [snippet NAME]` and
`// [end]`. Each block must equal that code, line for line. Also fails if a
snippet marker in a source is never shown, or names nothing.

Usage: check_snippets.py FILE.md [ROOT]   (ROOT: where PATHs are found;
default: the Markdown file's folder). Prints what differs; exit 1 then.
"""
import os
import re
import sys

MARKER = re.compile(r"<!-- snippet: (\S+) (\S+) -->")


def snippet(path, name):
    with open(path) as f:
        lines = f.read().split("\n")
    start = None
    for i, line in enumerate(lines):
        if line.strip() == f"// [snippet {name}]":
            start = i + 1
        elif start is not None and line.strip() == "// [end]":
            return lines[start:i]
    return None


def main():
    md = sys.argv[1]
    root = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(md)
    with open(md) as f:
        lines = f.read().split("\n")
    errors = []
    shown = set()
    i = 0
    while i < len(lines):
        m = MARKER.search(lines[i])
        if not m:
            i += 1
            continue
        path, name = m.group(1), m.group(2)
        if i + 1 >= len(lines) or not lines[i + 1].startswith("```"):
            errors.append(f"{md}:{i + 1}: the marker for {path} {name} is not followed by a code block")
            i += 1
            continue
        end = i + 2
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        block = lines[i + 2:end]
        code = snippet(os.path.join(root, path), name)
        shown.add((path, name))
        if code is None:
            errors.append(f"{md}:{i + 1}: no snippet '{name}' in {path}")
        elif block != code:
            for n, (a, b) in enumerate(zip(block + [None] * len(code), code + [None] * len(block))):
                if a != b:
                    errors.append(f"{md}:{i + 3 + n}: the block for {path} {name} differs from the code:\n"
                                  f"  doc:  {a}\n  code: {b}")
                    break
        i = end + 1
    for path in sorted({p for p, _ in shown}):
        with open(os.path.join(root, path)) as f:
            for name in re.findall(r"// \[snippet (\S+)\]", f.read()):
                if (path, name) not in shown:
                    errors.append(f"{path}: snippet '{name}' is not shown in {md}")
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
