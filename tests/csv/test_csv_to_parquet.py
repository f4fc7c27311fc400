"""csv-to-parquet end to end: tricky CSVs in, Parquet read back by pyarrow, DuckDB and Polars."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import get_pipeline
from aerofs_kernel.pipelines.csv_to_parquet import output_paths

PIPE = get_pipeline("csv-to-parquet")
UTC = dt.UTC

# (name, bytes, options, expected rows as Python values)
CORPUS: list[tuple[str, bytes, dict[str, Any], list[dict[str, Any]]]] = [
    (
        "quotes.csv",
        b'id,text\n1,"a, b"\n2,"say ""hi"""\n3,"two\nlines"\n4,""\n5,\n',
        {},
        [
            {"id": 1, "text": "a, b"},
            {"id": 2, "text": 'say "hi"'},
            {"id": 3, "text": "two\nlines"},
            {"id": 4, "text": ""},
            {"id": 5, "text": None},
        ],
    ),
    (
        "crlf_bom.csv",
        b'\xef\xbb\xbfname,score\r\nann,1.5\r\nbob,-2\r\n"c\r\nd",3e2\r\n',
        {},
        [{"name": "ann", "score": 1.5}, {"name": "bob", "score": -2.0}, {"name": "c\r\nd", "score": 300.0}],
    ),
    (
        "semicolon.csv",
        b"a;b;c\n1;x,y;true\n2;z;FALSE\n",
        {},
        [{"a": 1, "b": "x,y", "c": True}, {"a": 2, "b": "z", "c": False}],
    ),
    ("tabs.tsv", b"k\tv\nx\t10\ny\t20\n", {}, [{"k": "x", "v": 10}, {"k": "y", "v": 20}]),
    (
        "nulls.csv",
        b"a,b\nNA,1\n2,NULL\n,3\n",
        {"null_values": ["NA", "NULL", ""]},
        [{"a": None, "b": 1}, {"a": 2, "b": None}, {"a": None, "b": 3}],
    ),
    (
        "noheader.csv",
        b"1,x\n2,y\n",
        {"header": False},
        [{"column_1": 1, "column_2": "x"}, {"column_1": 2, "column_2": "y"}],
    ),
    (
        "comments_escape.csv",
        b'# exported by a tool, "with quotes\nid,v\n1,a\\,b\n# middle\n2,"c\\"d"\n',
        {"comment": "#", "escape": "\\"},
        [{"id": 1, "v": "a,b"}, {"id": 2, "v": 'c"d'}],
    ),
    (
        "latin1.csv",
        b"city,n\nM\xfcnchen,1\nS\xe3o Paulo,2\n",
        {"encoding": "latin1"},
        [
            {"city": "München", "n": 1},
            {"city": "São Paulo", "n": 2},
        ],
    ),
    (
        "unicode.csv",
        "w,n\nnaïve 😀,1\n日本,2\n".encode(),
        {},
        [{"w": "naïve 😀", "n": 1}, {"w": "日本", "n": 2}],
    ),
    (
        "types.csv",
        b"d,t,tz,big\n2024-02-29,2024-01-02 03:04:05.123456,2024-01-02T03:04:05+02:00,9223372036854775807\n"
        b"1969-07-20,1969-07-20T20:17:40,1969-07-20 20:17:40Z,-9223372036854775808\n",
        {},
        [
            {
                "d": dt.date(2024, 2, 29),
                "t": dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
                "tz": dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC),
                "big": 9223372036854775807,
            },
            {
                "d": dt.date(1969, 7, 20),
                "t": dt.datetime(1969, 7, 20, 20, 17, 40),
                "tz": dt.datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC),
                "big": -9223372036854775808,
            },
        ],
    ),
    (
        "overrides.csv",
        b"zip,when\n01234,2024-01-01\n99999,oops\n",
        {"columns": {"zip": "string", "when": "date"}},
        [{"zip": "01234", "when": dt.date(2024, 1, 1)}, {"zip": "99999", "when": None}],
    ),
]


