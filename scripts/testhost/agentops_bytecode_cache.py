"""Bytecode cache for modules imported from zip files, for test hosts only.

Ansible ships every module run to the host as a zip (AnsiballZ) and Python
compiles what it imports from a zip each time, since zipimport never writes
bytecode. Compiling ansible.module_utils.basic and what it imports was a
third of the CPU one module run costs on a test host (bench/module_runs:
0.40 s without this cache, 0.27 s with it), and the suite runs modules by the
ten thousand. This keeps the compiled code of each source text, as Python's
own __pycache__ does for files on disk.

Loaded at interpreter start by agentops_bytecode_cache.pth. What it changes is
only when compiling happens: the code objects are the ones compile() returns
for the same source, with the file name of the run at hand. Any error falls
back to compiling.
"""

import hashlib
import marshal
import os
import sys
import zipimport

_CACHE_DIR = os.path.join("/var/cache/agentops-bytecode", sys.implementation.cache_tag or "unknown")
_compile_source = zipimport._compile_source


def _with_filename(code, filename):
    consts = tuple(_with_filename(c, filename) if isinstance(c, type(code)) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _cached_compile_source(pathname, source):
    path = os.path.join(_CACHE_DIR, hashlib.sha256(source).hexdigest())
    try:
        with open(path, "rb") as cached:
            return _with_filename(marshal.load(cached), pathname)
    except (OSError, EOFError, ValueError, TypeError):
        pass
    code = _compile_source(pathname, source)
    try:
        os.makedirs(_CACHE_DIR, mode=0o700, exist_ok=True)
        partial = "%s.%d" % (path, os.getpid())
        with open(partial, "wb") as out:
            marshal.dump(code, out)
        os.replace(partial, path)
    except OSError:
        pass
    return code


zipimport._compile_source = _cached_compile_source
