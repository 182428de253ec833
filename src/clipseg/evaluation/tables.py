"""Print evaluation results laid out like the paper's tables.

Every function takes rows = result dicts (`Result.to_dict()`, or the JSON files the
evaluation command writes) each with a "model" entry naming the row; scores are printed
in percent with one decimal, as in the paper. `render` groups mixed results by protocol.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Row = dict


def pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def grid(title: str, header: Sequence[str], body: Sequence[Sequence[str]], note: str = "") -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    table = [list(header), *[list(r) for r in body]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    rule = "-" * len(line(table[0]))
    lines = [title, rule, line(table[0]), rule, *[line(r) for r in table[1:]], rule]
    return "\n".join(lines + ([note] if note else []))


def referring_table(rows: Sequence[Row]) -> str:
    """Tab. 3: PhraseCut referring expression segmentation (or the same metrics on other data)."""
    def row(name: str, m: dict) -> list[str]:
        return [name, f"{m['threshold']:.2f}", pct(m["miou"]), pct(m["iou_fg"]), pct(m["ap"])]

    body = []
    for r in rows:  # the fixed threshold, then the best one (by mIoU) when it differs
        body.append(row(r["model"], r["at_threshold"]))
        if r.get("best") and r["best"]["threshold"] != r["at_threshold"]["threshold"]:
            body.append(row(f"{r['model']} (best t)", r["best"]))
    # own-data folders are named by their folder ("data"), the paper's sets by their reader
    datasets = list(dict.fromkeys(r.get("data") or r.get("dataset", "phrasecut") for r in rows))
    title = "Table 3: Referring expression segmentation (" + (
        "PhraseCut" if datasets == ["phrasecut"] else ", ".join(datasets)) + ")"  # fmt: skip
    if datasets != ["phrasecut"] and all(r.get("miou_over") == "sample" for r in rows):
        title += ", mIoU over samples"
    return grid(title, ["", "t", "mIoU", "IoU_FG", "AP"], body)


def zero_shot_table(rows: Sequence[Row]) -> str:
    """Tab. 4: Pascal VOC generalized zero-shot; one column pair per unseen-set size present."""
    sizes = sorted({r["n_unseen"] for r in rows}, reverse=True)
    models = list(dict.fromkeys(r["model"] for r in rows))
    header = [""] + [h for n in sizes for h in (f"unseen-{n} mIoU_S", f"unseen-{n} mIoU_U")]
    body = []
    for m in models:
        by_size = {r["n_unseen"]: r for r in rows if r["model"] == m}
        body.append([m] + [v for n in sizes for v in (pct(by_size.get(n, {}).get("miou_seen")),
                                                       pct(by_size.get(n, {}).get("miou_unseen")))])  # fmt: skip
    return grid("Table 4: Zero-shot segmentation (Pascal VOC)", header, body)


def one_shot_table(rows: Sequence[Row], title: str) -> str:
    """Tab. 5 / 6 / 7: one-shot protocol (visual or text prompts)."""
    body = [[r["model"], f"{r['threshold']:.2f}", pct(r["miou"]), pct(r["iou_bin"]), pct(r["ap"])] for r in rows]
    return grid(title, ["", "t", "mIoU", "IoU_BIN", "AP"], body)


def generalized_table(rows: Sequence[Row]) -> str:
    """Tab. 8: generalized prompts on LVIS."""
    subsets = ["affordances", "attributes", "meronymy"]
    header = [""] + [h for s in subsets for h in (f"{s.capitalize()} mIoU", "AP")]
    body = [
        [r["model"]] + [v for s in subsets for v in (pct(r["subsets"].get(s, {}).get("miou")),
                                                     pct(r["subsets"].get(s, {}).get("ap")))]
        for r in rows
    ]  # fmt: skip
    return grid("Table 8: Generalized prompts (LVIS)", header, body)


def visual_prompt_table(rows: Sequence[Row]) -> str:
    """Tab. 2 (right): change of CLIP's object probability per visual prompt variant; a result
    of several parts (folds) gets one column per part and one for their mean."""
    variants = list(dict.fromkeys(v for r in rows for v in r["delta"]))
    columns = []  # (header, result dict with "delta" and "baseline")
    for r in rows:
        parts = r.get("parts") or []
        if len(parts) > 1:
            columns += [(f"{r['model']} {p['name']}".strip(), p) for p in parts]
            columns.append((f"{r['model']} mean", r))
        else:
            columns.append((r["model"], r))
    header = ["", *[name for name, _ in columns]]
    body = [[v, *[f"{c['delta'][v]:.2f}" if v in c["delta"] else "-" for _, c in columns]] for v in variants]
    body.append(["samples", *[str(c["samples"]) for _, c in columns]])
    data = ", ".join(dict.fromkeys(r.get("dataset", "") for r in rows if r.get("dataset")))
    note = "Delta P(object) in percentage points vs. the unmodified image (baseline: " + ", ".join(
        f"{name} {c['baseline']:.2f}%" for name, c in columns) + ")" + (f"; data: {data}" if data else "")  # fmt: skip
    return grid("Table 2: Visual prompt engineering", header, body, note)


ONE_SHOT_TITLES = {
    ("visual", "pascal5i"): "Table 5: One-shot segmentation (Pascal-5i)",
    ("visual", "coco20i"): "Table 6: One-shot segmentation (COCO-20i)",
    ("text", "pascal5i"): "Table 7: Zero-shot performance on Pascal-5i (one-shot protocol, text prompts)",
}


def render(results: Sequence[Row]) -> str:
    """All tables for a mixed list of results, in the paper's order."""
    def rows_of(protocol: str) -> list[Row]:
        return [r for r in results if r["protocol"] == protocol]

    parts = [
        table(rows_of(protocol))
        for protocol, table in (("visual_prompts", visual_prompt_table), ("referring", referring_table),
                                ("zero_shot", zero_shot_table))
        if rows_of(protocol)
    ]  # fmt: skip
    one_shot = rows_of("one_shot")
    for prompt, dataset in dict.fromkeys((r["prompt"], r.get("dataset", "")) for r in one_shot):
        rows = [r for r in one_shot if (r["prompt"], r.get("dataset", "")) == (prompt, dataset)]
        title = ONE_SHOT_TITLES.get((prompt, dataset), f"One-shot protocol, {prompt} prompts ({dataset or 'data set'})")
        parts.append(one_shot_table(rows, title))
    if rows_of("generalized"):
        parts.append(generalized_table(rows_of("generalized")))
    return "\n\n".join(parts)