def run(inputs: list[Path], dst: Path, **options: Any):
    params = {"src": [str(p) for p in inputs], "dst": str(dst), **options}
    opts = PIPE.options(params)
    return PIPE.run([str(p) for p in inputs], str(dst), opts, _engine.Progress())


def _norm(v: Any) -> Any:
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(UTC)
    return v


def read_three(path: Path) -> dict[str, list[dict[str, Any]]]:
    out = {"pyarrow": pq.read_table(path).to_pylist()}
    out["duckdb"] = [
        dict(zip([d[0] for d in cur.description], row, strict=True))
        for cur in [duckdb.connect().execute("SET TimeZone='UTC'")]
        for row in cur.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()
    ]
    out["polars"] = pl.read_parquet(path).to_dicts()
    return {k: [{c: _norm(v) for c, v in row.items()} for row in rows] for k, rows in out.items()}


@pytest.mark.parametrize("name,data,options,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_reads_back_equal_in_every_reader(
    tmp_path: Path, name: str, data: bytes, options, expected
) -> None:
    src = tmp_path / name
    src.write_bytes(data)
    result = run([src], tmp_path / "out", **options)
    assert len(result.outputs) == 1
    got = read_three(Path(result.outputs[0]))
    for reader, rows in got.items():
        assert rows == expected, reader
    assert result.summary["rows"] == len(expected)


def test_overridden_value_that_does_not_parse_is_reported(tmp_path: Path) -> None:
    src = tmp_path / "o.csv"
    src.write_bytes(CORPUS[-1][1])
    result = run([src], tmp_path / "out", columns={"when": "date"})
    assert [(Path(e["path"]).name, e["line"]) for e in result.errors] == [("o.csv", 3)]


def test_malformed_rows_fail_with_input_error_and_no_partial_file(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("a,b\n1,2\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n" + "1,2\n" * 1000 + "3,4,5\n")
    out = tmp_path / "out"
    with pytest.raises(_engine.InputError) as err:
        run([good, bad], out, malformed="fail", on_error="fail")
    assert err.value.path == str(bad)
    assert err.value.line == 1002
    assert not (out / "bad.parquet").exists()
    assert not [p for p in tmp_path.rglob("*") if "aerofs-tmp" in p.name]

    # on_error=skip: the run goes on with the other input, the bad one is reported
    result = run([good, bad], out, malformed="fail")
    assert [Path(o).name for o in result.outputs] == ["good.parquet"]
    assert result.errors[0]["path"] == str(bad) and result.errors[0]["line"] == 1002
    assert not (out / "bad.parquet").exists()


def test_unterminated_quote_and_invalid_utf8_are_reported_with_lines(tmp_path: Path) -> None:
    src = tmp_path / "u.csv"
    src.write_bytes(b'a,b\n1,x\n2,\xff\xfe\n3,"never closed\n4,y\n')
    result = run([src], tmp_path / "out")
    assert result.summary["rows"] == 1
    assert [(e["line"], "UTF-8" in e["message"] or "quote" in e["message"]) for e in result.errors] == [
        (3, True),
        (4, True),
    ]


def test_gz_and_zst_inputs(tmp_path: Path) -> None:
    text = b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(1000))
    for codec, suffix in (("gzip", ".csv.gz"), ("zstd", ".csv.zst")):
        p = tmp_path / f"c{suffix}"
        with pa.CompressedOutputStream(str(p), codec) as f:
            f.write(text)
    result = run(sorted(tmp_path.glob("c.*")), tmp_path / "out")
    # same stem: each keeps its whole name so neither output overwrites the other
    assert sorted(Path(o).name for o in result.outputs) == ["c.csv.gz.parquet", "c.csv.zst.parquet"]
    assert result.summary["files"] == 2 and result.summary["rows"] == 2000
    for o in result.outputs:
        assert pq.read_table(o).column("name").to_pylist()[999] == "n999"


