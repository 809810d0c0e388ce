"""Helpers the tests share: landing builders, the hand-worked scenario, a command-line
runner, the close, nights. No test file imports another; they all import from here."""
