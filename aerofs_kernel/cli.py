"""The ``aerofs`` command line (Typer).

Exit codes (scripts can rely on them):

====  =====================================================================================
 0    success: the run (or job) finished and no input had a problem
 1    failure: the run stopped with an error (on_error=fail, engine error), or the job FAILED
 2    usage: unknown pipeline, bad option, no input found
 3    finished with per-input errors (outputs of the good inputs are written; see ``errors``)
 4    job server unreachable or answered with an error
 130  interrupted (Ctrl-C) or cancelled
====  =====================================================================================

Pipeline options come from the pipeline's JSON Schema (the one definition): ``--name value`` (or
``--name=value``; ``-`` and ``_`` are the same), booleans as ``--name``/``--no-name``, arrays as a
repeated option, a comma list or JSON, objects as JSON or ``key=value`` pairs.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_SERVER, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

EXAMPLES = """**Examples**

```
aerofs run csv-to-parquet data/ out/ --layout partitioned --partition-by year
aerofs run word-count 's3://bucket/texts/*.txt' counts.parquet --json
aerofs run log-sessions access.log report/
aerofs submit exif photos/ exif.parquet --wait
aerofs jobs list --state RUNNING
aerofs pipelines csv-to-parquet
```
"""

app = typer.Typer(
    name="aerofs",
    help="Fast file and data pipelines on a Rust engine: run here, or submit to the AeroFS job server.\n\n"
    "Exit codes: 0 ok, 1 failed, 2 usage/options, 3 finished with per-input errors, 4 job server error, "
    "130 interrupted.",
    epilog=EXAMPLES,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
    pretty_exceptions_enable=False,
)
jobs_app = typer.Typer(help="Jobs on the job server: list, show, cancel, logs, wait.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


class UsageError(Exception):
    pass


def _types(prop: dict[str, Any]) -> set[str]:
    t = prop.get("type")
    types = set(t if isinstance(t, list) else [t] if t else [])
    for sub in prop.get("anyOf", []) + prop.get("oneOf", []):
        types |= _types(sub)
    if "enum" in prop:
        types |= {
            "boolean" if isinstance(v, bool) else "integer" if isinstance(v, int) else "string"
            for v in prop["enum"]
            if v is not None
        }
    return types


def _convert(name: str, prop: dict[str, Any], raw: str) -> Any:
    types = _types(prop)
    if raw.lower() in ("null", "none") and ("null" in types or None in prop.get("enum", [])):
        return None
    if "enum" in prop and raw in [str(v) for v in prop["enum"]]:
        return next(v for v in prop["enum"] if str(v) == raw)
    if "boolean" in types and raw.lower() in ("true", "false", "yes", "no", "1", "0"):
        return raw.lower() in ("true", "yes", "1")
    if "integer" in types:
        try:
            return int(raw)
        except ValueError:
            pass
    if "number" in types:
        try:
            return float(raw)
        except ValueError:
            pass
    if "array" in types:
        if raw.startswith("["):
            return json.loads(raw)
        return [s for s in raw.split(",") if s != ""]
    if "object" in types:
        if raw.startswith("{"):
            return json.loads(raw)
        pairs = [p.split("=", 1) for p in raw.split(",") if p]
        if not all(len(p) == 2 for p in pairs):
            raise UsageError(f"--{name}: expected JSON or key=value pairs, got {raw!r}")
        return {k: v for k, v in pairs}
    if "string" in types or not types:
        return raw
    raise UsageError(f"--{name}: cannot read {raw!r} as {'/'.join(sorted(t for t in types if t))}")


def split_args(schema: dict[str, Any], words: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Positional words (SRC, DST) and options, in any order: ``--name value`` takes the next word
    (booleans and ``--name=value`` do not)."""
    props = schema.get("properties", {})
    positional: list[str] = []
    opt_words: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("--") and len(w) > 2:
            key = w[2:].split("=", 1)[0].replace("-", "_")
            base = key[3:] if key.startswith("no_") and key not in props and key[3:] in props else key
            takes_value = "=" not in w and not ("boolean" in _types(props.get(base, {})) or base != key)
            opt_words.append(w)
            if takes_value and i + 1 < len(words):
                opt_words.append(words[i + 1])
                i += 1
        else:
            positional.append(w)
        i += 1
    return positional, parse_options(schema, opt_words)


