"""Tasks added in reverse order still run in dependency order."""

import little_pipelines as lp

zero = lp.Task("Zero")


@zero.process
def run(this):
    return ["Some", "values"]


one = lp.Task(name="One", dependencies=["Zero"])


@one.process
def preflight(this):
    return "OK"


@one.process
def run(this):
    status = this.preflight()
    data = this.pipeline.get_result("Zero")
    data.extend(["more", "values", status])
    return data


two = lp.Task("Two", dependencies=[one])


@two.process
def run(this):
    return len(this.pipeline.get_result("One"))


if __name__ == "__main__":
    pipeline = lp.Pipeline("ReverseOrder")
    pipeline.add(two, one, zero)  # order of adding does not matter
    print("order:", [t.name for t in pipeline.tasks])
    pipeline.execute()
    print("One:", pipeline.get_result("One"))
    print("Two:", pipeline.get_result("Two"))
