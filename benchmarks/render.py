"""Fill ``benchmarks/template.md`` from a run's ``results.json``: every section hands over its
tables and goal rows already formatted; this adds the machine, the sections and the goals.

Run: .venv/bin/python -m benchmarks.render RESULTS_JSON PAGE_MD
"""

import json
import os
import string
import sys

from .timing import goal, table

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "template.md")


def write(results_path, page_path):
    with open(results_path) as handle:
        results = json.load(handle)
    fields, goals = {f"machine_{key}": value for key, value in results["machine"].items()}, []
    for name, record in results["sections"].items():
        fields.update(results[name]["fields"])
        mark = " (loaded: see Sections)" if record["loaded"] else ""
        goals += [{**row, "status": row["status"] + mark} for row in results[name]["goals"]]
    minutes = results.get("total_s", 0) / 60
    goals.append(goal("`make bench` ≤ 15 min", minutes, 15.0, measured=f"{minutes:.1f} min"))
    fields.update(date=results.get("date", "–"), total_min=f"{minutes:.1f}", goals=table(goals))
    fields["quick"] = " (**quick mode**: reduced grids, not for committing)" * results["quick"]
    fields["sections"] = table(list(results["sections"].values()))
    with open(TEMPLATE) as handle:
        page = string.Template(handle.read()).substitute(fields)
    with open(page_path, "w") as handle:
        handle.write(page)
    print(f"wrote {page_path}")


if __name__ == "__main__":
    write(*sys.argv[1:3])
