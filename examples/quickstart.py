"""Quickstart: a small sales pipeline in the function form.

Run it twice: the first run computes every task, the second reuses the cached
results. Edit data/sales.csv (or this file) and run again: only what depends on
the change reruns.
"""

import csv
from pathlib import Path

import little_pipelines as lp

DATA = Path(__file__).parent / "data" / "sales.csv"

pipeline = lp.Pipeline("quickstart")


@pipeline.task(input_files=[DATA])
def rows():
    """Read the CSV shipped with the example."""
    with open(DATA, newline="") as f:
        return list(csv.DictReader(f))


@pipeline.task
def revenue_by_region(rows):
    totals: dict[str, float] = {}
    for r in rows:
        totals[r["region"]] = totals.get(r["region"], 0.0) + int(r["units"]) * float(r["price"])
    return dict(sorted(totals.items()))


@pipeline.task
def units_by_product(rows):
    units: dict[str, int] = {}
    for r in rows:
        units[r["product"]] = units.get(r["product"], 0) + int(r["units"])
    return dict(sorted(units.items()))


@pipeline.task(expire_results=lp.expire.at_midnight())
def report(this, revenue_by_region, units_by_product):
    best = max(revenue_by_region, key=revenue_by_region.get)
    this.logger.info("best region today: {}", best)
    return {
        "total_revenue": round(sum(revenue_by_region.values()), 2),
        "best_region": best,
        "units": units_by_product,
    }


if __name__ == "__main__":
    result = pipeline.execute()
    print("report:", pipeline.get_result("report"))
    print(result.summary())
    print(f"results in {pipeline.folder}, logs in {pipeline.log_dir}")
