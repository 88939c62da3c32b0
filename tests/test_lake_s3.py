"""The lake on S3 (`storage.lake: s3://...`): partitions as whole objects, fresh listings, the
engine's daily_parquet models reading and writing there as they do on local disk.

Real services, nothing mocked: the moto S3 server of `.ci/services.sh` (which `make test`
sources; run alone: `bash .ci/services.sh .venv/bin/python -m pytest tests/test_lake_s3.py`),
reached by s3fs and botocore exactly as a production lake is. The module writes into its own
bucket, named uniquely.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import duckdb
import pytest
import s3fs
import yaml
from conftest import REPO
from model_harness import create_relation, unmatched_rows

from pipelines.lake.health import lake_days
from pipelines.lake.partitions import (
    PARTITION_FILE,
    dataset_view_sql,
    lake_datasets,
    partition_file,
    whole_file,
    write_file,
    write_partition,
)
from pipelines.lake.store import RUN_LISTING_TTL_S, open_lake, run_listing_cache, s3_storage_options
from pipelines.models.engine import DayRange, connect_read_only, load_models, run_model

pytestmark = pytest.mark.distributed

DAY = dt.date(2026, 10, 5)


@pytest.fixture(scope="module")
def endpoint() -> str:
    url = os.environ.get("AWS_ENDPOINT_URL", "").strip()
    if not url:
        pytest.fail(
            "AWS_ENDPOINT_URL is not set: these tests need the moto S3 server of .ci/services.sh. Run them under "
            "it: `make test` sources it, or `bash .ci/services.sh .venv/bin/python -m pytest tests/test_lake_s3.py`"
        )
    return url


@pytest.fixture(scope="module")
def bucket(endpoint) -> str:
    name = f"costwatch-lake-test-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(**s3_storage_options()).mkdir(name)
    return name


def rows_of(lake, dataset: str, day: dt.date) -> list[tuple]:
    """The partition's rows, read by a fresh connection of this process."""
    path = partition_file(lake, dataset, day)
    with duckdb.connect() as conn:
        conn.register_filesystem(lake.fs)
        return conn.execute(
            "select * from read_parquet($path, hive_partitioning = false) order by all", {"path": str(path)}
        ).fetchall()


# --- 1. a writer killed mid-upload -----------------------------------------------------------------


class StallingProxy:
    """A TCP relay between the writer and S3 that passes on the first `passed` bytes of a PUT's
    request, then stops reading: the writer is provably mid-upload (S3 holds part of its body) and
    stays there, blocked, until it is killed. Other requests pass untouched."""

    def __init__(self, upstream: str, passed: int):
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.passed = passed
        self.stalled = threading.Event()
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            threading.Thread(target=self._relay, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._relay, args=(server, client, False), daemon=True).start()

    def _relay(self, source: socket.socket, target: socket.socket, upload: bool) -> None:
        sent, is_put = 0, None
        try:
            while chunk := source.recv(65536):
                if upload and is_put is None:
                    is_put = chunk.startswith(b"PUT ")
                if is_put and sent + len(chunk) > self.passed:
                    target.sendall(chunk[: self.passed - sent])
                    self.stalled.set()
                    return  # reads no more: the writer's socket fills and its send blocks
                target.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            sock.close()  # S3 sees the upload's connection drop mid-body


# A partition of several MB (random text compresses little): far more than the proxy passes on and
# the sockets buffer, and under s3fs's one-PUT size (2 x 50 MiB).
UPLOADER = """
import datetime as dt, sys
import duckdb
from pipelines.lake.partitions import write_partition
from pipelines.lake.store import open_lake
with duckdb.connect() as conn:
    write_partition(conn, "select range as id, md5(random()::varchar) || md5(random()::varchar) as label "
                    "from range({rows})", open_lake(sys.argv[1]), "events", dt.date.fromisoformat(sys.argv[2]))
"""
NEW_ROWS = 150_000
PASSED_BYTES = 256 * 1024


