"""csv-to-parquet jobs give the column types of an interactive run: the plan unifies the types over
every input of the job once and each task starts from them (``base_types``), so tasks that sample
different files (an int here, a float there; two decimal scales) still agree."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aerofs_kernel import _engine, runner, sources

PIPE = "csv-to-parquet"

# Samples that disagree: x is int64 in a.csv and float64 in b.csv (varying scales are never decimals);
# price has one fractional digit in a.csv and two in b.csv; only c.csv has `note`.
FILES = {
    "a.csv": "region,x,price\neu,1,3.5\nus,2,4.5\n",
    "b.csv": "region,x,price\neu,0.5,1.25\nus,0.25,2.10\n",
    "sub/c.csv": "region,x,price,note\neu,7,9,hi\n",
}


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _job(params: dict[str, Any], workdir: Path, max_tasks: int) -> tuple[list[dict], dict]:
    tasks = runner.plan_job(PIPE, params, max_tasks)
    assert len(tasks) > 1
    json.dumps(tasks)  # recorded with the job
    partials = [runner.run_task(PIPE, params, t, _engine.Progress(), str(workdir)) for t in tasks]
    return tasks, runner.merge_job(PIPE, params, partials, str(workdir))


def _tables_by_dir(root: Path) -> dict[str, pa.Table]:
    """Each folder's Parquet files as one table, rows in a fixed order (a dataset's part files are
    named by the task that wrote them)."""
    out: dict[str, list[pa.Table]] = {}
    for p in sorted(root.rglob("*.parquet")):
        out.setdefault(p.parent.relative_to(root).as_posix(), []).append(pq.read_table(p))
    return {
        d: pa.concat_tables(ts).sort_by([(n, "ascending") for n in ("x", "price") if n in ts[0].column_names])
        for d, ts in out.items()
    }


@pytest.mark.parametrize(
    ("layout", "extra"), [("per_file", {}), ("partitioned", {"partition_by": ["region"]})]
)
def test_job_over_differing_samples_equals_interactive_run(
    tmp_path: Path, layout: str, extra: dict[str, Any]
) -> None:
    src = _write(tmp_path / "in", FILES)
    common = {"src": str(src), "layout": layout, **extra}
    inter = runner.run_pipeline(PIPE, {**common, "dst": str(tmp_path / "i")})
    tasks, merged = _job({**common, "dst": str(tmp_path / "j")}, tmp_path / "w", 3)
    assert len(tasks) == 3
    # Every task starts from the same job-wide types.
    assert {json.dumps(t["options"]["base_types"]) for t in tasks} == {
        json.dumps([["region", "string"], ["x", "float64"], ["price", "decimal(38,2)"], ["note", "string"]])
    }
    want, got = _tables_by_dir(tmp_path / "i"), _tables_by_dir(tmp_path / "j")
    assert sorted(got) == sorted(want)
    for name, table in want.items():
        assert got[name].schema == table.schema, name
        assert got[name].equals(table), name
    types = {f.name: f.type for t in got.values() for f in t.schema}
    assert types["x"] == pa.float64() and types["price"] == pa.decimal128(38, 2)
    # The drift is the interactive run's: one entry per column naming every file, not one per task.
    assert merged["parts"]["drift"] == inter.parts["drift"]
    price = next(d for d in merged["parts"]["drift"] if d["column"] == "price")
    assert price["types"] == {
        "decimal(18,1)": [str(src / "a.csv")],
        "decimal(18,2)": [str(src / "b.csv")],
        "int64": [str(src / "sub/c.csv")],
    }


def test_late_widening_in_a_per_file_job_equals_interactive_run(tmp_path: Path) -> None:
    # a.csv: x is int64 in its sample (infer_rows=10), float64 across the job (b.csv), and a word
    # after the sample widens it to string; price has two fractional digits here, three in b.csv.
    rows = "".join(f"eu,{i},1.50\n" for i in range(50))
    files = {
        "a.csv": f"region,x,price\n{rows}us,2.5,1.50\nus,many,1.50\n",
        "b.csv": "region,x,price\neu,4.25e0,2.255\n",
    }
    src = _write(tmp_path / "in", files)
    common = {"src": str(src), "infer_rows": 10}
    inter = runner.run_pipeline(PIPE, {**common, "dst": str(tmp_path / "i")})
    _, merged = _job({**common, "dst": str(tmp_path / "j")}, tmp_path / "w", 2)
    for name in ("a.parquet", "b.parquet"):
        got, want = pq.read_table(tmp_path / "j" / name), pq.read_table(tmp_path / "i" / name)
        assert got.schema == want.schema and got.equals(want), name
    a, b = pq.read_schema(tmp_path / "j" / "a.parquet"), pq.read_schema(tmp_path / "j" / "b.parquet")
    assert (a.field("x").type, b.field("x").type) == (pa.string(), pa.float64())
    assert a.field("price").type == b.field("price").type == pa.decimal128(38, 3)
    assert merged["summary"]["redone_inputs"] == inter.summary["redone_inputs"] >= 1
    assert merged["parts"]["drift"] == inter.parts["drift"]
    assert any("after the sample" in d["how"] for d in merged["parts"]["drift"])


def test_late_widening_in_one_task_of_a_partitioned_job_rewrites_the_other_tasks(tmp_path: Path) -> None:
    # Interactively a late value rewrites the whole dataset with the wider type; in a job the merge
    # converts the inputs of the tasks that did not meet it again (tests/kernel/test_csv_job_widening.py
    # compares the datasets). A task recorded without its spec (by an older version) cannot be run
    # again: the difference between part files is then reported, never silent.
    rows = "".join(f"eu,{i}\n" for i in range(50))
    src = _write(tmp_path / "in", {"a.csv": f"region,x\n{rows}us,late\n", "b.csv": "region,x\neu,4\nus,5\n"})
    params = {
        "src": str(src),
        "dst": str(tmp_path / "j"),
        "layout": "partitioned",
        "partition_by": ["region"],
        "infer_rows": 10,
    }
    tasks = runner.plan_job(PIPE, params, 2)
    partials = [runner.run_task(PIPE, params, t, _engine.Progress(), str(tmp_path / "w")) for t in tasks]
    old = [{k: v for k, v in p.items() if k != "task"} for p in partials]
    merged = runner.merge_job(PIPE, params, old, str(tmp_path / "w"))
    (entry,) = [d for d in merged["parts"]["drift"] if d["resolved"] == "differs between part files"]
    assert entry["column"] == "x" and sorted(entry["types"]) == ["int64", "string"]
    assert all(p.endswith(".parquet") for files in entry["types"].values() for p in files)

    merged = runner.merge_job(PIPE, params, partials, str(tmp_path / "w"))
    assert not [d for d in merged["parts"]["drift"] if d["resolved"] == "differs between part files"]
    assert {pq.read_schema(p).field("x").type for p in merged["outputs"]} == {pa.string()}
    assert merged["summary"]["merge_redone_inputs"] == 1


def test_one_task_job_and_unify_false_need_no_plan_time_types(tmp_path: Path) -> None:
    src = _write(tmp_path / "in", FILES)
    (one,) = runner.plan_job(PIPE, {"src": str(src), "dst": str(tmp_path / "o")}, 1)
    assert one["options"] == {}
    tasks = runner.plan_job(PIPE, {"src": str(src), "dst": str(tmp_path / "o"), "unify": False}, 3)
    assert [t["options"] for t in tasks] == [{}, {}, {}]


@pytest.mark.integration
def test_remote_job_equals_interactive_run(tmp_path: Path, s3_bucket: tuple[Any, str]) -> None:
    fs, bucket = s3_bucket
    src = _write(tmp_path / "in", FILES)
    fs.put(str(src) + "/", f"{bucket}/in/", recursive=True)
    common = {"src": f"s3://{bucket}/in/"}
    inter = runner.run_pipeline(PIPE, {**common, "dst": str(tmp_path / "i")})
    tasks, merged = _job({**common, "dst": f"s3://{bucket}/out/"}, tmp_path / "w", 3)
    assert all(i["local_path"] is None for t in tasks for i in t["inputs"])  # the plan streamed them
    fs.invalidate_cache()
    for name in ("a.parquet", "b.parquet", "sub/c.parquet"):
        with fs.open(f"{bucket}/out/{name}", "rb") as f:
            got = pq.read_table(io.BytesIO(f.read()))
        assert got.equals(pq.read_table(tmp_path / "i" / name)), name
    # Drift names the user's URLs, not the stream tokens the plan read through.
    assert merged["parts"]["drift"] == inter.parts["drift"]
    assert f"s3://{bucket}/in/a.csv" in json.dumps(merged["parts"]["drift"])


def _count_fetches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every ranged read from a remote object from now on, in order."""
    fetched: list[int] = []
    real_fetch = sources.StreamSet.fetch

    def counting_fetch(self: sources.StreamSet, stream: Any, start: int, end: int) -> bytes:
        data = real_fetch(self, stream, start, end)
        fetched.append(len(data))
        return data

    monkeypatch.setattr(sources.StreamSet, "fetch", counting_fetch)
    return fetched


