/**
 * Job detail (a main-area tab): state timeline, live progress, per-input
 * errors, streaming logs, summary, outputs, cancel and retry.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import * as React from 'react';

import {
  cancelJob,
  downloadOutput,
  getJob,
  getLogs,
  listOutputs,
  retryJob
} from './api';
import { ErrorPanel, ProgressBar, StateBadge } from './components';
import { IAeroFSContext } from './context';
import { mergeJob } from './events';
import {
  durationSeconds,
  formatBytes,
  formatCount,
  formatDuration,
  formatTime,
  IJob,
  IOutput,
  isTerminal,
  ITransition,
  outputName
} from './models';

export class JobDetailWidget extends ReactWidget {
  constructor(
    private readonly ctx: IAeroFSContext,
    readonly jobId: string
  ) {
    super();
    this.id = `aerofs-job-${jobId}`;
    this.addClass('jp-AeroFS-detail');
    this.title.label = `Job ${jobId}`;
    this.title.closable = true;
  }

  render(): JSX.Element {
    return <JobDetail ctx={this.ctx} jobId={this.jobId} />;
  }
}

/** The timeline: the server's transitions, or what the timestamps tell. */
export function timeline(job: IJob): ITransition[] {
  if (job.transitions?.length) {
    return job.transitions;
  }
  const t: ITransition[] = [];
  if (job.created_at) {
    t.push({ state: 'PENDING', at: job.created_at });
  }
  if (job.started_at) {
    t.push({ state: 'RUNNING', at: job.started_at });
  }
  if (job.finished_at && isTerminal(job.state)) {
    t.push({ state: job.state, at: job.finished_at });
  }
  return t;
}

