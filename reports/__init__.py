"""The read side: statements, lot balances and exceptions, controls, traces, KPIs and the
close's reports (the catalogue in `catalogue.py`); `outputs/` writes them to files
(README, Layout)."""