def test_a_writer_killed_mid_upload_leaves_the_old_object_whole_and_no_partial_key(bucket, endpoint, tmp_path):
    lake = open_lake(f"s3://{bucket}/killed/lake")
    with duckdb.connect() as conn:
        write_partition(conn, "select * from (values (1, 'old'), (2, 'old')) as t(id, label)", lake, "events", DAY)
    target = partition_file(lake, "events", DAY)
    old_etag = target.fs.info(target.path)["ETag"]

    proxy = StallingProxy(endpoint, PASSED_BYTES)
    staging = tmp_path / "writer_tmp"
    staging.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-c", UPLOADER.format(rows=NEW_ROWS), str(lake), DAY.isoformat()],
        cwd=REPO,
        env=os.environ | {"AWS_ENDPOINT_URL": proxy.url, "TMPDIR": str(staging)},
    )
    try:
        assert proxy.stalled.wait(timeout=60), "the writer never started its upload"
        assert writer.poll() is None
        # Mid-upload, a reader sees the old object, and only the partition's own key.
        assert rows_of(lake, "events", DAY) == [(1, "old"), (2, "old")]
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        writer.kill()
        writer.wait()
        proxy.close()
    assert writer.returncode == -signal.SIGKILL

    # The writer had finished its file before it uploaded it: the whole Parquet file is in its temp
    # folder (left behind by the kill), and S3 got only part of it.
    (leftover,) = staging.glob(f"costwatch-put-*/{PARTITION_FILE}")
    assert leftover.stat().st_size > 4 * PASSED_BYTES and leftover.read_bytes()[-4:] == b"PAR1"
    time.sleep(0.5)  # the server has seen the connection drop; anything it stored would be listed now
    fs = s3fs.S3FileSystem(**s3_storage_options())
    assert fs.find(f"{bucket}/killed") == [target.path]
    assert fs.info(target.path)["ETag"] == old_etag
    with duckdb.connect() as conn:
        conn.register_filesystem(lake.fs)
        conn.execute(dataset_view_sql(lake, "events"))
        assert conn.execute("select id, label, day from events order by id").fetchall() == [
            (1, "old", DAY),
            (2, "old", DAY),
        ]
        # The next write replaces the object whole.
        write_partition(conn, "select * from (values (3, 'next')) as t(id, label)", lake, "events", DAY)
        assert conn.execute("select id, label from events").fetchall() == [(3, "next")]
    assert fs.find(f"{bucket}/killed") == [target.path]


# --- 2. fresh listings in a long-lived process -------------------------------------------------------

WRITER = """
import datetime as dt, sys
import duckdb
from pipelines.lake.partitions import write_partition
from pipelines.lake.store import open_lake
with duckdb.connect() as conn:
    write_partition(conn, "select 2 as id", open_lake(sys.argv[1]), "events", dt.date.fromisoformat(sys.argv[2]))
"""


def test_a_partition_another_process_writes_is_in_the_next_listing(bucket):
    lake = open_lake(f"s3://{bucket}/fresh/lake")
    first, second = DAY, DAY + dt.timedelta(days=1)
    conn = duckdb.connect()
    # This process lists the dataset once, through every reader it has: a DuckDB view over the
    # glob, UPath, the lake's day listing; and, as the control, an s3fs left with its listing cache.
    cached = s3fs.S3FileSystem(skip_instance_cache=True)
    conn.execute("set TimeZone = 'UTC'")
    with duckdb.connect() as setup:
        write_partition(setup, "select 1 as id", lake, "events", first)
    from pipelines.models.engine import prepare_session

    prepare_session(conn, read_only=True, lake=lake)
    conn.execute(dataset_view_sql(lake, "events"))
    assert conn.execute("select day, id from events order by day").fetchall() == [(first, 1)]
    assert [path.name for path in (lake / "events").glob("day=*")] == [f"day={first}"]
    assert lake_days(lake) == {first}
    assert cached.ls(f"{bucket}/fresh/lake/events") == [f"{bucket}/fresh/lake/events/day={first}"]

    subprocess.run([sys.executable, "-c", WRITER, str(lake), second.isoformat()], cwd=REPO, check=True, timeout=60)

    # The same view, the same UPath, the same process: the new day is there.
    assert conn.execute("select day, id from events order by day").fetchall() == [(first, 1), (second, 2)]
    assert sorted(path.name for path in (lake / "events").glob("day=*")) == [f"day={first}", f"day={second}"]
    assert lake_days(lake) == {first, second}
    # The bug the settings prevent (scaleout.md, c4): a cached listing still hides it.
    assert cached.ls(f"{bucket}/fresh/lake/events") == [f"{bucket}/fresh/lake/events/day={first}"]
    conn.close()


