"""Charts and the HTML report: one candlestick chart per subject, rendered without a browser."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import polars as pl
import vl_convert as vlc

from pipeline.config import TrackingConfig
from pipeline.warehouse import Warehouse

RISING, FALLING = "#1a9850", "#d73027"


@dataclass(frozen=True)
class Report:
    index: Path
    pngs: list[Path]
    markdown: str


def candle_chart(candles: pl.DataFrame, changes: pl.DataFrame, releases: pl.DataFrame,
                 title: str) -> alt.VConcatChart:
    """Candles (body open->close, wick low->high), pooled rate with its 95% band, changepoints
    as labelled rules, releases as markers, and a volume strip below."""
    data = candles.with_columns(pl.col("date").cast(pl.String)).to_dicts()
    x = alt.X("date:T", title=None, axis=alt.Axis(format="%b %d", labelAngle=0))
    y_scale = alt.Scale(domain=[0, 1])
    base = alt.Chart(alt.Data(values=data)).encode(x=x)
    direction = alt.condition("datum.close >= datum.open", alt.value(RISING), alt.value(FALLING))
    band = base.mark_area(opacity=0.18, color="#4575b4").encode(
        y=alt.Y("ci_low:Q", scale=y_scale, axis=alt.Axis(format="%", title="pass rate")),
        y2="ci_high:Q",
    )
    wick = base.mark_rule().encode(y=alt.Y("low:Q", scale=y_scale), y2="high:Q", color=direction)
    body = base.mark_bar(size=4).encode(y="open:Q", y2="close:Q", color=direction,
                                        tooltip=["date:T", alt.Tooltip("rate:Q", format=".1%"),
                                                 "open:Q", "close:Q", "volume:Q", "agent_version:N"])
    rate = base.mark_line(color="#313695", strokeWidth=1.5).encode(y="rate:Q")
    layers = [band, wick, body, rate]
    if changes.height:
        first, last = candles["date"].min(), candles["date"].max()
        late = first + (last - first) * 0.75  # labels of late changepoints go left of the rule
        marks = changes.with_columns(
            label=pl.format("{} → {} (p={})",
                            (pl.col("before_rate") * 100).round(0).cast(pl.Int64).cast(pl.String) + "%",
                            (pl.col("after_rate") * 100).round(0).cast(pl.Int64).cast(pl.String) + "%",
                            pl.col("p_value").map_elements(lambda p: f"{p:.1g}", return_dtype=pl.String)),
            late=pl.col("date").str.to_date() > late,
        ).to_dicts()
        rules = alt.Chart(alt.Data(values=marks)).encode(x="date:T")
        text = dict(dy=-4, color="#a50026", fontSize=11, fontWeight="bold")
        layers += [
            rules.mark_rule(color="#f46d43", strokeDash=[5, 3], strokeWidth=2),
            rules.mark_text(align="left", dx=4, **text).encode(y=alt.value(14), text="label:N")
                 .transform_filter("!datum.late"),
            rules.mark_text(align="right", dx=-4, **text).encode(y=alt.value(14), text="label:N")
                 .transform_filter("datum.late"),
        ]
    if releases.height:
        rel = alt.Chart(alt.Data(values=releases.to_dicts())).encode(x="first_seen:T")
        layers += [
            rel.mark_point(shape="triangle-down", filled=True, size=90, color="#542788")
               .encode(y=alt.value(34)),
            rel.mark_text(align="left", dx=6, color="#542788", fontSize=10)
               .encode(y=alt.value(34), text="new_version:N"),
        ]
    main = alt.layer(*layers).properties(width=820, height=260, title=title)
    volume = base.mark_bar(size=4, color="#999999").encode(
        y=alt.Y("volume:Q", title="graded"),
    ).properties(width=820, height=50)
    return alt.vconcat(main, volume, spacing=4).configure_view(stroke=None)


def write_report(warehouse: Warehouse, config: TrackingConfig) -> Report:
    """Write charts (PNG, SVG inlined in HTML) and index.html under the warehouse's report folder."""
    out = warehouse.reports
    out.mkdir(parents=True, exist_ok=True)
    with warehouse.connect(read_only=True) as connection:
        candles = connection.sql("SELECT * FROM candles ORDER BY subject, date").pl()
        changes = connection.sql("SELECT * FROM changepoints ORDER BY subject, date").pl()
        releases = connection.sql("SELECT * FROM releases ORDER BY subject, first_seen").pl()
    labels = {s.name: s.label for s in config.subjects}
    pngs, sections, md_rows = [], [], []
    for subject in sorted(candles["subject"].unique().to_list()):
        mine = candles.filter(pl.col("subject") == subject)
        cps = changes.filter(pl.col("subject") == subject)
        rel = releases.filter(pl.col("subject") == subject)
        title = f"{subject} — {labels.get(subject, '')}".strip(" —")
        chart = candle_chart(mine, cps, rel, title)
        png = out / f"{subject}.png"
        png.write_bytes(vlc.vegalite_to_png(chart.to_json(), scale=2))
        pngs.append(png)
        svg = vlc.vegalite_to_svg(chart.to_json())
        rows = "".join(
            f"<tr><td>{r['date']}</td><td>{r['before_rate']:.1%}</td><td>{r['after_rate']:.1%}</td>"
            f"<td>{r['difference']:+.1%} [{r['ci_low']:+.1%}, {r['ci_high']:+.1%}]</td>"
            f"<td>{r['p_value']:.2g}</td><td>{len(r['flipped_down'])} down, "
            f"{len(r['flipped_up'])} up</td><td>{html.escape(r['version_change'] or 'none')}</td></tr>"
            for r in cps.iter_rows(named=True)
        ) or "<tr><td colspan=7>No changepoint in this history.</td></tr>"
        latest = mine.row(-1, named=True)
        sections.append(
            f"<section><h2>{html.escape(title)}</h2>{svg}"
            "<table><tr><th>changepoint</th><th>before</th><th>after</th><th>change [95% CI]</th>"
            f"<th>paired p</th><th>tasks flipped</th><th>release nearby</th></tr>{rows}</table>"
            "</section>"
        )
        md_rows.append(f"| {subject} | {latest['date']} | {latest['rate']:.1%} | {cps.height} |")
    index = out / "index.html"
    index.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>candlebench report</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1000px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
        "</style></head><body><h1>candlebench</h1>"
        "<p>Candle body: first to last trial's pass rate of the day; wick: the day's range over "
        "trials (not a confidence interval). Blue band: 95% interval of the pooled rate, "
        "clustered by task. Dashed rules: changepoints; triangles: releases.</p>"
        + "".join(sections) + "</body></html>"
    )
    markdown = "\n".join(["| subject | latest day | pass rate | changepoints |",
                          "|---|---|---|---|", *md_rows])
    return Report(index=index, pngs=pngs, markdown=markdown)