def parse_options(schema: dict[str, Any], args: list[str]) -> dict[str, Any]:
    """``--opt value`` arguments -> options dict, read against the pipeline's JSON Schema."""
    props = {k: v for k, v in schema.get("properties", {}).items() if k not in ("src", "dst")}
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise UsageError(f"unexpected argument {arg!r} (options are --name value)")
        key, eq, value = arg[2:].partition("=")
        name = key.replace("-", "_")
        negated = False
        if name not in props and name.startswith("no_") and name[3:] in props:
            name, negated = name[3:], True
        if name == "storage_options":
            prop: dict[str, Any] = {"type": "object"}
        elif name not in props:
            known = ", ".join("--" + k.replace("_", "-") for k in props)
            raise UsageError(f"unknown option --{key} (known: {known})")
        else:
            prop = props[name]
        types = _types(prop)
        if "boolean" in types and not eq:
            out[name] = not negated
            i += 1
            continue
        if not eq:
            if i + 1 >= len(args):
                raise UsageError(f"--{key} needs a value")
            value = args[i + 1]
            i += 2
        else:
            i += 1
        try:
            v = _convert(key, prop, value)
        except json.JSONDecodeError as e:
            raise UsageError(f"--{key}: invalid JSON: {e}") from None
        if "array" in types and isinstance(v, list) and name in out and isinstance(out[name], list):
            out[name] = out[name] + v  # repeated option
        else:
            out[name] = v
    return out


def _positional(pipeline: str, words: list[str]) -> tuple[str, str | None, dict[str, Any]]:
    spec = _spec(pipeline)
    positional, options = split_args(spec.schema, words)
    if not positional:
        raise UsageError("SRC is missing")
    if len(positional) > 2:
        raise UsageError(f"expected SRC [DST], got {len(positional)} words: {' '.join(positional)}")
    return positional[0], (positional[1] if len(positional) > 1 else None), options


def _spec(pipeline: str) -> Any:
    from aerofs_kernel.pipelines import get_pipeline

    try:
        return get_pipeline(pipeline)
    except KeyError as e:
        raise UsageError(str(e.args[0])) from None


def _fail(code: int, message: str, as_json: bool, pipeline: str | None = None) -> None:
    if as_json:
        typer.echo(json.dumps({"pipeline": pipeline, "error": message, "exit_code": code}))
    typer.echo(f"aerofs: {message}", err=True)
    raise typer.Exit(code)


