"""Builds the C order book through cffi and compiles the engine's hot modules with mypyc; the rest is in pyproject.toml.

The modules in `exos.native.COMPILED` become one mypyc group of C extensions beside their sources, and
`exos/_compiled.json` records each source's SHA-256: `exos.native` runs the extensions only while they match
their sources, so an edited module runs as Python until the next build.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pathlib
import shlex
import shutil
import sysconfig

from mypyc.build import mypycify
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


PACKAGE = pathlib.Path(__file__).resolve().parent / "src" / "exos"


def compiled_sources() -> list[str]:
    """Record the SHA-256 of each module mypyc compiles (exos.native checks them) and return their paths."""
    constants = {}  # COMPILED and BUILD_FILE, read from exos/native.py's source (importing it would select a build)
    for node in ast.parse((PACKAGE / "native.py").read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            constants[node.targets[0].id] = node.value
    names: tuple[str, ...] = ast.literal_eval(constants["COMPILED"])
    digests = {name: hashlib.sha256((PACKAGE / f"{name}.py").read_bytes()).hexdigest() for name in names}
    build_file = PACKAGE / ast.literal_eval(constants["BUILD_FILE"])
    build_file.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    return [f"src/exos/{name}.py" for name in names]


# no config file: the workspace's strict lint settings are for the tree; the build's own requirements
# (attrs among them) give mypyc the types it compiles to
setup(
    cffi_modules=["_cffi_src/build_book.py:ffibuilder"],
    ext_modules=mypycify(
        ["--config-file=", "--ignore-missing-imports", *compiled_sources()], opt_level="3", group_name="exos"
    ),
    cmdclass={"build_ext": BuildBook},
)
