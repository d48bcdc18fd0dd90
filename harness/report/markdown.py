"""The Markdown summary: small enough for a CI job summary (GitHub caps one at 1 MiB), no images —
runs, boards, warnings and the original-vs-pruned table of each board, pointing at the HTML for figures."""

from __future__ import annotations

from harness.report.backends import backend_tables
from harness.report.board_spread import TITLE as SPREAD_TITLE
from harness.report.board_spread import board_spread_table
from harness.report.data import ReportData
from harness.report.headline import headline_table
from harness.report.provenance import devices_table, runs_table
from harness.report.tables import Table, mlperf_table, op_tables, original_vs_pruned, warnings_table

#: Warnings listed in full; a CI summary with hundreds of rows helps nobody.
MAX_WARNINGS = 25


def md_table(table: Table, columns: list[int] | None = None) -> str:
    cols = columns if columns is not None else list(range(len(table.columns)))
    head = "| " + " | ".join(_cell(table.columns[i]) for i in cols) + " |"
    rule = "|" + "|".join("---:" if i in table.numeric else "---" for i in cols) + "|"
    rows = ["| " + " | ".join(_cell(row[i]) for i in cols) + " |" for row in table.rows]
    text = "\n".join([head, rule, *rows])
    return text + (f"\n\n_{_cell(table.caption)}_" if table.caption else "")


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def render_markdown(data: ReportData, *, title: str, generated: str, regenerate: str, html_name: str | None) -> str:
    out = [f"## {title}", "", f"Generated {generated}. Regenerate with `{regenerate}`."]
    if html_name:
        out.append(f"Figures and full provenance: `{html_name}`.")
    out += ["", "### Runs", "", md_table(runs_table(data), [0, 1, 3, 4, 5, 6]),
            "", "### Boards", "", md_table(devices_table(data), [0, 1, 2, 3, 4, 6]), "", "### Warnings", ""]
    if not data.warnings:
        out.append("None.")
    else:
        shown = warnings_table(data, limit=MAX_WARNINGS)
        shown.caption = (f"… and {len(data.warnings) - MAX_WARNINGS} more in the HTML report."
                         if len(data.warnings) > MAX_WARNINGS else "")
        out.append(md_table(shown))
    if data.has_results:
        out += ["", "### Headline, per board", "", md_table(headline_table(data, data.accuracy_floor_pp))]
    out += ["", "### Original vs pruned, on each board"]
    if not data.has_results:
        out += ["", "**No cell of these runs finished successfully** — nothing to compare; see Warnings."]
    for board, table in original_vs_pruned(data).items():
        out += ["", f"#### {board}", "", md_table(table)]
    for title, table in backend_tables(data):  # firmware backends, when a run has them
        out += ["", f"### {title}", "", md_table(table)]
    spread = board_spread_table(data)
    if spread is not None:
        out += ["", f"### {SPREAD_TITLE}", "", md_table(spread)]
    operators = op_tables(data)
    if operators:
        out += ["", "### Where the time goes, operator by operator"]
        for board, table in operators.items():
            out += ["", f"#### {board}", "", md_table(table)]
    if (ml := mlperf_table(data)) is not None:
        out += ["", "### MLPerf Tiny figures", "", md_table(ml)]
    return "\n".join(out) + "\n"
