"""The self-contained HTML report: one file, figures inlined as SVG, inline CSS, no script, no font or
stylesheet from the network — it opens offline, from a CI artifact or an e-mail attachment."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from harness.report.backends import backend_tables
from harness.report.board_spread import TITLE as SPREAD_TITLE
from harness.report.board_spread import board_spread_table
from harness.report.data import ReportData
from harness.report.headline import headline_table
from harness.report.provenance import devices_table, models_table, runs_table
from harness.report.tables import Table, mlperf_table, op_tables, original_vs_pruned, warnings_table

if TYPE_CHECKING:  # figures imports matplotlib, which a page without figures need not load
    from harness.report.figures import Figure

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1b1f24;
 margin:0 auto;max-width:1280px;padding:1.2rem 1.6rem}
h1{font-size:1.5rem;margin:.2rem 0 .4rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;margin:.4rem 0 .2rem;font-size:12.5px}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;vertical-align:top;text-align:left}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.sha{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:11px;word-break:break-all;max-width:18rem}
.cap{color:#57606a;font-size:12px;margin:.2rem 0 1rem}.lead{color:#57606a}
figure{margin:1rem 0 1.6rem}figure svg.fig{display:block;max-width:100%;height:auto;border:1px solid #eaeef2}
figure svg.fig *{stroke-linejoin:round;stroke-linecap:butt}
figure svg.fig text{font-family:"DejaVu Sans","Bitstream Vera Sans",Verdana,Geneva,Arial,Helvetica,sans-serif}
figcaption{color:#57606a;font-size:12px}.warn{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .8rem}
.empty{background:#ffebe9;border:1px solid #cf222e;padding:.6rem .9rem}
nav a{margin-right:.9rem}code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
@media print{body{max-width:none;padding:0}figure{break-inside:avoid}nav{display:none}}
"""


def render_html(data: ReportData, figures: list[Figure], *, title: str, generated: str, regenerate: str) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',  # no favicon request: the page must not touch the network
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="lead">Generated {escape(generated)}. Regenerate with <code>{escape(regenerate)}</code>.</p>',
        '<nav><a href="#provenance">Provenance</a><a href="#warnings">Warnings</a><a href="#headline">Headline</a>'
        '<a href="#original-vs-pruned">Original vs pruned</a><a href="#figures">Figures</a></nav>',
        '<h2 id="provenance">Provenance</h2>',
        "<h3>Runs</h3>", _table(runs_table(data)),
        "<h3>Boards</h3>", _table(devices_table(data)),
        "<h3>Models</h3>", _table(models_table(data), sha_column=1),
        '<h2 id="warnings">Warnings</h2>', _warnings(data),
        '<h2 id="headline">Headline, per board</h2>', _table(headline_table(data, data.accuracy_floor_pp)),
        '<h2 id="original-vs-pruned">Original vs pruned, on each board</h2>',
    ]
    if not data.has_results:
        parts.append('<p class="empty">No cell of these runs finished successfully, so there are no figures to '
                     "show. The failed cells and their errors are listed under Warnings.</p>")
    for board, table in original_vs_pruned(data).items():
        parts += [f"<h3>{escape(board)}</h3>", _table(table)]
    for title, table in backend_tables(data):  # firmware backends side by side, per-op profiles
        parts += [f"<h2>{escape(title)}</h2>", _table(table)]
    spread = board_spread_table(data)
    if spread is not None:
        parts += [f'<h2 id="board-spread">{escape(SPREAD_TITLE)}</h2>', _table(spread)]
    operators = op_tables(data)
    if operators:
        parts.append('<h2 id="operators">Where the time goes, operator by operator</h2>')
        for board, table in operators.items():
            parts += [f"<h3>{escape(board)}</h3>", _table(table)]
    if (ml := mlperf_table(data)) is not None:
        parts += ['<h2 id="mlperf">MLPerf Tiny figures</h2>', _table(ml)]
    parts.append('<h2 id="figures">Figures</h2>')
    if not figures:
        parts.append("<p>No figures: nothing was measured successfully.</p>")
    for fig in figures:
        parts.append(_figure(fig))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _table(table: Table, sha_column: int | None = None) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for i, value in enumerate(row):
            cls = ' class="n"' if i in table.numeric else ' class="sha"' if i == sha_column else ""
            cells.append(f"<td{cls}>{escape(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f'<p class="cap">{escape(table.caption)}</p>' if table.caption else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{cap}"


def _warnings(data: ReportData) -> str:
    if not data.warnings:
        return "<p>None: every figure is measured on the board, every cell succeeded, no cell's coefficient of " \
               f"variation exceeds {data.cv_threshold:.2f}, no throttling was reported.</p>"
    kinds: dict[str, int] = {}
    for w in data.warnings:
        kinds[w.kind] = kinds.get(w.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in kinds.items())
    return f'<p class="warn">{escape(summary)}.</p>' + _table(warnings_table(data))


def _figure(fig: Figure) -> str:
    svg = fig.svg.replace('role="img" ', f'role="img" aria-label="{escape(fig.alt)}" ', 1)
    return (f'<figure id="fig-{escape(fig.key)}"><h3>{escape(fig.title)}</h3>{svg}'
            f"<figcaption>{escape(fig.caption)}</figcaption></figure>")