def _counting_requests(lake) -> list[str]:
    """The S3 operations `lake`'s filesystem sends from now on, in order (botocore's names)."""
    sent: list[str] = []
    send = lake.fs._call_s3

    async def counted(method, *args, **kwargs):
        sent.append(method)
        return await send(method, *args, **kwargs)

    lake.fs._call_s3 = counted
    return sent


def test_a_run_keeps_a_listing_a_moment_and_reads_what_it_writes_at_once(bucket):
    """Inside a distributed run (`run_listing_cache`) the lake is one filesystem that keeps a listing
    for RUN_LISTING_TTL_S: a query sends a fraction of the requests the same query sends outside a
    run (the HEADs DuckDB's fsspec bridge sends about each object, answered from the listing). What
    the run writes (a replaced partition, a new day) is read back at once, new bytes and all; a day
    another process writes is read once the listing is older than RUN_LISTING_TTL_S."""
    from pipelines.models.engine import prepare_session

    location = f"s3://{bucket}/runcache/lake"
    first, second = DAY, DAY + dt.timedelta(days=1)
    with duckdb.connect() as setup:
        for day in (first, second):
            write_partition(setup, f"select {day.day} as id", open_lake(location), "events", day)

    def requests_of_a_query(lake) -> list[str]:
        with duckdb.connect() as conn:
            prepare_session(conn, lake=lake)
            conn.execute(dataset_view_sql(lake, "events"))
            sent = _counting_requests(lake)
            assert conn.execute("select day, id from events order by day").fetchall() == [
                (first, first.day),
                (second, second.day),
            ]
            return sent

    outside = requests_of_a_query(open_lake(location))
    with run_listing_cache():
        lake = open_lake(location)
        assert open_lake(location) is lake  # one filesystem, one cache, for the whole run
        inside = requests_of_a_query(lake)
        assert 4 * len(inside) <= len(outside), (inside, outside)
        assert 4 * inside.count("head_object") <= outside.count("head_object"), (inside, outside)

        # The run's own writes: a day replaced with other rows, a day added; read at once.
        third, fourth = second + dt.timedelta(days=1), second + dt.timedelta(days=2)
        with duckdb.connect() as conn:
            prepare_session(conn, lake=lake)
            conn.execute(dataset_view_sql(lake, "events"))
            conn.execute("select count(*) from events").fetchall()  # listed and kept
            write_partition(conn, "select 100 as id union all select 101", lake, "events", first)
            write_partition(conn, "select 3 as id", lake, "events", third)
            expected = [(first, 100), (first, 101), (second, second.day), (third, 3)]
            assert conn.execute("select day, id from events order by day, id").fetchall() == expected
            # Another process's day: in the listing once the kept one has expired.
            subprocess.run([sys.executable, "-c", WRITER, location, fourth.isoformat()], cwd=REPO, check=True)
            time.sleep(RUN_LISTING_TTL_S)
            assert conn.execute("select day, id from events order by day, id").fetchall() == [*expected, (fourth, 2)]
    assert open_lake(location) is not lake  # after the run: a lake of its own again


def test_an_object_replaced_under_a_kept_listing_fails_the_read_never_mixes(bucket, monkeypatch, tmp_path):
    """Another process replaces a partition while a run still keeps its listing (the listing kept
    an hour here, so the moment is certain): the run's next read fails naming the object, because
    s3fs reads with If-Match on the listed ETag; no mix of the old size and the new bytes is read."""
    from pipelines.lake import store
    from pipelines.models.engine import prepare_session

    monkeypatch.setattr(store, "RUN_LISTING_TTL_S", 3600.0)
    location = f"s3://{bucket}/replaced/lake"
    with duckdb.connect() as setup:
        write_partition(setup, "select 1 as id", open_lake(location), "events", DAY)
        setup.execute(
            "copy (select range as id from range(1000)) to $path (format parquet)",
            {"path": str(tmp_path / "new.parquet")},
        )
    with run_listing_cache(), duckdb.connect() as conn:
        lake = open_lake(location)
        prepare_session(conn, lake=lake)
        conn.execute(dataset_view_sql(lake, "events"))
        assert conn.execute("select id from events").fetchall() == [(1,)]  # listed and kept
        other = s3fs.S3FileSystem(**s3_storage_options())  # another process's client
        other.put_file(str(tmp_path / "new.parquet"), partition_file(lake, "events", DAY).path)
        with pytest.raises(duckdb.Error, match=r"FileExpired.*day=2026-10-05/data\.parquet"):
            conn.execute("select count(*), sum(id) from events").fetchall()


