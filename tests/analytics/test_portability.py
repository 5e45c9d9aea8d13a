"""The same KPI, cohort and RFM SQL on DuckDB and on Spark (transpiled by SQLGlot) gives identical results.

One local-mode JVM for the whole module. Skipped, visibly, only when Java or PySpark is missing.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from patronage.analytics.calendar import Period
from patronage.analytics.compute import compute_all
from patronage.analytics.engine import DuckEngine, SparkEngine, to_spark_sql
from patronage.analytics.store_tables import SIDE_TABLES, TABLES
from tests.analytics import dataset

pytestmark = [
    pytest.mark.skipif(shutil.which("java") is None, reason="Java is not installed: Spark cannot start"),
    pytest.mark.timeout(600),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark", reason="pyspark is not installed")
    from patronage.analytics.engine import local_spark_session

    session = local_spark_session("patronage-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def assert_same(left: Any, right: Any, path: str = "") -> None:
    if isinstance(left, dict):
        assert isinstance(right, dict) and left.keys() == right.keys(), path
        for key in left:
            assert_same(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list):
        assert isinstance(right, list) and len(left) == len(right), path
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(left, float) or isinstance(right, float):
        assert left is not None and right is not None, path
        assert math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-9), f"{path}: {left} != {right}"
    else:
        assert left == right, f"{path}: {left!r} != {right!r}"


def test_transpiles_to_spark_sql() -> None:
    spark_sql = to_spark_sql("SELECT CAST(x AS VARCHAR) AS s, LEAST(a, b) AS l FROM t")
    assert "STRING" in spark_sql and "LEAST" in spark_sql


def test_duckdb_and_spark_agree(spark: Any) -> None:
    store = dataset.random_store()
    options = dataset.options(
        kpi_periods=(Period.MONTH,), cohort_periods=(Period.MONTH,), segment_names={"7": "Even"},
    )
    # KPIs, cohorts and RFM (lifecycle, funnel and program impact use the same constructs; skipped to keep
    # the JVM's share of the suite small).
    wanted = ["kpi", "cohorts", "rfm"]
    duck = compute_all(DuckEngine(store), options, only=wanted)
    engine = SparkEngine(spark)
    for spec in (*TABLES, *SIDE_TABLES):
        engine.register(spec.name, store.sql(f"SELECT * FROM {spec.name}").to_arrow_table())
    on_spark = compute_all(engine, options, only=wanted)
    assert duck.has_data and on_spark.has_data
    assert sorted(duck.results) == sorted(on_spark.results)
    assert any(k.startswith("kpi/month/segment/") for k in duck.results)
    for key in duck.results:
        assert_same(duck.results[key], on_spark.results[key], key)
