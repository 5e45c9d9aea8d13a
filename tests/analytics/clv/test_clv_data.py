"""Sufficient statistics, the transaction-log summary, and the CDNOW loader."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from patronage.analytics.clv import (
    CalibrationSummary,
    CLVInputError,
    RFMStats,
    TimeUnit,
    summarize_transactions,
)
from patronage.analytics.clv.datasets import Transactions, lifetimes_dataset_path, load_cdnow


def test_time_units_have_explicit_lengths() -> None:
    assert TimeUnit.DAYS.days == 1.0
    assert TimeUnit.WEEKS.days == 7.0
    assert TimeUnit.YEARS.days == pytest.approx(365.2425)
    assert TimeUnit.MONTHS.days * 12 == pytest.approx(TimeUnit.YEARS.days)


def test_compression_matches_row_unique_and_keeps_weights() -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    x = rng.integers(0, 4, n).astype(float)
    age = rng.integers(1, 10, n) / 7.0 + 30.0
    t_x = np.where(x > 0, np.minimum(rng.integers(1, 200, n) / 7.0, age), 0.0)
    stats = RFMStats.from_arrays(x, t_x, age, time_unit=TimeUnit.WEEKS)
    rows, counts = np.unique(np.column_stack([x, t_x, age]), axis=0, return_counts=True)
    got = np.column_stack([stats.x, stats.t_x, stats.T])
    order = np.lexsort((got[:, 2], got[:, 1], got[:, 0]))
    np.testing.assert_array_equal(got[order], rows)
    np.testing.assert_array_equal(stats.weight[order], counts)
    assert stats.n_customers == n
    assert stats.n_rows == rows.shape[0] < n
    # Per-level helpers agree with the rows.
    np.testing.assert_array_equal(stats.x_levels.values[stats.x_levels.index], stats.x)
    np.testing.assert_array_equal(stats.T_levels.values[stats.T_levels.index], stats.T)
    np.testing.assert_array_equal(stats.t_x_levels.values[stats.t_x_levels.index], stats.t_x)
    assert stats.x_sum_by_T.sum() == pytest.approx(x.sum())


@pytest.mark.parametrize(
    ("x", "t_x", "age", "field"),
    [
        ([-1.0], [0.0], [1.0], "x"),
        ([1.5], [0.5], [1.0], "x"),
        ([1.0], [2.0], [1.0], "t_x"),
        ([0.0], [0.5], [1.0], "t_x"),
        ([1.0], [0.0], [1.0], "t_x"),
        ([0.0], [0.0], [0.0], "T"),
        ([np.nan], [0.0], [1.0], "x"),
    ],
)
def test_invalid_statistics_are_refused_with_the_field(
    x: list[float], t_x: list[float], age: list[float], field: str
) -> None:
    with pytest.raises(CLVInputError) as excinfo:
        RFMStats.from_arrays(x, t_x, age, time_unit=TimeUnit.WEEKS)
    assert excinfo.value.extra["field"] == field
    assert excinfo.value.status == 422


def _toy_summary(unit: TimeUnit) -> CalibrationSummary:
    ids = np.array(["a", "a", "a", "a", "b", "b", "c", "d"])
    when = np.array(
        [
            "2024-01-01T09:00",
            "2024-01-01T17:00",  # same day: merged into the first purchase
            "2024-01-15T10:00",
            "2024-02-10T10:00",  # holdout
            "2024-01-08T10:00",
            "2024-01-29T23:59",  # last calibration day still counts
            "2024-01-20T10:00",
            "2024-02-05T10:00",  # born after calibration: excluded
        ],
        dtype="datetime64[m]",
    )
    amount = np.array([10.0, 5.0, 20.0, 7.0, 3.0, 9.0, 4.0, 1.0])
    return summarize_transactions(
        ids, when, amount, calibration_end="2024-01-29", holdout_end="2024-02-26", time_unit=unit
    )


def test_summary_follows_the_literature_conventions() -> None:
    s = _toy_summary(TimeUnit.DAYS)
    assert s.customer_id.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(s.x, [1, 1, 0])
    np.testing.assert_array_equal(s.t_x, [14, 21, 0])
    np.testing.assert_array_equal(s.T, [28, 21, 9])
    np.testing.assert_array_equal(s.holdout_x, [1, 0, 0])
    assert s.holdout_length == 28
    np.testing.assert_array_equal(s.mean_spend[:2], [20.0, 9.0])  # repeat purchases only
    assert np.isnan(s.mean_spend[2])
    weeks = _toy_summary(TimeUnit.WEEKS)
    np.testing.assert_allclose(weeks.T * 7, s.T)
    np.testing.assert_allclose(weeks.t_x * 7, s.t_x)
    assert weeks.holdout_length == 4
    assert weeks.rfm().time_unit is TimeUnit.WEEKS


def test_summary_refuses_a_holdout_that_ends_before_calibration() -> None:
    with pytest.raises(CLVInputError):
        summarize_transactions(
            [1], np.array(["2024-01-01"], dtype="datetime64[D]"), calibration_end="2024-02-01", holdout_end="2024-01-15"
        )


def test_cdnow_files_are_found_without_importing_lifetimes() -> None:
    before = set(sys.modules)
    sample = load_cdnow("sample")
    imported = set(sys.modules) - before
    assert not any(name == "lifetimes" or name.startswith("lifetimes.") for name in imported)
    assert lifetimes_dataset_path("CDNOW_sample.txt").is_file()
    assert isinstance(sample, Transactions)
    assert sample.customer_id.size == 6_919
    assert np.unique(sample.customer_id).size == 2_357
    assert sample.date.min() == np.datetime64("1997-01-01")
    assert sample.date.max() <= np.datetime64("1998-06-30")


def test_cdnow_master_has_the_whole_cohort() -> None:
    master = load_cdnow("master")
    assert master.customer_id.size == 69_659
    assert np.unique(master.customer_id).size == 23_570


def test_cdnow_sample_summary(cdnow_summary: CalibrationSummary) -> None:
    # FHL 2005: 2,357 customers, 946 with repeat purchases in weeks 1-39, 1,411 without; those 1,411 made
    # 334 purchases in the holdout (334 / 1411 = 0.24, the zero class of their Figure 5).
    s = cdnow_summary
    assert s.x.size == 2_357
    assert int((s.x > 0).sum()) == 946
    assert int((s.x == 0).sum()) == 1_411
    assert s.holdout_x[s.x == 0].sum() == 334
    assert s.x.sum() == 2_457
    assert s.holdout_length == 39.0
    # The customer of FHL 2005's worked example (sample id 0001).
    first = int(np.flatnonzero(s.customer_id == 4)[0])
    assert (s.x[first], round(s.t_x[first], 2), round(s.T[first], 2)) == (2, 30.43, 38.86)
