"""Analytics: KPIs, cohorts, customer-lifetime-value models, churn models and reports."""
