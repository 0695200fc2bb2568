"""Releases, read from the version strings the attempts recorded: a CLI release (the agent
harness changed) apart from a model change.

A version string is `<cli> <version> / <model>` for the CLI adapters (`claude-code 2.1.328 /
sonnet`), or just the model's name where no CLI is involved (a replayed `model_name_or_path`, a
simulated `opus-4.6`). `split_version` reads both; a change of the part before ` / ` is a CLI
release, a change of the part after it a model change, and a change of both is both.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from pipeline.stats.attribution import LATEST, Lane

RELEASE_SCHEMA = {
    "subject": pl.String,
    "old_version": pl.String,  # the whole version strings, before and after
    "new_version": pl.String,
    "first_seen": pl.String,
    "kind": pl.String,  # cli | model: one row each when both changed on one day
    "old": pl.String,  # the part that changed: "claude-code 2.1.300", or the model's name
    "new": pl.String,
}
CLI_VERSION_SCHEMA = {
    "subject": pl.String,
    "date": pl.String,
    "cli": pl.String,
    "lane": pl.String,  # frozen | latest
    "version": pl.String,  # the CLI version that ran ("" when the version string names none)
    "registry_version": pl.String,  # latest lanes: what the registry answered that day (the cache's record)
}


def split_version(version: str) -> tuple[str, str]:
    """(CLI part, model part) of a version string; the CLI part is "" when it names no CLI."""
    cli, slash, model = version.rpartition(" / ")
    return (cli, model) if slash else ("", version)


def release_kind(old: str, new: str) -> str:
    """ "cli", "model", "cli+model" or "" for a change of version string."""
    (old_cli, old_model), (new_cli, new_model) = split_version(old), split_version(new)
    kinds = [k for k, a, b in (("cli", old_cli, new_cli), ("model", old_model, new_model)) if a != b]
    return "+".join(kinds)


def version_changes(seen: pl.DataFrame) -> pl.DataFrame:
    """Each version change per subject from (subject, agent_version, first_seen) rows, as one row
    per kind: a CLI release and a model change on the same day are two rows."""
    rows = []
    for (name,), group in seen.group_by(["subject"], maintain_order=True):
        versions = group.sort("first_seen").to_dicts()
        for before, after in zip(versions, versions[1:], strict=False):
            old, new = before["agent_version"], after["agent_version"]
            for kind, a, b in zip(("cli", "model"), split_version(old), split_version(new), strict=True):
                if a != b:
                    rows.append(
                        {
                            "subject": name,
                            "old_version": old,
                            "new_version": new,
                            "first_seen": after["first_seen"],
                            "kind": kind,
                            "old": a or "-",
                            "new": b or "-",
                        }
                    )
    return pl.DataFrame(rows, schema=RELEASE_SCHEMA)


def cli_versions(
    ran: pl.DataFrame, lanes: Mapping[str, Lane], registry: Mapping[str, Mapping[str, str]] | None = None
) -> pl.DataFrame:
    """Per subject and day (from its attempts' distinct `agent_version`s): the CLI and the version
    of it that ran, its lane, and for a latest lane what the registry answered that day (`registry`:
    CLI -> day -> version, the CLI cache's record of its `latest` resolutions)."""
    known = pl.DataFrame(
        [{"subject": n, "lane_cli": lane.cli, "lane": lane.lane} for n, lane in lanes.items()],
        schema={"subject": pl.String, "lane_cli": pl.String, "lane": pl.String},
    )
    answers = pl.DataFrame(
        [
            {"cli": cli, "date": day[:10], "registry_version": version}
            for cli, days in (registry or {}).items()
            for day, version in days.items()
        ],
        schema={"cli": pl.String, "date": pl.String, "registry_version": pl.String},
    )
    part = pl.col("agent_version").fill_null("").str.extract(r"^(.*) / ", 1).fill_null("")  # split_version
    frame = (
        ran.select("subject", pl.col("date").cast(pl.String).str.slice(0, 10), "agent_version")
        .with_columns(part=part)
        .join(known, on="subject", how="left")
        .with_columns(
            cli=pl.when(pl.col("lane_cli").fill_null("") != "")
            .then("lane_cli")
            .otherwise(pl.col("part").str.extract(r"^(.+) \S*$", 1).fill_null(pl.col("part"))),
            lane=pl.col("lane").fill_null(LATEST),
            version=pl.col("part")
            .str.extract(r"^.+ (\S*)$", 1)
            .fill_null(""),  # "claude-code 2.1.328" -> 2.1.328
        )
        .join(answers, on=["cli", "date"], how="left")
        .with_columns(registry_version=pl.when(pl.col("lane") == LATEST).then("registry_version"))
    )
    return frame.select(list(CLI_VERSION_SCHEMA)).unique(maintain_order=True).sort("subject", "date")
