"""§3 Caching and invalidation: what reruns, what is reused, and what is kept."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

import little_pipelines as lp
from demo import write
from little_pipelines import expire

# -- helpers ----------------------------------------------------------------------------


def reader(name: str, path: str, ran: list[str], deps=(), transform=None, **options) -> lp.Task:
    """A classic task returning the content of `path` (through `transform`) plus its deps'."""
    t = lp.Task(name, dependencies=list(deps), input_files=[path], **options)

    @t.process
    def run(this):
        ran.append(this.name)
        with open(path) as f:
            text = f.read()
        value = transform(text) if transform else text
        upstream = [this.pipeline.get_result(d) for d in deps]
        return (value, upstream) if deps else value

    return t


def chain(name: str, deps: list[str], ran: list[str], **options) -> lp.Task:
    """A task whose result is derived from its dependencies' results."""
    t = lp.Task(name, dependencies=deps, **options)

    @t.process
    def run(this):
        ran.append(this.name)
        return [name, *(this.pipeline.get_result(d) for d in deps)]

    return t


def freeze(monkeypatch: pytest.MonkeyPatch, moment: dt.datetime) -> None:
    monkeypatch.setattr(expire, "_get_now", lambda: moment)


T0 = dt.datetime(2024, 3, 12, 12, 0).astimezone()  # a Tuesday noon, local time


# -- the warm rerun ---------------------------------------------------------------------


def test_warm_rerun_executes_nothing(pipelines, tmp_path) -> None:
    write("data.csv", "a,b\n")
    ran: list[str] = []
    p = pipelines()
    p.add(reader("A", "data.csv", ran), chain("B", ["A"], ran), chain("C", ["A", "B"], ran))
    first = p.execute()
    assert first.executed == ["A", "B", "C"]
    second = p.execute()
    assert second.executed == []
    assert second.cached == ["A", "B", "C"]
    assert ran == ["A", "B", "C"]
    assert p.get_result("C") == ["C", "a,b\n", ["B", "a,b\n"]]


def test_a_new_pipeline_object_reuses_the_stored_results(pipelines) -> None:
    ran: list[str] = []
    first = pipelines("Same")
    first.add(chain("A", [], ran))
    first.execute()
    first.close()
    second = pipelines("Same")
    second.add(chain("A", [], ran))
    assert second.execute().cached == ["A"]
    assert ran == ["A"]


# -- code: the whole defining module file -------------------------------------------------

MODULE_A = '''
"""Upstream tasks."""
import little_pipelines as lp

RAN = []
extract = lp.Task("Extract")

@extract.process
def run(this):
    RAN.append("Extract")
    return {value}
{extra}
'''

MODULE_B = '''
"""Downstream tasks."""
import little_pipelines as lp

RAN = []
report = lp.Task("Report", dependencies=["Extract"])

@report.process
def run(this):
    RAN.append("Report")
    return this.pipeline.get_result("Extract") * 2
{extra}
'''


def load_both(module_file, *, value: int = 1, extra_a: str = "", extra_b: str = ""):
    a = module_file("upstream_tasks.py").write(MODULE_A.format(value=value, extra=extra_a))
    b = module_file("downstream_tasks.py").write(MODULE_B.format(extra=extra_b))
    return a, b


def run_modules(pipelines, a, b) -> lp.RunReport:
    p = pipelines("Modules")
    p.add(*lp.find_tasks({"a": a, "b": b}))
    report = p.execute()
    p.close()
    return report


def test_editing_a_module_file_reruns_the_tasks_defined_in_it(pipelines, module_file) -> None:
    a, b = load_both(module_file)
    assert run_modules(pipelines, a, b).executed == ["Extract", "Report"]
    a, b = load_both(module_file)
    assert run_modules(pipelines, a, b).executed == []

    # A comment elsewhere in the file is an edit of the file: its task reruns.
    a, b = load_both(module_file, extra_b="# a new comment\n")
    report = run_modules(pipelines, a, b)
    assert report.executed == ["Report"]
    assert report.cached == ["Extract"]
    assert [r.kind for r in report["Report"].reasons] == ["code_changed"]
    assert report["Report"].reasons[0].subject.endswith("downstream_tasks.py")
    assert b.RAN == ["Report"] and a.RAN == []


