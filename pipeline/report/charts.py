"""Altair charts, rendered to PNG by vl-convert (no browser, no CDN)."""

from __future__ import annotations

import hashlib
import json

import altair as alt
import polars as pl
import vl_convert as vlc

RISING, FALLING = "#1a9850", "#d73027"
WIDTH = 860
# behaviour charted under the candles: columns of the `behaviour` table, and their strip's title
BEHAVIOUR = {
    "tool_calls": "tool calls per attempt",
    "test_runs": "test runs per attempt",
    "files_read_before_first_edit": "files read before the first edit, per attempt",
    "thinking_chars": "thinking characters per attempt (where the CLI shows them)",
}


# A chart's data rows, serialized once by polars and named by their digest: a spec carries each
# dataset once (`spec`), and altair never walks thousands of rows (the costly part of to_json).
_DATASETS: dict[str, str] = {}


def _values(frame: pl.DataFrame) -> alt.NamedData:
    rows = frame.with_columns(pl.col(pl.Date, pl.Datetime).cast(pl.String)).write_json()
    name = "d" + hashlib.sha256(rows.encode()).hexdigest()[:16]
    _DATASETS[name] = rows
    return alt.NamedData(name=name)


def spec(chart: alt.TopLevelMixin) -> str:
    """A chart's Vega-Lite JSON, its datasets inlined (the ones it names)."""
    layout = json.dumps(chart.to_dict(validate=False), sort_keys=True)
    used = [name for name in sorted(_DATASETS) if f'"{name}"' in layout]
    datasets = ", ".join(f'"{name}": {_DATASETS[name]}' for name in used)
    return f'{layout[:-1]}, "datasets": {{{datasets}}}}}'


def forget_data() -> None:
    """Drop the datasets of the charts drawn so far."""
    _DATASETS.clear()


def _bar_size(days: int) -> float:
    """Candle bodies as wide as the plot allows: readable at 95 days and at two years."""
    return max(1.0, min(14.0, 0.6 * WIDTH / max(days, 1)))


def _changepoint_layers(changes: pl.DataFrame, first, last) -> list[alt.Chart]:
    if not changes.height:
        return []
    late = first + (last - first) * 0.7  # labels of late changepoints go left of their rule
    marks = changes.with_columns(
        label=pl.format(
            "{} → {} (p={}){}",
            (pl.col("before_rate") * 100).round(0).cast(pl.Int64).cast(pl.String) + "%",
            (pl.col("after_rate") * 100).round(0).cast(pl.Int64).cast(pl.String) + "%",
            pl.col("p_value").map_elements(lambda p: f"{p:.1g}", return_dtype=pl.String),
            pl.when(pl.col("version_change") == "").then(pl.lit(", no release")).otherwise(pl.lit("")),
        ),
        late=pl.col("date").str.to_date() > late,
    )
    rules = alt.Chart(_values(marks)).encode(x="date:T")
    text = dict(dy=-4, color="#a50026", fontSize=11, fontWeight="bold")
    return [
        rules.mark_rule(color="#f46d43", strokeDash=[5, 3], strokeWidth=2),
        rules.mark_text(align="left", dx=4, **text)
        .encode(y=alt.value(14), text="label:N")
        .transform_filter("!datum.late"),
        rules.mark_text(align="right", dx=-4, **text)
        .encode(y=alt.value(14), text="label:N")
        .transform_filter("datum.late"),
    ]


