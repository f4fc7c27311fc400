/**
 * The sidebar: the live jobs table (server-side filters, sorting, paging),
 * the schema-driven new-job form and, for administrators, the admin view.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import * as React from 'react';

import { AdminView } from './admin';
import { getStats, listJobs, listPipelines, submitJob } from './api';
import { ErrorPanel, ProgressBar, StateBadge } from './components';
import { IAeroFSContext } from './context';
import { ConnectionState } from './events';
import {
  durationSeconds,
  formatBytes,
  formatCount,
  formatDuration,
  formatTime,
  IJob,
  IPipeline,
  isTerminal,
  JOB_STATES,
  SortKey,
  srcDst,
  volume
} from './models';
import { ApiError } from './request';
import {
  buildParams,
  fieldsFromSchema,
  FormValues,
  initialValues,
  SchemaForm,
  serverErrorsByField
} from './schemaform';
import { JobListModel } from './store';

type Tab = 'jobs' | 'new' | 'admin';

export class AeroFSSidebar extends ReactWidget {
  constructor(private readonly ctx: IAeroFSContext) {
    super();
    this.id = 'aerofs-sidebar';
    this.addClass('jp-AeroFS-sidebar');
    this.model = new JobListModel(listJobs);
  }

  readonly model: JobListModel;

  render(): JSX.Element {
    return <Sidebar ctx={this.ctx} model={this.model} />;
  }
}

function useForceUpdate(): () => void {
  const [, set] = React.useState(0);
  return React.useCallback(() => set(x => x + 1), []);
}

function Sidebar(props: {
  ctx: IAeroFSContext;
  model: JobListModel;
}): JSX.Element {
  const { ctx, model } = props;
  const [tab, setTab] = React.useState<Tab>('jobs');
  const [isAdmin, setAdmin] = React.useState(false);
  const [prefill, setPrefill] = React.useState<{
    paths: string[];
    n: number;
  } | null>(null);
  const [live, setLive] = React.useState<ConnectionState>(ctx.stream.state);

  React.useEffect(() => {
    getStats().then(
      () => setAdmin(true),
      () => setAdmin(false)
    );
    const offs = [
      ctx.stream.onState(setLive),
      ctx.onNewJobRequest(paths => {
        setPrefill(p => ({ paths, n: (p?.n ?? 0) + 1 }));
        setTab('new');
      })
    ];
    return () => offs.forEach(off => off());
  }, []);

  const tabs: Array<[Tab, string]> = [
    ['jobs', 'Jobs'],
    ['new', 'New job']
  ];
  if (isAdmin) {
    tabs.push(['admin', 'Admin']);
  }
  const onTabKey = (e: React.KeyboardEvent) => {
    const i = tabs.findIndex(t => t[0] === tab);
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      const j =
        (i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length;
      setTab(tabs[j][0]);
      e.preventDefault();
    }
  };
  return (
    <div className="jp-AeroFS-sidebarInner">
      <header className="jp-AeroFS-header">
        <h2>AeroFS</h2>
        <span
          className={`jp-AeroFS-live jp-AeroFS-live-${live}`}
          title={
            live === 'open'
              ? 'Live updates connected'
              : 'Live updates disconnected; reconnecting'
          }
          aria-live="polite"
        >
          {live === 'open'
            ? 'Live'
            : live === 'connecting'
              ? 'Connecting…'
              : 'Reconnecting…'}
        </span>
      </header>
      <div
        className="jp-AeroFS-tabs"
        role="tablist"
        aria-label="AeroFS views"
        onKeyDown={onTabKey}
      >
        {tabs.map(([key, label]) => (
          <button
            key={key}
            type="button"
            role="tab"
            id={`aerofs-tab-${key}`}
            aria-selected={tab === key}
            aria-controls={`aerofs-tabpanel-${key}`}
            tabIndex={tab === key ? 0 : -1}
            className={`jp-AeroFS-tab${tab === key ? ' jp-mod-active' : ''}`}
            onClick={() => setTab(key)}
          >
            {label}
          </button>
        ))}
      </div>
      <div
        className="jp-AeroFS-tabpanel"
        role="tabpanel"
        id={`aerofs-tabpanel-${tab}`}
        aria-labelledby={`aerofs-tab-${tab}`}
      >
        {tab === 'jobs' && (
          <JobsView ctx={ctx} model={model} isAdmin={isAdmin} />
        )}
        {tab === 'new' && (
          <NewJobView
            ctx={ctx}
            prefill={prefill}
            onSubmitted={() => {
              void model.refresh();
            }}
          />
        )}
        {tab === 'admin' && isAdmin && (
          <AdminView
            ctx={ctx}
            onShowAll={() => {
              void model.setQuery({ owner: '' });
              setTab('jobs');
            }}
          />
        )}
      </div>
    </div>
  );
}

const COLUMNS: Array<{
  key: string;
  label: string;
  sort?: SortKey;
  admin?: boolean;
}> = [
  { key: 'pipeline', label: 'Pipeline', sort: 'pipeline' },
  { key: 'paths', label: 'Source → destination' },
  { key: 'owner', label: 'Owner', sort: 'owner', admin: true },
  { key: 'state', label: 'State', sort: 'state' },
  { key: 'created_at', label: 'Submitted', sort: 'created_at' },
  { key: 'started_at', label: 'Started', sort: 'started_at' },
  { key: 'finished_at', label: 'Finished', sort: 'finished_at' },
  { key: 'duration', label: 'Duration' },
  { key: 'volume', label: 'Inputs / bytes / rows' }
];

function JobsView(props: {
  ctx: IAeroFSContext;
  model: JobListModel;
  isAdmin: boolean;
}): JSX.Element {
  const { ctx, model, isAdmin } = props;
  const update = useForceUpdate();
  const [pipelines, setPipelines] = React.useState<IPipeline[]>([]);
  const [text, setText] = React.useState(model.query.q ?? '');
  const [owner, setOwner] = React.useState(model.query.owner ?? '');

  React.useEffect(() => {
    const offs = [
      model.onChange(update),
      ctx.stream.onUpdates(u => model.applyUpdates(u)),
      // After a gap the socket catches up from the last event id; refetch too
      // in case the server could not replay that far back.
      ctx.stream.onReconnect(() => void model.refresh())
    ];
    if (!model.loaded) {
      void model.refresh();
    }
    listPipelines().then(setPipelines, () => undefined);
    return () => offs.forEach(off => off());
  }, []);

  // Debounced text and owner filters.
  React.useEffect(() => {
    const t = setTimeout(() => {
      if (
        (model.query.q ?? '') !== text ||
        (model.query.owner ?? '') !== owner
      ) {
        void model.setQuery({ q: text, owner });
      }
    }, 300);
    return () => clearTimeout(t);
  }, [text, owner]);

  // Running jobs' durations tick once a second.
  const running = model.jobs.some(j => j.state === 'RUNNING');
  React.useEffect(() => {
    if (!running) {
      return;
    }
    const t = setInterval(update, 1000);
    return () => clearInterval(t);
  }, [running]);

  const q = model.query;
  const cols = COLUMNS.filter(c => !c.admin || isAdmin);
  const sortBy = (key: SortKey) => {
    void model.setQuery({
      sort: key,
      order: q.sort === key && q.order === 'desc' ? 'asc' : 'desc'
    });
  };
  const first = model.total === 0 ? 0 : q.offset + 1;
  const last = Math.min(q.offset + model.jobs.length, model.total);
  const pageCount = Math.max(1, Math.ceil(model.total / q.limit));
  const page = Math.floor(q.offset / q.limit) + 1;
  const filtered = Boolean(q.state?.length || q.pipeline || q.owner || q.q);

  let body: JSX.Element;
  if (model.error && !model.jobs.length) {
    body = (
      <ErrorPanel error={model.error} onRetry={() => void model.refresh()} />
    );
  } else if (!model.loaded) {
    body = <div className="jp-AeroFS-empty">Loading jobs…</div>;
  } else if (!model.jobs.length) {
    body = filtered ? (
      <div className="jp-AeroFS-empty">
        <p>No job matches these filters.</p>
        <button
          type="button"
          className="jp-AeroFS-button"
          onClick={() => {
            setText('');
            setOwner('');
            void model.setQuery({ state: [], pipeline: '', owner: '', q: '' });
          }}
        >
          Clear filters
        </button>
      </div>
    ) : (
      <div className="jp-AeroFS-empty">
        <p>No jobs yet.</p>
        <p>
          Start one from <em>New job</em>, or right-click a folder in the file
          browser and choose <em>Process with AeroFS…</em>
        </p>
      </div>
    );
  } else {
    body = (
      <div className="jp-AeroFS-tableWrap">
        <table
          className="jp-AeroFS-table"
          aria-label="Jobs"
          aria-rowcount={model.total}
        >
          <thead>
            <tr>
              {cols.map(c => (
                <th
                  key={c.key}
                  scope="col"
                  className={`jp-AeroFS-col-${c.key}`}
                  aria-sort={
                    c.sort && q.sort === c.sort
                      ? q.order === 'asc'
                        ? 'ascending'
                        : 'descending'
                      : undefined
                  }
                >
                  {c.sort ? (
                    <button
                      type="button"
                      className="jp-AeroFS-sort"
                      onClick={() => sortBy(c.sort!)}
                    >
                      {c.label}
                      {q.sort === c.sort
                        ? q.order === 'asc'
                          ? ' ▲'
                          : ' ▼'
                        : ''}
                    </button>
                  ) : (
                    c.label
                  )}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {model.jobs.map(job => (
              <JobRow
                key={job.id}
                job={job}
                isAdmin={isAdmin}
                onOpen={() => ctx.openJob(job.id)}
              />
            ))}
          </tbody>
        </table>
      </div>
    );
  }

  return (
    <div className="jp-AeroFS-jobs">
      <div className="jp-AeroFS-filters" role="search" aria-label="Filter jobs">
        <select
          className="jp-mod-styled"
          aria-label="State"
          value={q.state?.[0] ?? ''}
          onChange={e =>
            void model.setQuery({
              state: e.currentTarget.value ? [e.currentTarget.value] : []
            })
          }
        >
          <option value="">All states</option>
          {JOB_STATES.map(s => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <select
          className="jp-mod-styled"
          aria-label="Pipeline"
          value={q.pipeline ?? ''}
          onChange={e =>
            void model.setQuery({ pipeline: e.currentTarget.value })
          }
        >
          <option value="">All pipelines</option>
          {pipelines.map(p => (
            <option key={p.name} value={p.name}>
              {p.title}
            </option>
          ))}
        </select>
        {isAdmin && (
          <input
            className="jp-mod-styled"
            type="search"
            aria-label="Owner"
            placeholder="Owner"
            value={owner}
            onChange={e => setOwner(e.currentTarget.value)}
          />
        )}
        <input
          className="jp-mod-styled jp-AeroFS-search"
          type="search"
          aria-label="Search jobs"
          placeholder="Search id, paths, options…"
          value={text}
          onChange={e => setText(e.currentTarget.value)}
        />
      </div>
      {model.error && model.jobs.length > 0 && (
        <ErrorPanel error={model.error} onRetry={() => void model.refresh()} />
      )}
      {body}
      <nav className="jp-AeroFS-pager" aria-label="Pages">
        <button
          type="button"
          className="jp-AeroFS-button jp-mod-small"
          disabled={q.offset === 0}
          onClick={() =>
            void model.setQuery({ offset: Math.max(0, q.offset - q.limit) })
          }
          aria-label="Previous page"
        >
          ‹ Prev
        </button>
        <span className="jp-AeroFS-pageInfo" aria-live="polite">
          {first}–{last} of {formatCount(model.total)} · page {page}/{pageCount}
        </span>
        <button
          type="button"
          className="jp-AeroFS-button jp-mod-small"
          disabled={q.offset + q.limit >= model.total}
          onClick={() => void model.setQuery({ offset: q.offset + q.limit })}
          aria-label="Next page"
        >
          Next ›
        </button>
        <select
          className="jp-mod-styled"
          aria-label="Jobs per page"
          value={q.limit}
          onChange={e =>
            void model.setQuery({
              limit: Number(e.currentTarget.value),
              offset: 0
            })
          }
        >
          {[25, 50, 100, 200].map(n => (
            <option key={n} value={n}>
              {n} / page
            </option>
          ))}
        </select>
      </nav>
    </div>
  );
}

/** One row; memoised so a live update re-renders only the job that changed. */
const JobRow = React.memo(
  (props: { job: IJob; isAdmin: boolean; onOpen: () => void }): JSX.Element => {
    const { job, isAdmin, onOpen } = props;
    const { src, dst } = srcDst(job);
    const v = volume(job);
    return (
      <tr
        className="jp-AeroFS-row"
        data-job-id={job.id}
        data-state={job.state}
        tabIndex={0}
        aria-label={`Job ${job.id}, ${job.pipeline}, ${job.state}. Press Enter for details.`}
        onClick={onOpen}
        onKeyDown={e => {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            onOpen();
          }
        }}
      >
        <td className="jp-AeroFS-col-pipeline">{job.pipeline}</td>
        <td
          className="jp-AeroFS-paths jp-AeroFS-col-paths"
          title={`${src} → ${dst}`}
        >
          {src} → {dst}
        </td>
        {isAdmin && <td className="jp-AeroFS-col-owner">{job.owner}</td>}
        <td className="jp-AeroFS-stateCell jp-AeroFS-col-state">
          <StateBadge state={job.state} />
          {!isTerminal(job.state) ? (
            <ProgressBar job={job} label={`Job ${job.id} progress`} />
          ) : null}
        </td>
        <td className="jp-AeroFS-col-created_at">
          {formatTime(job.created_at)}
        </td>
        <td className="jp-AeroFS-col-started_at">
          {formatTime(job.started_at)}
        </td>
        <td className="jp-AeroFS-col-finished_at">
          {formatTime(job.finished_at)}
        </td>
        <td className="jp-AeroFS-col-duration">
          {formatDuration(durationSeconds(job))}
        </td>
        <td className="jp-AeroFS-col-volume">
          {formatCount(v.inputs)} / {formatBytes(v.bytes)} /{' '}
          {formatCount(v.rows)}
        </td>
      </tr>
    );
  }
);

