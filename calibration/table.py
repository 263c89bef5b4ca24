"""Tables from a calibration jsonl (:mod:`calibration.run`): the headline rates, per-case
rows, the learned-score scenarios.

    .venv/bin/python -m calibration.table calibration/results/run.jsonl [other.jsonl]

With two files, the per-case and user sections show both readings side by side.
"""

import argparse
import json
from collections import defaultdict

FLAGGED = ("warn", "fail")


def load(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _pct(values):
    return f"{100 * sum(values) / len(values):.0f}%" if values else "-"


def headline(rows):
    """Crashes; traps failed / flagged; clean failed / flagged, by half and inputs level."""
    lines = [
        f"crashed reports: {sum(r['status'] == 'crash' for r in rows)} of {len(rows)}"
        + "".join(
            f"\n  crash: {r['case']} d={r['d']} seed {r['seed']} [{r['level']}]: {r['error']}"
            for r in rows
            if r["status"] == "crash"
        ),
        "",
        "| kind | inputs | half | runs | fail | warn or fail | unconverged | ok | crash |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups = defaultdict(list)
    for r in rows:
        if r["kind"] not in ("trap", "clean"):
            continue
        level = r["level"] if r["level"] != "+ training data" else "+ training data"
        for half in (r["half"], "all"):
            groups[(r["kind"], level, half)].append(r["status"])
    order = {"tuning": 0, "held-out": 1, "all": 2}
    for (kind, level, half), statuses in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1], order[kv[0][2]])
    ):
        lines.append(
            f"| {kind} | {level} | {half} | {len(statuses)} "
            f"| {_pct([s == 'fail' for s in statuses])} "
            f"| {_pct([s in FLAGGED for s in statuses])} "
            f"| {_pct([s == 'unconverged' for s in statuses])} "
            f"| {_pct([s == 'ok' for s in statuses])} "
            f"| {_pct([s == 'crash' for s in statuses])} |"
        )
    return lines


def _right(row) -> bool | None:
    s, expect = row["status"], row["expect"]
    if expect == "fail":
        return s == "fail"
    if expect == "not warn/fail":
        return s in ("ok", "unconverged", "skipped")
    if expect == "ok":
        return s == "ok"
    if expect == "not ok":
        return s in FLAGGED
    if expect.startswith("not warn/fail"):
        return s in ("ok", "unconverged", "skipped")
    return None


def _flagged_checks(row):
    return ", ".join(f"{n}: {s}" for n, s in row["checks"] if s in FLAGGED + ("unconverged",))


def per_case(rows, other=None):
    """One row per (case, d, level): the statuses by seed, right/total, median seconds."""
    lines = [
        "| case | kind | d | inputs | expect | statuses by seed | right | report s (median) "
        "| run s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if other is not None:
        lines[0] = lines[0][:-1] + " other file |"
        lines[1] += "---|"
    groups = defaultdict(list)
    for r in rows:
        groups[(r["case"], r["d"], r["level"])].append(r)
    others = defaultdict(list)
    for r in other or []:
        others[(r["case"], r["d"], r["level"])].append(r)
    for key, entries in groups.items():
        entries.sort(key=lambda r: r["seed"])
        statuses = " ".join(f"{r['seed']}:{r['status']}" for r in entries)
        right = [_right(r) for r in entries]
        seconds = sorted(r["seconds"] for r in entries)[len(entries) // 2]
        build = sorted(r["build_seconds"] for r in entries)[len(entries) // 2]
        line = (
            f"| {key[0]} | {entries[0]['kind']} | {key[1]} | {key[2]} | {entries[0]['expect']} "
            f"| {statuses} | {sum(x is True for x in right)}/{len(right)} | {seconds:.1f} "
            f"| {build:.1f} |"
        )
        if other is not None:
            o = sorted(others.get(key, []), key=lambda r: r["seed"])
            line += " " + " ".join(f"{r['seed']}:{r['status']}" for r in o) + " |"
        lines.append(line)
    return lines


def _first_reason(row):
    """The first line of the report, and the line of the first check at the report's
    status (else the first flagged or unconverged one)."""
    text = (row["text"] or "").strip().splitlines()
    if row["status"] == "crash":
        return row["error"] or (text[-1] if text else "")
    head = text[0] if text else ""
    for wanted in ((row["status"],), FLAGGED + ("unconverged",)):
        for line in text[1:]:
            if any(f" {s} " in line for s in wanted):
                return head + " || " + " ".join(line.split())[:260]
    return head


def user_lines(rows, other=None):
    lines = []
    for r in sorted(
        (r for r in rows if r["kind"] == "user"), key=lambda r: (r["case"], r["level"], r["seed"])
    ):
        extra = r["extra"]
        weights = extra.get("weights")
        starts = extra.get("start_weights")
        lines.append(
            f"{r['case']} [{r['level']}] seed {r['seed']}: {r['status'].upper()} "
            f"(expect {r['expect']}); weights {weights}"
            + (f" (starts {starts})" if starts else "")
            + f"; report {r['seconds']:.1f} s"
        )
        lines.append(f"    {_first_reason(r)}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("jsonl")
    parser.add_argument("other", nargs="?", default=None)
    args = parser.parse_args(argv)
    rows = load(args.jsonl)
    other = load(args.other) if args.other else None
    print(f"# {args.jsonl}: {len(rows)} reports; code {sorted({r['code'] for r in rows})}\n")
    print("## Headline (trap: right = fail; clean: right = not warn/fail)\n")
    print("\n".join(headline(rows)))
    print("\n## Per case\n")
    print("\n".join(per_case(rows, other)))
    print("\n## New user's scenarios\n")
    print("\n".join(user_lines(rows)))
    if other:
        print(f"\n## New user's scenarios in {args.other}\n")
        print("\n".join(user_lines(other)))


if __name__ == "__main__":
    main()
