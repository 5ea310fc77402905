"""Make the checkout importable as ansible_collections.agentops.deploy.

`make link` creates .collections/ansible_collections/agentops/deploy pointing
at this checkout; putting .collections on sys.path lets the tests import the
collection's plugins the same way Ansible does.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_ROOT = REPO_ROOT / ".collections"
LINK = COLLECTIONS_ROOT / "ansible_collections" / "agentops" / "deploy"

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    LINK.symlink_to(Path("../../.."), target_is_directory=True)
if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))