function NewJobView(props: {
  ctx: IAeroFSContext;
  prefill: { paths: string[]; n: number } | null;
  onSubmitted: (id: string) => void;
}): JSX.Element {
  const { ctx, prefill } = props;
  const [pipelines, setPipelines] = React.useState<IPipeline[] | null>(null);
  const [loadError, setLoadError] = React.useState<unknown>(null);
  const [name, setName] = React.useState('');
  const [values, setValues] = React.useState<FormValues>({});
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [busy, setBusy] = React.useState(false);
  const [submitted, setSubmitted] = React.useState<{
    id: string;
    state: string;
  } | null>(null);

  const load = () => {
    setLoadError(null);
    listPipelines().then(
      ps => {
        setPipelines(ps);
        if (!name && ps.length) {
          setName(ps[0].name);
        }
      },
      e => setLoadError(e)
    );
  };
  React.useEffect(load, []);

  const pipeline = pipelines?.find(p => p.name === name) ?? null;
  const fields = React.useMemo(
    () => (pipeline ? fieldsFromSchema(pipeline.schema) : []),
    [pipeline]
  );

  // A new pipeline (or a "Process with AeroFS…" request) resets the values.
  React.useEffect(() => {
    const given: Record<string, unknown> = {};
    if (prefill?.paths.length) {
      given.src = prefill.paths.join('\n');
    }
    setValues(initialValues(fields, given));
    setErrors({});
  }, [fields, prefill?.n]);

  if (loadError) {
    return <ErrorPanel error={loadError} onRetry={load} />;
  }
  if (!pipelines) {
    return <div className="jp-AeroFS-empty">Loading pipelines…</div>;
  }
  if (!pipelines.length) {
    return (
      <div className="jp-AeroFS-empty">
        The job server offers no pipeline. Check its configuration.
      </div>
    );
  }

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (!pipeline) {
      return;
    }
    const built = buildParams(fields, values);
    setErrors(built.errors);
    if (Object.keys(built.errors).length) {
      return;
    }
    setBusy(true);
    setSubmitted(null);
    try {
      const res = await submitJob(pipeline.name, built.params);
      setSubmitted(res);
      props.onSubmitted(res.id);
    } catch (err) {
      if (
        err instanceof ApiError &&
        (err.status === 400 || err.status === 422)
      ) {
        setErrors(serverErrorsByField(err.body, fields));
      } else {
        setErrors({ '': (err as Error).message });
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="jp-AeroFS-form"
      onSubmit={submit}
      aria-label="New job"
      noValidate
    >
      <div className="jp-AeroFS-field">
        <label htmlFor="aerofs-pipeline">Pipeline</label>
        <select
          id="aerofs-pipeline"
          className="jp-mod-styled"
          value={name}
          onChange={e => {
            setName(e.currentTarget.value);
            setSubmitted(null);
          }}
        >
          {pipelines.map(p => (
            <option key={p.name} value={p.name}>
              {p.title}
            </option>
          ))}
        </select>
        {pipeline?.description && (
          <div className="jp-AeroFS-fieldDesc">{pipeline.description}</div>
        )}
      </div>
      {errors[''] && (
        <div className="jp-AeroFS-fieldError" role="alert">
          {errors['']}
        </div>
      )}
      <SchemaForm
        fields={fields}
        values={values}
        errors={errors}
        onChange={(path, value) => setValues(v => ({ ...v, [path]: value }))}
        pickPath={f => {
          const sel = ctx.browserSelection();
          if (sel.length) {
            setValues(v => ({ ...v, [f.path]: sel.join('\n') }));
          }
        }}
      />
      <div className="jp-AeroFS-actions">
        <button
          type="submit"
          className="jp-AeroFS-button jp-mod-accept"
          disabled={busy}
        >
          {busy ? 'Submitting…' : 'Submit job'}
        </button>
      </div>
      {submitted && (
        <div className="jp-AeroFS-submitted" role="status">
          Job <code>{submitted.id}</code> submitted ({submitted.state}).{' '}
          <button
            type="button"
            className="jp-AeroFS-link"
            onClick={() => ctx.openJob(submitted.id)}
          >
            Open its details
          </button>
        </div>
      )}
    </form>
  );
}
