# ruff: noqa: S608 - the SQL is built from constants, integer day numbers and internal identifiers only
"""Every analytics computation as portable SQL (DuckDB dialect; transpiled for Spark by engine.py).

Inputs are the relations of the analytics store (see extract.py; the benchmark builds the same ones):

* ``orders(id, customer_id, dnum, revenue, status, channel, ...)`` -- ``dnum`` is the order's local day
  number, ``revenue`` the order total less refunds;
* ``customers(id, acquisition_channel, lifecycle_stage, merged_into_id, erased_at, ...)``;
* ``members(customer_id, joined_dnum, tier)`` -- loyalty members (empty until the ledger exists);
* ``redemptions(customer_id, dnum, value)`` -- rewards redeemed (empty until rewards exist);
* ``segment_members(segment_id, customer_id)``; ``events(customer_id, type, dnum)``;
* per period ``p``: ``days_<p>(dnum, k, k_window, k_year)`` and ``periods_<p>(k, start_dnum, end_dnum)``
  from calendar.py.

Only portable constructs are used: CTEs, inner/left/cross joins, GROUP BY, window functions with explicit
frames, CASE, COALESCE, LEAST, CAST, integer arithmetic on day numbers. Constants (the as-of day, the last
period index) are integers formatted into the text, never user strings.
"""

from __future__ import annotations

from patronage.analytics.calendar import Period

# One row per customer and local day, from the orders that count: not cancelled, up to the as-of day,
# attributed to the surviving profile of merged customers. The grain of every customer analysis below.
CUSTOMER_DAYS = """
SELECT COALESCE(c.merged_into_id, o.customer_id) AS customer_id, o.dnum AS dnum, COUNT(*) AS orders,
  SUM(o.revenue) AS revenue
FROM orders o LEFT JOIN customers c ON c.id = o.customer_id
WHERE o.status <> 'cancelled' AND o.dnum <= {as_of}
GROUP BY COALESCE(c.merged_into_id, o.customer_id), o.dnum
"""

# Per purchasing customer: acquisition cohort (month index), channel, membership and tier, and ``combo``,
# a small integer naming the combination of the four (the KPI cube groups on it, not on strings).
CUSTOMER_DIMS = """
WITH d AS (
  SELECT f.customer_id AS customer_id, f.first_dnum AS first_dnum, md.k AS cohort_month,
    COALESCE(c.acquisition_channel, 'unknown') AS channel,
    CASE WHEN m.customer_id IS NULL THEN 'non_member' ELSE 'member' END AS membership,
    CASE WHEN m.customer_id IS NULL THEN 'non_member' ELSE COALESCE(m.tier, 'no_tier') END AS tier
  FROM (SELECT customer_id, MIN(dnum) AS first_dnum FROM customer_days GROUP BY customer_id) f
  JOIN days_month md ON md.dnum = f.first_dnum
  LEFT JOIN customers c ON c.id = f.customer_id
  LEFT JOIN members m ON m.customer_id = f.customer_id
)
SELECT d.*, CAST(DENSE_RANK() OVER (ORDER BY channel, tier, membership, cohort_month) AS INTEGER) AS combo FROM d
"""

COMBOS = "SELECT DISTINCT combo, channel, tier, membership, cohort_month FROM cust_dims"

# Customer x period rows, for cohorts when no KPI needs the neighbours below.
CUSTOMER_PERIODS = """
SELECT cd.customer_id AS customer_id, d.k AS k, SUM(cd.revenue) AS revenue
FROM customer_days cd JOIN days_{p} d ON d.dnum = cd.dnum
GROUP BY cd.customer_id, d.k
"""

