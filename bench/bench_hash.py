"""Issue 14 item 7: what knowing input files by their content costs, and what a line too long to
hold does to a day.

Every figure is a process of its own, measured by bench/common.py (wall time, and peak RSS from
`os.wait4`, interpreter start included), against a floor measured in the same run:

- **hash**: the manifest's digest (`pipelines.lake.manifest.file_digest`, sha256 in 256 KiB reads)
  of a 10M-request gateway log, against `cat FILE > /dev/null` and a bare Python read loop of the
  same file, with the other digests and read sizes tried (`--variants`). The file is read once
  before, so every reader finds it in the page cache: the figures are the hash, not the disk.
- **unchanged**: `InputManifest.observe` of a file whose stat fields are as recorded (what every
  run pays per input file): no read at all.
- **reader**: the canonical reader (`jsonl_batches`) over the same file, now and at `--baseline`
  (a git revision, exported to a temp folder): the line-length limit must leave the fast path
  as fast as it was.
- **long line** (`--long-line-gib 2.1`): a file holding one line of that many GiB between two good
  records, through the reader now (quarantined, memory bounded) and at `--baseline` (killed past
  `--max-rss-gib`, or its error).

    PYTHONPATH=. .venv/bin/python bench/bench_hash.py [--keep DIR] [--requests 10000000]
        [--uncompressed] [--long-line-gib 2.1] [--baseline HEAD~1]

`--keep DIR` generates the input under DIR/inputs/canonical_<N> as bench/bench.py does, and
reuses it (and bench.py's) from there; `--uncompressed` also measures the file gunzipped (the
larger case: plain JSONL logs).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gzip
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAY = dt.date(2026, 10, 6)  # bench.py's day: its --keep folders are reused here
MIB = 1 << 20


# ---------------------------------------------------------------------------------------------
# The measured children (`bench_hash.py child ...`): each prints one JSON line
# ---------------------------------------------------------------------------------------------


def _child(argv: list[str]) -> None:
    """One measured piece of work; prints one JSON line with its result and `seconds`, the work's
    own wall and CPU time (imports and interpreter start excluded: the process's wall time has
    them). CPU time is the steadier figure on a shared machine."""
    kind, path = argv[0], Path(argv[1])
    if kind == "digest":  # costwatch's own digest
        from pipelines.lake.manifest import file_digest

        started, cpu_started = time.perf_counter(), time.process_time()
        result = {"sha256": file_digest(path)}
    elif kind == "hashlib":  # another digest or read size, for comparison
        import hashlib

        algorithm, block_size = argv[2], int(argv[3])
        started, cpu_started = time.perf_counter(), time.process_time()
        digest, block = hashlib.new(algorithm), bytearray(block_size)
        view = memoryview(block)
        with path.open("rb", buffering=0) as handle:
            while count := handle.readinto(block):
                digest.update(view[:count])
        result = {algorithm: digest.hexdigest()}
    elif kind == "read":  # the floor in Python: every byte read, nothing computed
        started, cpu_started = time.perf_counter(), time.process_time()
        block, total = bytearray(int(argv[2])), 0
        with path.open("rb", buffering=0) as handle:
            while count := handle.readinto(block):
                total += count
        result = {"bytes": total}
    elif kind == "observe":  # an unchanged file, as every run sees it
        from pipelines.lake.manifest import InputManifest, file_state

        repeats = int(argv[2])
        with tempfile.TemporaryDirectory() as lake:
            manifest = InputManifest(Path(lake), "bench")
            state = manifest.observe(str(path), path, file_state(path))
            manifest.learn(str(path), state, "canonical", [DAY.isoformat()])
            manifest.files[str(path)]["hashed_at_ns"] += 10 * 10**9  # a file just written: past the ctime tick
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(repeats):
                assert manifest.is_current(str(path), manifest.observe(str(path), path, file_state(path)))
            result = {"repeats": repeats}
    elif kind == "reader":  # the canonical reader, rows counted
        import inspect

        from pipelines.sources.gateway import records

        limit = int(argv[2]) if len(argv) > 2 else None
        takes_limit = "max_line_bytes" in inspect.signature(records.jsonl_batches).parameters
        extra = {"max_line_bytes": limit} if limit and takes_limit else {}
        started, cpu_started = time.perf_counter(), time.process_time()
        rows, errors = 0, {}
        for batch in records.jsonl_batches(path, **extra):
            rows += batch.num_rows
            for error in batch.column("read_error").drop_null().to_pylist():
                errors[error.split(":")[0]] = error
        result = {"rows": rows, "errors": errors}
    else:
        raise SystemExit(f"unknown child {kind}")
    cpu = time.process_time() - cpu_started
    print(json.dumps({**result, "seconds": time.perf_counter() - started, "cpu_seconds": cpu}))


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    # Before the bench's own imports put this checkout first on sys.path: a baseline child
    # imports `pipelines` from the baseline's folder (PYTHONPATH).
    _child(sys.argv[2:])
    sys.exit(0)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import GIB, PYTHON, REPO, generate_inputs, machine_line, measure  # noqa: E402

# ---------------------------------------------------------------------------------------------
# The bench
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Timed:
    """The best of a child's repeats: its work's seconds, the process's peak RSS, its result."""

    label: str
    seconds: float | None  # None: every repeat failed
    peak_rss_bytes: int
    result: dict
    failure: str = ""
    cpu: float | None = None  # the work's CPU seconds (all threads)


