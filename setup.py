"""The optional native helpers of the audit record's statement path (docs/decisions/0335-native-audit-helpers.md).

Built when a C compiler and Python's headers are there; when the build fails, or with ``GOVERNED_DB_NO_EXTENSIONS=1``
set at install time, governed_db runs its pure-Python code, which writes the same bytes. Everything else about the
package is in pyproject.toml.
"""

import os

from setuptools import Extension, setup

native = [] if os.environ.get("GOVERNED_DB_NO_EXTENSIONS") else [
    Extension("governed_db._speedups", ["governed_db/_speedups.c"], optional=True,
              extra_compile_args=["-O2", "-Wall"]),
]
setup(ext_modules=native)