def candle_chart(
    candles: pl.DataFrame,
    changes: pl.DataFrame,
    releases: pl.DataFrame,
    title: str,
    period: str = "date",
    monitor: pl.DataFrame | None = None,
    alarms: pl.DataFrame | None = None,
    behaviour: pl.DataFrame | None = None,
) -> alt.VConcatChart:
    """Candles (body open -> close, wick low -> high), the pooled rate with its 95% band,
    changepoints as labelled rules, releases as markers, a volume strip, the online detector's
    statistic against its alarm threshold (alarms as dots) when `monitor` is given, and the
    behaviour per attempt (`behaviour` rows) on the same date axis when there is any."""
    days = candles.height
    # Past ~200 days single candles blur into texture: draw the weekly mean rate over them.
    smooth = 7 if days > 200 and period == "date" else 1
    candles = candles.with_columns(line=pl.col("rate").rolling_mean(smooth, min_samples=1))
    # at most one tick a day: a short history would otherwise repeat each date's label (6-hour ticks)
    unit = "week" if period == "week" else "day"  # a weekly chart's tick per week, not per day
    axis = alt.Axis(
        format="%b %d" if days < 200 else "%b %Y", tickCount={"interval": unit, "step": max(1, days // 12)}
    )
    x = alt.X(f"{period}:T", title=None, axis=axis)
    y_scale = alt.Scale(domain=[0, 1])
    base = alt.Chart(_values(candles)).encode(x=x)
    direction = alt.condition("datum.close >= datum.open", alt.value(RISING), alt.value(FALLING))
    layers = []
    if "ci_low" in candles.columns:
        layers.append(
            base.mark_area(opacity=0.18, color="#4575b4").encode(
                y=alt.Y("ci_low:Q", scale=y_scale, axis=alt.Axis(format="%", title="pass rate")),
                y2="ci_high:Q",
            )
        )
    size = _bar_size(days)
    layers += [
        base.mark_rule(strokeWidth=max(1.0, size / 4)).encode(
            y=alt.Y("low:Q", scale=y_scale, axis=alt.Axis(format="%", title="pass rate")),
            y2="high:Q",
            color=direction,
        ),
        base.mark_bar(size=size).encode(
            y="open:Q",
            y2="close:Q",
            color=direction,
            tooltip=[
                alt.Tooltip(f"{period}:T"),
                alt.Tooltip("rate:Q", format=".1%"),
                alt.Tooltip("open:Q", format=".1%"),
                alt.Tooltip("close:Q", format=".1%"),
                "volume:Q",
            ],
        ),
        base.mark_line(color="#313695", strokeWidth=1.5 if smooth == 1 else 2.5).encode(y="line:Q"),
    ]
    if candles.height:  # changepoints on the weekly chart too: it is the one holding all history
        layers += _changepoint_layers(changes, candles[period].min(), candles[period].max())
    if period == "date" and releases.height:
        rel = alt.Chart(_values(releases)).encode(x="first_seen:T")
        layers += [
            rel.mark_point(shape="triangle-down", filled=True, size=90, color="#542788").encode(
                y=alt.value(34)
            ),
            rel.mark_text(align="left", dx=6, color="#542788", fontSize=10).encode(
                y=alt.value(34), text="new_version:N"
            ),
        ]
    panels = [alt.layer(*layers).properties(width=WIDTH, height=260, title=title)]
    panels.append(
        base.mark_bar(size=size, color="#999999")
        .encode(y=alt.Y("volume:Q", title="graded"))
        .properties(width=WIDTH, height=45)
    )
    if monitor is not None and monitor.height:
        watch = alt.Chart(_values(monitor)).encode(x=alt.X("date:T", title=None, axis=axis))
        threshold = (
            float(monitor["threshold"].drop_nulls()[0]) if monitor["threshold"].drop_nulls().len() else None
        )
        layers = [
            watch.mark_line(color="#542788").encode(
                y=alt.Y("statistic:Q", title="CUSUM", scale=alt.Scale(domainMin=0))
            )
        ]
        if threshold is not None:
            level = alt.Chart(alt.Data(values=[{"h": threshold, "label": f"alarm at {threshold:g}"}]))
            layers += [
                level.mark_rule(color="#d73027", strokeDash=[4, 2]).encode(y="h:Q"),
                level.mark_text(align="left", x=4, dy=-6, color="#d73027", fontSize=10).encode(
                    y="h:Q", text="label:N"
                ),
            ]
        if alarms is not None and alarms.height and threshold is not None:
            marks = alarms.with_columns(h=pl.lit(threshold))
            layers.append(
                alt.Chart(_values(marks))
                .mark_point(filled=True, size=70, color="#d73027")
                .encode(x="date:T", y="h:Q", tooltip=["date:N", "direction:N", "rule:N"])
            )
        panels.append(alt.layer(*layers).properties(width=WIDTH, height=70))
    if behaviour is not None and behaviour.height and period == "date":
        panels += behaviour_panels(candles.select("date"), behaviour, axis)
    return alt.vconcat(*panels, spacing=4).resolve_scale(x="shared").configure_view(stroke=None)


def behaviour_panels(days: pl.DataFrame, behaviour: pl.DataFrame, axis: alt.Axis) -> list[alt.Chart]:
    """One strip per measure of `BEHAVIOUR` that has data: its mean per attempt each day, on the
    candles' days; a day without behaviour (a simulated agent, a day of API errors) is a gap."""
    daily = days.join(behaviour, on="date", how="left").sort("date")
    shown = [c for c in BEHAVIOUR if _drawn(daily, c)]
    base = alt.Chart(_values(daily))
    panels = []
    for column in shown:
        last = column == shown[-1]  # the date labels once, under the last strip
        x = alt.X("date:T", title=None, axis=axis if last else alt.Axis(labels=False, ticks=False))
        y = alt.Y(f"{column}:Q", title=None, scale=alt.Scale(zero=True), axis=alt.Axis(tickCount=3))
        tip = [alt.Tooltip("date:T"), alt.Tooltip(f"{column}:Q", format=".1f"), "attempts:Q"]
        title = alt.TitleParams(
            BEHAVIOUR[column], anchor="start", fontSize=11, fontWeight="normal", color="#01665e", offset=2
        )
        panels.append(
            alt.layer(
                base.mark_line(color="#35978f", strokeWidth=1.5).encode(x=x, y=y),
                base.mark_point(color="#35978f", filled=True, size=14).encode(x=x, y=y, tooltip=tip),
            ).properties(width=WIDTH, height=46, title=title)
        )
    return panels


def behaviour_shown(days: pl.DataFrame, behaviour: pl.DataFrame | None) -> list[str]:
    """The titles of the behaviour strips drawn under a subject's candles (none without data)."""
    if behaviour is None or not behaviour.height:
        return []
    daily = days.join(behaviour, on="date", how="left")
    return [title for column, title in BEHAVIOUR.items() if _drawn(daily, column)]


def _drawn(daily: pl.DataFrame, column: str) -> bool:
    """A measure is drawn when it has a value; thinking only when some was shown (a model that
    does not think would draw a line at zero)."""
    values = daily[column].drop_nulls() if column in daily.columns else pl.Series([])
    return values.len() > 0 and (column != "thinking_chars" or values.max() > 0)


def overview_chart(candles: pl.DataFrame, changes: pl.DataFrame) -> alt.LayerChart:
    """Every subject's pooled daily pass rate on one time axis, changepoints as ticks."""
    lines = (
        alt.Chart(_values(candles))
        .mark_line(strokeWidth=1.6)
        .encode(
            x=alt.X("date:T", title=None),
            y=alt.Y("rate:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%", title="pass rate")),
            color=alt.Color("subject:N", legend=alt.Legend(orient="top", title=None)),
            tooltip=["subject:N", "date:T", alt.Tooltip("rate:Q", format=".1%")],
        )
    )
    layers = [lines]
    if changes.height:
        marks = changes.sort("date").with_columns(
            label=pl.format(
                "{} {}: {} → {}",
                pl.col("subject"),
                pl.col("date").str.slice(5),
                (pl.col("before_rate") * 100).round(0).cast(pl.Int64).cast(pl.String) + "%",
                (pl.col("after_rate") * 100).round(0).cast(pl.Int64).cast(pl.String) + "%",
            ),
            y=12 + 13 * (pl.int_range(pl.len()) % 3),  # stagger labels of nearby changepoints
        )
        rules = alt.Chart(_values(marks)).encode(x="date:T", color=alt.Color("subject:N", legend=None))
        layers += [
            rules.mark_rule(strokeDash=[5, 3], strokeWidth=2),
            rules.mark_text(align="left", dx=3, fontSize=10, fontWeight="bold").encode(
                y=alt.Y("y:Q", scale=None), text="label:N"
            ),
        ]
    return alt.layer(*layers).properties(width=WIDTH, height=220, title="All subjects")


def render(chart_spec: str, scales: tuple[float, ...] = (2,)) -> list[bytes]:
    """A chart's PNG at each of `scales`, from one Vega run (its SVG, rasterized per scale)."""
    svg = vlc.vegalite_to_svg(chart_spec)
    return [vlc.svg_to_png(svg, scale=scale) for scale in scales]
