"""Where the analytics SQL runs: DuckDB (the default) or any Spark SQL engine, from one SQL text.

Every computation in :mod:`patronage.analytics` is written once, as SELECT statements in DuckDB's SQL
dialect restricted to a portable core (CTEs, joins, GROUP BY, window functions, CASE, COALESCE, CAST,
integer day numbers instead of date functions). An :class:`Engine` turns a statement into a named
relation (:meth:`Engine.materialize`) or an Arrow table (:meth:`Engine.query`). :class:`SparkEngine`
transpiles each statement with SQLGlot (``read="duckdb", write="spark"``) first, so the same text runs on
a Spark cluster for workspaces that outgrow one machine; the equality test in
``tests/analytics/test_portability.py`` runs every KPI, cohort and RFM statement on both.
"""

from __future__ import annotations

from typing import Any, Protocol

import duckdb
import pyarrow as pa


class Engine(Protocol):
    name: str

    def register(self, name: str, table: pa.Table) -> None:
        """Expose an Arrow table (a calendar, a parameter table) under ``name``."""

    def materialize(self, name: str, sql: str) -> None:
        """Create or replace the relation ``name`` as the result of the SELECT ``sql``."""

    def query(self, sql: str) -> pa.Table:
        """Run a SELECT and return its rows."""

    def drop(self, name: str) -> None:
        """Forget a relation made by :meth:`register` or :meth:`materialize` (frees its memory)."""


class DuckEngine:
    """Runs the SQL as written, on a DuckDB connection (a workspace's file, or in memory)."""

    name = "duckdb"

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection
        self._registered: set[str] = set()

    def register(self, name: str, table: pa.Table) -> None:
        # A real (temporary) table, not a view over the Python object: scanned many times, and safe
        # after the Arrow table is garbage collected.
        self.connection.register("__patronage_arrow", table)
        try:
            self.connection.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM __patronage_arrow")  # noqa: S608
        finally:
            self.connection.unregister("__patronage_arrow")

    def materialize(self, name: str, sql: str) -> None:
        self.connection.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def query(self, sql: str) -> pa.Table:
        result: pa.Table = self.connection.sql(sql).to_arrow_table()
        return result

    def drop(self, name: str) -> None:
        self.connection.execute(f"DROP TABLE IF EXISTS temp.{name}")


def to_spark_sql(sql: str) -> str:
    """DuckDB SQL -> Spark SQL, failing loudly on anything SQLGlot cannot translate."""
    import sqlglot
    from sqlglot.errors import ErrorLevel

    statements = sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=ErrorLevel.RAISE)
    if len(statements) != 1:
        raise ValueError("expected exactly one SQL statement")
    return statements[0]


class SparkEngine:
    """Runs the transpiled SQL on a ``pyspark.sql.SparkSession`` (local mode in tests, a cluster in prod)."""

    name = "spark"

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def register(self, name: str, table: pa.Table) -> None:
        self.spark.createDataFrame(table).createOrReplaceTempView(name)

    def materialize(self, name: str, sql: str) -> None:
        frame = self.spark.sql(to_spark_sql(sql))
        frame.cache().createOrReplaceTempView(name)

    def query(self, sql: str) -> pa.Table:
        result: pa.Table = self.spark.sql(to_spark_sql(sql)).toArrow()
        return result

    def drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)  # also uncaches it


def local_spark_session(app_name: str = "patronage-analytics") -> Any:
    """A small local-mode SparkSession tuned for quick start-up (tests, laptops); UTC session time."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[1]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "1g")
        .config("spark.driver.extraJavaOptions", "-XX:+UseSerialGC -XX:TieredStopAtLevel=1")
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.ansi.enabled", "false")
        .getOrCreate()
    )