def run_child(
    label: str, args: list[str], workdir: Path, repeats: int, *, pythonpath: Path = REPO, max_rss_gib: float = 8
) -> Timed:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    cmd = [PYTHON, str(Path(__file__).resolve()), "child", *args]
    best: Timed | None = None
    for repeat in range(repeats):
        log = workdir / "logs" / f"{re.sub(r'[^A-Za-z0-9]+', '_', label)}_{repeat}.log"
        measured = measure(label, cmd, log=log, env=env, timeout_s=1800, max_rss_bytes=int(max_rss_gib * GIB))
        if not measured.ok:
            return Timed(label, None, measured.peak_rss_bytes, {}, f"{measured.status}: {measured.tail(2)}")
        result = json.loads(log.read_text().strip().splitlines()[-1])
        timed = Timed(label, result.pop("seconds"), measured.peak_rss_bytes, result, cpu=result.pop("cpu_seconds"))
        if best is None or timed.seconds < best.seconds:
            best = timed
    return best


def cat_floor(path: Path, workdir: Path, repeats: int) -> Timed:
    """`cat FILE > /dev/null`: the process's wall time (no interpreter to leave out), best of `repeats`."""
    runs = [
        measure("cat", ["sh", "-c", f"cat {shlex.quote(str(path))} > /dev/null"], log=workdir / "logs" / "cat.log")
        for _ in range(repeats)
    ]
    best = min(runs, key=lambda run: run.seconds)
    return Timed("cat", best.seconds, best.peak_rss_bytes, {})


def report(label: str, timed: Timed, size: int, floor: Timed | None = None, note: str = "") -> None:
    if timed.seconds is None:
        print(
            f"RESULT {label}: failed after peak RSS {timed.peak_rss_bytes / MIB:.0f} MiB: {timed.failure}", flush=True
        )
        return
    rate = f"{size / timed.seconds / 1e9:.2f} GB/s" if timed.seconds else "-"
    ratio = f", {timed.seconds / floor.seconds:.1f}x {floor.label}" if floor and floor.seconds else ""
    print(
        f"RESULT {label}: {timed.seconds:.2f} s ({rate}{ratio})"
        + (f", CPU {timed.cpu:.2f} s" if timed.cpu is not None else "")
        + f", peak RSS {timed.peak_rss_bytes / MIB:.0f} MiB"
        + (f" | {note}" if note else ""),
        flush=True,
    )


def hash_figures(path: Path, workdir: Path, repeats: int, variants: bool) -> None:
    size = path.stat().st_size
    print(f"\n== {path.name}: {size / 1e9:.3f} GB ({size:,} bytes), best of {repeats}, page cache warm", flush=True)
    cat_floor(path, workdir, 1)  # into the page cache
    cat = cat_floor(path, workdir, repeats)
    report("floor: cat > /dev/null", cat, size)
    loop = run_child("read loop", ["read", str(path), str(256 << 10)], workdir, repeats)
    report("floor: Python read loop, 256 KiB reads", loop, size, cat)
    digest = run_child("file_digest", ["digest", str(path)], workdir, repeats)
    report("costwatch file_digest (sha256, 256 KiB reads)", digest, size, loop)
    if variants:
        for algorithm, block in (("sha256", MIB), ("sha256", 8 * MIB), ("blake2b", 256 << 10), ("blake2b", MIB)):
            args = ["hashlib", str(path), algorithm, str(block)]
            report(f"  {algorithm}, {block >> 10} KiB reads", run_child(algorithm, args, workdir, repeats), size, loop)
    observed = run_child("observe", ["observe", str(path), "10000"], workdir, 1)
    if observed.seconds is not None:
        each = observed.seconds / observed.result["repeats"]
        print(
            f"RESULT an unchanged file (stat fields as recorded): {each * 1e6:.1f} us per file, nothing read",
            flush=True,
        )


