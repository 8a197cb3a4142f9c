"""Results that expire when the run completes, feeding a task that sums them."""

import little_pipelines as lp

task1 = lp.Task("TaskOne")


@task1.process
def run(this):
    return 1


task2 = lp.Task("TaskTwo")


@task2.process
def run(this):
    return 2


task3 = lp.Task("TaskThree", expire_results=lp.expire.on_complete("TaskThree"))


@task3.process
def run(this):
    # Runs on every execute: its result serves Sum during the run, then expires.
    return 3


sum_task = lp.Task("Sum", dependencies=["TaskOne", "TaskTwo", "TaskThree"])


@sum_task.process
def run(this):
    r1 = this.pipeline.get_result("TaskOne")
    r2 = this.pipeline.get_result("TaskTwo")
    r3 = this.pipeline.get_result("TaskThree")
    return r1 + r2 + r3


if __name__ == "__main__":
    pipeline = lp.Pipeline("OnCompleteSum")
    pipeline.add(task1, task2, task3, sum_task)
    report = pipeline.execute()
    print("Final Result:", pipeline.get_result("Sum"))
    print("ran:", ", ".join(report.executed))
