"""The test hosts' bytecode cache for zip imports (scripts/testhost).

Each case imports from a zip in a fresh interpreter, as a module run does on
a test host, with the hook loaded from the checkout and its cache in tmp_path.
"""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

HOOK_DIR = Path(__file__).resolve().parents[3] / "scripts" / "testhost"

SOURCE = '''
def where():
    def inner():
        return inner.__code__.co_filename
    return where.__code__.co_filename, inner()
'''

# Runs in the child: load the hook, point it at the test's cache, optionally
# make the real compile refuse (so a hit is proven), import from the zip.
CHILD = '''
import json, sys, zipimport
sys.path.insert(0, {hook_dir!r})
import agentops_bytecode_cache as hook
hook._CACHE_DIR = {cache!r}
compiled = []
real = hook._compile_source
def counting(pathname, source):
    compiled.append(pathname)
    return real(pathname, source)
hook._compile_source = counting
sys.path.insert(0, {archive!r})
import demo
print(json.dumps({{"compiled": compiled, "where": demo.where(), "hooked": zipimport._compile_source is hook._cached_compile_source}}))
'''


def make_zip(path: Path, source: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("demo.py", source)
    return path


def import_from(archive: Path, cache: Path) -> dict:
    code = CHILD.format(hook_dir=str(HOOK_DIR), cache=str(cache), archive=str(archive))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_the_first_import_compiles_and_keeps_the_code(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = import_from(make_zip(tmp_path / "a.zip", SOURCE), cache)
    assert first["hooked"]
    assert first["compiled"] == [str(tmp_path / "a.zip" / "demo.py")]
    assert len(list(cache.iterdir())) == 1


def test_the_same_source_from_another_zip_is_not_compiled_and_names_its_own_file(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    import_from(make_zip(tmp_path / "a.zip", SOURCE), cache)
    second = import_from(make_zip(tmp_path / "b.zip", SOURCE), cache)
    assert second["compiled"] == []
    # Functions nested at any depth carry the file they came from this time.
    expected = str(tmp_path / "b.zip" / "demo.py")
    assert second["where"] == [expected, expected]


def test_changed_source_is_compiled_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    import_from(make_zip(tmp_path / "a.zip", SOURCE), cache)
    changed = import_from(make_zip(tmp_path / "b.zip", SOURCE + "\nVERSION = 2\n"), cache)
    assert changed["compiled"] == [str(tmp_path / "b.zip" / "demo.py")]
    assert len(list(cache.iterdir())) == 2


def test_a_damaged_entry_is_compiled_again_and_replaced(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    import_from(make_zip(tmp_path / "a.zip", SOURCE), cache)
    (entry,) = cache.iterdir()
    entry.write_bytes(b"not marshal data")
    again = import_from(make_zip(tmp_path / "b.zip", SOURCE), cache)
    assert again["compiled"] == [str(tmp_path / "b.zip" / "demo.py")]
    assert again["where"][0] == str(tmp_path / "b.zip" / "demo.py")
    assert import_from(make_zip(tmp_path / "c.zip", SOURCE), cache)["compiled"] == []


def test_an_unwritable_cache_still_imports(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    result = import_from(make_zip(tmp_path / "a.zip", SOURCE), blocker / "cache")
    assert result["where"][0] == str(tmp_path / "a.zip" / "demo.py")
