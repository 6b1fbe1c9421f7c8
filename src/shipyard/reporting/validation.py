"""A validation run for a CI job: JUnit XML (one testcase per gate, so the CI's test view lists each gate and
its measured figure) and a Markdown summary (for a job summary or a pull-request comment)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

from shipyard.monitoring.validation_gates import FIGURES
from shipyard.monitoring.validation_records import ValidationResult


def figure_text(value: float | None, reason: str | None = None) -> str:
    """A figure as the table shows it; an unmeasured one says why instead of showing NaN."""
    if value is None:
        return f"n/a ({reason})" if reason else "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def junit_xml(result: ValidationResult) -> str:
    """JUnit XML: a testsuite per run, a testcase per gate; a failing gate's message holds the measured figure."""
    failures = len(result.failed_gates)
    suites = ET.Element("testsuites", name="shipyard validate", tests=str(len(result.gates)), failures=str(failures))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"validate {result.candidate}",
        tests=str(len(result.gates)),
        failures=str(failures),
        errors="0",
        skipped="0",
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("candidate", result.candidate),
        ("champion", result.champion or ""),
        ("data", result.data),
        ("rows", str(result.rows)),
        ("validation_id", "" if result.id is None else str(result.id)),
    ):
        ET.SubElement(properties, "property", name=key, value=value)
    for gate in result.gates:
        case = ET.SubElement(suite, "testcase", classname=f"shipyard.validate.{result.candidate}", name=gate.name)
        if not gate.passed:
            measured = figure_text(gate.measured)
            failure = ET.SubElement(
                case, "failure", message=f"{gate.name}: measured {measured}, limit {gate.limit:g}", type="GateFailed"
            )
            failure.text = gate.detail
        else:
            ET.SubElement(case, "system-out").text = gate.detail
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(result: ValidationResult) -> str:
    """The verdict, the gates, the figures beside the champion's, the paired comparison and what is missing."""
    verdict = "✅ passed" if result.passed else "❌ failed"
    lines = [f"## Validation of `{result.candidate}`: {verdict}", ""]
    against = f" against `{result.champion}` ({result.champion_source})" if result.champion else ""
    lines += [f"{result.rows:,} rows of `{result.data}`, target `{result.target}`{against}.", ""]
    lines += ["| gate | result | measured | limit | detail |", "|---|---|---|---|---|"]
    for gate in result.gates:
        mark = "pass" if gate.passed else "**FAIL**"
        lines.append(
            f"| {_cell(gate.name)} | {mark} | {figure_text(gate.measured)} | {gate.limit:g} | {_cell(gate.detail)} |"
        )
    if not result.gates:
        lines.append("| (no gates given) | pass | | | |")
    lines += ["", *figures_table(result), ""]
    if result.comparison is not None:
        lines += [f"Paired comparison: {result.comparison.decided_on}.", ""]
    if result.drift and result.drift.get("summary"):
        lines += [f"Drift against the reference profile: {result.drift['summary']}.", ""]
    for note in result.notes:
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"


def figures_table(result: ValidationResult) -> list[str]:
    champion = bool(result.champion_figures)
    header = "| figure | candidate | champion |" if champion else "| figure | candidate |"
    lines = [header, "|---|---|---|" if champion else "|---|---|"]
    for name, value in result.figures.items():
        row = f"| {name} | {_cell(figure_text(value, result.missing.get(name)))} |"
        if champion:
            row += f" {figure_text(result.champion_figures[name]) if name in result.champion_figures else ''} |"
        lines.append(row)
    return lines


def descriptions() -> Mapping[str, str]:
    """Every figure a gate may name and what it means (for ``--help`` and errors)."""
    return {name: figure.description for name, figure in FIGURES.items()}
