# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A wheelhouse: every wheel a hash-locked requirements file names, gathered once on the controller.

The lock (``pip-compile --generate-hashes``) is the root of trust: a wheel is
accepted only when its sha256 is one the lock lists for its package, and the
wheelhouse must hold one wheel for every locked package. The wheelhouse is an
uncompressed tar named after the lock's digest and the target's Python and
machine, so a changed lock or another kind of host gets its own, and an
unchanged one is never fetched again. Pure functions, tested in
tests/unit/plugins/module_utils/test_wheelhouse.py; agent_wheelhouse is the
module over them.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tarfile
import tempfile

_REQUIREMENT = re.compile(r'^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;]+)')
_HASH = re.compile(r'--hash[=\s]sha256:([0-9a-fA-F]{64})')
# The manylinux tags a current glibc host accepts, newest first.
_MANYLINUX = ('manylinux_2_28', 'manylinux_2_17', 'manylinux2014')


class WheelhouseError(Exception):
    """The lock or the wheelhouse cannot be used; the message says what to fix."""


def normalize(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r'[-_.]+', '-', name).lower()


def parse_lock(text: str, source: str = 'the lock') -> dict[str, dict]:
    """{name: {'version', 'hashes'}} from a hash-locked requirements file; every requirement pinned and hashed."""
    logical, pending = [], ''
    for raw in text.splitlines():
        line = raw.split(' #', 1)[0].rstrip() if not raw.lstrip().startswith('#') else ''
        if line.endswith('\\'):
            pending += line[:-1] + ' '
            continue
        logical.append(pending + line)
        pending = ''
    if pending:
        logical.append(pending)
    locked: dict[str, dict] = {}
    for line in (entry.strip() for entry in logical):
        if not line or line.startswith('-'):
            continue
        match = _REQUIREMENT.match(line)
        if not match:
            raise WheelhouseError(f'{source}: "{line.split()[0]}" is not pinned with ==: regenerate it with '
                                  f'pip-compile --generate-hashes')
        hashes = {digest.lower() for digest in _HASH.findall(line)}
        if not hashes:
            raise WheelhouseError(f'{source}: {match.group(1)}=={match.group(3)} has no --hash: regenerate it '
                                  f'with pip-compile --generate-hashes')
        locked[normalize(match.group(1))] = {'version': match.group(3), 'hashes': hashes}
    if not locked:
        raise WheelhouseError(f'{source} names no requirement')
    return locked


def wheel_project(filename: str) -> str:
    """The normalized project name of a wheel file ({name}-{version}-...-{platform}.whl)."""
    return normalize(filename.split('-', 1)[0])


def problems(digests: dict[str, str], locked: dict[str, dict]) -> list[str]:
    """What makes a wheelhouse ({file name: sha256}) unfit for the lock; empty when it fits."""
    found, seen = [], set()
    for filename, digest in sorted(digests.items()):
        if not filename.endswith('.whl'):
            found.append(f'{filename} is not a wheel')
            continue
        project = wheel_project(filename)
        entry = locked.get(project)
        if entry is None:
            found.append(f'{filename} is not in the lock')
        else:
            seen.add(project)
            if digest.lower() not in entry['hashes']:
                found.append(f'{filename} has sha256 {digest[:16]}..., which the lock does not allow for {project}')
    found.extend(f'no wheel for {name}=={entry["version"]}' for name, entry in sorted(locked.items())
                 if name not in seen)
    return found


def cache_key(lock_digest: str, python_version: str, machine: str) -> str:
    """The wheelhouse's name: the lock's digest and what the wheels were chosen for."""
    if not re.match(r'^\d+\.\d+$', python_version):
        raise WheelhouseError(f'python_version must look like 3.11, not {python_version!r}')
    if not re.match(r'^[A-Za-z0-9_]+$', machine):
        raise WheelhouseError(f'machine must look like x86_64, not {machine!r}')
    return f'{lock_digest[:16]}-cp{python_version.replace(".", "")}-{machine}'