def test_module_edit_upstream_with_same_result_stops_there(pipelines, module_file) -> None:
    a, b = load_both(module_file)
    run_modules(pipelines, a, b)
    a, b = load_both(module_file, extra_a="def unrelated_helper():\n    return 0\n")
    report = run_modules(pipelines, a, b)
    assert report.executed == ["Extract"]
    assert report.cached == ["Report"]  # early cutoff: Extract's result is identical


def test_module_edit_upstream_with_new_result_reruns_below(pipelines, module_file) -> None:
    a, b = load_both(module_file, value=1)
    run_modules(pipelines, a, b)
    a, b = load_both(module_file, value=21)
    report = run_modules(pipelines, a, b)
    assert report.executed == ["Extract", "Report"]
    assert [r.kind for r in report["Report"].reasons] == ["upstream_changed"]
    assert report["Report"].reasons[0].subject == "Extract"
    p = pipelines("Modules")
    p.add(*lp.find_tasks({"a": a, "b": b}))
    assert p.get_result("Report") == 42


def test_editing_the_file_reruns_even_without_reimporting(pipelines, module_file) -> None:
    mf = module_file("live.py")
    mod = mf.write(MODULE_A.format(value=3, extra=""))
    p = pipelines()
    p.add(mod.extract)
    p.execute()
    write(mf.path, mf.path.read_text() + "# edited while the session is open\n")
    assert p.execute().executed == ["Extract"]


def test_function_form_tasks_are_fingerprinted_by_their_file(pipelines, module_file) -> None:
    source = '''
    import little_pipelines as lp

    def build(p):
        @p.task
        def numbers():
            return [1, 2, 3]

        @p.task
        def total(numbers):
            return sum(numbers)
    {extra}
    '''
    mf = module_file("function_form.py")
    p = pipelines()
    mf.write(source.format(extra="")).build(p)
    assert p.execute().executed == ["numbers", "total"]
    p2 = pipelines()
    mf.write(source.format(extra="")).build(p2)
    assert p2.execute().executed == []
    p3 = pipelines()
    mf.write(source.format(extra="# edited")).build(p3)
    report = p3.execute()
    assert report.executed == ["numbers", "total"]  # both are defined in the edited file
    assert p3.get_result("total") == 6


# -- input files --------------------------------------------------------------------------


def test_changing_an_input_file_reruns_its_task(pipelines) -> None:
    write("data.csv", "1\n")
    ran: list[str] = []
    p = pipelines()
    p.add(reader("A", "data.csv", ran))
    p.execute()
    write("data.csv", "2\n")
    report = p.execute()
    assert report.executed == ["A"]
    assert [(r.kind, r.subject) for r in report["A"].reasons] == [("input_changed", "data.csv")]
    assert "input data.csv changed" in report["A"].why
    assert p.get_result("A") == "2\n"


def test_every_file_of_a_glob_counts(pipelines) -> None:
    for name in ("a", "b", "c"):
        write(f"data/{name}.csv", f"{name}\n")
    ran: list[str] = []
    p = pipelines()
    t = lp.Task("Glob", input_files=["data/*.csv"])

    @t.process
    def run(this):
        ran.append("Glob")
        return sorted(p.name for p in Path("data").glob("*.csv"))

    p.add(t)
    p.execute()
    write("data/c.csv", "changed\n")  # not the first file: every file counts
    assert [r.kind for r in p.execute()["Glob"].reasons] == ["input_changed"]
    write("data/d.csv", "new\n")
    report = p.execute()
    assert [(r.kind, r.subject) for r in report["Glob"].reasons] == [
        ("input_added", os.path.join("data", "d.csv"))
    ]
    os.remove("data/a.csv")
    assert [r.kind for r in p.execute()["Glob"].reasons] == ["input_removed"]
    assert p.execute().executed == []
    assert ran == ["Glob"] * 4


