"""The protocol of a result in one line, for the report's Protocol table: the checkpoint rule, the batch sampling,
the precision and the names of the deviations from the preset's source (``results.json`` ``protocol``, written
by ``xstilts.run.protocol``). Results written before the kit recorded a protocol say so."""

from __future__ import annotations

UNRECORDED = "not recorded (older result)"


def summary(result: dict) -> str:
    """``best_dev (English dev accuracy, first 500 rows); random; fp32; deviations: seed, ...``."""
    if result.get("kind") == "retrieval":
        return "no training"
    proto = result.get("protocol")
    if not isinstance(proto, dict):
        return UNRECORDED
    sel = proto.get("selection") or {}
    rule = sel.get("rule") or "?"
    if rule == "best_dev":
        dev = sel.get("dev") or {}
        where = f"{dev.get('hub_id')}/{dev.get('config')} {dev.get('split')}" if isinstance(dev, dict) else str(dev)
        rows = "" if sel.get("rows") in (None, "all") else f", {sel['rows']} rows"
        rule = f"best_dev ({sel.get('metric')} on {where}{rows})"
    precision = (proto.get("precision") or {}).get("in_force", "?")
    names = [d.get("name") for d in proto.get("deviations") or [] if d.get("name")]
    return f"{rule}; {proto.get('train_sampling', '?')}; {precision}; deviations: {', '.join(names) or 'none'}"
