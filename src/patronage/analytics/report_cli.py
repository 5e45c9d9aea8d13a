"""``patronage report``: print precomputed KPIs, cohorts and the RFM grid as a table, CSV or JSON."""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

cli = typer.Typer(help="Reports from the precomputed analytics.", no_args_is_help=True)


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


Workspace = Annotated[str, typer.Option("--workspace", help="workspace slug")]
Format = Annotated[OutputFormat, typer.Option("--format")]


def _emit(header: list[str], rows: list[list[Any]], fmt: OutputFormat, title: str) -> None:
    if fmt is OutputFormat.JSON:
        typer.echo(json.dumps([dict(zip(header, row, strict=True)) for row in rows], default=str, indent=2))
    elif fmt is OutputFormat.CSV:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    else:
        table = Table(*header, title=title)
        for row in rows:
            table.add_row(*("" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in row))
        Console().print(table)


def _workspace_id(session: Any, slug: str) -> int:
    from patronage.workspaces import repository

    ws = repository.get_workspace_by_slug(session, slug)
    if ws is None:
        raise typer.BadParameter(f"no workspace {slug!r}")
    return ws.id


def _session() -> Any:
    from patronage import domains
    from patronage.cli import _database

    domains.load_models()
    return _database().unit_of_work(read_only=True)


@cli.command()
def kpis(
    workspace: Workspace,
    period: Annotated[Literal["day", "week", "month"], typer.Option(help="day | week | month")] = "month",
    kpi: Annotated[list[str] | None, typer.Option(help="KPI name; repeat; default: the main ones")] = None,
    fmt: Format = OutputFormat.TABLE,
) -> None:
    """KPI values per period (one column per KPI)."""
    from patronage.analytics.kpis import Kpi
    from patronage.analytics.service import kpi_series

    names = [Kpi(k) for k in kpi] if kpi else [
        Kpi.ACTIVE, Kpi.NEW, Kpi.CRR, Kpi.CHURN, Kpi.REPEAT_PURCHASE_RATE, Kpi.PURCHASE_FREQUENCY, Kpi.AOV,
        Kpi.REVENUE, Kpi.REVENUE_CHURN, Kpi.GROWTH, Kpi.HISTORICAL_CLV,
    ]
    with _session() as session:
        ws = _workspace_id(session, workspace)
        outs = [kpi_series(session, ws, kpi=k, period=period, breakdown=None) for k in names]
    rows = [[label, *[out.series[0].values[i] for out in outs]] for i, label in enumerate(outs[0].periods)]
    _emit(["period", *[k.value for k in names]], rows, fmt, f"KPIs by {period}")


@cli.command()
def cohorts(
    workspace: Workspace,
    period: Annotated[str, typer.Option(help="week | month")] = "month",
    metric: Annotated[str, typer.Option(help="customers | revenue")] = "customers",
    mode: Annotated[str, typer.Option(help="in | in_or_after")] = "in",
    fmt: Format = OutputFormat.TABLE,
) -> None:
    """The acquisition cohort matrix (shares of period 0)."""
    from patronage.analytics.service import cohort_table

    with _session() as session:
        table = cohort_table(session, _workspace_id(session, workspace), period=period, metric=metric, mode=mode,
                             relative=True)
    width = max((len(c["values"]) for c in table["cohorts"]), default=0)
    rows = [[c["cohort"], c["size"], *c["values"], *[None] * (width - len(c["values"]))] for c in table["cohorts"]]
    _emit(["cohort", "size", *[f"p{n}" for n in range(width)]], rows, fmt, f"{metric} cohorts ({mode})")


@cli.command()
def rfm(workspace: Workspace, fmt: Format = OutputFormat.TABLE) -> None:
    """RFM named segments: customers and averages."""
    from patronage.analytics.service import read_result

    with _session() as session:
        payload = read_result(session, _workspace_id(session, workspace), "rfm").payload
    header = ["segment", "customers", "avg_recency_days", "avg_frequency", "avg_monetary", "monetary"]
    _emit(header, [[s[h] for h in header] for s in payload["segments"]], fmt, "RFM segments")
