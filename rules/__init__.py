"""Recognition: pure functions from the policy and source documents to journal entries and
subledger rows (purchases, the burn, usage, breakage, expiry, refunds, adjustments,
overage, foreign currency, costs). They never touch the database (README, Layout)."""
