"""Renderers of the monitoring report: a self-contained offline HTML file and a Rich terminal view.

They render the typed report (`shipyard.monitoring.report.MonitoringReport`) that
`MonitoringService.report()` returns. A report that arrives as JSON (`GET /v1/endpoints/{endpoint}/monitoring`
from a remote server, a file saved earlier) is rebuilt with `MonitoringReport.from_dict` first, which names
the field that is wrong instead of letting a renderer fail halfway. The renderers read no store and call no
service, so any edge (CLI, HTTP routes, dashboard) may use them.

Every section a version may lack is None in the report (no reference profile, no labels, no sensitive
feature, no probabilities), and the renderers say in words what is missing rather than leave a blank.
"""

from shipyard.reporting.html import render_html
from shipyard.reporting.terminal import render_terminal, summary_lines

__all__ = ["render_html", "render_terminal", "summary_lines"]