def test_tree_is_mirrored(tmp_path: Path) -> None:
    (tmp_path / "in" / "x" / "y").mkdir(parents=True)
    a = tmp_path / "in" / "a.csv"
    b = tmp_path / "in" / "x" / "y" / "b.csv.gz"
    a.write_text("v\n1\n")
    import gzip

    b.write_bytes(gzip.compress(b"v\n2\n"))
    outs = output_paths([str(a), str(b)], str(tmp_path / "out"))
    assert outs == [str(tmp_path / "out" / "a.parquet"), str(tmp_path / "out" / "x" / "y" / "b.parquet")]
    result = run([a, b], tmp_path / "out")
    assert sorted(result.outputs) == sorted(outs)
    assert pq.read_table(outs[1]).to_pylist() == [{"v": 2}]


def test_merged_and_drift(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_text("k,v\n1,10\n")
    b.write_text("k,v,note\n2,2.5,hi\n")
    result = run([a, b], tmp_path / "all.parquet", layout="merged")
    rows = duckdb.sql(f"SELECT * FROM '{tmp_path / 'all.parquet'}' ORDER BY k").fetchall()
    # 2.5 is a fixed-point number (decimal inference is on by default): int64 + decimal -> the decimal.
    assert rows == [(1, Decimal("10.0"), None), (2, Decimal("2.5"), "hi")]
    drift = {d["column"]: d for d in result.parts["drift"]}
    assert drift["v"]["resolved"] == "decimal(18,1)"
    assert drift["v"]["types"] == {"int64": [str(a)], "decimal(18,1)": [str(b)]}
    assert drift["note"]["missing_in"] == [str(a)]


def test_partitioned_reads_back_with_hive_partitioning(tmp_path: Path) -> None:
    src = tmp_path / "p.csv"
    src.write_text("country,year,n\nfr,2020,1\nde,2021,2\nfr,2021,3\nfr/x,2020,4\n")
    dst = tmp_path / "ds"
    result = run([src], dst, layout="partitioned", partition_by=["country", "year"])
    assert len(result.outputs) == 4
    rows = duckdb.sql(
        f"SELECT country, year::INT, n FROM read_parquet('{dst}/**/*.parquet', hive_partitioning=true) ORDER BY n"
    ).fetchall()
    assert rows == [("fr", 2020, 1), ("de", 2021, 2), ("fr", 2021, 3), ("fr/x", 2020, 4)]


def test_cancel_from_another_thread_stops_fast_and_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "big.csv"
    line = b'12345,3.25,"some text, with a comma",2024-01-01 00:00:00\n'
    with open(src, "wb") as f:
        f.write(b"a,b,c,d\n")
        for _ in range(40):
            f.write(line * 10000)
    out = tmp_path / "out"
    progress = _engine.Progress()
    opts = PIPE.options({"src": str(src), "dst": str(out), "block_size": 65536, "threads": 1})
    timer = threading.Timer(0.05, progress.cancel)
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(_engine.Cancelled):
        for _ in range(100):  # a fast machine may finish before the timer fires: convert again
            PIPE.run([str(src)], str(out / "x"), opts, progress)
            (out / "x" / "big.parquet").unlink()
    elapsed = time.monotonic() - t0
    timer.cancel()
    assert elapsed < 5
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p != src]


def test_preview_describes_the_folder(tmp_path: Path) -> None:
    # How fast it is (the issue: well under a second for a folder) is measured by `just bench csv`,
    # not asserted here: a timed assertion flakes on a shared machine.
    for i in range(50):
        (tmp_path / f"f{i}.csv").write_text(
            "id,x,when\n" + "".join(f"{j},{j / 2},2024-01-0{1 + j % 9}\n" for j in range(2000))
        )
    inputs = sorted(str(p) for p in tmp_path.glob("*.csv"))
    result = PIPE.preview(inputs, PIPE.options({"src": inputs, "dst": "unused"}))
    assert [(c["name"], c["type"]) for c in result.parts["schema"]] == [
        ("id", "int64"),
        ("x", "decimal(18,1)"),  # 0.0, 0.5, 1.0, ...: one fractional digit
        ("when", "date"),
    ]
    assert result.summary["files"] == 50
    assert abs(result.summary["estimated_rows"] - 100_000) < 5_000
    assert result.summary["estimated_bytes_out"] > 0
    assert result.tables["sample"].num_rows == 20
    assert result.tables["sample"].column("id").to_pylist()[:3] == [0, 1, 2]


