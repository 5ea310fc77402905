# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small parser for the Prometheus text exposition format.

Enough to read counters off an agent's /metrics on the managed host without
installing prometheus_client there.
"""

from __future__ import annotations

import math
import re

_SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(?:\{(?P<labels>.*)\})?'
    r'\s+(?P<value>\S+)'
    r'(?:\s+(?P<timestamp>-?\d+))?\s*$'
)
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_ESCAPES = {'\\\\': '\\', '\\"': '"', '\\n': '\n'}


class MetricsParseError(ValueError):
    """A line of the exposition could not be read."""


def _unescape(value: str) -> str:
    return re.sub(r'\\[\\"n]', lambda m: _ESCAPES[m.group(0)], value)


def _parse_labels(text: str, line_number: int) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    text = text.strip()
    while position < len(text):
        match = _LABEL.match(text, position)
        if not match:
            raise MetricsParseError(f"line {line_number}: cannot read the labels {{{text}}}")
        labels[match.group(1)] = _unescape(match.group(2))
        position = match.end()
    return labels


def _parse_value(text: str, line_number: int) -> float:
    special = {'+Inf': math.inf, '-Inf': -math.inf, 'NaN': math.nan}
    if text in special:
        return special[text]
    try:
        return float(text)
    except ValueError:
        raise MetricsParseError(f"line {line_number}: {text!r} is not a sample value") from None


def parse(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Return (name, labels, value) for every sample; comments are skipped."""
    samples = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        match = _SAMPLE.match(line)
        if not match:
            raise MetricsParseError(f"line {number}: not a sample: {line[:120]!r}")
        labels = _parse_labels(match.group('labels') or '', number)
        samples.append((match.group('name'), labels, _parse_value(match.group('value'), number)))
    return samples


def request_counts(samples, metric='http_requests_total', ignore_routes=()) -> tuple[float, float]:
    """Total and 5xx request counts of `metric`, leaving out the given routes.

    Probes of /ready or /health are left out by the caller so that the probes
    themselves do not dilute the error ratio they are meant to judge.
    """
    total = errors = 0.0
    for name, labels, value in samples:
        if name != metric or labels.get('route') in ignore_routes or math.isnan(value):
            continue
        total += value
        if labels.get('status', labels.get('code', '')).startswith('5'):
            errors += value
    return total, errors


def llm_errors(samples, metric='agent_llm_errors_total') -> dict[tuple[str, str], float]:
    """Failed LLM calls of `metric` by (provider, kind), as the agent counts them.

    The agent answers 502 llm_error or 504 llm_timeout when its provider
    failed a call, and counts the call here with its error_type.
    """
    counts: dict[tuple[str, str], float] = {}
    for name, labels, value in samples:
        if name != metric or math.isnan(value):
            continue
        key = (labels.get('gen_ai_provider_name', ''), labels.get('error_type', ''))
        counts[key] = counts.get(key, 0.0) + value
    return counts