# Each purchase day with the customer's previous and next purchase days and running order count: the one
# window pass (a sort by customer and day); every period's neighbours are derived from it by grouping.
CUSTOMER_DAYS_X = """
SELECT customer_id, dnum, orders, revenue,
  LAG(dnum) OVER (PARTITION BY customer_id ORDER BY dnum) AS prev_dnum,
  LEAD(dnum) OVER (PARTITION BY customer_id ORDER BY dnum) AS next_dnum,
  CAST(SUM(orders) OVER (PARTITION BY customer_id ORDER BY dnum ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    AS BIGINT) AS cum_orders
FROM customer_days
"""

# Customer x period rows with the previous and next periods the customer bought in, the last purchase day
# before the period, the running order count, the periods at which the trailing windows opened by the
# period's last order end, and the customer's dimension combination.
CUSTOMER_PERIODS_X = """
WITH g AS (
  SELECT x.customer_id AS customer_id, d.k AS k, CAST(SUM(x.orders) AS BIGINT) AS orders, SUM(x.revenue) AS revenue,
    MIN(x.dnum) AS first_dnum, MAX(x.dnum) AS last_dnum, MAX(x.cum_orders) AS cum_orders,
    MAX(CASE WHEN x.prev_dnum < d.start_dnum THEN x.prev_dnum END) AS prev_last_dnum,
    MIN(CASE WHEN x.next_dnum >= d.end_dnum THEN x.next_dnum END) AS next_dnum
  FROM customer_days_x x JOIN days_{p} d ON d.dnum = x.dnum
  GROUP BY x.customer_id, d.k
)
SELECT g.customer_id AS customer_id, g.k AS k, g.orders AS orders, g.revenue AS revenue,
  g.first_dnum AS first_dnum, g.last_dnum AS last_dnum, pd.k AS prev_k, nd.k AS next_k,
  g.prev_last_dnum AS prev_last_dnum, g.cum_orders AS cum_orders, ld.k_window AS k_window,
  ld.k_year AS k_year, cd.combo AS combo
FROM g JOIN days_{p} ld ON ld.dnum = g.last_dnum
LEFT JOIN days_{p} pd ON pd.dnum = g.prev_last_dnum
LEFT JOIN days_{p} nd ON nd.dnum = g.next_dnum
JOIN cust_dims cd ON cd.customer_id = g.customer_id
"""

# Days are periods already: no grouping.
CUSTOMER_DAYS_AS_PERIODS_X = """
SELECT x.customer_id AS customer_id, x.dnum - {first} AS k, x.orders AS orders, x.revenue AS revenue,
  x.dnum AS first_dnum, x.dnum AS last_dnum, x.prev_dnum - {first} AS prev_k, x.next_dnum - {first} AS next_k,
  x.prev_dnum AS prev_last_dnum, x.cum_orders AS cum_orders, d.k_window AS k_window, d.k_year AS k_year,
  cd.combo AS combo
FROM customer_days_x x JOIN days_day d ON d.dnum = x.dnum
JOIN cust_dims cd ON cd.customer_id = x.customer_id
"""

_MEASURES = (
    "orders",
    "revenue",
    "active",
    "new_customers",
    "second_buyers",
    "lifespan_days",
    "retained_revenue",
    "d_window",
    "d_year",
    "redeemed",
)


_DOUBLE_MEASURES = ("revenue", "retained_revenue", "redeemed")


def _sum(measure: str, expr: str) -> str:
    # DuckDB widens SUM(BIGINT) to a 128-bit integer: slower and twice the memory for counts that fit 64 bits.
    return f"SUM({expr})" if measure in _DOUBLE_MEASURES else f"CAST(SUM({expr}) AS BIGINT)"


