"""Tests that share a module-scoped fixture run on one pytest-xdist worker (``make test`` runs ``--dist
loadgroup``), so the fixture is built once and its tests see one another's files in the order they are written.

Each such set gets the ``xdist_group`` mark, named after the module and the fixtures. pytest-xdist 3.8 tells its
scheduler a test's group by appending ``@group`` to ``item._nodeid``, which pytest 9 no longer reads (the id
lives in ``item._id``): the groups were silently ignored, and each worker built the shared fixtures again (the
calibration grid twice, in parallel). The second hook applies the suffix where xdist's did not take.
tests/test_forkserver.py::test_tests_sharing_a_module_fixture_run_on_one_worker runs a small suite through it.
"""

from __future__ import annotations

import pytest


def unit_of(item) -> str:
    """The scheduling unit of a test: its module and module-scoped fixtures, or the test alone."""
    info = getattr(item, "_fixtureinfo", None)
    shared = sorted(name for name, defs in (info.name2fixturedefs.items() if info else ())
                    if any(d.scope == "module" for d in defs))
    return ":".join([item.module.__name__, *shared]) if shared else item.nodeid


def pytest_configure(config):
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one pytest-xdist worker")


@pytest.hookimpl(tryfirst=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_groups(config, items):
    for item in items:
        unit = unit_of(item)
        if unit != item.nodeid:
            item.add_marker(pytest.mark.xdist_group(unit))


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_group_ids(config, items):
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})
        if groups and "@" not in item.nodeid and hasattr(item, "_id"):
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(groups)}")
