"""Every input format costwatch reads, registered by the module that reads it.

A format module calls `register(...)` when it is imported; `formats()` imports every module
under `pipelines.sources` once, so config validation, the docs and the tests all see the same
list, and adding a format is adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

# The sources a config can name, and the lake tables each feeds.
SOURCES = ("gateway_logs", "provider_costs", "provider_usage", "gpu_billing", "gpu_telemetry")


@dataclass(frozen=True)
class Format:
    name: str  # the `format:` value in costwatch.yaml
    source: str  # one of SOURCES
    # the reader; its signature is the source kind's: gateway
    # `(path, batch_bytes, max_line_bytes) -> Iterator[pa.Table]` (records in batches, never the
    # whole file; a line over max_line_bytes a `line_too_long` record), billing and gpu their own
    read: Callable
    description: str  # one line: the producer and the file layout it writes
    module: str  # the module that registered it
    # Its timestamps are the host's wall clock with no offset: the reader takes the source's
    # `timezone` (IANA name) as a third argument; other formats' timestamps are UTC or say their offset.
    local_timestamps: bool = False


_FORMATS: dict[str, Format] = {}


def register(name: str, source: str, read: Callable, description: str, *, local_timestamps: bool = False) -> Callable:
    if source not in SOURCES:
        raise ValueError(f"format {name}: unknown source {source!r}; one of {SOURCES}")
    known = _FORMATS.get(name)
    if known is not None and known.module != read.__module__:
        raise ValueError(f"format {name} is registered twice: {known.module} and {read.__module__}")
    _FORMATS[name] = Format(name, source, read, description, read.__module__, local_timestamps)
    return read


@cache
def _import_all() -> None:
    import pipelines.sources as package

    for module in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        importlib.import_module(module.name)


def formats(source: str | None = None) -> dict[str, Format]:
    """Registered formats by name (of one source when given), in name order."""
    _import_all()
    return {name: fmt for name, fmt in sorted(_FORMATS.items()) if source is None or fmt.source == source}


def get(name: str) -> Format:
    _import_all()
    return _FORMATS[name]