def kpi_cube(period: Period, last_index: int, group: str, join: str = "") -> str:
    """Additive KPI measures per (period k, ``group``): a "cube" every breakdown sums over.

    ``group`` is a column of ``cpx_<period>`` (``combo``), or of a relation ``g`` that ``join`` joins on
    ``g.customer_id`` (segment members). Active-customer counts use difference arrays: a customer whose
    latest order before boundary ``d_k`` (the start of period k) is the last order ``L`` of period j is
    active at boundaries ``k`` in ``[j + 1, min(next active period, period of L + window)]``: +1 at
    ``j + 1``, -1 after the end. Each kind of row is aggregated on its own, then the small results are summed.
    """
    after = last_index + 1
    zero = {m: ("0.0" if m in _DOUBLE_MEASURES else "0") for m in _MEASURES}

    def row(k: str, table: str, **values: str) -> str:
        cols = ", ".join(f"{values.get(m, zero[m])} AS {m}" for m in _MEASURES)
        return f"SELECT {k} AS k, {group} AS grp, {cols} FROM {table} {join}"

    def summed(k: str, **values: str) -> str:
        sums = {m: f"{v} * COUNT(*)" if v in ("1", "-1") else _sum(m, v) for m, v in values.items()}
        return f"{row(k, f'cpx_{period} x', **sums)} GROUP BY {k}, {group}"

    main = summed(
        "x.k", orders="x.orders", revenue="x.revenue", active="1",
        new_customers="CASE WHEN x.prev_k IS NULL THEN 1 ELSE 0 END",
        second_buyers="CASE WHEN x.cum_orders >= 2 AND x.cum_orders - x.orders < 2 THEN 1 ELSE 0 END",
        lifespan_days="x.last_dnum - COALESCE(x.prev_last_dnum, x.first_dnum)",
        retained_revenue="CASE WHEN x.prev_k = x.k - 1 THEN x.revenue ELSE 0.0 END",
    )
    end_window = summed(f"LEAST(COALESCE(x.next_k, {after}), x.k_window) + 1", d_window="-1")
    end_year = summed(f"LEAST(COALESCE(x.next_k, {after}), x.k_year) + 1", d_year="-1")
    redeemed = (
        f"SELECT dd.k AS k, {group} AS grp, "
        + ", ".join(f"{'SUM(r.value)' if m == 'redeemed' else zero[m]} AS {m}" for m in _MEASURES)
        + f" FROM redemptions r JOIN days_{period} dd ON dd.dnum = r.dnum"
        + " JOIN cust_dims x ON x.customer_id = r.customer_id"
        + f" {join} GROUP BY dd.k, {group}"
    )
    sums = ", ".join(f"{_sum(m, m)} AS {m}" for m in _MEASURES)
    union = "\n  UNION ALL\n  ".join((main, end_window, end_year, redeemed))
    return f"""
WITH ev AS (
  {union}
)
SELECT k, grp, {sums} FROM ev WHERE k <= {after} GROUP BY k, grp
"""


def kpi_series(period: Period, last_index: int, parts: list[tuple[str, str, str]]) -> str:
    """Dense per-(breakdown, group, period) series of the raw KPI measures, for every breakdown at once.

    ``parts``: (breakdown name, FROM clause whose cube is aliased ``c``, group expression). kpis.py turns
    the measures into the KPI ratios.
    """
    sums = ", ".join(f"SUM(c.{m}) AS {m}" for m in _MEASURES)
    filled = ", ".join(f"COALESCE(g.{m}, 0) AS {m}" for m in _MEASURES)
    union = "\n  UNION ALL\n  ".join(
        f"SELECT c.k AS k, '{name}' AS breakdown, {expr} AS grp, {sums} FROM {source} GROUP BY c.k, {expr}"
        for name, source, expr in parts
    )
    part = "PARTITION BY breakdown, grp ORDER BY k"
    cum = f"{part} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    before = f"{part} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    year = f"{part} ROWS BETWEEN {period.per_year - 1} PRECEDING AND CURRENT ROW"
    return f"""
WITH g AS (
  {union}
),
grid AS (
  SELECT p.k AS k, gr.breakdown AS breakdown, gr.grp AS grp
  FROM periods_{period} p CROSS JOIN (SELECT DISTINCT breakdown, grp FROM g) gr
),
f AS (SELECT grid.k AS k, grid.breakdown AS breakdown, grid.grp AS grp, {filled}
      FROM grid LEFT JOIN g ON g.k = grid.k AND g.breakdown = grid.breakdown AND g.grp = grid.grp),
c AS (
  SELECT f.*,
    COALESCE(SUM(active) OVER ({before}), 0) + SUM(d_window) OVER ({cum}) AS active_start,
    COALESCE(SUM(active) OVER ({before}), 0) + SUM(d_year) OVER ({cum}) AS year_active_start,
    SUM(new_customers) OVER ({cum}) AS customers_to_date,
    SUM(second_buyers) OVER ({cum}) AS repeaters_to_date,
    SUM(lifespan_days) OVER ({cum}) AS lifespan_days_to_date,
    SUM(revenue) OVER ({year}) AS revenue_year,
    LAG(revenue) OVER ({part}) AS revenue_prev
  FROM f
),
e AS (
  SELECT c.*,
    LEAD(active_start) OVER ({part}) AS active_end,
    LEAD(year_active_start) OVER ({part}) AS year_active_end
  FROM c
)
SELECT breakdown, grp, k, orders, revenue, active, new_customers, active_start, active_end, customers_to_date,
  repeaters_to_date, lifespan_days_to_date, revenue_year, year_active_end, retained_revenue,
  COALESCE(revenue_prev, 0.0) AS revenue_prev, redeemed
FROM e WHERE k <= {last_index}
ORDER BY breakdown, grp, k
"""