function JobDetail(props: { ctx: IAeroFSContext; jobId: string }): JSX.Element {
  const { ctx, jobId } = props;
  const [job, setJob] = React.useState<IJob | null>(null);
  const [error, setError] = React.useState<unknown>(null);
  const [logs, setLogs] = React.useState('');
  const [outputs, setOutputs] = React.useState<IOutput[] | null>(null);
  const [actionError, setActionError] = React.useState<string | null>(null);
  const [, tick] = React.useState(0);
  const logRef = React.useRef<HTMLPreElement>(null);
  const follow = React.useRef(true);

  const load = React.useCallback(() => {
    getJob(jobId).then(
      j => {
        // An answer older than a terminal event never moves the job back.
        setJob(old =>
          old &&
          isTerminal(old.state) &&
          !isTerminal(j.state) &&
          j.attempts <= old.attempts
            ? old
            : j
        );
        setError(null);
      },
      e => setError(e)
    );
  }, [jobId]);

  React.useEffect(() => {
    load();
    const offs = [
      ctx.stream.onUpdates(updates => {
        const mine = updates.filter(u => u.job.id === jobId);
        if (!mine.length) {
          return;
        }
        setJob(old => {
          let j = old;
          for (const u of mine) {
            j = j ? mergeJob(j, u.job) : null;
          }
          return j;
        });
        // A finished job gets its final summary, outputs and errors in full.
        if (mine.some(u => u.job.state && isTerminal(u.job.state))) {
          load();
        }
      }),
      ctx.stream.onReconnect(load)
    ];
    return () => offs.forEach(off => off());
  }, [jobId]);

  const state = job?.state ?? '';
  const done = isTerminal(state);

  // Logs stream while the job runs (polled), and once more when it ends.
  React.useEffect(() => {
    if (!job) {
      return;
    }
    let stopped = false;
    const fetchLogs = () =>
      getLogs(jobId).then(
        text => !stopped && setLogs(text),
        () => undefined
      );
    void fetchLogs();
    if (done) {
      return;
    }
    const t = setInterval(fetchLogs, 2000);
    const d = setInterval(() => tick(x => x + 1), 1000);
    return () => {
      stopped = true;
      clearInterval(t);
      clearInterval(d);
    };
  }, [jobId, done, Boolean(job)]);

  React.useEffect(() => {
    if (done) {
      listOutputs(jobId).then(setOutputs, () => setOutputs(null));
    }
  }, [jobId, done, job?.finished_at]);

  React.useLayoutEffect(() => {
    if (follow.current && logRef.current) {
      logRef.current.scrollTop = logRef.current.scrollHeight;
    }
  }, [logs]);

  if (error && !job) {
    return <ErrorPanel error={error} onRetry={load} />;
  }
  if (!job) {
    return <div className="jp-AeroFS-empty">Loading job {jobId}…</div>;
  }

  const act = async (fn: () => Promise<unknown>) => {
    setActionError(null);
    try {
      await fn();
      load();
    } catch (e) {
      setActionError((e as Error).message);
    }
  };
  const p =
    typeof job.progress === 'object' && job.progress ? job.progress : {};
  const outs: IOutput[] =
    outputs ??
    (job.outputs ?? []).map(o => (typeof o === 'string' ? { path: o } : o));

  return (
    <div
      className="jp-AeroFS-detailInner"
      data-job-id={job.id}
      data-state={job.state}
    >
      <header className="jp-AeroFS-detailHeader">
        <h2>
          {job.pipeline} <small>job {job.id}</small>
        </h2>
        <StateBadge state={job.state} />
        <div className="jp-AeroFS-actions">
          {!done && (
            <button
              type="button"
              className="jp-AeroFS-button jp-mod-warn"
              onClick={() => void act(() => cancelJob(job.id))}
            >
              Cancel job
            </button>
          )}
          {(state === 'FAILED' || state === 'CANCELLED') && (
            <button
              type="button"
              className="jp-AeroFS-button"
              onClick={() =>
                void act(async () => {
                  const r = await retryJob(job.id);
                  if (r.id !== job.id) {
                    ctx.openJob(r.id);
                  }
                })
              }
            >
              Retry
            </button>
          )}
        </div>
      </header>
      {actionError && (
        <div className="jp-AeroFS-fieldError" role="alert">
          {actionError}
        </div>
      )}
      {job.error && <div className="jp-AeroFS-errorPanel">{job.error}</div>}
      <section aria-label="Progress">
        <ProgressBar job={job} label="Job progress" />
        <p className="jp-AeroFS-counters">
          {p.inputs_total !== undefined && (
            <span>
              inputs {formatCount(p.inputs_done ?? 0)}/
              {formatCount(p.inputs_total)} ·{' '}
            </span>
          )}
          {p.bytes_total !== undefined && (
            <span>
              {formatBytes(p.bytes_done ?? 0)}/{formatBytes(p.bytes_total)}{' '}
              ·{' '}
            </span>
          )}
          {p.rows !== undefined && <span>{formatCount(p.rows)} rows · </span>}
          <span>duration {formatDuration(durationSeconds(job))}</span>
          {job.attempts > 1 && <span> · attempt {job.attempts}</span>}
          {p.current && <span> · now: {String(p.current)}</span>}
        </p>
      </section>
      <section aria-label="Timeline">
        <h3>Timeline</h3>
        <ol className="jp-AeroFS-timeline">
          {timeline(job).map((t, i) => (
            <li key={i}>
              <StateBadge state={t.state} />{' '}
              <time dateTime={t.at}>{formatTime(t.at)}</time>
              {t.message && <span> — {t.message}</span>}
            </li>
          ))}
        </ol>
      </section>
      <section aria-label="Parameters">
        <h3>Parameters</h3>
        <KeyValues data={job.params} />
      </section>
      {job.summary && Object.keys(job.summary).length > 0 && (
        <section aria-label="Summary">
          <h3>Summary</h3>
          <KeyValues data={job.summary} />
        </section>
      )}
      {done && (
        <section aria-label="Outputs">
          <h3>Outputs</h3>
          {outs.length ? (
            <ul className="jp-AeroFS-outputs">
              {outs.map(o => (
                <li key={o.path} data-output={o.path}>
                  <code title={o.path}>{outputName(o)}</code>
                  {typeof o.size === 'number' && (
                    <span> ({formatBytes(o.size)})</span>
                  )}{' '}
                  <button
                    type="button"
                    className="jp-AeroFS-button jp-mod-small"
                    onClick={() =>
                      void act(async () =>
                        ctx.saveBlob(
                          await downloadOutput(job.id, o),
                          outputName(o)
                        )
                      )
                    }
                  >
                    Download
                  </button>{' '}
                  <button
                    type="button"
                    className="jp-AeroFS-button jp-mod-small"
                    onClick={() =>
                      void ctx.revealPath(o.path).then(ok => {
                        if (!ok) {
                          setActionError(
                            `${o.path} is outside the Jupyter root; the file browser cannot show it.`
                          );
                        }
                      })
                    }
                  >
                    Reveal
                  </button>{' '}
                  <button
                    type="button"
                    className="jp-AeroFS-button jp-mod-small"
                    onClick={() =>
                      void act(() => ctx.openNotebook(o.path, 'pyarrow'))
                    }
                  >
                    Notebook (pyarrow)
                  </button>{' '}
                  <button
                    type="button"
                    className="jp-AeroFS-button jp-mod-small"
                    onClick={() =>
                      void act(() => ctx.openNotebook(o.path, 'duckdb'))
                    }
                  >
                    Notebook (DuckDB)
                  </button>
                </li>
              ))}
            </ul>
          ) : (
            <p className="jp-AeroFS-empty">This job wrote no output.</p>
          )}
        </section>
      )}
      <section aria-label="Errors">
        <h3>
          Errors per input {job.errors?.length ? `(${job.errors.length})` : ''}
        </h3>
        {job.errors?.length ? (
          <table className="jp-AeroFS-table">
            <thead>
              <tr>
                <th scope="col">Input</th>
                <th scope="col">Where</th>
                <th scope="col">Kind</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {job.errors.map((e, i) => (
                <tr key={i}>
                  <td>{e.path ?? '—'}</td>
                  <td>
                    {e.line !== undefined && e.line !== null
                      ? `line ${e.line}`
                      : ''}
                    {e.offset !== undefined && e.offset !== null
                      ? ` byte ${e.offset}`
                      : ''}
                  </td>
                  <td>{e.kind ?? ''}</td>
                  <td>{e.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="jp-AeroFS-empty">No input failed.</p>
        )}
      </section>
      <section aria-label="Logs">
        <h3>Logs</h3>
        <pre
          ref={logRef}
          className="jp-AeroFS-logs"
          tabIndex={0}
          aria-live="off"
          onScroll={e => {
            const el = e.currentTarget;
            follow.current =
              el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
          }}
        >
          {logs || (done ? 'No log lines.' : 'Waiting for log lines…')}
        </pre>
      </section>
    </div>
  );
}

function KeyValues(props: { data: Record<string, unknown> }): JSX.Element {
  return (
    <dl className="jp-AeroFS-kv">
      {Object.entries(props.data).map(([k, v]) => (
        <React.Fragment key={k}>
          <dt>{k}</dt>
          <dd>
            {typeof v === 'object'
              ? JSON.stringify(v)
              : typeof v === 'number'
                ? formatCount(v)
                : String(v)}
          </dd>
        </React.Fragment>
      ))}
    </dl>
  );
}
