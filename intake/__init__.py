"""Files in: the file contract and reading, row validation, metering and Stripe sources
mapped onto the contract, duplicates, conflicts and control totals, usage too large to
hold, the archive and object storage. On top of ledger/ only (README, Layout)."""
