"""What people read: Altair charts (`charts`), the HTML report with its chart files and incremental exports
(`html`), and the alerts sent to webhooks (`alerts`)."""

from pipeline.report.html import Report, write_report
from pipeline.report.tables import changepoint_markdown, verdict_markdown

__all__ = ["Report", "changepoint_markdown", "verdict_markdown", "write_report"]
