"""The report's tables, as HTML for the report and as markdown for the Dagster UI: verdicts,
changepoints with their drill-down to flipped tasks' artifacts, alarms and their decisions,
missing subjects and harness-suspect days."""

from __future__ import annotations

import html
import os
from pathlib import Path

import polars as pl

from pipeline.grading.artifacts import OUTPUT_FILE, PATCH_FILE, VERDICT_FILE


def changepoint_markdown(changes: pl.DataFrame) -> str:
    if not changes.height:
        return "No changepoints."
    lines = [
        f"| {r['subject']} | {r['date']} | {pct(r['before_rate'])} | {pct(r['after_rate'])} | "
        f"{pct(r['difference'], True)} [{pct(r['ci_low'], True)}, {pct(r['ci_high'], True)}] | "
        f"{sig(r['p_value'])} | {release(r)} | {cause(r)} |"
        for r in changes.iter_rows(named=True)
    ]
    return "\n".join(
        [
            "| subject | date | before | after | change [95% CI] | paired p | release nearby "
            "| attributed to |",
            "|---|---|---|---|---|---|---|---|",
            *lines,
        ]
    )


KINDS = {"cli": "CLI release", "model": "model change", "cli+model": "CLI and model"}


def release(change: dict) -> str:
    """The release near a changepoint, saying what it changed: the CLI, the model, or both."""
    if not change.get("version_change"):
        return "none"
    kind = KINDS.get(change.get("release_kind") or "", "")
    return f"{kind}: {change['version_change']}" if kind else change["version_change"]


def cause(change: dict) -> str:
    """A shift's attribution with its reason, or "-" where none was computed."""
    label = change.get("attribution")
    return f"{label}: {change.get('attribution_reason') or ''}".rstrip(": ") if label else "-"


def verdict_markdown(verdicts: pl.DataFrame, latest: dict[str, float] | None = None) -> str:
    latest = latest or {}
    lines = [
        f"| {r['subject']} | {pct(latest[r['subject']]) if r['subject'] in latest else '-'} | "
        f"**{r['verdict']}** | {pct(r['difference'], True)} [{pct(r['ci_low'], True)}, "
        f"{pct(r['ci_high'], True)}] | {sig(r['q_value'])} | ±{pct(r['mde'])} |"
        for r in verdicts.iter_rows(named=True)
    ]
    return "\n".join(
        [
            "| subject | latest rate | verdict | last 7 days vs 28 before [95% CI] | q (BH) | "
            "min. detectable |",
            "|---|---|---|---|---|---|",
            *lines,
        ]
    )


def pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def sig(value: float | None) -> str:
    """A p- or q-value, or "-" where a window had too few days to test (a young history)."""
    return "-" if value is None else f"{value:.2g}"


def link(target: str, report_dir: Path, label: str) -> str:
    return f"<a href='{html.escape(os.path.relpath(target, report_dir))}'>{label}</a>"


def drill_down(change: dict, until: str | None, outcomes: pl.DataFrame, out: Path) -> str:
    """The tasks that flipped at a changepoint, each with its latest patch and raw log in the
    segment it opened (up to the next changepoint, so a later shift's outcomes never show here)."""
    items = []
    segment = outcomes.filter(
        (pl.col("subject") == change["subject"])
        & (pl.col("date").cast(pl.String) >= change["date"])
        & ((pl.col("date").cast(pl.String) < until) if until else pl.lit(True))
    )
    for direction, names in (
        ("passing → failing", change["flipped_down"]),
        ("failing → passing", change["flipped_up"]),
    ):
        for name in names:
            after = segment.filter(pl.col("instance_id") == name).sort("date", descending=True).head(1)
            links = ""
            if after.height:
                folder = after["artifact_dir"][0]
                tampered = (
                    " (the patch tampered with the test runner)"
                    if ("tampered" in after.columns and after["tampered"][0])
                    else ""
                )
                links = (
                    f" — latest: {after['outcome'][0]}{tampered}, "
                    f"{link(f'{folder}/{PATCH_FILE}', out, 'patch')}, "
                    f"{link(f'{folder}/{OUTPUT_FILE}', out, 'log')}, "
                    f"{link(f'{folder}/{VERDICT_FILE}', out, 'verdict')}"
                )
            items.append(f"<li>{html.escape(name)} ({direction}){links}</li>")
    if not items:
        return "<p>No task flipped its majority outcome.</p>"
    return f"<ul>{''.join(items)}</ul>"