def cohorts(period: Period, last_index: int, source: str) -> str:
    """Acquisition cohorts: per (cohort, offset n) customers and revenue *in* period n, and *in or after* n.

    ``source``: customer x period rows (``cp_<period>`` or ``cpx_<period>``).
    """
    return f"""
WITH f AS (
  SELECT customer_id, MIN(dnum) AS first_dnum, MAX(dnum) AS last_dnum FROM customer_days GROUP BY customer_id
),
cu AS (
  SELECT f.customer_id AS customer_id, a.k AS cohort, b.k AS last_k
  FROM f JOIN days_{period} a ON a.dnum = f.first_dnum JOIN days_{period} b ON b.dnum = f.last_dnum
),
a AS (
  SELECT cu.cohort AS cohort, cp.k - cu.cohort AS n, COUNT(*) AS customers, SUM(cp.revenue) AS revenue
  FROM {source} cp JOIN cu ON cu.customer_id = cp.customer_id GROUP BY cu.cohort, cp.k - cu.cohort
),
l AS (SELECT cohort, last_k - cohort AS n, COUNT(*) AS leavers FROM cu GROUP BY cohort, last_k - cohort),
grid AS (
  SELECT c.cohort AS cohort, p.k - c.cohort AS n
  FROM (SELECT DISTINCT cohort FROM a) c JOIN periods_{period} p ON p.k >= c.cohort AND p.k <= {last_index}
),
m AS (
  SELECT grid.cohort AS cohort, grid.n AS n, COALESCE(a.customers, 0) AS customers,
    COALESCE(a.revenue, 0.0) AS revenue, COALESCE(l.leavers, 0) AS leavers
  FROM grid LEFT JOIN a ON a.cohort = grid.cohort AND a.n = grid.n
  LEFT JOIN l ON l.cohort = grid.cohort AND l.n = grid.n
)
SELECT cohort, n, customers, revenue,
  SUM(leavers) OVER (PARTITION BY cohort ORDER BY n DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    AS customers_in_or_after,
  SUM(revenue) OVER (PARTITION BY cohort ORDER BY n DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    AS revenue_in_or_after
FROM m ORDER BY cohort, n
"""


