"""The byte level of every input file, shared by the readers of each source.

Damage at this level (a gzip stream cut short, bytes that are not UTF-8, a cell longer than
csv's default limit) must set aside the damaged record, never stop the file: a reader keeps
every record it can and turns the damage itself into a counted, quarantined record.
"""

from __future__ import annotations

import csv
import io
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

# Lone surrogates: bytes that were not UTF-8 (decoded with surrogateescape) or a JSON \ud800 escape.
_UNENCODABLE = re.compile(r"[\ud800-\udfff]")
_GUNZIP_CHUNK = 1 << 20

# The longest line a reader holds (bytes, `inputs.max_line_bytes`): a longer line of a JSON-lines
# or CSV file is quarantined as `line_too_long`, naming its file and line, and its bytes are skipped,
# never held. Arrow's string arrays stop at 2 GiB, so without a limit one such line failed the
# whole file (and the day) with an error naming neither. 64 MiB is ~1,000x the longest real
# gateway record (a LiteLLM row with its model map is ~10 KB; a long prompt's OTLP span ~1 MB).
MAX_LINE_BYTES = 64 << 20
# What a quarantined over-long line keeps of its text, for a person to recognise it (bytes).
TOO_LONG_HEAD_BYTES = 1024

# csv's default 128 KiB field limit would stop the whole file at one long cell; a long cell is
# a record to validate like any other. (Process-wide setting: it only ever raises the limit.)
csv.field_size_limit(2**31 - 1)


def read_file_bytes(path: Path) -> tuple[bytes, str | None]:
    """The file's bytes (gunzipped when gzip), and why reading stopped early, if it did.
    Whole in memory: for the small billing and GPU exports; gateway logs stream (`FileBlocks`)."""
    with open(path, "rb") as handle:
        data = handle.read()
    return gunzip(data) if data.startswith(b"\x1f\x8b") else (data, None)


class FileBlocks:
    """A file's bytes (gunzipped when gzip) as blocks of at most `block_size` bytes, so a reader
    never holds the file; after the last block, `damage` says why reading stopped early, if it did.

    The same damage rules as `gunzip`: a stream cut short keeps everything zlib inflates from it
    and ends in `truncated_gzip`; a damaged block keeps everything before it (`damaged_gzip`), and
    bytes after the last member that are not zero padding are `damaged_gzip` too."""

    def __init__(self, path: Path, block_size: int = _GUNZIP_CHUNK):
        self.path = path
        self.block_size = max(block_size, 4096)
        self.damage: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as handle:
            head = handle.read(2)
            if head != b"\x1f\x8b":
                block = head + handle.read(self.block_size)
                while block:
                    yield block
                    block = handle.read(self.block_size)
                return
            yield from self._gunzip(handle, head)

    def _gunzip(self, handle: io.BufferedReader, pending: bytes) -> Iterator[bytes]:
        size = self.block_size
        while True:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            while not inflater.eof:
                if not pending:
                    pending = handle.read(size)
                    if not pending:
                        break
                try:
                    # max_length bounds the output of a block that inflates a thousandfold
                    block = inflater.decompress(pending, size)
                except zlib.error as error:
                    self.damage = f"damaged_gzip:{error}"
                    return
                if block:
                    yield block
                pending = inflater.unconsumed_tail or inflater.unused_data
            if not inflater.eof:
                block = inflater.flush()
                if block:
                    yield block
                self.damage = "truncated_gzip:the stream ends before its end marker"
                return
            if len(pending) < 2:
                pending += handle.read(size)
            if pending[:2] == b"\x1f\x8b":
                continue
            # zero padding after the last member, as gzip(1) allows; anything else is damage
            while pending:
                if pending.strip(b"\x00"):
                    self.damage = "damaged_gzip:bytes after the last gzip member"
                    return
                pending = handle.read(size)
            return


def gunzip(data: bytes) -> tuple[bytes, str | None]:
    """Every member of a gzip stream, and the damage that stopped it, if any.

    A stream cut short (a shipper still writing, a partial upload) or damaged keeps what
    decompressed before the damage (fed in chunks, so at most one chunk's output is lost to a
    damaged block): its records are read like any others, and the reader turns the damage
    itself into one quarantined record, so it is counted and seen."""
    out, position = [], 0
    while position < len(data):
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while not inflater.eof and position < len(data):
            chunk = data[position : position + _GUNZIP_CHUNK]
            try:
                out.append(inflater.decompress(chunk))
            except zlib.error as error:
                return b"".join(out), f"damaged_gzip:{error}"
            position += len(chunk) - len(inflater.unused_data)
        if not inflater.eof:
            out.append(inflater.flush())
            return b"".join(out), "truncated_gzip:the stream ends before its end marker"
        if not data[position:].strip(b"\x00"):  # zero padding after the last member, as gzip(1) allows
            break
        if data[position : position + 2] != b"\x1f\x8b":
            return b"".join(out), "damaged_gzip:bytes after the last gzip member"
    return b"".join(out), None


def line_too_long(path: Path, line: int, size: int, limit: int) -> str:
    """The quarantine reason of an over-long line: which file, which line, how long, which limit."""
    return f"line_too_long:line {line} of {path} is {size:,} bytes, over inputs.max_line_bytes ({limit:,})"


def text_record(raw: str) -> tuple[str, str | None]:
    """(text, read_error) for one record decoded with surrogateescape: a record holding bytes
    that are not UTF-8 is flagged `not_utf8` and kept readable with replacement characters."""
    if not _UNENCODABLE.search(raw):
        return raw, None
    try:
        data = raw.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape, not from a raw byte
        data = raw.encode("utf-8", "surrogatepass")
    return data.decode("utf-8", errors="replace"), "not_utf8"
