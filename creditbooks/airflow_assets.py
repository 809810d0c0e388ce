"""The Airflow Assets the creditbooks DAGs share, each named once: the nightly DAG's publish
task updates NIGHTLY_PUBLISHED and the month-end DAG is scheduled on it.

Here rather than in dags/: Airflow does not put its DAG folder on the import path of
every process that parses the DAGs, and this module imports nothing of the project, so
the DAG files stay quick to parse.
"""

from __future__ import annotations

from airflow.sdk import Asset

NIGHTLY_PUBLISHED = Asset("creditbooks://ledger/nightly-published")
