"""The run timeline: SVG for notebooks and files, Rich bars for the terminal.

Checked without screenshots: the SVG and the HTML file are parsed, and each
task must have one bar with its status; tasks that ran at the same time on
threads must overlap.
"""

from __future__ import annotations

import io
import threading
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import little_pipelines as lp
from little_pipelines.cli import main
from little_pipelines.render import make_console
from little_pipelines.timeline import svg

SVG = "{http://www.w3.org/2000/svg}"


def make_pipeline(tmp_path: Path) -> lp.Pipeline:
    p = lp.Pipeline("timeline", cache_dir=tmp_path / "store")
    # left and right meet here, so on two threads they surely run at the same time
    together = threading.Barrier(2, timeout=10)

    @p.task
    def first():
        time.sleep(0.05)
        return 1

    @p.task
    def left(first):
        together.wait()
        time.sleep(0.3)
        return first + 1

    @p.task
    def right(first):
        together.wait()
        time.sleep(0.3)
        return first + 2

    @p.task
    def broken(left, right):
        raise ValueError("no <good> & bad")

    @p.task
    def after(broken):
        return 0

    return p


def bars_of(svg_text: str) -> dict[str, tuple[str, float, float]]:
    root = ET.fromstring(svg_text)
    out = {}
    for rect in root.iter(f"{SVG}rect"):
        if rect.get("class") == "lp-bar":
            x, w = float(rect.get("x", 0)), float(rect.get("width", 0))
            out[rect.get("data-task", "")] = (rect.get("data-status", ""), x, x + w)
    return out


def test_the_svg_has_one_bar_per_task_with_its_status_and_overlaps(tmp_path: Path) -> None:
    p = make_pipeline(tmp_path)
    report = p.execute(executor="threads", workers=2)
    bars = bars_of(svg(report))
    assert {n: s for n, (s, _, _) in bars.items()} == {
        "first": "executed", "left": "executed", "right": "executed", "broken": "failed",
        "after": "failed"}
    # left and right ran at the same time on two threads: their bars overlap
    (_, l0, l1), (_, r0, r1) = bars["left"], bars["right"]
    assert l0 < r1 and r0 < l1
    assert bars["first"][2] <= min(l0, r0) + 1  # first ended before they started
    again = p.execute()
    assert {s for s, _, _ in bars_of(svg(again)).values()} == {"cached", "failed"}
    p.close()


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def pipeline_file(tmp_path: Path) -> Path:
    """A file the CLI loads that builds the same pipeline as `make_pipeline`."""
    path = tmp_path / "pipe.py"
    path.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from pathlib import Path\n"
        "from test_timeline import make_pipeline\n"
        f"pipeline = make_pipeline(Path({str(tmp_path)!r}))\n")
    return path


def test_history_html_is_one_self_contained_file(tmp_path: Path) -> None:
    p = make_pipeline(tmp_path)
    path = pipeline_file(tmp_path)
    p.execute(executor="threads", workers=2)
    p.close()
    out = io.StringIO()
    target = tmp_path / "runs.html"
    code = main(["history", str(path), "--html", str(target)],
                console=make_console(out, width=100, color_system=None))
    assert code == 0, out.getvalue()
    text = target.read_text()
    parser = _Collect()
    parser.feed(text)
    tags = parser.tags
    assert not [t for t, _ in tags if t in ("script", "link", "img", "iframe")]
    assert not any(k in ("src", "href") for _, attrs in tags for k in attrs)
    assert "url(" not in text and "@import" not in text
    bars = [attrs for t, attrs in tags if t == "rect" and attrs.get("class") == "lp-bar"]
    assert sorted((a["data-task"], a["data-status"]) for a in bars) == [
        ("after", "failed"), ("broken", "failed"), ("first", "executed"),
        ("left", "executed"), ("right", "executed")]
    rows = [attrs for t, attrs in tags if t == "tr" and attrs.get("class") == "lp-task"]
    assert len(rows) == 5
    assert "no &lt;good&gt; &amp; bad" in text  # escaped, not markup


def test_history_timeline_draws_the_bars_at_80_and_200_columns(tmp_path: Path) -> None:
    p = make_pipeline(tmp_path)
    path = pipeline_file(tmp_path)
    p.execute(executor="threads", workers=2)
    p.close()
    for width in (80, 200):
        out = io.StringIO()
        code = main(["history", str(path), "--timeline"],
                    console=make_console(out, width=width, color_system=None))
        assert code == 0
        lines = out.getvalue().splitlines()
        assert all(len(line) <= width for line in lines)
        rows = {line.split()[0]: line for line in lines if "█" in line and "executed" not in line}
        assert set(rows) == {"first", "left", "right", "broken", "after"}, lines
        left, right = rows["left"], rows["right"]
        # overlapping bars share columns
        assert {i for i, c in enumerate(left) if c == "█"} & {
            i for i, c in enumerate(right) if c == "█"}


def test_history_html_to_an_unwritable_place_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "pipe.py"
    path.write_text("import little_pipelines as lp\npipeline = lp.Pipeline('h')\n"
                    "@pipeline.task\ndef one():\n    return 1\n")
    assert main(["run", str(path), "-q"], console=make_console(io.StringIO())) == 0
    err = io.StringIO()
    code = main(["history", str(path), "--html", str(tmp_path / "no" / "such" / "x.html")],
                console=make_console(io.StringIO()), err_console=make_console(err, width=200))
    assert code == 2 and "Could not write" in err.getvalue() and "Traceback" not in err.getvalue()
