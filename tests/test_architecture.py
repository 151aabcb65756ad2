"""The package's shape, checked on its source (an ast walk over xstilts/; nothing is imported):

* the kit's import graph has no cycle, counting imports inside functions too;
* ``xstilts/tasks`` (the declarations) imports nothing else from the kit;
* every import of a kit module inside a function says why in a comment (same line, or the line above);
* the generated Make files are current: mk/tasks.mk is what ``python -m xstilts.tasks mk`` prints, mk/layout.mk
  what ``python -m xstilts.run.layout mk`` prints (``make tasks-mk`` rewrites both).
"""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from conftest import ROOT

PKG = ROOT / "xstilts"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules) -> list[str]:
    """The kit modules an import statement loads: ``import X`` -> X; ``from X import y`` -> X.y where that is a
    module, and X itself when some name is not (a name defined in X)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
    return subs + ([target] if target in modules and len(subs) < len(node.names) else [])


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


class Graph:
    """Kit modules and the kit modules each imports (an edge to a submodule also reaches its packages, whose
    ``__init__`` runs first, unless the importer is inside that package already)."""

    def __init__(self, pkg: Path = PKG):
        self.files = {module_name(p, pkg.parent): p for p in sorted(pkg.rglob("*.py"))}
        self.edges: dict[str, set[str]] = {m: set() for m in self.files}
        self.function_level: list[tuple[str, str, int, bool]] = []  # (module, target, line, commented)
        for m, path in self.files.items():
            source = path.read_text(encoding="utf-8")
            tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
            comments = {t.start[0]: t.line.strip().startswith("#") for t in tokens if t.type == tokenize.COMMENT}
            self._walk(ast.parse(source), m, path.name == "__init__.py", comments, in_function=False)

    def _walk(self, node, module, is_package, comments, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found = [t for t in _targets(child, module, is_package, self.files) if t != module]
                for t in found:
                    reached = {t} | {p for p in _parents(t) if p in self.files and not module.startswith(p + ".")}
                    self.edges[module] |= reached - {module}
                if found and in_function:  # a comment on the statement's lines, or a comment line just above
                    commented = any(n in comments for n in range(child.lineno, child.end_lineno + 1)) or \
                        comments.get(child.lineno - 1, False)
                    self.function_level += [(module, t, child.lineno, commented) for t in found]
            else:
                self._walk(child, module, is_package, comments,
                           in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    def cycles(self) -> list[list[str]]:
        """Strongly connected components with more than one module (or a module importing itself)."""
        index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

        def visit(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in sorted(self.edges[v]):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in self.edges[v]:
                    out.append(sorted(comp))

        sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
        for v in sorted(self.edges):
            if v not in index:
                visit(v)
        return out


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph()


def test_the_walker_sees_cycles_and_function_level_imports(tmp_path):
    """The checks below can fail: a toy package with a cycle through a function-level import."""
    pkg = tmp_path / "xstilts"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a\n    return a\n\n\n"
                                      "def g():\n    # why\n    from ..a import b\n    return b\n")
    g = Graph(pkg)
    assert g.cycles() == [["xstilts.a", "xstilts.sub.b"]]
    assert ("xstilts.sub.b", "xstilts.a", 2, False) in g.function_level
    assert ("xstilts.sub.b", "xstilts.a", 8, True) in g.function_level


def test_no_import_cycles(graph):
    assert graph.cycles() == []


def test_tasks_import_nothing_else_from_the_kit(graph):
    def inside(name):
        return name == "xstilts.tasks" or name.startswith("xstilts.tasks.")

    outside = sorted(f"{m} -> {t}" for m, ts in graph.edges.items() if inside(m) for t in ts if not inside(t))
    assert outside == []


def test_every_function_level_kit_import_says_why(graph):
    silent = sorted({f"{graph.files[m].relative_to(ROOT)}:{line} imports {t}"
                     for m, t, line, commented in graph.function_level if not commented})
    assert silent == []


@pytest.mark.parametrize("module, path", [("xstilts.tasks", "mk/tasks.mk"), ("xstilts.run.layout", "mk/layout.mk")])
def test_generated_make_files_are_current(module, path):
    out = subprocess.run([sys.executable, "-m", module, "mk"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert (ROOT / path).read_text(encoding="utf-8") == out.stdout, f"{path} is stale: run `make tasks-mk`"


# ------------------------------------------------------------------------------ the declarations agree
def test_every_task_selects_a_metric_its_format_computes():
    """One owner for the metric: the task's ``metric`` is one of the scores its format computes (retrieval tasks
    are scored by run_retrieval.py: accuracy for Tatoeba, F1 for BUCC)."""
    from xstilts.formats import FORMATS, format_class
    from xstilts.tasks import TASKS

    for task in TASKS.values():
        if task.format in FORMATS:
            assert task.metric in format_class(task.format).metrics, task.name
        else:
            assert (task.format, task.metric) in (("retrieval", "accuracy"), ("bitext_mining", "f1")), task.name


def test_the_study_targets_are_the_benchmarks_tasks():
    from xstilts.tasks import benchmarks

    names = [t.name for t in benchmarks.STUDY_TARGETS]
    assert sorted(names) == sorted({t.name for ts in benchmarks.BENCHMARK_TASKS.values() for t in ts})
    assert len(names) == len(set(names))
