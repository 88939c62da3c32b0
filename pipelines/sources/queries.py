"""Named SQL statements kept in `.sql` files beside the modules that run them.

A file holds one or more statements, each introduced by a `-- name: <name>` line (the lines
after it, up to the next such line, are the statement, comments and all). Files are read once
per process from the installed package (`importlib.resources`), so a non-editable install finds them.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME_LINE = re.compile(r"^-- name: *(\w+) *$", re.MULTILINE)


@cache
def sql_text(package: str, file_name: str) -> str:
    """The whole text of `file_name` in `package` (one statement, or macros run as a script)."""
    return resources.files(package).joinpath(file_name).read_text(encoding="utf-8")


@cache
def load_queries(package: str, file_name: str) -> dict[str, str]:
    """The statements of `file_name` in `package`, by name, in file order."""
    parts = _NAME_LINE.split(sql_text(package, file_name))
    if (
        len(parts) < 3
        or parts[0].strip(" \n")
        and not all(line.startswith("--") for line in parts[0].strip().splitlines())
    ):
        raise ValueError(f"{package}/{file_name}: every statement starts with a `-- name: <name>` line")
    names = parts[1::2]
    if len(set(names)) != len(names):
        raise ValueError(f"{package}/{file_name}: a statement name is used twice")
    return {name: body.strip().removesuffix(";").strip() for name, body in zip(names, parts[2::2], strict=True)}
