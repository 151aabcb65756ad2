"""How this copy of the kit was installed, for the provenance of every result.

A checkout (or an editable install of one) answers with git. A non-editable install has no git around it (and
asking git from site-packages could find an unrelated repository above it): pip's record of the install
(``direct_url.json``, PEP 610) gives the commit of a ``pip install git+<url>`` install.
"""

from __future__ import annotations

import json


def installed_git_state() -> dict:
    """{"commit", "dirty"} of a non-editable install: the commit pip built it from, or None when pip installed
    it from a folder or an archive (no commit recorded). A VCS install is built from a clean clone."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        text = distribution("xstilts").read_text("direct_url.json")
    except PackageNotFoundError:
        text = None
    commit = (json.loads(text).get("vcs_info") or {}).get("commit_id") if text else None
    return {"commit": commit, "dirty": False if commit else None}
