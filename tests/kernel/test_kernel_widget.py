"""End to end in a real kernel: a run started from a widget keeps the kernel free, the progress widget
streams updates (at most ~10 a second) and the cancel button's message, sent as a frontend sends it,
stops a long conversion within about a second."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel


def _drain(kc: Any, seen: list[dict[str, Any]], until: float) -> None:
    while time.monotonic() < until:
        try:
            msg = kc.get_iopub_msg(timeout=0.05)
        except Exception:
            continue
        msg["_t"] = time.monotonic()
        seen.append(msg)


def test_cancel_button_through_the_kernel(many_big: Path, tmp_path: Path) -> None:
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60)
    try:
        code = (
            "import aerofs_kernel as aero\n"
            f"run = aero.start('csv-to-parquet', {str(many_big)!r}, {str(tmp_path / 'out')!r}, threads=1,"
            " block_size=1 << 20)\n"
            "run.widget\n"
        )
        msg_id = kc.execute(code)
        seen: list[dict[str, Any]] = []

        def opened() -> list[dict[str, Any]]:
            return [
                m
                for m in seen
                if m["msg_type"] == "comm_open" and "bytes_done" in m["content"]["data"].get("state", {})
            ]

        deadline = time.monotonic() + 60
        while not opened() and time.monotonic() < deadline:
            _drain(kc, seen, time.monotonic() + 0.2)
        _drain(kc, seen, time.monotonic() + 2.0)  # two seconds of the run
        while kc.get_shell_msg(timeout=30)["parent_header"].get("msg_id") != msg_id:
            pass
        errors = [m for m in seen if m["msg_type"] == "error"]
        assert not errors, errors[0]["content"]
        opens = opened()
        assert opens, "no progress widget was opened"
        comm_id = opens[0]["content"]["comm_id"]
        updates = [
            m
            for m in seen
            if m["msg_type"] == "comm_msg"
            and m["content"]["comm_id"] == comm_id
            and m["content"]["data"].get("method") == "update"
        ]
        # The kernel is idle (the cell finished) while the engine works; updates stream in.
        assert len(updates) >= 5, len(updates)
        span = updates[-1]["_t"] - updates[0]["_t"]
        assert len(updates) <= 12 * max(span, 0.1) + 2, (len(updates), span)
        done_bytes = [u["content"]["data"]["state"].get("bytes_done") for u in updates]
        assert any(b for b in done_bytes if b), done_bytes
        # Click "Cancel" as the frontend does: a custom comm message.
        t0 = time.monotonic()
        kc.shell_channel.send(
            kc.session.msg(
                "comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": {"type": "cancel"}}}
            ),
        )
        state = None
        seen2: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and state != "cancelled":
            _drain(kc, seen2, time.monotonic() + 0.1)
            for m in seen2:
                if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id:
                    state = m["content"]["data"].get("state", {}).get("state", state)
        took = time.monotonic() - t0
        assert state == "cancelled", state
        assert took < 1.5, f"cancel took {took:.2f} s"
        reply = kc.execute_interactive("assert isinstance(run.error, aero.Cancelled), run.error", timeout=30)
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_kernel_interrupt_stops_a_blocking_call(many_big: Path, tmp_path: Path) -> None:
    """``aero.csv_to_parquet(...)`` in a cell, then the notebook's "Interrupt the kernel": the cell ends
    with KeyboardInterrupt within about a second, the progress widget says cancelled, no partial file."""
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60)
    try:
        msg_id = kc.execute(
            "import aerofs_kernel as aero\n"
            f"aero.csv_to_parquet({str(many_big)!r}, {str(out)!r}, threads=1, block_size=1 << 20)\n"
        )
        seen: list[dict[str, Any]] = []

        def widget_state(key: str) -> list[Any]:
            return [
                m["content"]["data"]["state"][key]
                for m in seen
                if m["msg_type"] in ("comm_open", "comm_msg") and key in m["content"]["data"].get("state", {})
            ]

        deadline = time.monotonic() + 60
        while not any(widget_state("bytes_done")) and time.monotonic() < deadline:
            _drain(kc, seen, time.monotonic() + 0.1)
        assert any(widget_state("bytes_done")), "the blocking call showed no progress"
        t0 = time.monotonic()
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=30)
        took = time.monotonic() - t0
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        assert took < 1.5, f"the interrupt took {took:.2f} s"
        _drain(kc, seen, time.monotonic() + 0.5)
        assert widget_state("state")[-1] == "cancelled"
        finished = sorted(out.rglob("*")) if out.exists() else []
        assert all(f.suffix == ".parquet" and not f.name.startswith(".") for f in finished), finished
        assert len(finished) < 20
        for f in finished:
            assert pq.read_table(f).num_rows == 1_500_000
        # The kernel is alive and usable afterwards.
        assert kc.execute_interactive("1 + 1", timeout=30)["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
