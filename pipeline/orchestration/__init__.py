"""The Dagster glue, apart from the engine: the resource that hands assets a Tracker, the
partitions, and the history runner (in process, or queued for the daemon as an asset backfill).
`pipeline/definitions.py` assembles the code location; no engine module imports Dagster."""
