"""The Lambda zip: the same inputs give the same bytes, wheels at the root, unsafe or conflicting wheels and
an over-limit zip refused before dest is touched."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from ansible_collections.agentops.deploy.plugins.module_utils import lambda_package as lp
from ansible_collections.agentops.deploy.plugins.module_utils import wheelhouse as wh


def wheel(members: dict[str, bytes], executable: tuple[str, ...] = ()) -> bytes:
    """A tiny wheel: a zip of the members, with a time and modes pip would not care about."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 6, 7, 8, 9))
            info.external_attr = (0o100755 if name in executable else 0o100664) << 16
            archive.writestr(info, data)
        archive.writestr('demo-1.0.dist-info/', b'')  # a directory entry, left out of the zip
    return buffer.getvalue()


DEMO = {
    'demo/__init__.py': b'VERSION = "1.0"\n',
    'demo/__pycache__/__init__.cpython-311.pyc': b'bytecode',
    'demo/_speedups.cpython-311-x86_64-linux-gnu.so': b'\x7fELF' + bytes(range(256)) * 8,
    'demo-1.0.dist-info/METADATA': b'Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n',
    'demo-1.0.dist-info/RECORD': b'demo/__init__.py,,\n',
    'demo-1.0.data/purelib/demo_extra.py': b'EXTRA = 1\n',
}
OTHER = {
    'other/__init__.py': b'',
    'other/cli.py': b'print("other")\n',
    'other-2.0.dist-info/METADATA': b'Metadata-Version: 2.1\nName: other\nVersion: 2.0\n',
}


def wheelhouse(directory: Path, wheels: dict[str, bytes]) -> Path:
    """A wheelhouse tar as agent_wheelhouse writes it."""
    scratch = directory / 'wheels'
    scratch.mkdir(parents=True)
    for name, data in wheels.items():
        (scratch / name).write_bytes(data)
    path = directory / 'wheelhouse.tar'
    wh.write_tar(str(scratch), str(path))
    return path


def application(directory: Path) -> Path:
    app = directory / 'app'
    (app / 'routes').mkdir(parents=True)
    (app / '__pycache__').mkdir()
    (app / '__init__.py').write_text('')
    (app / 'main.py').write_text('def handler(event, context):\n    return {"ok": True}\n')
    (app / 'routes' / '__init__.py').write_text('')
    (app / 'routes' / 'ask.py').write_text('ROUTE = "/ask"\n')
    (app / 'routes' / 'ask.pyc').write_bytes(b'stale bytecode')
    (app / 'legacy.pyo').write_bytes(b'old bytecode')
    (app / '__pycache__' / 'main.cpython-311.pyc').write_bytes(b'bytecode')
    (app / 'run.sh').write_text('#!/bin/sh\nexec python -m app\n')
    (app / 'run.sh').chmod(0o755)
    return app


def inputs(directory: Path, wheels: dict[str, bytes] | None = None) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    if wheels is None:
        wheels = {'demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl': wheel(DEMO),
                  'other-2.0-py3-none-any.whl': wheel(OTHER, executable=('other/cli.py',))}
    return application(directory), wheelhouse(directory, wheels)


def build(app: Path, tar: Path, dest: Path, **limits) -> dict:
    return lp.build(str(app), str(tar), str(dest), **limits)


def test_two_builds_in_different_places_and_times_give_the_same_bytes(tmp_path: Path) -> None:
    first = build(*inputs(tmp_path / 'one'), tmp_path / 'one' / 'out' / 'agent.zip')
    app, tar = inputs(tmp_path / 'two')
    for path in app.rglob('*'):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    (app / 'main.py').chmod(0o600)  # the owner's read and write bits are not recorded, only x
    second = build(app, tar, tmp_path / 'two' / 'agent.zip')
    data = (tmp_path / 'one' / 'out' / 'agent.zip').read_bytes()
    assert data == (tmp_path / 'two' / 'agent.zip').read_bytes()
    assert first['code_sha256'] == second['code_sha256'] and first['sha256'] == second['sha256']
    assert first['changed'] and second['changed']
    digest = hashlib.sha256(data).digest()
    assert first['code_sha256'] == base64.b64encode(digest).decode() and first['sha256'] == digest.hex()
    assert first['size'] == len(data) and first['path'] == str(tmp_path / 'one' / 'out' / 'agent.zip')


