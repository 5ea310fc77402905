# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lambda_agent role's ledger, kept on the function itself.

A release is a published version whose description names it
("<agent version> <release id>"); the alias callers invoke points at the
serving one; the function's tags hold the versions that passed their checks
(``5=1.1.0 7=1.2.0``, oldest first: tag values allow letters, digits, spaces
and ``_.:/=+-@``) and the last one that failed. Any controller reads the same
ledger, so a job on an ephemeral controller (AWX) can roll back. Pure
functions, tested in tests/unit/plugins/module_utils/test_lambda_ledger.py;
the filters in plugins/filter/lambda_ledger.py are their Jinja face.
"""
from __future__ import annotations

import re

_TAG_VALUE = re.compile(r'^[\w.:/=+\-@ ]*$')
# Lambda's limit on a tag value.
TAG_VALUE_MAX = 256


def parse_healthy(value: str) -> list[dict]:
    """[{'version', 'app_version'}] from a healthy tag's value, oldest first; malformed entries are skipped."""
    entries = []
    for item in (value or '').split():
        version, separator, app_version = item.partition('=')
        if separator and version.isdigit() and app_version:
            entries.append({'version': version, 'app_version': app_version})
    return entries


def format_healthy(entries: list[dict], keep: int, live: str = '') -> str:
    """The healthy tag's value: the last ``keep`` entries and the live one, within the tag value limit."""
    kept = list(entries)[-max(int(keep), 1):]
    if live and not any(entry['version'] == live for entry in kept):
        kept = [entry for entry in entries if entry['version'] == live][-1:] + kept
    value = ' '.join(f"{entry['version']}={entry['app_version']}" for entry in kept)
    while len(value) > TAG_VALUE_MAX and len(kept) > 1:
        kept = kept[1:] if kept[0]['version'] != live else kept[:1] + kept[2:]
        value = ' '.join(f"{entry['version']}={entry['app_version']}" for entry in kept)
    if not _TAG_VALUE.match(value):
        raise ValueError(f'a version holds a character a Lambda tag cannot: {value!r}')
    return value


def record_healthy(value: str, version: str, app_version: str, keep: int) -> str:
    """The healthy tag after ``version`` passed its checks (moved to the end when it was there)."""
    entries = [entry for entry in parse_healthy(value) if entry['version'] != str(version)]
    entries.append({'version': str(version), 'app_version': str(app_version)})
    return format_healthy(entries, keep, str(version))


def release_description(app_version: str, release: str) -> str:
    """The function's (so the published version's) description: what a version holds."""
    return f'agentops.deploy {app_version} {release}'


def version_of_release(versions: list[dict], release: str, code_sha256: str = '') -> str:
    """The newest published version holding ``release`` (and that code, when given), or ''."""
    found = ''
    for entry in versions or []:
        number = str(entry.get('version', ''))
        words = str(entry.get('description', '')).split()
        if not number.isdigit() or release not in words:
            continue
        if code_sha256 and entry.get('code_sha256') not in (None, code_sha256):
            continue
        if not found or int(number) > int(found):
            found = number
    return found


def ledger(info: dict, alias: str, tag_healthy: str, tag_failed: str) -> dict:
    """The ledger from amazon.aws.lambda_info (query all) for one function; an absent function has an empty one."""
    functions = [entry for entry in (info or {}).get('functions') or [] if entry.get('function_name')]
    found = functions[0] if functions and not (info or {}).get('failed') else {}
    tags = found.get('tags') or {}
    live = ''
    for entry in found.get('aliases') or []:
        if entry.get('name') == alias:
            live = str(entry.get('function_version', ''))
    healthy = parse_healthy(tags.get(tag_healthy, ''))
    versions = [entry for entry in found.get('versions') or [] if str(entry.get('version')) != '$LATEST']
    live_app_version = ''
    for entry in healthy:
        if entry['version'] == live:
            live_app_version = entry['app_version']
    return {
        'exists': bool(found),
        'arn': found.get('function_arn', ''),
        'live': live,
        'live_app_version': live_app_version,
        'healthy': healthy,
        'healthy_tag': tags.get(tag_healthy, ''),
        'failed': tags.get(tag_failed, ''),
        'versions': versions,
    }


def rollback_target(current: dict, rollback_to: str = '') -> dict:
    """Where a rollback goes: the healthy version ``rollback_to`` names (agent version or version number), or the
    last healthy one before the live one. {'failed', 'msg', 'version', 'app_version'}."""
    healthy, live = current.get('healthy') or [], current.get('live', '')
    kept = ', '.join(f"{entry['app_version']} (version {entry['version']})" for entry in healthy) or 'none'
    if rollback_to:
        wanted = str(rollback_to)
        matches = [entry for entry in healthy if wanted in (entry['version'], entry['app_version'])]
        if not matches:
            return {'failed': True, 'version': '', 'app_version': '',
                    'msg': f'{wanted} is not a release this function keeps as healthy; it keeps {kept}'}
        target = matches[-1]
    else:
        before = healthy
        for index, entry in enumerate(healthy):
            if entry['version'] == live:
                before = healthy[:index]
        if not before or (not live and len(healthy) < 2):
            return {'failed': True, 'version': '', 'app_version': '',
                    'msg': f'no healthy release before the serving one ({live or "none"}) to return to; it keeps {kept}'}
        target = before[-1]
    return {'failed': False, 'msg': '', 'version': target['version'], 'app_version': target['app_version']}