# --- 3. the engine's daily_parquet models on S3 -------------------------------------------------------


def test_the_datasets_of_a_lake_on_s3_are_those_of_the_same_lake_on_disk(bucket, tmp_path):
    """`lake_datasets` (what a run's scratch database makes views of) reads an S3 lake with one
    listing of its prefix, and finds what it finds on disk: whole files, day partitions, and no
    folder that holds neither (the manifests, a temp file, a file of another name)."""
    local = tmp_path / "lake"
    with duckdb.connect() as conn:
        write_partition(conn, "select 1 as id", local, "events", DAY)
        write_partition(conn, "select 2 as id", local, "events", DAY + dt.timedelta(days=1))
        write_file(conn, "select 'a' as feature", whole_file(local, "budgets"))
    (local / "_manifests").mkdir()
    (local / "_manifests" / "gateway_logs.json").write_text("{}")
    (local / "stray" / f"day={DAY}").mkdir(parents=True)
    (local / "stray" / f"day={DAY}" / ".data.parquet.tmp").write_bytes(b"PAR1")
    (local / "other").mkdir()
    (local / "other" / "notes.parquet").write_bytes(b"PAR1")
    files = s3fs.S3FileSystem(**s3_storage_options())
    files.put(f"{local}/", f"{bucket}/datasets/lake/", recursive=True)
    remote = open_lake(f"s3://{bucket}/datasets/lake/")
    assert lake_datasets(local) == lake_datasets(remote) == {"events": "daily", "budgets": "whole"}


def test_a_daily_parquet_model_on_s3_equals_the_same_model_on_local_disk(bucket, tmp_path):
    """fct_requests (daily_parquet) over two days, from tests/model_cases/fct_requests.yaml's first case
    (its prices and calls; r7 is the day before), on an S3 lake and on a local one: the same rows,
    money exact, and the day's costs the ones the case works out by hand."""
    case = yaml.safe_load((Path(__file__).parent / "model_cases" / "fct_requests.yaml").read_text(encoding="utf-8"))
    case = next(iter(case["cases"].values()))
    model = load_models()["fct_requests"]
    days = DayRange(DAY - dt.timedelta(days=1), DAY)
    lakes = {"local": tmp_path / "lake", "s3": open_lake(f"s3://{bucket}/engine/lake")}
    rows = {}
    for kind, lake in lakes.items():
        with duckdb.connect(str(tmp_path / f"{kind}.duckdb")) as conn:
            for name, spec in case["inputs"].items():
                create_relation(conn, name, spec)
            written = run_model(conn, model, lake, days, case["settings"])
            conn.execute("select * from fct_requests order by all")
            names = [description[0] for description in conn.description]
            rows[kind] = [dict(zip(names, row, strict=True)) for row in conn.fetchall()]
            assert written == len(rows[kind]) == len(case["inputs"]["stg_gateway_requests"]["rows"])

    assert rows["s3"] == rows["local"]
    assert not unmatched_rows(case["expected"], [row for row in rows["s3"] if row["day"] == DAY], case["tolerance"])
    # Each day one object in the bucket, none on local disk for it.
    fs = s3fs.S3FileSystem(**s3_storage_options())
    assert sorted(fs.find(f"{bucket}/engine/lake")) == [
        partition_file(lakes["s3"], "fct_requests", day).path for day in days.days
    ]
    assert sorted(path.name for path in (tmp_path / "lake" / "fct_requests").iterdir()) == [
        f"day={day}" for day in days.days
    ]

    # An analyst's session (`costwatch query`) reads the views over the bucket, and nothing outside the
    # lake's prefix: not even another prefix of the same bucket.
    outside = f"s3://{bucket}/engine/elsewhere.parquet"
    with duckdb.connect() as conn:
        conn.register_filesystem(lakes["s3"].fs)
        conn.execute("copy (select 1 as secret) to $path (format parquet)", {"path": outside})
    with connect_read_only(tmp_path / "s3.duckdb", lakes["s3"]) as conn:
        ((total,),) = conn.execute("select sum(cost_usd) from fct_requests").fetchall()
        assert total == sum(row["cost_usd"] for row in rows["local"] if row["cost_usd"] is not None)
        with pytest.raises(duckdb.PermissionException):
            conn.execute("select * from read_parquet($path)", {"path": outside}).fetchall()
