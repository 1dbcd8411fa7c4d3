"""`python -m streams ...` is the `tally` command (child processes start themselves this way)."""

from streams.ops.cli import app

app()