def lifecycle(period: Period, last_index: int) -> str:
    """Per period: new, returning (bought in k-1 too), resurrecting (bought before k-1), dormant."""
    return f"""
WITH s AS (
  SELECT k,
    CASE WHEN prev_k IS NULL THEN 'new' WHEN prev_k = k - 1 THEN 'returning' ELSE 'resurrecting' END AS state,
    revenue
  FROM cpx_{period}
  UNION ALL
  SELECT k + 1 AS k, 'dormant' AS state, 0.0 AS revenue FROM cpx_{period}
  WHERE next_k IS NULL OR next_k > k + 1
)
SELECT k, state, COUNT(*) AS customers, SUM(revenue) AS revenue FROM s WHERE k <= {last_index}
GROUP BY k, state ORDER BY k, state
"""


def funnel(loyal_min_orders: int, advocacy_events: list[str]) -> str:
    """Stage funnel: how many profiles reached each stage (each stage requires the previous one)."""
    types = ", ".join("'" + t.replace("'", "''") + "'" for t in advocacy_events) or "''"
    return f"""
WITH o AS (SELECT customer_id, SUM(orders) AS orders FROM customer_days GROUP BY customer_id),
adv AS (SELECT DISTINCT customer_id FROM events WHERE type IN ({types})),
c AS (
  SELECT COALESCE(o.orders, 0) AS orders,
    CASE WHEN adv.customer_id IS NOT NULL OR cu.lifecycle_stage = 'advocate' THEN 1 ELSE 0 END AS advocate
  FROM customers cu LEFT JOIN o ON o.customer_id = cu.id LEFT JOIN adv ON adv.customer_id = cu.id
  WHERE cu.merged_into_id IS NULL AND cu.erased_at IS NULL
)
SELECT COUNT(*) AS prospect,
  SUM(CASE WHEN orders >= 1 THEN 1 ELSE 0 END) AS new,
  SUM(CASE WHEN orders >= 2 THEN 1 ELSE 0 END) AS active,
  SUM(CASE WHEN orders >= {loyal_min_orders} THEN 1 ELSE 0 END) AS loyal,
  SUM(CASE WHEN orders >= {loyal_min_orders} AND advocate = 1 THEN 1 ELSE 0 END) AS advocate
FROM c
"""


def program_members_vs_non(as_of: int) -> str:
    """Orders, revenue and buyers in the trailing 365 days, members vs non-members."""
    return f"""
SELECT d.membership AS grp, SUM(p.orders) AS orders, SUM(p.revenue) AS revenue,
  COUNT(DISTINCT p.customer_id) AS customers
FROM customer_days p JOIN cust_dims d ON d.customer_id = p.customer_id
WHERE p.dnum > {as_of - 365}
GROUP BY d.membership ORDER BY grp
"""


def program_before_after(as_of: int) -> str:
    """Members' orders and revenue before vs after joining, with the exposure (days) of each side."""
    return f"""
WITH per AS (
  SELECT m.customer_id AS customer_id, m.joined_dnum AS joined_dnum, MIN(cd.dnum) AS first_dnum,
    SUM(CASE WHEN cd.dnum < m.joined_dnum THEN cd.orders ELSE 0 END) AS orders_before,
    SUM(CASE WHEN cd.dnum < m.joined_dnum THEN cd.revenue ELSE 0.0 END) AS revenue_before,
    SUM(CASE WHEN cd.dnum >= m.joined_dnum THEN cd.orders ELSE 0 END) AS orders_after,
    SUM(CASE WHEN cd.dnum >= m.joined_dnum THEN cd.revenue ELSE 0.0 END) AS revenue_after
  FROM members m JOIN customer_days cd ON cd.customer_id = m.customer_id
  WHERE m.joined_dnum <= {as_of}
  GROUP BY m.customer_id, m.joined_dnum
)
SELECT COUNT(*) AS members, SUM(orders_before) AS orders_before, SUM(revenue_before) AS revenue_before,
  SUM(CASE WHEN joined_dnum > first_dnum THEN joined_dnum - first_dnum ELSE 0 END) AS days_before,
  SUM(orders_after) AS orders_after, SUM(revenue_after) AS revenue_after,
  SUM({as_of} - joined_dnum + 1) AS days_after
FROM per
"""


