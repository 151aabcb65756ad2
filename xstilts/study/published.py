"""Published reference numbers (configs/published.json) beside ours, each with its source and protocol.

Rules the report keeps (issue 20, part 5):

* every number names a source (``sources``: citation and how far it was checked) and a protocol (``protocols``);
  :func:`validate` refuses a file where one does not;
* numbers of different protocols never share a table row: every table here holds one protocol, named above it
  (XLM-R Base 76.2 on XNLI is the XLM-R paper's protocol, selection on all 15 languages' dev sets; XTREME's XLM-R
  Large 79.2 is English-dev selection; the XL / XXL XNLI numbers are translate-train-all, not zero-shot);
* two sources for the same system (the X-STILTs rows of RemBERT Table 16 and of the mT5 README) are shown side by
  side with their disagreement spelled out, never averaged;
* ours appear only in the tables of the protocol the kit follows (``ours_protocol``);
* what was left out for want of a verified source (``omitted``) is listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..run.layout import BASELINE
from .markdown import md_table, pct

PUBLISHED = "published"  # the mark on every published number in the report
ENTRY_LISTS = ("systems", "by_size", "claims")


# ----------------------------------------------------------------------------- the file
def validate(pub: dict, where: str = "published numbers") -> dict:
    """Refuse entries without a known source and protocol (ValueError naming the entry)."""
    sources, protocols = pub.get("sources") or {}, pub.get("protocols") or {}
    if pub.get("ours_protocol") is not None and pub["ours_protocol"] not in protocols:
        raise ValueError(f"{where}: ours_protocol {pub['ours_protocol']!r} is not in protocols {sorted(protocols)}")
    for key, src in sources.items():
        if not isinstance(src, dict) or not src.get("citation") or not src.get("trust"):
            raise ValueError(f"{where}: source {key!r} needs a citation and a trust statement")
    for name in ENTRY_LISTS:
        for i, entry in enumerate(pub.get(name) or []):
            label = f"{where}: {name}[{i}]"
            if entry.get("source") not in sources:
                raise ValueError(f"{label} has source {entry.get('source')!r}; known sources: {sorted(sources)}")
            if entry.get("protocol") not in protocols:
                raise ValueError(f"{label} has protocol {entry.get('protocol')!r}; known protocols: "
                                 f"{sorted(protocols)}")
    return pub


def load(path: str | Path | None) -> dict | None:
    if path is None:
        return None
    try:
        pub = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"published reference numbers {path}: {e}") from None
    return validate(pub, f"published reference numbers {path}")


# ----------------------------------------------------------------------------- values
def value_text(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, dict):
        if "exact_match" in v and "f1" in v:
            return f"{v['exact_match']:.1f} / {v['f1']:.1f}"
        return f"F1 {v['f1']:.1f}"
    return f"{v:.1f}"


def score(v) -> tuple[float | None, str]:
    """(the number a gain is taken on, what it is): QA (EM + F1) / 2 as XTREME scores it, or F1 when the source
    gives F1 only."""
    if v is None:
        return None, ""
    if isinstance(v, dict):
        if "exact_match" in v and "f1" in v:
            return (v["exact_match"] + v["f1"]) / 2.0, "(EM+F1)/2"
        return float(v["f1"]), "F1"
    return float(v), ""


@dataclass
class Table:
    """One table of published numbers: one protocol; ``row_protocols`` records, per row, the protocols of the
    entries its cells were filled from (a test checks each is exactly {protocol})."""

    title: str
    protocol: str
    header: list[str]
    right: int = 1  # first right-aligned column
    rows: list[list[str]] = field(default_factory=list)
    row_protocols: list[set[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: list[str], protocols: set[str]) -> None:
        self.rows.append(row)
        self.row_protocols.append(protocols)


def _short(pub: dict, key: str) -> str:
    return (pub["sources"].get(key) or {}).get("short", key)


def _cite(pub: dict, key: str) -> str:
    src = pub["sources"].get(key) or {}
    return f"{src.get('citation', key)} [{src.get('trust', 'trust unknown')}]"


# ----------------------------------------------------------------------------- tables
def system_tables(pub: dict, ours_base, ours_best) -> list[Table]:
    """Per protocol: the per-task table of its systems, baseline and X-STILTs per source, with the published gain.
    ``ours_base(model, task)`` -> our baseline score or None; ``ours_best(model, task)`` -> text or None."""
    tables = []
    systems = pub.get("systems") or []
    for protocol in dict.fromkeys(s["protocol"] for s in systems):
        in_protocol = [s for s in systems if s["protocol"] == protocol]
        by_source: dict[str, dict[str, dict]] = {}
        for s in in_protocol:
            by_source.setdefault(s["source"], {})["base" if s.get("intermediate") == BASELINE else "inter"] = s
        model = in_protocol[0]["model"]
        ours = protocol == pub.get("ours_protocol")
        header = ["target"]
        for src, pair in by_source.items():
            header += [f"{s['name']} [{_short(pub, src)}] ({PUBLISHED})" for s in pair.values()]
            if len(pair) == 2:
                header.append(f"gain [{_short(pub, src)}] ({PUBLISHED})")
        if ours:
            header += [f"ours: {model} {BASELINE}", f"ours: {model} best intermediate, gain"]
        table = Table("per task", protocol, header, right=1)
        for task in pub.get("tasks") or []:
            row, used = [task], set()
            for src, pair in by_source.items():
                for s in pair.values():
                    v = (s.get("scores") or {}).get(task)
                    row.append(value_text(v))
                    if v is not None:
                        used.add(s["protocol"])
                if len(pair) == 2:
                    (b, bk), (x, xk) = score(pair["base"]["scores"].get(task)), score(pair["inter"]["scores"].get(task))
                    row.append(f"{x - b:+.1f}" + (f" ({bk})" if bk else "") if b is not None and x is not None
                               else "–")
            if not used:
                continue
            if ours:
                base = ours_base(model, task)
                row += [pct(base) if base is not None else "–", ours_best(model, task) or "–"]
            table.add(row, used)
        avg_row, used = ["average (7 tasks)"], set()
        for src, pair in by_source.items():
            for s in pair.values():
                avg_row.append("–" if s.get("average_7_tasks") is None else f"{s['average_7_tasks']:.1f}")
                if s.get("average_7_tasks") is not None:
                    used.add(s["protocol"])
            if len(pair) == 2:
                a, b = pair["inter"].get("average_7_tasks"), pair["base"].get("average_7_tasks")
                avg_row.append("–" if a is None or b is None else f"{a - b:+.1f}")
        if used:
            table.add(avg_row + (["", ""] if ours else []), used)
        table.notes += _disagreements(pub, in_protocol)
        table.notes += [f"{s['name']} [{_short(pub, s['source'])}]: {s['note']}" for s in in_protocol if s.get("note")]
        tables.append(table)
    return tables


def _disagreements(pub: dict, systems: list[dict]) -> list[str]:
    """Where two sources give the same system (model and intermediate) different numbers."""
    out = []
    groups: dict[tuple, list[dict]] = {}
    for s in systems:
        groups.setdefault((s["model"], s.get("intermediate"), s["name"]), []).append(s)
    for (_, _, name), ss in groups.items():
        for i, a in enumerate(ss):
            for b in ss[i + 1:]:
                diffs = []
                for task in pub.get("tasks") or []:
                    va, vb = a["scores"].get(task), b["scores"].get(task)
                    if va is None or vb is None:
                        continue
                    fa = va["f1"] if isinstance(va, dict) else va
                    fb = vb["f1"] if isinstance(vb, dict) else vb
                    if abs(fa - fb) > 1e-9:
                        diffs.append(f"{task} {fa:.1f} vs {fb:.1f}" + (" (F1)" if isinstance(va, dict) else ""))
                if diffs:
                    out.append(f"**The sources disagree** on {name}: {_short(pub, a['source'])} vs "
                               f"{_short(pub, b['source'])}: {'; '.join(diffs)}. Both are shown, neither is "
                               f"preferred; the X-STILTs paper's own table could not be read.")
    return out


def size_tables(pub: dict, ours_base) -> list[Table]:
    """Per task and protocol: the published numbers by model size (``by_size``); ours only in our protocol's."""
    tables = []
    entries = pub.get("by_size") or []
    keys = list(dict.fromkeys((e["task"], e["protocol"]) for e in entries))
    for task, protocol in keys:
        rows = [e for e in entries if e["task"] == task and e["protocol"] == protocol]
        ours = protocol == pub.get("ours_protocol")
        qa = any(isinstance(e["value"], dict) for e in rows)
        header = ["model", "source", "split", f"{task} ({PUBLISHED})" + (" EM / F1" if qa else "")]
        if ours:
            header.append(f"ours: {BASELINE} (task metric, mean over seeds)")
        table = Table(task, protocol, header, right=3)
        for e in rows:
            row = [e["model"], _short(pub, e["source"]) + (f"; {e['note']}" if e.get("note") else ""),
                   e.get("split") or "–", value_text(e["value"])]
            if ours:
                base = ours_base(e["model"], task, raw=True)
                row.append(pct(base) if base is not None else "–")
            table.add(row, {e["protocol"]})
        tables.append(table)
    return tables


