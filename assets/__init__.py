"""Software-defined assets: thin, Dagster-facing; the engine lives in `pipeline/`."""

import warnings

import dagster as dg

# BackfillPolicy.single_run() is what lets one run re-aggregate a year; its beta notice is noise.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