def verdict_table(
    verdicts: pl.DataFrame, latest: dict[str, float], causes: dict[str, str] | None = None
) -> str:
    """`causes`: subject -> the attribution of the changepoint its verdict's windows span."""
    causes = causes or {}
    rows = "".join(
        f"<tr><td>{html.escape(r['subject'])}</td><td>{pct(latest.get(r['subject']))}</td>"
        f"<td class={'neg' if r['verdict'] == 'degraded' else 'pos' if r['verdict'] == 'improved' else ''}>"
        f"<b>{r['verdict']}</b></td><td>{pct(r['difference'], True)} [{pct(r['ci_low'], True)}, "
        f"{pct(r['ci_high'], True)}]</td><td>{sig(r['p_value'])}</td><td>{sig(r['q_value'])}</td>"
        f"<td>±{pct(r['mde'])}</td><td>{r['window_start']}..{r['window_end']} vs "
        f"{r['baseline_start']}..{r['baseline_end']}</td>"
        f"<td>{html.escape(causes.get(r['subject'], '-'))}</td></tr>"
        for r in verdicts.iter_rows(named=True)
    )
    return (
        "<table><tr><th>subject</th><th>latest rate</th><th>verdict</th><th>change [95% CI]</th>"
        "<th>paired p</th><th>q (BH)</th><th>min. detectable effect</th><th>window vs baseline</th>"
        f"<th>latest shift attributed to</th></tr>{rows}</table><p>A verdict compares the last 7 "
        "days with the 28 before, task by task. "
        "<i>stable</i> means the interval lies within the minimum detectable effect; "
        "<i>inconclusive</i> means neither a shift nor stability is shown.</p>"
    )


def final_decisions(decisions: pl.DataFrame) -> dict[tuple[str, str], str]:
    """(subject, alarm day) -> the latest decision on it; a held alarm's is in its next day's row."""
    if "decision" not in decisions.columns:
        return {}
    rows = decisions.sort("decided_at") if "decided_at" in decisions.columns else decisions
    found = {}
    for r in rows.iter_rows(named=True):
        day = r.get("alarm_date") or r["date"]
        text = r["decision"] if day == r["date"] else f"{r['decision']} on {r['date']}"
        if r.get("attribution"):  # as the alert named it
            text += f"; attributed to {r['attribution']}: {r.get('attribution_reason') or ''}"
        found[(r["subject"], day)] = text
    return found


def alarm_table(alarms: pl.DataFrame, decisions: pl.DataFrame) -> str:
    """Every online alarm of a subject, with the confirmation's decision where one was made."""
    if not alarms.height:
        return "<p>No online alarm in this history.</p>"
    decided = final_decisions(decisions)
    rows = "".join(
        f"<tr><td>{r['date']}</td><td>{'drop' if r['direction'] == 'down' else 'rise'}</td>"
        f"<td>{html.escape(r['rule'])}</td><td>{r['z']:+.1f}</td><td>{pct(r['difference'], True)}</td>"
        f"<td>{decided.get((r['subject'], str(r['date'])), 'not confirmed yet')}</td></tr>"
        for r in alarms.iter_rows(named=True)
    )
    return (
        "<table><tr><th>alarm</th><th>direction</th><th>rule</th><th>z</th><th>day vs baseline</th>"
        f"<th>confirmation</th></tr>{rows}</table>"
    )


def missing_note(missing: pl.DataFrame) -> str:
    if not missing.height:
        return ""
    names = ", ".join(html.escape(s) for s in missing["subject"].to_list())
    return (
        f"<p class=neg><b>Missing on {missing['date'][0]}</b>: {names} (no graded attempt: a failed "
        "or skipped run; see the Dagster UI). The others' candles are complete.</p>"
    )


def suspect_list(suspects: pl.DataFrame) -> str:
    if not suspects.height:
        return "<p>No harness-suspect day: controls held and no day moved most subjects at once.</p>"
    items = "".join(
        f"<li>{r['date']}: down {', '.join(r['subjects_down']) or '-'}; up "
        f"{', '.join(r['subjects_up']) or '-'}; control failures "
        f"{pct(r['control_failure_share'])}</li>"
        for r in suspects.iter_rows(named=True)
    )
    return f"<p><b>Harness-suspect days</b> (left out of every subject's analysis):</p><ul>{items}</ul>"


def changepoint_table(changes: pl.DataFrame, outcomes: pl.DataFrame, out: Path) -> str:
    """A subject's changepoints, each with the tasks that flipped in the segment it opened."""
    rows = []
    boundaries = changes["date"].to_list()
    for index, change in enumerate(changes.iter_rows(named=True)):
        until = boundaries[index + 1] if index + 1 < len(boundaries) else None
        tone = "neg" if change["difference"] < 0 else "pos"
        rows.append(
            f"<tr><td>{change['date']}</td><td>{pct(change['before_rate'])}</td>"
            f"<td>{pct(change['after_rate'])}</td><td class={tone}>"
            f"{pct(change['difference'], True)} [{pct(change['ci_low'], True)}, "
            f"{pct(change['ci_high'], True)}]</td><td>{sig(change['p_value'])}</td>"
            f"<td>{html.escape(release(change))}</td>"
            f"<td><b>{html.escape(change.get('attribution') or '-')}</b>"
            f"<br><small>{html.escape(change.get('attribution_reason') or '')}</small></td></tr>"
            f"<tr><td colspan=7><details><summary>{len(change['flipped_down'])} tasks flipped "
            f"down, {len(change['flipped_up'])} up</summary>{drill_down(change, until, outcomes, out)}"
            "</details></td></tr>"
        )
    body = "".join(rows) or "<tr><td colspan=7>No changepoint in this history.</td></tr>"
    return (
        "<table><tr><th>changepoint</th><th>before</th><th>after</th><th>change [95% CI]</th>"
        f"<th>paired p</th><th>release nearby</th><th>attributed to</th></tr>{body}</table>"
    )
