/** The administrators' view: queue, workers, throughput, failures, longest runs. */
import * as React from 'react';

import { getStats } from './api';
import { ErrorPanel, StateBadge } from './components';
import { IAeroFSContext } from './context';
import {
  durationSeconds,
  formatDuration,
  IJob,
  IStats,
  normalizeJob,
  srcDst
} from './models';

/** Workers busy/idle, whatever shape the server reports them in. */
export function workerCounts(s: IStats): {
  busy: number | null;
  idle: number | null;
} {
  if (typeof s.workers === 'object' && s.workers) {
    const busy = s.workers.busy ?? null;
    const idle =
      s.workers.idle ??
      (s.workers.total !== undefined && busy !== null
        ? s.workers.total - busy
        : null);
    return { busy, idle };
  }
  return { busy: s.workers_busy ?? null, idle: s.workers_idle ?? null };
}

function Card(props: {
  label: string;
  value: string;
  hint?: string;
}): JSX.Element {
  return (
    <div className="jp-AeroFS-card" role="group" aria-label={props.label}>
      <div className="jp-AeroFS-cardValue">{props.value}</div>
      <div className="jp-AeroFS-cardLabel">{props.label}</div>
      {props.hint && <div className="jp-AeroFS-cardHint">{props.hint}</div>}
    </div>
  );
}

export function AdminView(props: {
  ctx: IAeroFSContext;
  onShowAll: () => void;
}): JSX.Element {
  const { ctx } = props;
  const [stats, setStats] = React.useState<IStats | null>(null);
  const [error, setError] = React.useState<unknown>(null);

  const load = React.useCallback(() => {
    getStats().then(
      s => {
        setStats(s);
        setError(null);
      },
      e => setError(e)
    );
  }, []);

  React.useEffect(() => {
    load();
    const timer = setInterval(load, 5000);
    // Live: a state change anywhere refreshes the numbers (at most once a second).
    let pending: any = null;
    const off = ctx.stream.onUpdates(updates => {
      if (pending === null && updates.some(u => u.job.state)) {
        pending = setTimeout(() => {
          pending = null;
          load();
        }, 1000);
      }
    });
    return () => {
      clearInterval(timer);
      clearTimeout(pending);
      off();
    };
  }, []);

  if (error && !stats) {
    return <ErrorPanel error={error} onRetry={load} />;
  }
  if (!stats) {
    return <div className="jp-AeroFS-empty">Loading statistics…</div>;
  }
  const w = workerCounts(stats);
  const rate =
    typeof stats.failure_rate === 'number'
      ? `${(stats.failure_rate * 100).toFixed(1)} %`
      : '—';
  const longest: IJob[] = (stats.longest_running ?? []).map(normalizeJob);
  return (
    <div className="jp-AeroFS-admin">
      <div className="jp-AeroFS-cards">
        <Card label="Queue length" value={String(stats.queue_length ?? '—')} />
        <Card label="Workers busy" value={String(w.busy ?? '—')} />
        <Card label="Workers idle" value={String(w.idle ?? '—')} />
        <Card
          label="Jobs per minute"
          value={
            typeof stats.jobs_per_minute === 'number'
              ? stats.jobs_per_minute.toFixed(1)
              : '—'
          }
        />
        <Card label="Failure rate" value={rate} />
      </div>
      {stats.by_state && (
        <p className="jp-AeroFS-byState">
          {Object.entries(stats.by_state).map(([s, n]) => (
            <span key={s}>
              <StateBadge state={s} /> {n}{' '}
            </span>
          ))}
        </p>
      )}
      <h3>Longest-running jobs</h3>
      {longest.length ? (
        <table className="jp-AeroFS-table" aria-label="Longest-running jobs">
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Owner</th>
              <th scope="col">Pipeline</th>
              <th scope="col">Running for</th>
            </tr>
          </thead>
          <tbody>
            {longest.map(j => (
              <tr
                key={j.id}
                className="jp-AeroFS-row"
                tabIndex={0}
                onClick={() => ctx.openJob(j.id)}
                onKeyDown={e => e.key === 'Enter' && ctx.openJob(j.id)}
                title={`${srcDst(j).src} → ${srcDst(j).dst}`}
              >
                <td>{j.id}</td>
                <td>{j.owner}</td>
                <td>{j.pipeline}</td>
                <td>{formatDuration(durationSeconds(j))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p className="jp-AeroFS-empty">Nothing is running.</p>
      )}
      <button
        type="button"
        className="jp-AeroFS-button"
        onClick={props.onShowAll}
      >
        Show every user's jobs
      </button>
    </div>
  );
}