def test_every_file_of_a_directory_counts_even_nested(pipelines) -> None:
    write("inputs/top.txt", "top\n")
    write("inputs/deep/er/leaf.txt", "leaf\n")
    ran: list[str] = []
    p = pipelines()
    t = lp.Task("Dir", input_files="inputs")

    @t.process
    def run(this):
        ran.append("Dir")
        return len(ran)

    p.add(t)
    p.execute()
    assert p.execute().executed == []
    write("inputs/deep/er/leaf.txt", "leaf changed\n")
    assert p.execute().executed == ["Dir"]
    write("inputs/deep/new.txt", "added\n")
    assert p.execute().executed == ["Dir"]


def test_each_listed_input_file_counts(pipelines) -> None:
    write("one.txt", "1")
    write("two.txt", "2")
    ran: list[str] = []
    t = lp.Task("Two", input_files=["one.txt", "two.txt"])

    @t.process
    def run(this):
        ran.append("Two")

    p = pipelines()
    p.add(t)
    p.execute()
    write("two.txt", "22")
    report = p.execute()
    assert [(r.kind, r.subject) for r in report["Two"].reasons] == [("input_changed", "two.txt")]
    write("one.txt", "11")
    assert p.execute().executed == ["Two"]


def test_touching_a_file_without_changing_it_keeps_the_result(pipelines) -> None:
    write("data.csv", "same\n")
    ran: list[str] = []
    p = pipelines()
    p.add(reader("A", "data.csv", ran))
    p.execute()
    st = os.stat("data.csv")
    os.utime("data.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert p.execute().cached == ["A"]
    assert ran == ["A"]


def test_a_file_with_unchanged_stat_is_not_reread(pipelines, monkeypatch) -> None:
    import little_pipelines.fingerprint as fingerprint

    write("big.bin", "x" * 1000)
    read: list[str] = []
    real = fingerprint.digest_file

    def counting(path: str) -> str:
        read.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(fingerprint, "digest_file", counting)
    ran: list[str] = []
    p = pipelines()
    p.add(reader("A", "big.bin", ran))
    p.execute()
    assert "big.bin" in read
    read.clear()
    p.execute()
    assert "big.bin" not in read  # size and mtime match the record: not read again

    st = os.stat("big.bin")
    os.utime("big.bin", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    p.execute()
    assert "big.bin" in read  # stat changed: the content is hashed (and found equal)
    read.clear()
    assert p.execute().cached == ["A"]
    assert "big.bin" not in read  # ... and the new stat is remembered
    assert ran == ["A"]


def test_hash_inputs_false_leaves_the_inputs_out(pipelines) -> None:
    write("data.csv", "1\n")
    ran: list[str] = []
    p = pipelines()
    p.add(reader("A", "data.csv", ran, hash_inputs=False))
    p.execute()
    write("data.csv", "a different and longer content\n")
    assert p.execute().cached == ["A"]
    os.remove("data.csv")
    assert p.execute().cached == ["A"]  # not checked at all
    assert ran == ["A"]


def test_missing_input_file_is_a_clear_error_before_anything_runs(pipelines) -> None:
    ran: list[str] = []
    p = pipelines()
    p.add(chain("First", [], ran), reader("Load", "missing/data.csv", ran))
    with pytest.raises(lp.MissingInputError) as info:
        p.execute()
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert "'Load'" in message and "missing/data.csv" in message
    assert ran == []


def test_glob_matching_nothing_is_a_missing_input(pipelines) -> None:
    ran: list[str] = []
    p = pipelines()
    p.add(reader("Load", "nothing/*.csv", ran))
    with pytest.raises(lp.MissingInputError, match=r"'Load'.*glob 'nothing/\*\.csv'"):
        p.execute()


# -- upstream changes and early cutoff ---------------------------------------------------


def test_an_upstream_change_reaches_every_task_below(pipelines) -> None:
    write("data.csv", "1\n")
    ran: list[str] = []
    p = pipelines()
    p.add(reader("A", "data.csv", ran), chain("B", ["A"], ran), chain("C", ["B"], ran),
          chain("Side", [], ran))
    p.execute()
    ran.clear()
    write("data.csv", "2\n")
    report = p.execute()
    assert report.executed == ["A", "B", "C"]
    assert report.cached == ["Side"]
    assert [(r.kind, r.subject) for r in report["B"].reasons] == [("upstream_changed", "A")]
    assert [(r.kind, r.subject) for r in report["C"].reasons] == [("upstream_changed", "B")]
    assert p.get_result("C") == ["C", ["B", "2\n"]]


def test_early_cutoff_identical_upstream_result_keeps_tasks_below(pipelines) -> None:
    write("data.csv", "1\n")
    ran: list[str] = []
    p = pipelines()
    p.add(reader("A", "data.csv", ran, transform=str.strip), chain("B", ["A"], ran),
          chain("C", ["B"], ran))
    p.execute()
    ran.clear()
    write("data.csv", "1\n\n\n")  # new content, same result
    report = p.execute()
    assert report.executed == ["A"]
    assert report.cached == ["B", "C"]
    assert ran == ["A"]


# -- what is stored ------------------------------------------------------------------------


def test_none_is_a_real_cached_result(pipelines) -> None:
    ran: list[str] = []
    nothing = lp.Task("Nothing")

    @nothing.process
    def run(this):
        ran.append("Nothing")
        return None

    p = pipelines()
    p.add(nothing, chain("Below", ["Nothing"], ran))
    p.execute()
    report = p.execute()
    assert report.cached == ["Nothing", "Below"]
    assert ran == ["Nothing", "Below"]
    assert p.get_result("Nothing", default="missing") is None
    assert p.get_result("Below") == ["Below", None]
    assert lp.MISSING is not None and repr(lp.MISSING) == "MISSING"


def test_records_describe_the_result_without_loading_it(pipelines) -> None:
    ran: list[str] = []
    p = pipelines()
    p.add(chain("A", [], ran, expire_results=lp.expire.from_now(days=1)))
    assert p.record("A") is None
    p.execute()
    rec = p.record("A")
    for key in ("fingerprint", "digest", "created_at", "expires_at", "duration", "reasons"):
        assert rec[key] is not None, key
    assert rec["reasons"] == ["no stored result"]
    assert rec["expires_at"] - rec["created_at"] == pytest.approx(86400, abs=3601)


def test_a_failing_task_keeps_its_previous_good_result(pipelines) -> None:
    write("n.txt", "5")
    ran: list[str] = []
    t = lp.Task("Parse", input_files=["n.txt"])

    @t.process
    def run(this):
        ran.append("Parse")
        with open("n.txt") as f:
            return int(f.read())

    p = pipelines()
    p.add(t)
    p.execute()
    good = p.record("Parse")
    write("n.txt", "not a number")
    report = p.execute()
    assert report.failed == ["Parse"]
    assert p.get_result("Parse") == 5
    assert p.record("Parse") == good
    write("n.txt", "5")  # back to what the stored result was made from
    assert p.execute().cached == ["Parse"]
    assert ran == ["Parse", "Parse"]


COUNTED = '''
"""A value that counts how often it is unpickled."""
import little_pipelines as lp

LOADS = []


def rebuild(payload):
    LOADS.append(payload)
    return Counted(payload)


class Counted:
    def __init__(self, payload):
        self.payload = payload

    def __reduce__(self):
        return (rebuild, (self.payload,))


def build(p):
    @p.task
    def big():
        return Counted("gigabytes")

    @p.task(input_files=["knob.txt"])
    def small(big):
        with open("knob.txt") as f:
            return (big.payload, f.read())
'''


def test_a_warm_run_loads_no_values(pipelines, module_file) -> None:
    write("knob.txt", "1")
    mod = module_file("counted.py").write(COUNTED)
    p = pipelines()
    mod.build(p)
    p.execute()
    assert mod.LOADS == ["gigabytes"]  # `small` needed it
    mod.LOADS.clear()

    assert p.execute().cached == ["big", "small"]
    p.plan()
    assert mod.LOADS == []  # deciding freshness reads records only

    write("knob.txt", "2")
    assert p.execute().executed == ["small"]
    assert mod.LOADS == ["gigabytes"]  # loaded once, because a task that runs needs it
    mod.LOADS.clear()
    assert p.get_result("big").payload == "gigabytes"  # or because the user asks
    assert mod.LOADS == ["gigabytes"]


def test_expire_results_if_none_keeps_none_only_for_the_run(pipelines) -> None:
    ran: list[str] = []
    maybe = lp.Task("Maybe")

    @maybe.process
    def run(this):
        ran.append("Maybe")
        return None

    p = pipelines(expire_results_if_none=True)
    p.add(maybe, chain("Value", [], ran), chain("Below", ["Maybe"], ran))
    p.execute()
    assert p.get_result("Below") == ["Below", None]  # served during the run
    ran.clear()
    report = p.execute()
    assert ran == ["Maybe"]  # None is not kept; Below's input is identical again
    assert [r.kind for r in report["Maybe"].reasons] == ["run_ended"]
    assert report.cached == ["Value", "Below"]


def test_none_is_kept_when_expire_results_if_none_is_off(pipelines) -> None:
    ran: list[str] = []
    maybe = lp.Task("Maybe")

    @maybe.process
    def run(this):
        ran.append("Maybe")

    p = pipelines(expire_results_if_none=False)
    p.add(maybe)
    p.execute()
    assert p.execute().cached == ["Maybe"]


# -- expiry ------------------------------------------------------------------------------


def test_on_complete_serves_the_run_then_reruns_next_run(pipelines) -> None:
    write("n.txt", "1")
    ran: list[str] = []
    p = pipelines()
    p.add(
        reader("Once", "n.txt", ran, transform=int, expire_results=lp.expire.on_complete()),
        chain("Sum", ["Once"], ran),
    )
    first = p.execute()
    assert first.executed == ["Once", "Sum"]
    assert p.get_result("Sum") == ["Sum", 1]  # it served the task below during the run
    assert p.get_result("Once") is None  # ... and expired when the run ended

    ran.clear()
    second = p.execute()
    assert ran == ["Once"]  # identical result: Sum stays cached
    assert [r.kind for r in second["Once"].reasons] == ["run_ended"]
    assert second.cached == ["Sum"]

    write("n.txt", "2")
    third = p.execute()
    assert third.executed == ["Once", "Sum"]
    assert p.get_result("Sum") == ["Sum", 2]


SESSION = '''
import little_pipelines as lp

RAN = []
task = lp.Task("PerSession", expire_results=lp.expire.session())


@task.process
def run(this):
    RAN.append(1)
    return "fresh"


def main():
    p = lp.Pipeline("Sessions")
    p.add(task)
    report = p.execute()
    p.close()
    return report


if __name__ == "__main__":
    r = main()
    print("STATUS", r["PerSession"].status, [x.kind for x in r["PerSession"].reasons])
'''


def test_session_results_rerun_in_a_new_process_only(module_file) -> None:
    mf = module_file("session_tasks.py")
    mod = mf.write(SESSION)
    assert mod.main().executed == ["PerSession"]
    assert mod.main().cached == ["PerSession"]  # same process: reused

    proc = subprocess.run([sys.executable, str(mf.path)], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert "STATUS executed ['session_ended']" in proc.stdout

    # The new process stored it for its own session: this one reruns it too.
    again = mod.main()
    assert again.executed == ["PerSession"]
    assert [r.kind for r in again["PerSession"].reasons] == ["session_ended"]


def test_a_time_expiry_under_a_frozen_clock(pipelines, monkeypatch) -> None:
    ran: list[str] = []
    p = pipelines()
    p.add(chain("Hourly", [], ran, expire_results=lp.expire.from_now(hours=1)))
    freeze(monkeypatch, T0)
    p.execute()
    freeze(monkeypatch, T0 + dt.timedelta(minutes=59))
    assert p.execute().cached == ["Hourly"]
    freeze(monkeypatch, T0 + dt.timedelta(minutes=60, seconds=1))
    report = p.execute()
    assert report.executed == ["Hourly"]
    assert [r.kind for r in report["Hourly"].reasons] == ["expired"]
    assert "expired at" in report["Hourly"].why
    assert ran == ["Hourly", "Hourly"]


def test_at_midnight_expiry(pipelines, monkeypatch) -> None:
    ran: list[str] = []
    p = pipelines()
    p.add(chain("Daily", [], ran, expire_results=lp.expire.at_midnight()))
    freeze(monkeypatch, T0)
    p.execute()
    freeze(monkeypatch, T0.replace(hour=23, minute=59))
    assert p.execute().cached == ["Daily"]
    freeze(monkeypatch, (T0 + dt.timedelta(days=1)).replace(hour=0, minute=0, second=1))
    assert p.execute().executed == ["Daily"]


def test_an_expired_upstream_reruns_and_cuts_off(pipelines, monkeypatch) -> None:
    ran: list[str] = []
    p = pipelines()
    p.add(chain("Hourly", [], ran, expire_results=lp.expire.from_now(hours=1)),
          chain("Below", ["Hourly"], ran))
    freeze(monkeypatch, T0)
    p.execute()
    freeze(monkeypatch, T0 + dt.timedelta(hours=2))
    report = p.execute()
    assert report.executed == ["Hourly"]
    assert report.cached == ["Below"]


def test_a_clock_moved_backwards_reruns(pipelines, monkeypatch) -> None:
    ran: list[str] = []
    p = pipelines()
    p.add(chain("Hourly", [], ran, expire_results=lp.expire.from_now(hours=1)))
    freeze(monkeypatch, T0)
    p.execute()
    # An hour earlier the stored result would look valid for two more hours,
    # but it was stored "in the future": the clock was moved back.
    freeze(monkeypatch, T0 - dt.timedelta(hours=1))
    report = p.execute()
    assert report.executed == ["Hourly"]
    assert [r.kind for r in report["Hourly"].reasons] == ["clock_moved_back"]


def test_an_at_datetime_in_the_past_is_never_reused(pipelines, monkeypatch) -> None:
    ran: list[str] = []
    p = pipelines()
    p.add(chain("Past", [], ran, expire_results=lp.expire.at_datetime(T0 - dt.timedelta(days=1))))
    freeze(monkeypatch, T0)
    p.execute()
    p.execute()
    assert ran == ["Past", "Past"]


def test_a_file_rewritten_during_the_run_is_seen_by_the_tasks_after_it(pipelines) -> None:
    write("mid.txt", "old")
    ran: list[str] = []
    early = reader("Early", "mid.txt", ran)  # decided before Writer runs
    writer = lp.Task("Writer")

    @writer.process
    def run(this):
        ran.append("Writer")
        Path("mid.txt").write_text("brand new")
        return "written"

    late = reader("Late", "mid.txt", ran, deps=["Writer"])
    p = pipelines()
    p.add(early, writer, late)
    p.execute()
    assert p.get_result("Late") == ("brand new", ["written"])
    ran.clear()
    report = p.execute()
    # Early read the old content, so it reruns; Late already read the new content.
    assert report.executed == ["Early"]
    assert report.cached == ["Writer", "Late"]
