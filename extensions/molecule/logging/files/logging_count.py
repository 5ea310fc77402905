"""Wait until a log host holds the lines of every request id with a prefix.

Reads <dir>/<host>/agent-*.log (and .json), counts the lines per request id,
and prints one JSON document: distinct ids, lines, ids seen more than once,
the ids of 0..expect-1 that never arrived, seconds since --since, and the
lines and documents themselves when asked. Waits until --expect distinct ids
arrived, or (with --settle) until lines have arrived and none came for that
many seconds (a line that is lost never arrives: waiting out the timeout for
it only costs time), or --timeout. Exits 0 when --expect distinct ids
arrived, 1 otherwise.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import re
import sys
import time


def scan(directory: str, host: str, prefix: str) -> tuple[collections.Counter, list[str], list[dict]]:
    pattern = re.compile(r" request_id=(" + re.escape(prefix) + r"-[0-9]+)$")
    counts: collections.Counter = collections.Counter()
    lines: list[str] = []
    documents: list[dict] = []
    for path in sorted(glob.glob(f"{directory}/{host}/agent-*.log")):
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = pattern.search(line.rstrip("\n"))
                if match:
                    counts[match.group(1)] += 1
                    lines.append(line.rstrip("\n"))
    for path in sorted(glob.glob(f"{directory}/{host}/agent-*.json")):
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if f'"request_id":"{prefix}-' in line.replace(" ", ""):
                    documents.append(json.loads(line))
    return counts, lines, documents


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="/var/log/remote")
    parser.add_argument("--host", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=0)
    parser.add_argument("--since", type=float, default=None)
    parser.add_argument("--settle", type=float, default=None,
                        help="stop once lines arrived and none came for this many seconds")
    parser.add_argument("--show", action="store_true", help="print the lines and documents")
    args = parser.parse_args()

    since = args.since if args.since is not None else time.time()
    deadline = time.time() + args.timeout
    seen, changed = -1, time.time()
    while True:
        counts, lines, documents = scan(args.dir, args.host, args.prefix)
        now = time.time()
        if len(lines) != seen:
            seen, changed = len(lines), now
        settled = args.settle is not None and seen > 0 and now - changed >= args.settle
        if len(counts) >= args.expect or settled or now >= deadline:
            break
        time.sleep(0.2)
    # Lines still in flight would show up as missing, not as duplicates:
    # look once more a moment later before reporting duplicates.
    if len(counts) >= args.expect:
        time.sleep(1)
        counts, lines, documents = scan(args.dir, args.host, args.prefix)
    result = {
        "distinct": len(counts),
        "lines": sum(counts.values()),
        "duplicated": sorted(key for key, value in counts.items() if value > 1)[:20],
        "missing": [number for number in range(args.expect) if f"{args.prefix}-{number:05d}" not in counts],
        "elapsed": round(now - since, 3),
    }
    if args.show:
        result["text_lines"] = lines
        result["documents"] = documents
    print(json.dumps(result))
    sys.exit(0 if len(counts) >= args.expect else 1)


if __name__ == "__main__":
    main()
