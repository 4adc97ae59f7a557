"""The cffi builder of the C order book (API, out-of-line mode); run by setuptools through setup.py."""

from __future__ import annotations

import os
from pathlib import Path

from cffi import FFI

CORE = Path(__file__).resolve().parent.parent
CSRC = CORE / "csrc"


def _relative(path: Path) -> str:
    """setuptools wants source paths relative to the project directory."""
    return os.path.relpath(path, Path.cwd())


ffibuilder = FFI()
ffibuilder.cdef((CSRC / "book_cdef.h").read_text(encoding="utf-8"))
ffibuilder.set_source(
    "exos._book",
    '#include "book.h"',
    sources=[_relative(CSRC / "book.c")],
    include_dirs=[_relative(CSRC)],
    extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