def test_a_changed_source_file_changes_the_hash(tmp_path: Path) -> None:
    app, tar = inputs(tmp_path)
    first = build(app, tar, tmp_path / 'agent.zip')
    (app / 'routes' / 'ask.py').write_text('ROUTE = "/v2/ask"\n')
    second = build(app, tar, tmp_path / 'agent.zip')
    assert second['changed'] and second['code_sha256'] != first['code_sha256']
    assert second['code_sha256'] == lp.code_sha256(hashlib.sha256((tmp_path / 'agent.zip').read_bytes()).digest())


def test_the_zip_holds_the_app_under_its_name_and_the_wheels_at_the_root(tmp_path: Path) -> None:
    app, tar = inputs(tmp_path)
    result = build(app, tar, tmp_path / 'agent.zip')
    with zipfile.ZipFile(tmp_path / 'agent.zip') as package:
        infos = package.infolist()
        names = [info.filename for info in infos]
        assert names == sorted([
            'agentops_release.json', 'app/__init__.py', 'app/main.py', 'app/run.sh', 'app/routes/__init__.py', 'app/routes/ask.py',
            'demo/__init__.py', 'demo/_speedups.cpython-311-x86_64-linux-gnu.so', 'demo_extra.py',
            'demo-1.0.dist-info/METADATA', 'demo-1.0.dist-info/RECORD',
            'other/__init__.py', 'other/cli.py', 'other-2.0.dist-info/METADATA'])
        assert package.read('demo/__init__.py') == DEMO['demo/__init__.py']
        assert package.read('app/routes/ask.py') == b'ROUTE = "/ask"\n'
        assert package.testzip() is None and package.comment == b''
        modes = {info.filename: info.external_attr >> 16 for info in infos}
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0) and info.create_system == 3
            assert info.compress_type == zipfile.ZIP_DEFLATED and info.extra == b'' and info.comment == b''
    executable = {name for name, mode in modes.items() if mode & 0o111}
    assert executable == {'app/run.sh', 'other/cli.py'}
    assert {mode & 0o7777 for mode in modes.values()} == {0o644, 0o755}
    assert result['files'] == len(names)
    assert result['unpacked_size'] == sum(info.file_size for info in infos)


def test_an_over_limit_zip_is_refused_with_its_size_and_leaves_nothing(tmp_path: Path) -> None:
    app, tar = inputs(tmp_path / 'in')
    out = tmp_path / 'out'
    out.mkdir()
    measured = build(app, tar, tmp_path / 'measure.zip')
    with pytest.raises(lp.LambdaPackageError) as refused:
        build(app, tar, out / 'agent.zip', max_zip_size=1000)
    message = str(refused.value)
    for part in (f'{measured["size"]} bytes', 'max_zip_size limit of 1000 bytes', 'fewer or smaller dependencies',
                 'S3', 'container image'):
        assert part in message, message
    assert list(out.iterdir()) == []


def test_an_over_limit_unpacked_size_is_refused_before_writing(tmp_path: Path) -> None:
    app, tar = inputs(tmp_path / 'in')
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'agent.zip').write_bytes(b'the release before')
    with pytest.raises(lp.LambdaPackageError, match=r'would unzip to \d+ bytes .*max_unpacked_size limit of 100 '
                                                    r'bytes.*fewer or smaller dependencies'):
        build(app, tar, out / 'agent.zip', max_unpacked_size=100)
    assert [path.name for path in out.iterdir()] == ['agent.zip']
    assert (out / 'agent.zip').read_bytes() == b'the release before'


def test_an_identical_dest_is_not_written_again(tmp_path: Path) -> None:
    app, tar = inputs(tmp_path)
    dest = tmp_path / 'agent.zip'
    first = build(app, tar, dest)
    os.utime(dest, (1_000_000_000, 1_000_000_000))
    inode = dest.stat().st_ino
    second = build(app, tar, dest)
    assert first['changed'] and not second['changed'] and second['code_sha256'] == first['code_sha256']
    assert dest.stat().st_mtime == 1_000_000_000 and dest.stat().st_ino == inode
    assert sorted(path.name for path in tmp_path.iterdir()) == ['agent.zip', 'app', 'wheelhouse.tar', 'wheels']


def test_check_mode_measures_and_leaves_dest_alone(tmp_path: Path) -> None:
    app, tar = inputs(tmp_path / 'in')
    out = tmp_path / 'out'
    predicted = lp.build(str(app), str(tar), str(out / 'agent.zip'), check_mode=True)
    assert predicted['changed'] and not out.exists()
    built = build(app, tar, out / 'agent.zip')
    assert built['code_sha256'] == predicted['code_sha256'] and built['size'] == predicted['size']
    again = lp.build(str(app), str(tar), str(out / 'agent.zip'), check_mode=True)
    assert not again['changed'] and [path.name for path in out.iterdir()] == ['agent.zip']


