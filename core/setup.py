"""Builds the C order book through cffi; everything else is in pyproject.toml."""

from __future__ import annotations

import os
import shlex
import shutil
import sysconfig

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, PlatformError

HINT = "install gcc or clang (Debian/Ubuntu: apt-get install gcc python3-dev) or point CC at one"


class BuildBook(build_ext):
    """build_ext that turns a missing or broken C compiler into one clear error."""

    def run(self) -> None:
        compiler = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
        words = shlex.split(compiler)
        if not words or shutil.which(words[0]) is None:
            raise SystemExit(
                f"error: exos needs a C compiler to build its order book, and CC={compiler!r} "
                f"was not found; {HINT}."
            )
        try:
            super().run()
        except (CCompilerError, CompileError, ExecError, PlatformError, OSError) as exc:
            raise SystemExit(
                f"error: exos could not compile its order book with CC={compiler!r}: {exc}; {HINT}."
            ) from None


setup(cffi_modules=["_cffi_src/build_book.py:ffibuilder"], cmdclass={"build_ext": BuildBook})