def render(table: Table, pub: dict) -> str:
    out = [f"**{table.title}, protocol `{table.protocol}`**: {pub['protocols'][table.protocol]}.", "",
           md_table(table.header, table.rows, right=table.right)]
    if table.notes:
        out += ["", *[f"- {n}" for n in table.notes]]
    return "\n".join(out)


def section(pub: dict, ours_base, ours_best) -> str:
    """The report's published section. ``ours_base(model, task, raw=False)``: our mean baseline (the XTREME score
    (EM + F1) / 2 for QA, or with ``raw`` the task metric), or None; ``ours_best(model, task)``: text or None."""
    out = [f"Every number in this section marked ({PUBLISHED}) comes from the literature, not from this results tree. "
           f"Values ×100; QA as EM / F1. Each table holds one protocol (named above it); numbers of different "
           f"protocols are never compared in one row. Ours are shown only beside numbers of the protocol the kit "
           f"follows ({pub['protocols'].get(pub.get('ours_protocol'), 'none')}), and are comparable only on the "
           f"full language sets and test splits.", ""]
    for table in system_tables(pub, ours_base, ours_best):
        out += [render(table, pub), ""]
    sizes = size_tables(pub, ours_base)
    if sizes:
        out += ["### Published numbers by model size", ""]
        for table in sizes:
            out += [render(table, pub), ""]
    claims = pub.get("claims") or []
    if claims:
        out += ["### Published claims (paraphrased from the abstracts; quotation marks: the source's words)", ""]
        out += [f"- ({PUBLISHED}, protocol `{c['protocol']}`) {c['text']} — {_short(pub, c['source'])}"
                for c in claims]
        out.append("")
    if pub.get("omitted"):
        out += ["### Not shown: no verified source", ""]
        out += [f"- {o['what']}: {o['why']}." for o in pub["omitted"]]
        out.append("")
    used = list(dict.fromkeys(e["source"] for name in ENTRY_LISTS for e in pub.get(name) or []))
    out += ["### Sources", ""] + [f"- {_short(pub, k)}: {_cite(pub, k)}" for k in used]
    return "\n".join(out)
