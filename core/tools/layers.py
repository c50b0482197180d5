#!/usr/bin/env python3
"""Check that core's library modules form layers without cycles.

For every module under core/src (its submodules in core/src/<module>/ included; the binary
under src/bin and unit tests excepted), collect
the modules it names (`crate::module`, and crate-root re-exports resolved to their module),
print the dependency list of each module, and exit non-zero if there is a cycle.

Usage: python3 core/tools/layers.py
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"


def code_of(path):
    text = path.read_text()
    # Unit tests may use anything: cut them (they sit at the end of each file).
    cut = re.search(r"^#\[cfg\(test\)\]\s*\nmod tests", text, re.M)
    if cut:
        text = text[: cut.start()]
    # Comments, including doc comments and their links.
    return re.sub(r"//[^\n]*", "", text)


def main():
    modules = {p.stem: p for p in SRC.glob("*.rs") if p.stem != "lib"}
    lib = code_of(SRC / "lib.rs")
    # Root re-exports: `pub use module::{A, B}` / `pub use module::A`.
    root = {}
    for m in re.finditer(r"pub use (\w+)::(\{[^}]*\}|\w+);", lib):
        for name in re.findall(r"\w+", m.group(2)):
            root[name] = m.group(1)
    deps = {}
    for name, path in modules.items():
        # A module with submodules (`composite.rs` and `composite/*.rs`): its files together.
        code = code_of(path) + "".join(code_of(p) for p in sorted((SRC / name).rglob("*.rs")))
        found = set()
        for m in re.finditer(r"crate::(\w+)", code):
            target = m.group(1)
            target = target if target in modules else root.get(target)
            if target and target != name:
                found.add(target)
        # `use crate::{a, b::C}` groups.
        for m in re.finditer(r"use crate::\{([^}]*)\}", code):
            for target in re.findall(r"(?:^|,)\s*(\w+)", m.group(1)):
                target = target if target in modules else root.get(target)
                if target and target != name:
                    found.add(target)
        deps[name] = sorted(found)

    # Order modules by depth: a module sits one layer above the deepest module it uses.
    depth, visiting, cycles = {}, [], []

    def visit(m):
        if m in depth:
            return depth[m]
        if m in visiting:
            cycles.append(visiting[visiting.index(m):] + [m])
            return 0
        visiting.append(m)
        d = 1 + max((visit(t) for t in deps[m]), default=-1)
        visiting.pop()
        depth[m] = d
        return d

    for m in sorted(modules):
        visit(m)
    for d in range(max(depth.values()) + 1):
        for m in sorted(k for k, v in depth.items() if v == d):
            print(f"{d}  {m:<11} -> {', '.join(deps[m]) or '-'}")
    if cycles:
        for c in cycles:
            print("cycle: " + " -> ".join(c))
        sys.exit(1)
    print("no cycles")


if __name__ == "__main__":
    main()
