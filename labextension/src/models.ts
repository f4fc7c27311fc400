/**
 * The job server's API shapes and the pure helpers the views share. No
 * JupyterLab imports here, so the unit tests run these in plain jsdom.
 */

export const JOB_STATES = [
  'PENDING',
  'QUEUED',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'CANCELLED'
] as const;
export type JobState = (typeof JOB_STATES)[number];

export const TERMINAL_STATES: ReadonlySet<string> = new Set([
  'SUCCEEDED',
  'FAILED',
  'CANCELLED'
]);

/** A JSON Schema (the subset the forms understand; everything else is kept). */
export interface IJSONSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  pattern?: string;
  items?: IJSONSchema;
  properties?: Record<string, IJSONSchema>;
  required?: string[];
  oneOf?: IJSONSchema[];
  anyOf?: IJSONSchema[];
  [key: string]: unknown;
}

export interface IPipeline {
  name: string;
  title: string;
  description: string;
  schema: IJSONSchema;
}

/** Live counters of a job; the server may send any subset. */
export interface IProgress {
  fraction?: number;
  inputs_total?: number;
  inputs_done?: number;
  bytes_total?: number;
  bytes_done?: number;
  rows?: number;
  errors?: number;
  current?: string | null;
  [key: string]: unknown;
}

export interface IProblem {
  path?: string;
  kind?: string;
  message: string;
  line?: number | null;
  offset?: number | null;
}

export interface IOutput {
  name?: string;
  path: string;
  size?: number | null;
  url?: string;
  [key: string]: unknown;
}

export interface ITransition {
  state: string;
  at: string;
  message?: string;
}

export interface IJob {
  id: string;
  pipeline: string;
  params: Record<string, any>;
  owner: string;
  state: JobState | string;
  progress: IProgress | number | null;
  created_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  attempts: number;
  summary: Record<string, any> | null;
  outputs: Array<IOutput | string> | null;
  errors: IProblem[] | null;
  /** State changes with timestamps, when the server sends them. */
  transitions?: ITransition[];
  /** Optional failure reason. */
  error?: string | null;
  [key: string]: unknown;
}

export interface IJobPage {
  jobs: IJob[];
  total: number;
}

export type SortKey =
  | 'created_at'
  | 'started_at'
  | 'finished_at'
  | 'pipeline'
  | 'state'
  | 'owner'
  | 'duration';

export interface IJobQuery {
  state?: string[];
  pipeline?: string;
  owner?: string;
  q?: string;
  sort: SortKey;
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

export const DEFAULT_QUERY: IJobQuery = {
  sort: 'created_at',
  order: 'desc',
  limit: 50,
  offset: 0
};

export interface IStats {
  queue_length?: number;
  workers?: { busy?: number; idle?: number; total?: number } | number;
  workers_busy?: number;
  workers_idle?: number;
  jobs_per_minute?: number;
  failure_rate?: number;
  by_state?: Record<string, number>;
  longest_running?: IJob[];
  [key: string]: unknown;
}

/** The query string the server's `GET jobs` understands. */
export function queryToParams(query: IJobQuery): string {
  const p = new URLSearchParams();
  for (const s of query.state ?? []) {
    p.append('state', s);
  }
  if (query.pipeline) {
    p.set('pipeline', query.pipeline);
  }
  if (query.owner) {
    p.set('owner', query.owner);
  }
  if (query.q && query.q.trim()) {
    p.set('q', query.q.trim());
  }
  p.set('sort', query.sort);
  p.set('order', query.order);
  p.set('limit', String(query.limit));
  p.set('offset', String(query.offset));
  return p.toString();
}

/** Accepts `{jobs, total}`, `{items, total}` or a bare list. */
export function normalizePage(body: any): IJobPage {
  if (Array.isArray(body)) {
    return { jobs: body.map(normalizeJob), total: body.length };
  }
  const list: any[] = body?.jobs ?? body?.items ?? body?.results ?? [];
  const total = Number(body?.total ?? body?.count ?? list.length);
  return { jobs: list.map(normalizeJob), total };
}

/** Fill the fields a view relies on, whatever the server left out. */
export function normalizeJob(raw: any): IJob {
  return {
    ...raw,
    id: String(raw.id),
    pipeline: raw.pipeline ?? '',
    params: raw.params ?? {},
    owner: raw.owner ?? '',
    state: String(raw.state ?? 'PENDING').toUpperCase(),
    progress: raw.progress ?? null,
    created_at: raw.created_at ?? null,
    started_at: raw.started_at ?? null,
    finished_at: raw.finished_at ?? null,
    attempts: Number(raw.attempts ?? 0),
    summary: raw.summary ?? null,
    outputs: raw.outputs ?? null,
    errors: raw.errors ?? null
  };
}

export function isTerminal(state: string): boolean {
  return TERMINAL_STATES.has(state);
}

/** Progress as a number in [0, 1], or null when nothing is known yet. */
export function progressFraction(
  job: Pick<IJob, 'state' | 'progress'>
): number | null {
  if (job.state === 'SUCCEEDED') {
    return 1;
  }
  const p = job.progress;
  if (p === null || p === undefined) {
    return null;
  }
  let f: number | null = null;
  if (typeof p === 'number') {
    f = p > 1 ? p / 100 : p;
  } else if (typeof p.fraction === 'number') {
    f = p.fraction;
  } else if (p.bytes_total && typeof p.bytes_done === 'number') {
    f = p.bytes_done / p.bytes_total;
  } else if (p.inputs_total && typeof p.inputs_done === 'number') {
    f = p.inputs_done / p.inputs_total;
  }
  if (f === null || !Number.isFinite(f)) {
    return null;
  }
  return Math.min(1, Math.max(0, f));
}

function toMillis(t: string | null | undefined): number | null {
  if (!t) {
    return null;
  }
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : ms;
}

/** Seconds between start and finish (or now, while running). */
export function durationSeconds(
  job: IJob,
  now: number = Date.now()
): number | null {
  const start = toMillis(job.started_at);
  if (start === null) {
    return null;
  }
  const end = toMillis(job.finished_at) ?? (isTerminal(job.state) ? null : now);
  if (end === null) {
    return null;
  }
  return Math.max(0, (end - start) / 1000);
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null) {
    return '—';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  }
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) {
    return `${m} min ${s} s`;
  }
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) {
    return '—';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) {
    return '—';
  }
  return n.toLocaleString('en-US');
}