def reader_figures(path: Path, workdir: Path, repeats: int, baseline: Path | None) -> None:
    size = path.stat().st_size
    now = run_child("reader now", ["reader", str(path), str(64 * MIB)], workdir, repeats)
    report(f"reader now (max_line_bytes 64 MiB): {now.result.get('rows', 0):,} records", now, size)
    if baseline is not None:
        then = run_child("reader baseline", ["reader", str(path)], workdir, repeats, pythonpath=baseline)
        note = (
            f"now / baseline = {now.seconds / then.seconds:.2f} wall, {now.cpu / then.cpu:.2f} CPU"
            if now.seconds and then.seconds
            else ""
        )
        report(f"reader at baseline: {then.result.get('rows', 0):,} records", then, size, note=note)


def long_line_figures(root: Path, gib: float, workdir: Path, baseline: Path | None, max_rss_gib: float) -> None:
    path = root / f"long_line_{gib:g}gib.jsonl"
    length = int(gib * GIB)
    if not path.exists() or path.stat().st_size < length:
        staged = path.with_suffix(".partial")
        with staged.open("wb") as handle:
            handle.write(b'{"request_id": "before", "ts": "2026-10-06T10:00:00Z", "model": "gpt-4o"}\n')
            handle.write(b'{"request_id": "huge", "blob": "')
            chunk = b"x" * (16 * MIB)
            for _ in range(-(-length // len(chunk))):
                handle.write(chunk)
            handle.write(b'"}\n{"request_id": "after", "ts": "2026-10-06T11:00:00Z", "model": "gpt-4o"}\n')
        staged.rename(path)
    size = path.stat().st_size
    print(f"\n== one line of {gib:g} GiB between two records ({size:,} bytes)", flush=True)
    now = run_child("long line now", ["reader", str(path), str(64 * MIB)], workdir, 1)
    report(f"reader now: {now.result}", now, size)
    if baseline is not None:
        then = run_child(
            "long line baseline", ["reader", str(path)], workdir, 1, pythonpath=baseline, max_rss_gib=max_rss_gib
        )
        report(f"reader at baseline: {then.result}", then, size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="generate inputs here and keep them (reused when present)")
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--uncompressed", action="store_true", help="also measure the log gunzipped")
    parser.add_argument("--variants", action="store_true", help="also time other digests and read sizes")
    parser.add_argument("--baseline", help="a git revision whose reader to time beside today's")
    parser.add_argument("--long-line-gib", type=float, help="also read a file holding one line this long")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timing; the best counts")
    parser.add_argument("--max-rss-gib", type=float, default=6, help="kill a baseline reader past this")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="costwatch-bench-hash-"))
    root.mkdir(parents=True, exist_ok=True)
    workdir = root / "hash_runs"
    print(f"bench_hash in {root}; {machine_line()}", flush=True)
    baseline = None
    try:
        inputs = root / "inputs" / f"canonical_{args.requests}"
        generated = generate_inputs(inputs, start=DAY, days=1, requests_per_day=args.requests, timeout_s=3600)
        if generated is not None:
            print(f"generated {inputs}: {generated.status}, {generated.seconds:.1f} s", flush=True)
            if not generated.ok:
                return 1
        log = inputs / "gateway" / f"requests_{DAY}.jsonl.gz"
        if args.baseline:
            baseline = Path(tempfile.mkdtemp(prefix="costwatch-baseline-"))
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", args.baseline, "pipelines"], check=True, capture_output=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
        hash_figures(log, workdir, args.repeats, args.variants)
        reader_figures(log, workdir, args.repeats, baseline)
        if args.uncompressed:
            plain = log.with_suffix("")  # requests_<day>.jsonl
            if not plain.exists():
                with gzip.open(log, "rb") as source, plain.with_suffix(".partial").open("wb") as target:
                    shutil.copyfileobj(source, target, 8 * MIB)
                plain.with_suffix(".partial").rename(plain)
            hash_figures(plain, workdir, args.repeats, args.variants)
            reader_figures(plain, workdir, args.repeats, baseline)
        if args.long_line_gib:
            long_line_figures(root, args.long_line_gib, workdir, baseline, args.max_rss_gib)
    finally:
        if baseline is not None:
            shutil.rmtree(baseline, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
