"""The migrations, oldest first by `down_revision`; the first is the v0.1.0 baseline."""
