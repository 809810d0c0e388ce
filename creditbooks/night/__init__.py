"""One night: a business day's landing files in, one published batch out.

The path of a night, in the order of `ledger.domain.Stage`:
- `ingest.py` opens the batch: it reads and validates the day's files (intake/), decides
  duplicates and conflicts from the ledger, quarantines what it refuses, archives what it
  accepts and records the day's usage totals;
- `stages.py` runs every later stage (`STAGE_RUNNERS`): each reads its input, asks the pure
  recognition rules (rules/) for entries and subledger rows, and posts them through
  `posting.py` (where `open_night` makes the `Night` they share); `start_of_day.py`
  applies refunds and adjustments before usage burns, and
  `lots.py` reads the lots the rules work on;
- `run.py` runs them all in one transaction for the command line, then writes the
  publish anchor (`write_publish_anchor`, which creditbooks/pipeline.py's publish calls
  too); creditbooks/pipeline.py runs each as its own Airflow task, and
  dags/credit_ledger_nightly.py builds its task chain from the same plan,
  `ledger.domain.night_tasks`.
"""
