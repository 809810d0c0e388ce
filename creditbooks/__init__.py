"""The top of the house: one night (`night/`), the month-end close (`close/`), who acted
(`actors.py`), what the Airflow tasks call (`pipeline.py`), the command line (`cli.py`)
and the demo (README, Layout)."""
