"""The classic form: a task whose `run` calls its own timed sub-processes."""

import little_pipelines as lp

raw = lp.Task("Raw")


@raw.process
def run(this):
    return [" 3", "1 ", " 4", "1", "5 "]


clean = lp.Task("Clean", dependencies=["Raw"])


@clean.process
def extract(this):
    """A sub-process: fetch the upstream result."""
    return this.pipeline.get_result("Raw")


@clean.process
def transform(this, values):
    """A sub-process: strip and convert."""
    return [int(v.strip()) for v in values]


@clean.process
def run(this):
    data = this.extract()
    return this.transform(data)


if __name__ == "__main__":
    pipeline = lp.Pipeline("ClassicProcesses")
    pipeline.add(raw, clean)
    pipeline.execute()
    print("Clean:", pipeline.get_result("Clean"))
