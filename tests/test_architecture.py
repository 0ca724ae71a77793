"""The layout rules of the code (README "Architecture"): the import-linter contracts in
pyproject.toml, and no import circle between modules."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

grimp = pytest.importorskip("grimp")  # import-linter's graph library, a test dependency


def test_import_linter_contracts_are_kept():
    # the console script of import-linter, run on the project's pyproject.toml
    res = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                          "lint_imports_command()"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "broken" in res.stdout and " 0 broken" in res.stdout


def test_no_import_circle_between_modules():
    graph = grimp.build_graph("engine", "kernels")
    modules = sorted(graph.modules)
    # Tarjan-free check: a module that can reach itself through another module is in a circle
    circles = []
    for m in modules:
        for dep in graph.find_modules_directly_imported_by(m):
            if dep != m and not m.startswith(dep + ".") and not dep.startswith(m + "."):
                if graph.chain_exists(importer=dep, imported=m):
                    circles.append((m, dep))
    # a package __init__ that re-exports its own submodules is not a circle between modules
    circles = [(a, b) for a, b in circles if a.split(".")[:2] != b.split(".")[:2] or
               (a.count(".") > 1 and b.count(".") > 1)]
    assert not circles, f"import circles: {circles[:10]}"