@pytest.mark.integration
def test_plan_reads_only_the_heads_of_remote_inputs(
    tmp_path: Path, s3_bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Plan-time types sample each object's head (sample_bytes, 1 MiB by default); read-ahead would
    # fetch tens of MiB of every object of a big job for nothing.
    fs, bucket = s3_bucket
    body = "id,x,price\n" + "".join(f"{i},{i / 4},{i % 100}.{i % 10}5\n" for i in range(600_000))
    assert len(body) > 12 << 20
    for name in ("a.csv", "b.csv"):
        fs.pipe(f"{bucket}/big/{name}", body.encode())
    fetched = _count_fetches(monkeypatch)
    tasks = runner.plan_job(PIPE, {"src": f"s3://{bucket}/big/", "dst": str(tmp_path / "o")}, 2)
    assert len(tasks) == 2 and tasks[0]["options"]["base_types"]
    # Each object: the 1 MiB chunks the sample reads (1 MiB and a byte) and at most the one chunk a
    # reader asks for ahead; with read-ahead it was ~13 MB each here (the whole object), up to 23 MiB.
    assert sum(fetched) <= 2 * (3 << 20), fetched


@pytest.mark.integration
def test_job_fetches_each_remote_input_about_once(
    tmp_path: Path, s3_bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A task samples each object with one ranged read of its head (sample_bytes and a byte), and the
    # conversion goes on after the sampled rows (the engine's `Head`): a ~10 MB object is fetched once
    # by its task, but for the tail of the sample after its last whole row. (The sample's sequential
    # reader used to fetch ahead up to 23 MiB, then the conversion fetched the object again.)
    fs, bucket = s3_bucket
    rows = 450_000
    body = "id,x,price\n" + "".join(f"{i},{i / 4},{i % 100}.{i % 10}5\n" for i in range(rows))
    assert len(body) > 9 << 20
    for name in ("a.csv", "b.csv"):
        fs.pipe(f"{bucket}/ten/{name}", body.encode())
    fetched = _count_fetches(monkeypatch)
    params = {"src": f"s3://{bucket}/ten/", "dst": str(tmp_path / "o")}
    tasks = runner.plan_job(PIPE, params, 2)
    assert len(tasks) == 2
    assert sum(fetched) == 2 * ((1 << 20) + 1), fetched  # the plan: one ranged read per object
    fetched.clear()
    partials = [runner.run_task(PIPE, params, t, _engine.Progress(), str(tmp_path / "w")) for t in tasks]
    merged = runner.merge_job(PIPE, params, partials, str(tmp_path / "w"))
    assert merged["summary"]["rows"] == 2 * rows and not merged["errors"]
    assert len(body) * 2 <= sum(fetched) <= 2 * (len(body) + 64), fetched
    got = pq.read_table(tmp_path / "o" / "a.parquet")
    assert got.num_rows == rows and got.column("id").to_pylist()[-1] == rows - 1


@pytest.mark.integration
def test_part_files_of_remote_inputs_keep_their_names_from_run_to_run(
    tmp_path: Path, s3_bucket: tuple[Any, str]
) -> None:
    # A partitioned run names its part files by a hash of its inputs; a remote input is read through
    # a stream token that changes with every run, so the hash takes the object's URL instead. A run
    # again (a retried task, one the merge redoes) then writes over its own part files: with the
    # token in the hash, the second run's files sat beside the first's and every row was read twice.
    fs, bucket = s3_bucket
    fs.pipe(f"{bucket}/names/a.csv", b"region,x\neu,1\nus,2\neu,3\n")
    params = {
        "src": f"s3://{bucket}/names/",
        "dst": str(tmp_path / "ds"),
        "layout": "partitioned",
        "partition_by": ["region"],
    }
    first = runner.run_pipeline(PIPE, params)
    second = runner.run_pipeline(PIPE, params)
    assert sorted(first.outputs) == sorted(second.outputs)
    assert len(list((tmp_path / "ds").rglob("*.parquet"))) == 2
    assert sorted(pq.read_table(tmp_path / "ds").column("x").to_pylist()) == [1, 2, 3]
