"""What people read: Altair charts (`charts`), the self-contained HTML report with its exports
(`html`), and the alerts sent to webhooks (`alerts`)."""

from pipeline.report.html import Report, changepoint_markdown, verdict_markdown, write_report

__all__ = ["Report", "changepoint_markdown", "verdict_markdown", "write_report"]