export function formatTime(t: string | null | undefined): string {
  const ms = toMillis(t);
  if (ms === null) {
    return '—';
  }
  const d = new Date(ms);
  const pad = (x: number) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(
    d.getHours()
  )}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function asText(v: unknown): string {
  if (Array.isArray(v)) {
    return v.length === 1 ? String(v[0]) : `${v.length} paths`;
  }
  return v === undefined || v === null || v === '' ? '—' : String(v);
}

/** "src → dst" for the table. */
export function srcDst(job: IJob): { src: string; dst: string } {
  return { src: asText(job.params?.src), dst: asText(job.params?.dst) };
}

/** Inputs / bytes / rows for the table, from live progress or the summary. */
export function volume(job: IJob): {
  inputs: number | null;
  bytes: number | null;
  rows: number | null;
} {
  const p =
    typeof job.progress === 'object' && job.progress ? job.progress : {};
  const s = job.summary ?? {};
  const pick = (...xs: unknown[]): number | null => {
    for (const x of xs) {
      if (typeof x === 'number' && Number.isFinite(x)) {
        return x;
      }
    }
    return null;
  };
  return {
    inputs: pick(s.files, s.images, s.inputs, p.inputs_done, p.inputs_total),
    bytes: pick(s.bytes_in, s.bytes, p.bytes_done, p.bytes_total),
    rows: pick(s.rows, s.requests, s.total_words, p.rows)
  };
}

/** An output's path, whether the server sends strings or objects. */
export function outputPath(o: IOutput | string): string {
  return typeof o === 'string' ? o : o.path;
}

export function outputName(o: IOutput | string): string {
  const p = outputPath(o);
  if (typeof o !== 'string' && o.name) {
    return o.name;
  }
  const parts = p.replace(/\/+$/, '').split('/');
  return parts[parts.length - 1] || p;
}

/**
 * A path the file browser can open: relative to the Jupyter root. Absolute
 * paths under the root are made relative; anything else (s3://, outside the
 * root) returns null.
 */
export function browserPath(path: string, serverRoot: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    return null;
  }
  if (!path.startsWith('/')) {
    return path.replace(/^\.\//, '');
  }
  const root = serverRoot.replace(/\/+$/, '');
  if (root && (path === root || path.startsWith(root + '/'))) {
    return path.slice(root.length + 1);
  }
  return null;
}

/** Python for a new notebook that loads an output with pyarrow or DuckDB. */
export function notebookCode(
  path: string,
  engine: 'pyarrow' | 'duckdb'
): string {
  const lit = JSON.stringify(path);
  const lower = path.toLowerCase();
  if (engine === 'duckdb') {
    const reader = lower.endsWith('.csv')
      ? 'read_csv_auto'
      : lower.endsWith('.json')
        ? 'read_json_auto'
        : 'read_parquet';
    const target =
      lower.endsWith('.parquet') || reader !== 'read_parquet'
        ? path
        : path.replace(/\/?$/, '/**/*.parquet');
    return `import duckdb\n\ncon = duckdb.connect()\nrel = con.sql("SELECT * FROM ${reader}(${JSON.stringify(target).replace(/"/g, "'")})")\nrel.limit(20)`;
  }
  if (lower.endsWith('.json')) {
    return `import json\n\nwith open(${lit}) as f:\n    data = json.load(f)\ndata`;
  }
  if (lower.endsWith('.csv')) {
    return `import pyarrow.csv as pv\n\ntable = pv.read_csv(${lit})\ntable.slice(0, 20).to_pandas()`;
  }
  return `import pyarrow.dataset as ds\n\ntable = ds.dataset(${lit}, format="parquet").to_table()\nprint(table.schema)\ntable.slice(0, 20).to_pandas()`;
}