@pytest.mark.parametrize('member', ['../evil.py', 'demo/../../evil.py', '/etc/cron.d/evil', '..\\evil.py'])
def test_a_wheel_member_outside_the_package_is_refused(tmp_path: Path, member: str) -> None:
    app, tar = inputs(tmp_path, {'evil-1.0-py3-none-any.whl': wheel({'evil/__init__.py': b'', member: b'pwned'})})
    with pytest.raises(lp.LambdaPackageError, match=r'evil-1\.0-py3-none-any\.whl has a member .*outside the '
                                                    r'package'):
        build(app, tar, tmp_path / 'agent.zip')
    assert not (tmp_path / 'agent.zip').exists() and not (tmp_path / 'evil.py').exists()


def test_two_wheels_writing_one_path_differently_are_refused_naming_both(tmp_path: Path) -> None:
    app, tar = inputs(tmp_path, {
        'alpha-1.0-py3-none-any.whl': wheel({'shared/__init__.py': b'ALPHA = 1\n'}),
        'beta-1.0-py3-none-any.whl': wheel({'shared/__init__.py': b'BETA = 1\n'}),
    })
    with pytest.raises(lp.LambdaPackageError) as refused:
        build(app, tar, tmp_path / 'agent.zip')
    message = str(refused.value)
    assert 'shared/__init__.py' in message and 'alpha-1.0-py3-none-any.whl' in message
    assert 'beta-1.0-py3-none-any.whl' in message and not (tmp_path / 'agent.zip').exists()


def test_a_wheel_shadowing_the_application_is_refused(tmp_path: Path) -> None:
    app, tar = inputs(tmp_path, {'app-9.9-py3-none-any.whl': wheel({'app/main.py': b'print("not yours")\n'})})
    with pytest.raises(lp.LambdaPackageError, match=r'app/main\.py comes from both the source .* and the wheel '
                                                    r'app-9\.9-py3-none-any\.whl'):
        build(app, tar, tmp_path / 'agent.zip')


def test_the_same_file_in_two_wheels_is_kept_once(tmp_path: Path) -> None:
    app, tar = inputs(tmp_path, {
        'alpha-1.0-py3-none-any.whl': wheel({'ns/__init__.py': b'', 'ns/alpha.py': b'A = 1\n'}),
        'beta-1.0-py3-none-any.whl': wheel({'ns/__init__.py': b'', 'ns/beta.py': b'B = 1\n'}),
    })
    build(app, tar, tmp_path / 'agent.zip')
    with zipfile.ZipFile(tmp_path / 'agent.zip') as package:
        names = package.namelist()
    assert names.count('ns/__init__.py') == 1 and {'ns/alpha.py', 'ns/beta.py'} <= set(names)


def test_a_wheelhouse_holding_something_else_is_refused(tmp_path: Path) -> None:
    app, tar = inputs(tmp_path, {'notes.txt': b'not a wheel'})
    with pytest.raises(lp.LambdaPackageError, match='notes.txt, which is not a wheel'):
        build(app, tar, tmp_path / 'agent.zip')
    with tarfile.open(tar, 'w:') as archive:
        info = tarfile.TarInfo('broken-1.0-py3-none-any.whl')
        info.size = 4
        archive.addfile(info, io.BytesIO(b'junk'))
    with pytest.raises(lp.LambdaPackageError, match='broken-1.0-py3-none-any.whl in .* is not a valid wheel'):
        build(app, tar, tmp_path / 'agent.zip')


def test_release_id_follows_the_code_and_the_release_config(tmp_path: Path) -> None:
    source, house = inputs(tmp_path / 'one')
    first = lp.build(str(source), str(house), str(tmp_path / 'a.zip'), release_config={'memory': 1024})
    same = lp.build(str(source), str(house), str(tmp_path / 'b.zip'), release_config={'memory': 1024})
    settings = lp.build(str(source), str(house), str(tmp_path / 'c.zip'), release_config={'memory': 2048})
    assert first['release'] == same['release'] and first['code_sha256'] == same['code_sha256']
    assert settings['release'] != first['release'] and settings['code_sha256'] != first['code_sha256']
    with zipfile.ZipFile(tmp_path / 'c.zip') as package:
        assert json.loads(package.read('agentops_release.json')) == {'release': settings['release']}
    (source / 'main.py').write_text('changed = True\n')
    code = lp.build(str(source), str(house), str(tmp_path / 'd.zip'), release_config={'memory': 1024})
    assert code['release'] not in (first['release'], settings['release'])
