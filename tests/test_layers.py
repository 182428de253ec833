"""The package's imports point one way (import-linter checks the layer order in `make test`);
here: no package-level cycle, lazy (function-level) imports included, and no module imports
the root package, whose lazy names reach every layer."""

from __future__ import annotations

import grimp


def test_no_package_level_import_cycle():
    graph = grimp.build_graph("clipseg", include_external_packages=False)
    packages = {m.split(".")[1] for m in graph.modules if m.count(".") >= 1}
    edges = {p: set() for p in packages}
    for module in graph.modules:
        if module == "clipseg" or module.endswith("__main__"):
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            assert imported != "clipseg", f"{module} imports the root package 'clipseg'"
            a, b = module.split(".")[1], imported.split(".")[1]
            if a != b:
                edges[a].add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges[start] - seen:
            if nxt == goal or reaches(nxt, goal, seen | {nxt}):
                return True
        return False

    cycles = sorted(p for p in packages if reaches(p, p, set()))
    assert not cycles, f"package-level import cycles through: {', '.join(cycles)}"
