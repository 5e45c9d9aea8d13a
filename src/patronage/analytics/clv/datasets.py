"""The CDNOW purchase logs, read from the files shipped inside the installed ``lifetimes`` distribution.

We never import ``lifetimes`` (its import chain breaks on some pandas releases): the files are located
through the distribution's metadata and parsed with NumPy.

* ``CDNOW_sample.txt`` -- 6,919 purchases by the 2,357-customer 1/10th sample used in the papers; columns:
  master customer id, sample customer id, date (YYYYMMDD), number of CDs, dollar value.
* ``CDNOW_master.txt`` -- 69,659 purchases by all 23,570 customers of the cohort; a header line, then
  customer id, date, number of CDs, dollar value.

Everyone in the cohort made a first purchase in 1997-Q1; the logs run to 1998-06-30. The studies use
weeks, a 39-week calibration period ending 1997-09-30 and a 39-week holdout ending 1998-06-30.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from patronage.analytics.clv.data import FloatArray, IntArray
from patronage.analytics.clv.errors import CLVInputError

CDNOW_CALIBRATION_END = np.datetime64("1997-09-30", "D")
CDNOW_HOLDOUT_END = np.datetime64("1998-06-30", "D")
CDNOW_START = np.datetime64("1997-01-01", "D")


@dataclass(frozen=True)
class Transactions:
    """A raw purchase log (one row per recorded purchase)."""

    customer_id: IntArray
    date: npt.NDArray[np.datetime64]
    quantity: IntArray
    amount: FloatArray


def lifetimes_dataset_path(filename: str) -> Path:
    """Path of ``lifetimes/datasets/<filename>`` in the installed distribution (without importing it)."""
    try:
        dist = metadata.distribution("lifetimes")
    except metadata.PackageNotFoundError as exc:
        raise CLVInputError("the 'lifetimes' distribution (with the CDNOW files) is not installed") from exc
    path = Path(str(dist.locate_file(f"lifetimes/datasets/{filename}")))
    if not path.is_file():
        raise CLVInputError(f"{filename} is not part of the installed lifetimes distribution")
    return path


def _yyyymmdd_to_dates(values: IntArray) -> npt.NDArray[np.datetime64]:
    year, rest = np.divmod(values, 10_000)
    month, day = np.divmod(rest, 100)
    months = (year - 1970) * 12 + (month - 1)
    first_of_month = months.astype("datetime64[M]").astype("datetime64[D]")
    return np.asarray(first_of_month + (day - 1).astype("timedelta64[D]"), dtype="datetime64[D]")


def load_cdnow(kind: Literal["sample", "master"] = "sample") -> Transactions:
    """Parse a CDNOW log. ``customer_id`` is the master-file id in both files."""
    path = lifetimes_dataset_path("CDNOW_sample.txt" if kind == "sample" else "CDNOW_master.txt")
    rows = []
    with path.open(encoding="ascii") as handle:
        for line in handle:
            fields = line.split()
            if fields and fields[0].isdigit():  # skips the master file's header line
                rows.append(fields)
    table = np.array(rows, dtype=np.float64)
    id_col, date_col = 0, (2 if kind == "sample" else 1)
    return Transactions(
        customer_id=table[:, id_col].astype(np.int64),
        date=_yyyymmdd_to_dates(table[:, date_col].astype(np.int64)),
        quantity=table[:, date_col + 1].astype(np.int64),
        amount=table[:, date_col + 2],
    )
