"""The month-end close: its lifecycle (`lifecycle.py`: order, completeness, the count under
the lock, the lock, reopen) and where its work runs (`executors.py`). The reports it
builds are the catalogue's (`reports/catalogue.py`)."""

from creditbooks.close.lifecycle import (
    CloseOutcome,
    CloseRefusedError,
    close_period,
    current_actor,
    reopen_period,
    require_complete,
)

__all__ = ["CloseOutcome", "CloseRefusedError", "close_period", "current_actor", "reopen_period",
           "require_complete"]
