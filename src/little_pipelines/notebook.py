"""HTML for notebooks and files: a run report, a plan, an explanation, the run history.

`RunReport._repr_html_` and `Explanation._repr_html_` call these, so `report` as
the last expression of a notebook cell shows a table (and a run's timeline),
not a dataclass repr. `page` wraps them into one self-contained HTML file for
`lpipe history --html`: inline style and SVG, no script, nothing fetched.
Every name, reason and message is escaped: they may hold `<` and `&`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from .report import HTML_RENDERERS, Status, fmt_time

if TYPE_CHECKING:
    from .explain import Explanation
    from .report import RunReport

STYLE = """
.lp-report { font-family: sans-serif; font-size: 13px; }
.lp-report table { border-collapse: collapse; margin: 4px 0 8px; }
.lp-report th, .lp-report td { padding: 2px 10px; text-align: left; vertical-align: top;
  border-bottom: 1px solid #dee2e6; }
.lp-report td.num { text-align: right; font-variant-numeric: tabular-nums; }
.lp-report .failed { font-weight: bold; }
.lp-report .summary { font-weight: bold; margin: 4px 0; }
.lp-report pre { margin: 0; }
""" + "".join(f".lp-report .{s} {{ color: {s.fill}; }}\n" for s in Status)


def _symbol(status: str) -> str:
    known = Status.of(status)
    return known.symbol if known is not None else "?"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def report_html(report: RunReport, *, timeline: bool = True) -> str:
    """A report (or plan) as an HTML table, with the run's timeline under it."""
    rows = []
    for o in report:
        ran = o.status == "executed" or (o.status == "failed" and o.error is not None)
        rows.append(
            f'<tr class="lp-task" data-status="{escape(o.status)}">'
            f"<td>{escape(o.name)}</td>"
            f'<td class="{escape(o.status)}">{_symbol(o.status)} {escape(o.status)}</td>'
            f'<td class="num">{_seconds(o.duration) if ran else "-"}</td>'
            f'<td class="num">{_seconds(o.stored_duration) if o.status == "cached" else "-"}</td>'
            f"<td>{escape(o.why)}</td></tr>")
    head = "<tr><th>task</th><th>status</th><th>time</th><th>saved</th><th>why</th></tr>"
    parts = [f'<div class="lp-report"><style>{STYLE}</style>',
             f'<div class="summary">{escape(report.summary())}</div>',
             f"<table>{head}{''.join(rows)}</table>"]
    if timeline and not report.planned and len(report):
        from .timeline import svg

        parts.append(svg(report))
    parts.append("</div>")
    return "".join(parts)


def explanation_html(explanation: Explanation) -> str:
    """Why a task would run, with its evidence (diffs as preformatted text)."""
    items = []
    for f in explanation.findings:
        lines = "\n".join(f.lines)
        evidence = f"<pre>{escape(lines)}</pre>" if lines else ""
        items.append(f"<li>{escape(str(f.reason))}{evidence}</li>")
    status = escape(explanation.status)
    return (f'<div class="lp-report"><style>{STYLE}</style>'
            f'<div class="summary">{escape(explanation.task)}: '
            f'<span class="{status}">{_symbol(explanation.status)} {status}</span>'
            f"</div><ul>{''.join(items)}</ul></div>")


def history_html(runs: Sequence[Mapping[str, Any]], pipeline: str) -> str:
    """Past runs as a table, newest last."""
    rows = []
    for run in runs:
        counts = run.get("counts", {})
        rows.append("<tr>" + "".join(
            f'<td class="num">{escape(str(v))}</td>' for v in (
                fmt_time(run.get("started_at")), counts.get("executed", 0),
                counts.get("cached", 0), counts.get("skipped", 0), counts.get("failed", 0),
                _seconds(run.get("duration")), _seconds(run.get("saved")))) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in
                   ("started", "ran", "reused", "skipped", "failed", "time", "saved"))
    return (f'<div class="lp-report"><style>{STYLE}</style>'
            f'<div class="summary">{escape(pipeline)}: last {len(runs)} runs</div>'
            f"<table><tr>{head}</tr>{''.join(rows)}</table></div>")


def page(title: str, *bodies: str) -> str:
    """One self-contained HTML document (no script, no external resource)."""
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title></head>\n<body>\n"
            + "\n".join(bodies) + "\n</body></html>\n")


# RunReport and Explanation draw themselves in a notebook through these.
HTML_RENDERERS.update(report=report_html, explanation=explanation_html)