# RFM: ranks give ties the same score (never split a tie): score = 1 + floor(5 (rank - 1) / n).
# Monetary is rounded to cents first, so floating-point summation order can never split a tie.
def rfm_scores(as_of: int) -> str:
    return f"""
WITH c AS (
  SELECT customer_id, MAX(dnum) AS last_dnum, CAST(SUM(orders) AS BIGINT) AS frequency,
    ROUND(SUM(revenue), 2) AS monetary
  FROM customer_days GROUP BY customer_id
),
r AS (
  SELECT customer_id, last_dnum, frequency, monetary,
    RANK() OVER (ORDER BY last_dnum) AS r_rank,
    RANK() OVER (ORDER BY frequency) AS f_rank,
    RANK() OVER (ORDER BY monetary) AS m_rank,
    COUNT(*) OVER () AS n
  FROM c
),
s AS (
  SELECT customer_id, {as_of} - last_dnum AS recency_days, frequency, monetary,
    1 + CAST(FLOOR(5.0 * (r_rank - 1) / n) AS INTEGER) AS r,
    1 + CAST(FLOOR(5.0 * (f_rank - 1) / n) AS INTEGER) AS f,
    1 + CAST(FLOOR(5.0 * (m_rank - 1) / n) AS INTEGER) AS m
  FROM r
)
SELECT customer_id, recency_days, frequency, monetary, r, f, m,
  {RFM_SEGMENT_CASE} AS segment
FROM s
"""


# The score -> segment map on R and FM = round-half-up((F + M) / 2); see docs/analytics.md.
_FM = "CAST(FLOOR((f + m + 1) / 2.0) AS INTEGER)"
RFM_SEGMENT_CASE = f"""CASE
    WHEN r = 5 AND {_FM} = 1 THEN 'New customers'
    WHEN r = 5 AND {_FM} <= 3 THEN 'Potential loyalist'
    WHEN r = 5 THEN 'Champions'
    WHEN r = 4 AND {_FM} = 1 THEN 'Promising'
    WHEN r = 4 AND {_FM} <= 3 THEN 'Potential loyalist'
    WHEN r = 4 THEN 'Loyal'
    WHEN r = 3 AND {_FM} <= 2 THEN 'About to sleep'
    WHEN r = 3 AND {_FM} = 3 THEN 'Need attention'
    WHEN r = 3 THEN 'Loyal'
    WHEN r = 2 AND {_FM} <= 2 THEN 'Hibernating'
    WHEN {_FM} <= 2 THEN 'Lost'
    WHEN {_FM} <= 4 THEN 'At risk'
    ELSE 'Can''t lose them'
  END"""

RFM_GRID = """
SELECT r, f, COUNT(*) AS customers, SUM(monetary) AS monetary FROM rfm GROUP BY r, f ORDER BY r, f
"""

RFM_SEGMENTS = """
SELECT segment, COUNT(*) AS customers, AVG(recency_days) AS avg_recency_days,
  AVG(frequency) AS avg_frequency, AVG(monetary) AS avg_monetary, SUM(monetary) AS monetary
FROM rfm GROUP BY segment ORDER BY segment
"""

# Inputs of the BG/NBD and Gamma-Gamma models, per customer (purchases counted per day).
CLV_INPUTS = """
WITH f AS (
  SELECT customer_id, MIN(dnum) AS first_dnum, MAX(dnum) AS last_dnum, COUNT(*) AS days,
    SUM(revenue) AS revenue
  FROM customer_days GROUP BY customer_id
)
SELECT f.customer_id AS customer_id, f.days - 1 AS x, f.last_dnum - f.first_dnum AS t_x_days,
  {as_of} - f.first_dnum AS age_days, f.revenue - cd.revenue AS repeat_revenue
FROM f JOIN customer_days cd ON cd.customer_id = f.customer_id AND cd.dnum = f.first_dnum
ORDER BY f.customer_id
"""
