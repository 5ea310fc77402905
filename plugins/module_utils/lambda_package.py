# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An AWS Lambda deployment zip of the application and its wheelhouse, byte for byte reproducible.

The zip holds the application package under its own name (``app/...``) and
every wheel of a wheelhouse tar (wheelhouse.write_tar) unpacked at its root,
as Lambda's Python runtime expects. The same inputs give the same bytes, so
the same CodeSha256, on any run: entries sorted, files only, one fixed time,
Unix permissions of 0644 or 0755 only, one compression level, no extra fields
or comments. Bytecode is left out; Lambda compiles what it imports. The AWS
size limits are checked before dest is touched, and an unchanged zip is not
written again. Pure functions, tested in
tests/unit/plugins/module_utils/test_lambda_package.py; lambda_package is the
module over them.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile
import zipfile
import zlib

from ansible_collections.agentops.deploy.plugins.module_utils import wheelhouse

# AWS Lambda's quotas for a .zip deployment package: what a direct upload
# (CreateFunction / UpdateFunctionCode with ZipFile) accepts, and what the
# function's code may take once unzipped, layers included, however uploaded.
MAX_ZIP_SIZE = 52428800  # 50 MiB
MAX_UNPACKED_SIZE = 262144000  # 250 MiB
# At the zip's root: the release id (see release_id).
RELEASE_FILE = 'agentops_release.json'

DATE_TIME = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 6
_UNIX = 3
_MODE_FILE = 0o644
_MODE_EXECUTABLE = 0o755
# Wheel members pip installs into site-packages itself (the wheel spec's
# purelib and platlib schemes) go to the zip's root, as the rest of the wheel.
_ROOT_SCHEMES = ('purelib', 'platlib')


class LambdaPackageError(Exception):
    """The package cannot be built or is too big for AWS Lambda; the message says what to fix."""


def mib(size: int) -> str:
    return f'{size / 1048576:.1f} MiB'


def code_sha256(digest: bytes) -> str:
    """What AWS Lambda reports as CodeSha256: the base64 of the zip's raw sha256 digest."""
    return base64.b64encode(digest).decode('ascii')


def sha256_file(path: str) -> bytes:
    """The raw sha256 digest of a file."""
    return bytes.fromhex(wheelhouse.sha256_file(path))


def skipped(name: str) -> bool:
    """Bytecode and its caches, which Lambda writes itself where it can."""
    parts = name.split('/')
    return '__pycache__' in parts or parts[-1].endswith(('.pyc', '.pyo'))


def member_name(wheel: str, name: str) -> str:
    """Where a wheel member goes in the zip; a member that would land outside it is refused."""
    parts = name.replace('\\', '/').split('/')
    if name.startswith(('/', '\\')) or (len(name) > 1 and name[1] == ':') or '..' in parts:
        raise LambdaPackageError(f'{wheel} has a member {name!r} that would be written outside the package: '
                                 f'the wheel is broken or malicious; remove it from the lock')
    parts = [part for part in parts if part not in ('', '.')]
    if len(parts) > 2 and parts[0].endswith('.data') and parts[1] in _ROOT_SCHEMES:
        parts = parts[2:]
    return '/'.join(parts)


class _Entries:
    """The zip's files by name: where each comes from, its sha256, size and mode; conflicts refused."""

    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}

    def add(self, name: str, origin: str, data: bytes, executable: bool, read) -> None:
        digest = hashlib.sha256(data).digest()
        mode = _MODE_EXECUTABLE if executable else _MODE_FILE
        known = self.entries.get(name)
        if known is None:
            self.entries[name] = {'origin': origin, 'sha256': digest, 'size': len(data), 'mode': mode, 'read': read}
        elif known['sha256'] != digest:
            raise LambdaPackageError(f'{name} comes from both {known["origin"]} and {origin} with different '
                                     f'contents: drop one of them from the lock, or rename the application '
                                     f'package so it does not shadow a dependency')
        elif mode == _MODE_EXECUTABLE:
            # The same file twice: kept once, executable if either copy is, whichever came first.
            known['mode'] = mode

    def check_tree(self) -> None:
        """No name is both a file and the directory of another file."""
        names = set(self.entries)
        for name in sorted(names):
            parts = name.split('/')
            for depth in range(1, len(parts)):
                parent = '/'.join(parts[:depth])
                if parent in names:
                    raise LambdaPackageError(f'{parent} is a file from {self.entries[parent]["origin"]} and a '
                                             f'directory in {self.entries[name]["origin"]} ({name}): drop one of '
                                             f'them from the lock')


def _add_source(entries: _Entries, source_dir: str) -> None:
    top = os.path.basename(os.path.normpath(source_dir))
    for root, dirs, files in os.walk(source_dir):
        dirs[:] = sorted(name for name in dirs if name != '__pycache__')
        for filename in sorted(files):
            path = os.path.join(root, filename)
            name = '/'.join([top] + os.path.relpath(path, source_dir).split(os.sep))
            if skipped(name):
                continue
            with open(path, 'rb') as stream:
                data = stream.read()
            executable = bool(os.stat(path).st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
            entries.add(name, f'the source {source_dir}', data, executable, lambda data=data: data)


def _add_wheels(entries: _Entries, archive: tarfile.TarFile, wheelhouse: str) -> None:
    members = sorted((member for member in archive.getmembers() if member.isfile()), key=lambda item: item.name)
    if not members:
        raise LambdaPackageError(f'the wheelhouse {wheelhouse} holds no wheel: build it with agent_wheelhouse')
    for member in members:
        if not member.name.endswith('.whl') or '/' in member.name:
            raise LambdaPackageError(f'the wheelhouse {wheelhouse} holds {member.name}, which is not a wheel: '
                                     f'build it again with agent_wheelhouse')
        try:
            wheel = zipfile.ZipFile(io.BytesIO(archive.extractfile(member).read()))
            for info in wheel.infolist():
                if info.is_dir():
                    continue
                name = member_name(member.name, info.filename)
                if not name or skipped(name):
                    continue
                executable = bool((info.external_attr >> 16) & 0o111)
                entries.add(name, f'the wheel {member.name}', wheel.read(info), executable,
                            lambda wheel=wheel, info=info: wheel.read(info))
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise LambdaPackageError(f'{member.name} in {wheelhouse} is not a valid wheel ({error}): remove the '
                                     f'wheelhouse to fetch it again') from error


def _write(entries: dict[str, dict], path: str) -> None:
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as package:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=DATE_TIME)
            info.create_system = _UNIX
            info.external_attr = (stat.S_IFREG | entries[name]['mode']) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            package.writestr(info, entries[name]['read'](), compress_type=zipfile.ZIP_DEFLATED,
                             compresslevel=COMPRESS_LEVEL)