def test_unknown_option_is_an_options_error(tmp_path: Path) -> None:
    with pytest.raises(_engine.OptionsError, match="bogus"):
        _engine.csv_to_parquet([], json.dumps({"bogus": 1}), _engine.Progress())
    with pytest.raises(ValueError):
        PIPE.options({"src": "x", "dst": "y", "layout": "sideways"})


def test_encodings_per_column_and_values_in_every_reader(tmp_path: Path) -> None:
    # ints, dates and timestamps delta-encoded, a repetitive string column dictionary-encoded,
    # long text pages not cut every 20,000 rows; every reader sees the same values.
    n = 30_000
    lines = ["id,day,ts,cat,amount,text"]
    for i in range(n):
        lines.append(
            f"{i * 7 - 50_000},2024-01-{i % 28 + 1:02d},2024-03-01 12:{i % 60:02d}:{i % 59:02d},"
            f"{'abc'[i % 3]},{i / 8},row {i} of the text column"
        )
    src = tmp_path / "enc.csv"
    src.write_text("\n".join(lines) + "\n")
    result = run([src], tmp_path / "enc.parquet")
    out = Path(result.outputs[0])
    md = pq.ParquetFile(out).metadata
    enc = {md.row_group(0).column(c).path_in_schema: md.row_group(0).column(c).encodings for c in range(6)}
    for col in ("id", "day", "ts"):
        assert "DELTA_BINARY_PACKED" in enc[col], (col, enc[col])
    assert "RLE_DICTIONARY" in enc["cat"]
    assert "DELTA_BINARY_PACKED" not in enc["amount"] and "RLE_DICTIONARY" not in enc["text"]
    got = read_three(out)
    assert got["pyarrow"] == got["duckdb"] == got["polars"]
    assert got["pyarrow"][n - 1] == {
        "id": (n - 1) * 7 - 50_000,
        "day": dt.date(2024, 1, (n - 1) % 28 + 1),
        "ts": dt.datetime(2024, 3, 1, 12, (n - 1) % 60, (n - 1) % 59),
        "cat": "abc"[(n - 1) % 3],
        "amount": (n - 1) / 8,
        "text": f"row {n - 1} of the text column",
    }


def test_many_inputs_stream_in_order_with_small_blocks_and_a_late_widening(tmp_path: Path) -> None:
    # Many inputs of several blocks each, parsed while the next are read: rows stay in order, each
    # output is whole, and a value after the sample that widens one input redoes only that input.
    inputs = []
    for f in range(12):
        p = tmp_path / "in" / f"p{f:02d}.csv"
        p.parent.mkdir(exist_ok=True)
        rows = [f'{f * 10_000 + i},"t {i},\nx"' for i in range(3000)]
        if f == 5:
            rows[2900] = '1.5,"late decimal"'
        p.write_text("k,t\n" + "\n".join(rows) + "\n")
        inputs.append(p)
    result = run(inputs, tmp_path / "out", block_size=8192, sample_bytes=4096, unify=False)
    assert result.summary["files"] == 12 and result.summary["rows"] == 12 * 3000
    assert result.summary.get("redone_inputs", 1) == 1
    for f, o in enumerate(sorted(result.outputs)):
        t = pq.read_table(o)
        ks = t.column("k").to_pylist()
        if f == 5:
            assert t.schema.field("k").type == pa.decimal128(18, 1) and ks[2900] == Decimal("1.5")
        else:
            assert ks == [f * 10_000 + i for i in range(3000)]
        assert t.column("t").to_pylist()[-1] == "t 2999,\nx"