def download_command(python: str, lock: str, dest: str, python_version: str, machine: str,
                     extra_args: list[str] | None = None) -> list[str]:
    """pip download of the lock's wheels, for the target's Python and machine, hashes required."""
    command = [python, '-m', 'pip', 'download', '--disable-pip-version-check', '--quiet', '--require-hashes',
               '--no-deps', '--only-binary=:all:', '--dest', dest, '--requirement', lock,
               '--implementation', 'cp', '--python-version', python_version,
               '--abi', 'cp' + python_version.replace('.', ''), '--abi', 'abi3', '--abi', 'none']
    for tag in _MANYLINUX:
        command += ['--platform', f'{tag}_{machine}']
    return command + ['--platform', f'linux_{machine}'] + list(extra_args or [])


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def tar_digests(path: str) -> dict[str, str]:
    """{member name: sha256} of a wheelhouse tar's files."""
    digests = {}
    try:
        with tarfile.open(path, 'r:') as archive:
            for member in archive:
                if not member.isfile():
                    continue
                if '/' in member.name or member.name.startswith('.'):
                    raise WheelhouseError(f'{path}: unexpected member {member.name}')
                stream = archive.extractfile(member)
                digest = hashlib.sha256()
                for block in iter(lambda: stream.read(1 << 20), b''):
                    digest.update(block)
                digests[member.name] = digest.hexdigest()
    except (tarfile.TarError, OSError) as error:
        raise WheelhouseError(f'{path} cannot be read as a wheelhouse: {error}') from error
    return digests


def write_tar(directory: str, path: str) -> None:
    """The directory's wheels as a reproducible tar (sorted, no owner, no time), written atomically."""
    partial = f'{path}.partial-{os.getpid()}'
    with tarfile.open(partial, 'w:', format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(os.listdir(directory)):
            info = archive.gettarinfo(os.path.join(directory, name), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = 'root'
            info.mtime = 0
            info.mode = 0o644
            with open(os.path.join(directory, name), 'rb') as stream:
                archive.addfile(info, stream)
    os.replace(partial, path)


def build(python: str, lock: str, cache_dir: str, python_version: str, machine: str,
          extra_args: list[str] | None = None, runner=subprocess.run) -> dict:
    """The wheelhouse tar for the lock in cache_dir, fetched only when missing; always checked against the lock."""
    with open(lock, 'rb') as stream:
        content = stream.read()
    lock_digest = hashlib.sha256(content).hexdigest()
    locked = parse_lock(content.decode('utf-8'), lock)
    key = cache_key(lock_digest, python_version, machine)
    path = os.path.join(cache_dir, f'{key}.tar')
    built = False
    if not os.path.exists(path):
        os.makedirs(cache_dir, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f'.{key}-') as scratch:
            result = runner(download_command(python, lock, scratch, python_version, machine, extra_args),
                            capture_output=True, text=True, check=False)
            if result.returncode != 0:
                # pip's last ERROR line names the package (its warnings and the
                # line before it only explain).
                lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
                errors = [line for line in lines if line.startswith('ERROR:')]
                raise WheelhouseError(f'pip download of the wheels {lock} names failed: '
                                      f'{(errors or lines or ["exit status " + str(result.returncode)])[-1]}')
            found = problems({name: sha256_file(os.path.join(scratch, name)) for name in os.listdir(scratch)}, locked)
            if found:
                raise WheelhouseError(f'the wheels downloaded for {lock} do not fit it: {"; ".join(found)}')
            write_tar(scratch, path)
        built = True
    found = problems(tar_digests(path), locked)
    if found:
        raise WheelhouseError(f'the wheelhouse {path} does not match {lock}: {"; ".join(found[:5])}. '
                              f'Remove it to fetch it again.')
    return {'path': path, 'key': key, 'lock_sha256': lock_digest, 'wheels': len(locked), 'built': built,
            'sha256': sha256_file(path)}
