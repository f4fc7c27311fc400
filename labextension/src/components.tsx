/** Small pieces the views share: state badge, progress bar, error panel. */
import * as React from 'react';

import { ApiError } from './request';
import { IJob, progressFraction } from './models';

export function StateBadge(props: { state: string }): JSX.Element {
  return (
    <span
      className={`jp-AeroFS-state jp-AeroFS-state-${props.state.toLowerCase()}`}
      data-state={props.state}
    >
      {props.state}
    </span>
  );
}

export function ProgressBar(props: {
  job: Pick<IJob, 'state' | 'progress'>;
  label?: string;
}): JSX.Element {
  const f = progressFraction(props.job);
  const pct = f === null ? null : Math.round(f * 100);
  const indeterminate =
    pct === null &&
    (props.job.state === 'RUNNING' || props.job.state === 'QUEUED');
  return (
    <div
      className={`jp-AeroFS-progress${indeterminate ? ' jp-mod-indeterminate' : ''} jp-AeroFS-progress-${props.job.state.toLowerCase()}`}
      role="progressbar"
      aria-label={props.label ?? 'Progress'}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={pct ?? undefined}
    >
      <div
        className="jp-AeroFS-progressFill"
        style={{ width: `${pct ?? (indeterminate ? 30 : 0)}%` }}
      />
      <span className="jp-AeroFS-progressText">
        {pct === null ? '' : `${pct}%`}
      </span>
    </div>
  );
}

/** What went wrong and what to do about it. */
export function describeError(error: unknown): { title: string; hint: string } {
  if (error instanceof ApiError) {
    if (error.unreachable) {
      return {
        title: 'The AeroFS job server is unreachable.',
        hint: 'Check that the Jupyter server is still running (and, on JupyterHub, that your server was not culled), then retry. If it keeps failing, restart the server with `aerofs lab`.'
      };
    }
    if (error.status === 404) {
      return {
        title: 'This Jupyter server has no AeroFS job server.',
        hint: 'Enable the server extension with `jupyter server extension enable jobserver` (or install the `aerofs` wheel) and restart JupyterLab.'
      };
    }
    if (error.status === 403) {
      return {
        title: 'You are not allowed to see this.',
        hint: 'Ask an administrator for access (the `custom:aerofs:admin` scope on JupyterHub).'
      };
    }
    return {
      title: `The job server answered: ${error.message}`,
      hint: 'Retry; if it persists, look at the Jupyter server log.'
    };
  }
  return {
    title: String((error as Error)?.message ?? error),
    hint: 'Retry, or reload the page.'
  };
}

export function ErrorPanel(props: {
  error: unknown;
  onRetry?: () => void;
}): JSX.Element {
  const { title, hint } = describeError(props.error);
  return (
    <div className="jp-AeroFS-errorPanel" role="alert">
      <strong>{title}</strong>
      <p>{hint}</p>
      {props.onRetry && (
        <button
          type="button"
          className="jp-AeroFS-button"
          onClick={props.onRetry}
        >
          Retry
        </button>
      )}
    </div>
  );
}
