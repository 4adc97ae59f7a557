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


# The book's calls take a microsecond or less and use neither errno nor other threads: cffi's wrappers would
# release and retake the GIL and save and restore errno around each, which cost more than a cancel. These
# definitions follow cffi's own (the source is placed after them) and hold the GIL through the call.
_SOURCE = """#include "book.h"
#undef Py_BEGIN_ALLOW_THREADS
#undef Py_END_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS {
#define Py_END_ALLOW_THREADS }
#undef _cffi_restore_errno
#undef _cffi_save_errno
#define _cffi_restore_errno() ((void)0)
#define _cffi_save_errno() ((void)0)
"""

ffibuilder = FFI()
ffibuilder.cdef((CSRC / "book_cdef.h").read_text(encoding="utf-8"))
ffibuilder.set_source(
    "exos._book",
    _SOURCE,
    sources=[_relative(CSRC / "book.c")],
    include_dirs=[_relative(CSRC)],
    extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
