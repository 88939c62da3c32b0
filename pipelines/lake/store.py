"""Where the lake's partitions live: a local folder (`pathlib.Path`) or an object-store prefix
(`UPath`, s3:// through s3fs). Both spell `lake / dataset / "day=D" / "data.parquet"`, so the
partition layout (`pipelines.lake.partitions`) is written once for both.

On S3 a partition is one object, written with one upload of the finished file
(`put_whole`): a reader sees the old object or the new one, never a mix, and no partial key
ever appears under `data.parquet` (S3 has no rename; an object becomes visible only when its
PUT, or its multipart upload, completes).

Listing caches are off (`use_listings_cache=False`, and no filesystem instance is shared through
fsspec's instance cache): a long-lived process (the Dagster webserver, a daemon's worker) must see
the partition another process wrote a moment ago in its next listing. The one exception is a
distributed run (`run_listing_cache`): every lake it opens is one filesystem for the whole run,
which keeps a listing for RUN_LISTING_TTL_S and forgets the listings of every object it writes
itself. DuckDB's fsspec bridge asks about each object of a view several times in one query (a
LIST, HEADs); the kept listing answers them, a sixth of the requests. A listing a second old is
as fresh as a query's own requests are; and if another process replaces an object within that
second, the read fails loudly (s3fs reads with `If-Match` on the listed ETag), never mixes. Credentials
and, unless `storage.s3.endpoint_url` names one, the endpoint come from the environment (AWS_* or
the IAM role), read by botocore itself: costwatch never holds them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import duckdb

if TYPE_CHECKING:
    from upath import UPath

# A lake location: the local folder, or a prefix of an object store.
LakePath: TypeAlias = "Path | UPath"

REMOTE_PROTOCOLS = ("s3", "s3a")


def s3_storage_options(endpoint_url: str | None = None, region: str | None = None) -> dict[str, Any]:
    """s3fs's options for the lake: fresh listings, no shared instance, the configured endpoint."""
    options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if region:
        options["client_kwargs"] = {"region_name": region}
    return options


# How long a distributed run keeps a listing: long enough for one query's many questions about
# the same objects, short enough that the next query lists again.
RUN_LISTING_TTL_S = 1.0

# Inside `run_listing_cache`: the lakes opened so far, by location, endpoint and region.
_run_lakes: dict[tuple[str, str | None, str | None], LakePath] | None = None


@contextmanager
def run_listing_cache() -> Iterator[None]:
    """For a distributed run (its scratch database's lifetime): every `open_lake` of one location
    returns the same lake, so what the run writes goes through the filesystem it reads with, whose
    listings (names, sizes, ETags) it keeps for RUN_LISTING_TTL_S and forgets at once for what it
    writes or deletes."""
    global _run_lakes
    outer = _run_lakes
    _run_lakes = {} if outer is None else outer
    try:
        yield
    finally:
        _run_lakes = outer


def open_lake(location: str | Path, *, endpoint_url: str | None = None, region: str | None = None) -> LakePath:
    """The lake at `location`: a Path for a local folder, a UPath for an s3:// prefix. The UPath's
    filesystem is created here, once, and shared by every path joined from it (UPath hands its
    filesystem to the paths it joins), so a run opens one S3 client, not one per partition.
    Inside `run_listing_cache`, the one lake of that location, its listings kept a moment."""
    text = str(location)
    if "://" not in text:
        return Path(text)
    from upath import UPath

    key = (text, endpoint_url, region)
    if _run_lakes is not None and key in _run_lakes:
        return _run_lakes[key]
    options = s3_storage_options(endpoint_url, region)
    if _run_lakes is not None:
        options |= {"use_listings_cache": True, "listings_expiry_time": RUN_LISTING_TTL_S}
    lake = UPath(text, **options)
    if lake.protocol not in REMOTE_PROTOCOLS:
        raise ValueError(f"{text}: only s3:// lakes are supported")
    lake.fs  # noqa: B018 (created now: joined paths share it)
    if _run_lakes is not None:
        _run_lakes[key] = lake
    return lake


def is_remote(path: object) -> bool:
    """Whether `path` is in an object store (a UPath of s3://), not on local disk."""
    return not isinstance(path, (str, Path)) and getattr(path, "protocol", "") in REMOTE_PROTOCOLS


def put_whole(local: Path, target: LakePath) -> None:
    """Upload the finished file `local` as the object `target`, replacing it at once.

    s3fs sends a file under twice its chunk size (50 MiB chunks by default, so up to about
    100 MiB) as one PUT and a larger one as a multipart upload; either way S3 makes the object
    visible only when the upload completes, so a reader, or a writer killed mid-upload, leaves
    the old object or the new one. A multipart upload cut short leaves invisible parts that a
    bucket lifecycle rule (AbortIncompleteMultipartUpload) removes."""
    target.fs.put_file(str(local), target.path)


def register_lake_filesystem(conn: duckdb.DuckDBPyConnection, lake: LakePath | None) -> None:
    """Let DuckDB read (and `COPY ... TO`) the lake's URLs: its fsspec filesystem registered
    with the connection's database, once. A local lake needs nothing. (DuckDB's `httpfs` cannot be
    installed offline for DuckDB 2.0, so s3:// goes through s3fs: scaleout.md, c2 and c3.)"""
    if not is_remote(lake):
        return
    filesystem = lake.fs
    if not conn.filesystem_is_registered(
        filesystem.protocol[0] if isinstance(filesystem.protocol, tuple) else filesystem.protocol
    ):
        conn.register_filesystem(filesystem)


def lake_prefix(lake: LakePath) -> str:
    """The lake's root as a folder prefix (with its trailing separator), for DuckDB's
    `allowed_directories`."""
    if is_remote(lake):
        return str(lake).rstrip("/") + "/"
    return str(Path(lake).resolve()) + os.sep