def check_limits(size: int, unpacked_size: int, max_zip_size: int = MAX_ZIP_SIZE,
                 max_unpacked_size: int = MAX_UNPACKED_SIZE) -> None:
    """Refuse a package AWS Lambda would refuse, naming the measured size and the limit."""
    if unpacked_size > max_unpacked_size:
        raise LambdaPackageError(f'the package would unzip to {unpacked_size} bytes ({mib(unpacked_size)}), over '
                                 f'the max_unpacked_size limit of {max_unpacked_size} bytes '
                                 f'({mib(max_unpacked_size)}; AWS Lambda allows 250 MiB unzipped however the zip '
                                 f'is uploaded): use fewer or smaller dependencies, or deploy the function as a '
                                 f'container image')
    if size > max_zip_size:
        raise LambdaPackageError(f'the zip would be {size} bytes ({mib(size)}), over the max_zip_size limit of '
                                 f'{max_zip_size} bytes ({mib(max_zip_size)}; AWS Lambda accepts 50 MiB by direct '
                                 f'upload): use fewer or smaller dependencies, or upload the zip through S3 or '
                                 f'deploy a container image for a bigger function')


def release_id(entries: dict[str, dict], release_config: dict) -> str:
    """The release: a digest of every file's name, mode and sha256, and of the settings that define the release."""
    digest = hashlib.sha256()
    for name in sorted(entries):
        digest.update(f'{name}\0{entries[name]["mode"]:o}\0{entries[name]["sha256"].hex()}\n'.encode())
    digest.update(json.dumps(release_config, sort_keys=True, separators=(',', ':'), default=str).encode())
    return 'r-' + digest.hexdigest()[:10]


def build(source_dir: str, wheelhouse: str, dest: str, max_zip_size: int = MAX_ZIP_SIZE,
          max_unpacked_size: int = MAX_UNPACKED_SIZE, check_mode: bool = False,
          release_config: dict | None = None) -> dict:
    """The Lambda zip of source_dir and the wheelhouse's wheels at dest, written only when its bytes change.

    The zip is built into a temporary file next to dest (in check mode, in a
    temporary directory, and dest is left alone), checked against the limits
    and only then moved over dest.
    """
    if not os.path.isdir(source_dir):
        raise LambdaPackageError(f'the source {source_dir} is not a directory: name the application package '
                                 f'directory, for example files/agent/app')
    if os.path.isdir(dest):
        raise LambdaPackageError(f'dest {dest} is a directory: name the zip file to write')
    entries = _Entries()
    _add_source(entries, source_dir)
    try:
        with tarfile.open(wheelhouse, 'r:') as archive:
            _add_wheels(entries, archive, wheelhouse)
    except (tarfile.TarError, OSError) as error:
        raise LambdaPackageError(f'{wheelhouse} cannot be read as a wheelhouse: {error}: build it with '
                                 f'agent_wheelhouse') from error
    entries.check_tree()
    # The release id names the code and the settings; stamped into the zip, a
    # change of settings alone is a new upload too, and so a new version.
    release = release_id(entries.entries, release_config or {})
    stamp = json.dumps({'release': release}, sort_keys=True).encode() + b'\n'
    entries.add(RELEASE_FILE, 'the release stamp', stamp, False, lambda: stamp)
    unpacked_size = sum(entry['size'] for entry in entries.entries.values())
    # Too big unzipped is known before anything is written.
    check_limits(0, unpacked_size, max_zip_size, max_unpacked_size)

    directory = os.path.dirname(os.path.abspath(dest))
    scratch = tempfile.TemporaryDirectory(prefix='lambda-package-') if check_mode else None
    try:
        if scratch is None:
            os.makedirs(directory, exist_ok=True)
            handle, partial = tempfile.mkstemp(dir=directory, prefix=f'.{os.path.basename(dest)}.', suffix='.partial')
            os.close(handle)
        else:
            partial = os.path.join(scratch.name, 'package.zip')
        try:
            _write(entries.entries, partial)
            size = os.path.getsize(partial)
            check_limits(size, unpacked_size, max_zip_size, max_unpacked_size)
            digest = sha256_file(partial)
            changed = not (os.path.isfile(dest) and sha256_file(dest) == digest)
            if changed and scratch is None:
                os.chmod(partial, stat.S_IMODE(os.stat(dest).st_mode) if os.path.isfile(dest) else 0o644)
                os.replace(partial, dest)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    finally:
        if scratch is not None:
            scratch.cleanup()
    return {'path': dest, 'size': size, 'unpacked_size': unpacked_size, 'files': len(entries.entries),
            'sha256': digest.hex(), 'code_sha256': code_sha256(digest), 'release': release, 'changed': changed}
