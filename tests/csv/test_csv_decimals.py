"""csv-to-parquet decimals: fixed-point columns come back from pyarrow, DuckDB and Polars as exactly the
Decimal values the CSV holds (never a float's approximation of them)."""

from __future__ import annotations

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

PIPE = get_pipeline("csv-to-parquet")

BIG = "9" * 36 + ".25"  # 38 digits: the most a Decimal128 holds


def run(inputs: list[Path], dst: Path, **options: Any):
    """The pipeline with its default options (decimal inference on) unless told otherwise."""
    params = {"src": [str(p) for p in inputs], "dst": str(dst), **options}
    opts = PIPE.options(params)
    return PIPE.run([str(p) for p in inputs], str(dst), opts, _engine.Progress())


def read_three(path: Path | str) -> dict[str, list[dict[str, Any]]]:
    con = duckdb.connect()
    cur = con.execute(f"SELECT * FROM read_parquet('{path}')")
    names = [d[0] for d in cur.description]
    return {
        "pyarrow": pq.read_table(path).to_pylist(),
        "duckdb": [dict(zip(names, row, strict=True)) for row in cur.fetchall()],
        "polars": pl.read_parquet(path).to_dicts(),
    }


def reader_types(path: Path | str) -> dict[str, dict[str, str]]:
    """Each reader's type of each column, in its own words."""
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    return {
        "pyarrow": {f.name: str(f.type) for f in pq.read_schema(path)},
        "duckdb": {n: str(t) for n, t in zip(rel.columns, rel.types, strict=True)},
        "polars": {n: str(t) for n, t in pl.read_parquet_schema(path).items()},
    }


def same_digits(got: Any, want: Decimal | None) -> bool:
    """Equal as numbers and with the same digits after the point (20.00 is not 20 or 20.0)."""
    if want is None or got is None:
        return got is None and want is None
    return isinstance(got, Decimal) and got == want and got.as_tuple().exponent == want.as_tuple().exponent


def test_fixed_point_columns_read_back_exactly_in_every_reader(tmp_path: Path) -> None:
    src = tmp_path / "prices.csv"
    src.write_text(
        "id,price,big,tiny,score\n"
        f"1,19.99,{BIG},0.000001,0.5\n"
        f"2,-0.50,-{BIG},-0.100000,0.25\n"
        "3,+1.00,0.00,,0.125\n"
        "4,20,1,2.000000,1\n"
        "5,007.10,,0.333333,2e3\n"
        "6,,-1.10,0.000000,\n"
    )
    result = run([src], tmp_path / "out")
    out = result.outputs[0]
    assert [(c["name"], c["type"]) for c in result.parts["schema"]] == [
        ("id", "int64"),
        ("price", "decimal(18,2)"),
        ("big", "decimal(38,2)"),
        ("tiny", "decimal(18,6)"),
        ("score", "float64"),
    ]
    types = reader_types(out)
    assert types["pyarrow"]["price"] == "decimal128(18, 2)" and types["pyarrow"]["big"] == "decimal128(38, 2)"
    assert types["duckdb"]["price"] == "DECIMAL(18,2)" and types["duckdb"]["big"] == "DECIMAL(38,2)"
    assert types["polars"]["price"].startswith("Decimal(precision=18, scale=2")
    assert types["polars"]["tiny"].startswith("Decimal(precision=18, scale=6")
    # decimal(18,s) is a Parquet INT64 (cheap to read everywhere), decimal(38,s) a 16-byte array
    schema = pq.ParquetFile(out).schema
    assert schema.column(1).physical_type == "INT64"
    assert schema.column(2).physical_type == "FIXED_LEN_BYTE_ARRAY"
    # and delta-encoded like the integers (prices shrink to their significant bits)
    assert "DELTA_BINARY_PACKED" in pq.ParquetFile(out).metadata.row_group(0).column(1).encodings
    want = {
        "price": ["19.99", "-0.50", "1.00", "20.00", "7.10", None],
        "big": [BIG, "-" + BIG, "0.00", "1.00", None, "-1.10"],
        "tiny": ["0.000001", "-0.100000", None, "2.000000", "0.333333", "0.000000"],
    }
    for reader, rows in read_three(out).items():
        for col, values in want.items():
            got = [r[col] for r in rows]
            expected = [None if v is None else Decimal(v) for v in values]
            assert all(same_digits(g, w) for g, w in zip(got, expected, strict=True)), (reader, col, got)
        assert [r["score"] for r in rows] == [0.5, 0.25, 0.125, 1.0, 2000.0, None], reader


@pytest.mark.parametrize(
    ("options", "want"), [({"decimals": False}, pa.float64()), ({}, pa.decimal128(18, 2))]
)
def test_decimals_on_by_default_and_false_keeps_float64(
    tmp_path: Path, options: dict, want: pa.DataType
) -> None:
    src = tmp_path / "p.csv"
    src.write_text("price\n19.99\n-0.50\n")
    params = {"src": [str(src)], "dst": str(tmp_path / "out"), **options}
    assert PIPE.options(params)["decimals"] is (options.get("decimals", True))
    result = PIPE.run([str(src)], str(tmp_path / "out"), PIPE.options(params), _engine.Progress())
    t = pq.read_table(result.outputs[0])
    assert t.schema.field("price").type == want
    assert [float(v) for v in t.column("price").to_pylist()] == [19.99, -0.5]


