"""How a comparison is shown: display rows (for the terminal table), Markdown for a CI job summary,
and JUnit XML — one test case per (cell, metric), failing on a regression — for CI test reporting."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.compare import METRICS, CellKey, Comparison, MetricResult

COLUMNS = ["cell", "metric", "baseline", "current", "change", "threshold", "p", "verdict"]
#: Verdicts shown in the table; "ok" rows are counted but left out so the table shows what moved.
SHOWN = ("regression", "failed", "improvement", "not significant")


def _value(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    return METRICS[metric].format(value) if metric in METRICS else f"{value:.2f}"


def _change(r: MetricResult) -> str:
    if r.change is None:
        return "–"
    unit = "%" if r.threshold.split("=")[-1].strip().endswith("%") else \
        "pp" if r.threshold.endswith("pp") else ""
    if math.isinf(r.change):
        return "+∞%" if r.change > 0 else "−∞%"
    return f"{r.change:+.2f}{unit}" if unit else f"{r.change:+,.2f}"


def _p(r: MetricResult) -> str:
    return "–" if r.p_value is None or math.isnan(r.p_value) else f"{r.p_value:.2g}"


def rows(comparison: Comparison, everything: bool = False) -> list[list[str]]:
    out = []
    for r in comparison.results:
        if everything or r.verdict in SHOWN:
            out.append([str(r.cell), r.metric, _value(r.metric, r.baseline), _value(r.metric, r.current), _change(r),
                        r.threshold, _p(r), r.verdict + (f": {r.note}" if r.note else "")])
    return out


def headline(comparison: Comparison) -> str:
    n_reg, n_imp = len(comparison.regressions), len(comparison.improvements)
    verdict = f"REGRESSION in {n_reg} check(s)" if n_reg else "no regression"
    return (f"{verdict}; {n_imp} improvement(s); {len(comparison.cells)} cells compared "
            f"({len(comparison.results)} checks)")


def to_json(comparison: Comparison) -> dict[str, Any]:
    """Every check with its figures, for scripts: the same verdicts as the table, none left out."""
    def num(x: float | None) -> float | None:
        return None if x is None or math.isnan(x) or math.isinf(x) else float(x)

    def cell(k: CellKey) -> dict[str, str]:
        return {"device": k.device, "variant": k.variant, "sha256": k.sha256}

    return {
        "baseline": comparison.baseline, "current": comparison.current, "exit_code": comparison.exit_code,
        "regressions": len(comparison.regressions), "improvements": len(comparison.improvements),
        "cells": len(comparison.cells), "checks": len(comparison.results), "alpha": comparison.alpha,
        "thresholds": {m: t.text for m, t in comparison.thresholds.items()},
        "tests": comparison.tests_used(),
        "results": [{"cell": cell(r.cell), "metric": r.metric, "baseline": num(r.baseline),
                     "current": num(r.current), "change": num(r.change), "threshold": r.threshold,
                     "test": r.test, "p_value": num(r.p_value), "verdict": r.verdict, "note": r.note}
                    for r in comparison.results],
        "only_baseline": [cell(k) for k in comparison.only_baseline],
        "only_current": [cell(k) for k in comparison.only_current],
    }


def tests_text(comparison: Comparison) -> list[str]:
    return [f"{metric} ({comparison.thresholds[metric].text}): {test}"
            for metric, test in comparison.tests_used().items()]


def to_markdown(comparison: Comparison) -> str:
    lines = [f"## bench compare: {headline(comparison)}", "",
             f"Baseline: {comparison.baseline}  ", f"Current: {comparison.current}", "",
             "A check regresses only when the change passes its threshold in the bad direction **and** is "
             "significant. Tests:", ""]
    lines += [f"- {t}" for t in tests_text(comparison)]
    shown = rows(comparison)
    lines += [""]
    if shown:
        lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in shown]
    else:
        lines.append("Every check is within its threshold.")
    for label, keys in (("Only in the baseline", comparison.only_baseline),
                        ("Only in the current run", comparison.only_current)):
        if keys:
            lines += ["", f"{label} (not compared): " + ", ".join(str(k) for k in keys)]
    return "\n".join(lines) + "\n"


def write_junit(comparison: Comparison, path: Path) -> Path:
    suite = ET.Element("testsuite", name="bench compare", tests=str(len(comparison.results)),
                       failures=str(len(comparison.regressions)), errors="0", skipped=str(
                           sum(r.verdict == "n/a" for r in comparison.results)))
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="baseline", value=comparison.baseline)
    ET.SubElement(props, "property", name="current", value=comparison.current)
    for text in tests_text(comparison):
        ET.SubElement(props, "property", name="test", value=text)
    for r in comparison.results:
        case = ET.SubElement(suite, "testcase", classname=f"{r.cell.device}.{r.cell.variant}", name=r.metric)
        detail = (f"{r.cell}: {r.metric} {_value(r.metric, r.baseline)} -> {_value(r.metric, r.current)} "
                  f"({_change(r)}, threshold {r.threshold or '–'}, p = {_p(r)}; {r.test or r.note})")
        if r.verdict in ("regression", "failed"):
            ET.SubElement(case, "failure", message=f"{r.verdict}: {r.note or detail}", type=r.verdict).text = detail
        elif r.verdict == "n/a":
            ET.SubElement(case, "skipped", message=r.note)
        else:
            ET.SubElement(case, "system-out").text = f"{r.verdict}: {detail}"
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
    return path