def _print_result(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(doc, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title=f"{doc.get('pipeline')}", show_header=False)
    for k, v in (doc.get("summary") or {}).items():
        t.add_row(str(k), json.dumps(v, default=str) if isinstance(v, (dict, list)) else f"{v}")
    console.print(t)
    outs = doc.get("outputs") or []
    if outs:
        console.print(f"{len(outs)} output(s):")
        for o in outs[:20]:
            console.print(f"  {o}", highlight=False)
        if len(outs) > 20:
            console.print(f"  ... {len(outs) - 20} more")
    for e in (doc.get("errors") or [])[:50]:
        where = f"{e.get('path')}" + (f":{e['line']}" if e.get("line") else "")
        console.print(
            f"[red]error[/red] {where}: {e.get('kind', '')}: {e.get('message', '')}", highlight=False
        )


@app.command(context_settings=_EXTRA, epilog=EXAMPLES)
def run(
    pipeline: str = typer.Argument(..., help="csv-to-parquet, exif, word-count or log-sessions"),
    words: list[str] = typer.Argument(
        None,
        metavar="SRC [DST] [--option VALUE ...]",
        help="SRC: file, folder, glob or URL (s3://bucket/prefix/); DST: where to write",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="print one JSON object: pipeline, summary, outputs, errors"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Run PIPELINE on SRC in this process with a progress bar. Pipeline options: --name value (see
    `aerofs pipelines PIPELINE`)."""
    from aerofs_kernel import _engine
    from aerofs_kernel.api import run as api_run

    try:
        src, dst, options = _positional(pipeline, words or [])
    except UsageError as e:
        _fail(EXIT_USAGE, str(e), as_json, pipeline)
    show = False if (quiet or as_json or not sys.stderr.isatty()) else "rich"
    try:
        result = api_run(pipeline, src, dst, show_progress=show, **options)
    except _engine.OptionsError as e:
        _fail(EXIT_USAGE, str(e), as_json, pipeline)
    except (KeyboardInterrupt, _engine.Cancelled):
        _fail(EXIT_INTERRUPTED, "interrupted", as_json, pipeline)
    except _engine.InputError as e:
        where = f" ({e.path}" + (f":{e.line}" if getattr(e, "line", None) else "") + ")" if e.path else ""
        _fail(EXIT_FAILED, f"{e}{where}", as_json, pipeline)
    except (_engine.AerofsError, OSError) as e:
        _fail(EXIT_FAILED, f"{type(e).__name__}: {e}", as_json, pipeline)
    _print_result(result.to_dict(), as_json)
    raise typer.Exit(EXIT_PARTIAL if result.errors else EXIT_OK)


def _client(url: str | None, token: str | None, as_json: bool) -> Any:
    from aerofs_kernel.client import Client, JobServerError

    try:
        return Client(url, token)
    except JobServerError as e:
        _fail(EXIT_SERVER, str(e), as_json)


_URL = typer.Option(None, "--url", envvar="AEROFS_SERVER_URL", help="job server base URL")
_TOKEN = typer.Option(None, "--token", envvar="AEROFS_TOKEN", help="API token", show_default=False)


def _job_exit(doc: dict[str, Any]) -> int:
    state = doc.get("state")
    if state == "SUCCEEDED":
        return EXIT_PARTIAL if doc.get("errors") else EXIT_OK
    if state == "CANCELLED":
        return EXIT_INTERRUPTED
    if state == "FAILED":
        return EXIT_FAILED
    return EXIT_OK


@app.command(context_settings=_EXTRA, epilog=EXAMPLES)
def submit(
    pipeline: str = typer.Argument(...),
    words: list[str] = typer.Argument(None, metavar="SRC [DST] [--option VALUE ...]"),
    wait: bool = typer.Option(False, "--wait", help="wait for the job to end; exit code from its state"),
    as_json: bool = typer.Option(False, "--json"),
    url: str = _URL,
    token: str = _TOKEN,
) -> None:
    """Submit PIPELINE on SRC to the job server; prints the job id (or, with --wait, its result)."""
    from aerofs_kernel import _engine
    from aerofs_kernel.client import JobServerError
    from aerofs_kernel.client import submit as client_submit

    try:
        src, dst, options = _positional(pipeline, words or [])
    except UsageError as e:
        _fail(EXIT_USAGE, str(e), as_json, pipeline)
    try:
        job = client_submit(pipeline, src, dst, url=url, token=token, **options)
        if not wait:
            typer.echo(json.dumps({"id": job.id, "state": job._doc.get("state")}) if as_json else job.id)
            raise typer.Exit(EXIT_OK)
        job.wait()
        doc = job._doc
    except _engine.OptionsError as e:
        _fail(EXIT_USAGE, str(e), as_json, pipeline)
    except JobServerError as e:
        _fail(EXIT_SERVER, str(e), as_json, pipeline)
    except KeyboardInterrupt:
        _fail(EXIT_INTERRUPTED, "stopped waiting (the job goes on)", as_json, pipeline)
    out = {k: doc.get(k) for k in ("id", "pipeline", "state", "summary", "outputs", "errors")}
    _print_result(out, as_json)
    raise typer.Exit(_job_exit(doc))


@jobs_app.command("list")
def jobs_list(
    state: str = typer.Option(None, "--state", help="only jobs in this state"),
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
    url: str = _URL,
    token: str = _TOKEN,
) -> None:
    """The jobs you can see, newest first."""
    from aerofs_kernel.client import JobServerError

    c = _client(url, token, as_json)
    try:
        jobs = c.jobs(state=state, limit=limit)
    except JobServerError as e:
        _fail(EXIT_SERVER, str(e), as_json)
    if as_json:
        typer.echo(json.dumps(jobs, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("id", "pipeline", "state", "owner", "created", "progress")
    for j in jobs:
        p = j.get("progress")
        frac = ""
        if isinstance(p, dict) and p.get("bytes_total"):
            frac = f"{100 * p.get('bytes_done', 0) / p['bytes_total']:.0f}%"
        t.add_row(str(j.get("id")), str(j.get("pipeline")), str(j.get("state")), str(j.get("owner", "")),
                  str(j.get("created_at", "")), frac)  # fmt: skip
    Console().print(t)


def _job_command(action: str, job_id: str, url: str | None, token: str | None, as_json: bool) -> None:
    from aerofs_kernel.client import JobServerError

    c = _client(url, token, as_json)
    try:
        if action == "show":
            doc = c.job(job_id)
            typer.echo(json.dumps(doc, default=str, indent=None if as_json else 2))
        elif action == "cancel":
            doc = c.cancel(job_id) or {}
            typer.echo(
                json.dumps(doc, default=str)
                if as_json
                else f"{job_id}: {doc.get('state', 'cancel requested')}"
            )
        elif action == "logs":
            text = c.logs(job_id)
            typer.echo(json.dumps({"id": job_id, "logs": text}) if as_json else text)
        elif action == "wait":
            job = c.handle(job_id).wait()
            doc = job._doc
            _print_result(
                {k: doc.get(k) for k in ("id", "pipeline", "state", "summary", "outputs", "errors")}, as_json
            )
            raise typer.Exit(_job_exit(doc))
    except JobServerError as e:
        _fail(EXIT_SERVER, str(e), as_json)


@jobs_app.command("show")
def jobs_show(
    job_id: str, as_json: bool = typer.Option(False, "--json"), url: str = _URL, token: str = _TOKEN
) -> None:
    """Everything about one job."""
    _job_command("show", job_id, url, token, as_json)


@jobs_app.command("cancel")
def jobs_cancel(
    job_id: str, as_json: bool = typer.Option(False, "--json"), url: str = _URL, token: str = _TOKEN
) -> None:
    """Cancel a job."""
    _job_command("cancel", job_id, url, token, as_json)


@jobs_app.command("logs")
def jobs_logs(
    job_id: str, as_json: bool = typer.Option(False, "--json"), url: str = _URL, token: str = _TOKEN
) -> None:
    """A job's log."""
    _job_command("logs", job_id, url, token, as_json)


@jobs_app.command("wait")
def jobs_wait(
    job_id: str, as_json: bool = typer.Option(False, "--json"), url: str = _URL, token: str = _TOKEN
) -> None:
    """Wait for a job to end; exit code from its state (0 SUCCEEDED, 1 FAILED, 130 CANCELLED)."""
    _job_command("wait", job_id, url, token, as_json)


@app.command()
def pipelines(
    name: str = typer.Argument(None, help="show one pipeline's options"),
    as_json: bool = typer.Option(False, "--json", help="print the pipelines with their JSON Schemas"),
) -> None:
    """The pipelines and their options (from each pipeline's JSON Schema)."""
    from aerofs_kernel.pipelines import all_pipelines

    try:
        specs = [_spec(name)] if name else all_pipelines()
    except UsageError as e:
        _fail(EXIT_USAGE, str(e), as_json)
    if as_json:
        typer.echo(json.dumps([s.describe() for s in specs], default=str))
        return
    for s in specs:
        typer.echo(f"{s.name}: {s.title}\n  {s.description}")
        if name:
            req = set(s.schema.get("required", []))
            for k, p in s.schema.get("properties", {}).items():
                flag = k if k in ("src", "dst") else "--" + k.replace("_", "-")
                default = f" [default: {json.dumps(p['default'])}]" if "default" in p else ""
                typer.echo(
                    f"  {flag}{' (required)' if k in req else ''}: {p.get('description', '')}{default}"
                )
        typer.echo("")


@app.command(context_settings=_EXTRA)
def worker(ctx: typer.Context) -> None:
    """A job worker: an RQ worker on queue `aerofs` when AEROFS_REDIS_URL is set (team mode), else a
    local worker polling the job store (AEROFS_DATABASE_URL). Other options go to the worker; see
    `python -m jobserver.worker --help`."""
    try:
        from jobserver.worker import main as worker_main  # type: ignore[import-not-found]
    except ImportError as e:
        _fail(EXIT_FAILED, f"the job server's worker is not available: {e}", False)
    sys.argv = ["aerofs worker", *ctx.args]
    raise typer.Exit(int(worker_main(list(ctx.args)) or 0))


@app.command(context_settings=_EXTRA)
def lab(ctx: typer.Context) -> None:
    """JupyterLab with the AeroFS extensions (arguments go to jupyter lab)."""
    exe = os.path.join(os.path.dirname(sys.executable), "jupyter")
    if not os.path.exists(exe):
        exe = "jupyter"
    os.execvp(exe, [exe, "lab", *ctx.args])


def main() -> None:
    app()


if __name__ == "__main__":
    main()