def test_a_late_value_with_more_fractional_digits_widens_exactly(tmp_path: Path) -> None:
    src = tmp_path / "late.csv"
    rows = [f"{i}.{i % 100:02d}" for i in range(5000)] + ["0.125", "12"]
    src.write_text("x\n" + "\n".join(rows) + "\n")
    result = run([src], tmp_path / "out", infer_rows=100, block_size=4096)
    assert result.summary["redone_inputs"] == 1
    (drift,) = result.parts["drift"]
    assert drift["resolved"] == "decimal(38,3)" and "decimal(18,2)" in drift["types"]
    for reader, got in read_three(result.outputs[0]).items():
        values = [r["x"] for r in got]
        assert values[4999] == Decimal("4999.99") and values[-2:] == [Decimal("0.125"), Decimal("12")], reader
        assert all(
            same_digits(v, Decimal(w).quantize(Decimal("0.001"))) for v, w in zip(values, rows, strict=True)
        )


def test_decimal_overrides_and_their_validation(tmp_path: Path) -> None:
    src = tmp_path / "o.csv"
    src.write_text("amount,qty\n12345678.91,1\n123456789.00,2.5\n1.5,3\n")
    result = run([src], tmp_path / "out", columns={"amount": "decimal(10,2)", "qty": "decimal(4,1)"})
    got = read_three(result.outputs[0])
    for reader, rows in got.items():
        assert [r["amount"] for r in rows] == [Decimal("12345678.91"), None, Decimal("1.50")], reader
        assert [r["qty"] for r in rows] == [Decimal("1.0"), Decimal("2.5"), Decimal("3.0")], reader
    # the value with too many digits for decimal(10,2) became null and is reported with its line
    assert [(e["line"], "decimal(10,2)" in e["message"]) for e in result.errors] == [(3, True)]
    # the options schema knows the syntax; the engine checks what a pattern cannot
    with pytest.raises(_engine.OptionsError, match="columns"):
        PIPE.options({"src": "x", "dst": "y", "columns": {"a": "decimal(39,2)"}})
    with pytest.raises(_engine.OptionsError, match=r"decimal\(precision,scale\)"):
        run([src], tmp_path / "bad", columns={"amount": "decimal(5,6)"})


def test_folder_unifies_decimals_and_reports_drift(tmp_path: Path) -> None:
    files = {
        "a.csv": "k,cents,qty,ratio\n1,1.25,3,1.25\n",
        "b.csv": "k,cents,qty,ratio\n2,2.125,4.50,2.5e-1\n",
        "c.csv": "k,cents,qty,ratio\n3,-0.001,5,3.75\n",
    }
    inputs = []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        inputs.append(tmp_path / name)
    dst = tmp_path / "all.parquet"
    result = run(inputs, dst, layout="merged")
    assert [(c["name"], c["type"]) for c in result.parts["schema"]] == [
        ("k", "int64"),
        ("cents", "decimal(38,3)"),  # scales 2 and 3: the larger; 16 + 3 digits need precision 38
        ("qty", "decimal(18,2)"),  # int64 + decimal: decimal
        ("ratio", "float64"),  # decimal + float: float64
    ]
    drift = {d["column"]: d for d in result.parts["drift"]}
    assert drift["cents"]["types"] == {
        "decimal(18,2)": [str(inputs[0])],
        "decimal(18,3)": [str(inputs[1]), str(inputs[2])],
    }
    assert drift["cents"]["how"] == "widened to decimal(38,3)"
    assert drift["qty"]["types"] == {
        "int64": [str(inputs[0]), str(inputs[2])],
        "decimal(18,2)": [str(inputs[1])],
    }
    assert drift["ratio"]["resolved"] == "float64"
    rows = duckdb.sql(f"SELECT cents, qty, ratio FROM '{dst}' ORDER BY k").fetchall()
    assert rows == [
        (Decimal("1.250"), Decimal("3.00"), 1.25),
        (Decimal("2.125"), Decimal("4.50"), 0.25),
        (Decimal("-0.001"), Decimal("5.00"), 3.75),
    ]


def test_partition_by_a_decimal_column_names_directories_by_its_digits(tmp_path: Path) -> None:
    src = tmp_path / "p.csv"
    src.write_text("price,n\n19.99,1\n5.00,2\n19.99,3\n")
    dst = tmp_path / "ds"
    run([src], dst, layout="partitioned", partition_by=["price"])
    assert sorted(p.name for p in dst.iterdir()) == ["price=19.99", "price=5.00"]
    t = pq.read_table(next((dst / "price=19.99").iterdir()))
    assert t.column("n").to_pylist() == [1, 3]
