"""Stand-in for the get-pip bootstrap script that ansible-test downloads.

ansible-test --venv fetches get-pip.py from a host our build machines cannot
reach. It runs that script (with GET_PIP) as `get-pip.py [pip options]
[packages]` in a venv created without pip. This does the same job offline:
the standard library's bundled pip wheel (ensurepip) first, then a normal
`pip install` of what ansible-test asked for, from the package index.
`make sanity` copies it into ansible-test's cache under the expected name.
"""
from __future__ import annotations

import subprocess
import sys

# get-pip.py understands these two; pip itself does not.
GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main() -> None:
    # In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in its own
    # environment, which would hide the site's pip.conf (index, CA) from the install.
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    subprocess.check_call([sys.executable, "-m", "pip", "install", *args])


if __name__ == "__main__":
    main()
