/**
 * Live job updates over the WebSocket: message parsing, the reducer that
 * folds updates into a list of jobs, and a connection that reconnects with
 * backoff and catches up from the last event id it saw.
 */
import { IJob, normalizeJob } from './models';

/** One job update from the server: the changed fields of one job. */
export interface IJobUpdate {
  eventId: string | number | null;
  job: Partial<IJob> & { id: string };
}

/**
 * Parse one WebSocket message. Accepts `{event_id, job: {...}}`,
 * `{event_id, job_id, state, progress, ...}` and lists of either; ignores
 * keep-alives and anything without a job id.
 */
export function parseEvents(data: string): IJobUpdate[] {
  let msg: any;
  try {
    msg = JSON.parse(data);
  } catch {
    return [];
  }
  const list: any[] = Array.isArray(msg)
    ? msg
    : Array.isArray(msg?.events)
      ? msg.events
      : [msg];
  const out: IJobUpdate[] = [];
  for (const m of list) {
    if (!m || typeof m !== 'object') {
      continue;
    }
    const eventId =
      m.event_id ??
      m.seq ??
      (m.job || m.job_id !== undefined ? m.id : null) ??
      null;
    let job: any = null;
    if (m.job && typeof m.job === 'object' && m.job.id !== undefined) {
      job = { ...m.job };
    } else if (m.job_id !== undefined) {
      // A flat event row: {id, job_id, type, data: {...}, at}.
      const { job_id, event_id, seq, type, data, at, id, ...rest } = m; // eslint-disable-line @typescript-eslint/no-unused-vars
      job = { ...rest };
      if (data && typeof data === 'object') {
        if (type === 'progress' && !('progress' in data)) {
          job.progress = data;
        } else if (type !== 'log') {
          Object.assign(job, data);
        }
      }
      if (type === 'log') {
        // A log line says nothing about the job's fields.
        job = { id: job_id };
      }
      job.id = job_id;
    }
    if (!job) {
      continue;
    }
    job.id = String(job.id);
    if (typeof job.state === 'string') {
      job.state = job.state.toUpperCase();
    }
    out.push({ eventId, job });
  }
  return out;
}

/** The `last_event_id` of the server's greeting, or null for other messages. */
export function helloEventId(data: string): number | string | null {
  if (!data.includes('hello')) {
    return null;
  }
  try {
    const m = JSON.parse(data);
    return m?.type === 'hello' &&
      m.last_event_id !== undefined &&
      m.last_event_id !== null
      ? m.last_event_id
      : null;
  } catch {
    return null;
  }
}

/** Merge an update into a job; a stale update never moves a finished job back. */
export function mergeJob(old: IJob, update: Partial<IJob>): IJob {
  const merged = { ...old, ...update } as IJob;
  const finished = ['SUCCEEDED', 'FAILED', 'CANCELLED'];
  if (
    finished.includes(old.state) &&
    update.state &&
    !finished.includes(update.state)
  ) {
    // A retry is a new attempt: it has a higher attempt count.
    if (!(
      typeof update.attempts === 'number' && update.attempts > old.attempts
    )) {
      merged.state = old.state;
      merged.finished_at = old.finished_at;
    }
  }
  return merged;
}

/**
 * Fold updates into a list of jobs. Known jobs are updated in place;
 * `onUnknown` decides what to do with jobs the list does not hold (return
 * true to prepend them). Returns the same array when nothing changed.
 */
export function applyUpdates(
  jobs: IJob[],
  updates: IJobUpdate[],
  onUnknown: (job: IJob) => boolean = () => false
): IJob[] {
  let out = jobs;
  for (const { job } of updates) {
    const i = out.findIndex(j => j.id === job.id);
    if (i >= 0) {
      if (out === jobs) {
        out = jobs.slice();
      }
      out[i] = mergeJob(out[i], job);
    } else {
      const full = normalizeJob(job);
      if (onUnknown(full)) {
        out = [full, ...out];
      }
    }
  }
  return out;
}

/** Exponential backoff with full jitter, capped. */
export function backoffDelay(
  attempt: number,
  base = 500,
  cap = 30000,
  random: () => number = Math.random
): number {
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface ISocketLike {
  onopen: any;
  onmessage: any;
  onclose: any;
  onerror: any;
  close(): void;
}

/**
 * A WebSocket that stays connected: on close it waits (backoff) and opens a
 * new one with `since=<last event id>`, so no update is lost in the gap.
 */
export class EventStream {
  constructor(
    private readonly open: (since: string | number | null) => ISocketLike,
    private readonly schedule: (fn: () => void, ms: number) => any = (fn, ms) =>
      setTimeout(fn, ms),
    private readonly cancel: (handle: any) => void = h => clearTimeout(h)
  ) {}

  get state(): ConnectionState {
    return this._state;
  }

  get lastEventId(): string | number | null {
    return this._lastEventId;
  }

  /** Listen to job updates; returns a function that removes the listener. */
  onUpdates(fn: (updates: IJobUpdate[]) => void): () => void {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  /** Listen to connection state changes (open, closed, reconnecting). */
  onState(fn: (state: ConnectionState) => void): () => void {
    this._stateListeners.add(fn);
    return () => this._stateListeners.delete(fn);
  }

  /** Listen to reconnections (after a gap, views may want to refetch). */
  onReconnect(fn: () => void): () => void {
    this._reconnectListeners.add(fn);
    return () => this._reconnectListeners.delete(fn);
  }

  connect(): void {
    if (this._disposed || this._socket) {
      return;
    }
    this._setState('connecting');
    let socket: ISocketLike;
    try {
      socket = this.open(this._lastEventId);
    } catch {
      this._retry();
      return;
    }
    this._socket = socket;
    socket.onopen = () => {
      const wasReconnect = this._everOpened;
      this._attempt = 0;
      this._everOpened = true;
      this._setState('open');
      if (wasReconnect) {
        this._reconnectListeners.forEach(fn => fn());
      }
    };
    socket.onmessage = (ev: { data: unknown }) => {
      const text = String(ev.data);
      const hello = helloEventId(text);
      if (hello !== null) {
        // Where the server's log stands (after any replay): resume from here.
        this._lastEventId = hello;
        return;
      }
      const updates = parseEvents(text);
      if (!updates.length) {
        return;
      }
      for (const u of updates) {
        if (u.eventId !== null && u.eventId !== undefined) {
          this._lastEventId = u.eventId;
        }
      }
      this._listeners.forEach(fn => fn(updates));
    };
    socket.onerror = () => {
      /* onclose follows */
    };
    socket.onclose = () => {
      if (this._socket === socket) {
        this._socket = null;
        this._retry();
      }
    };
  }

  dispose(): void {
    this._disposed = true;
    if (this._timer !== null) {
      this.cancel(this._timer);
      this._timer = null;
    }
    const s = this._socket;
    this._socket = null;
    s?.close();
    this._setState('closed');
    this._listeners.clear();
    this._stateListeners.clear();
    this._reconnectListeners.clear();
  }

  private _retry(): void {
    if (this._disposed) {
      return;
    }
    this._setState('closed');
    const delay = backoffDelay(this._attempt++);
    this._timer = this.schedule(() => {
      this._timer = null;
      this.connect();
    }, delay);
  }

  private _setState(s: ConnectionState): void {
    if (s !== this._state) {
      this._state = s;
      this._stateListeners.forEach(fn => fn(s));
    }
  }

  private _socket: ISocketLike | null = null;
  private _state: ConnectionState = 'closed';
  private _lastEventId: string | number | null = null;
  private _attempt = 0;
  private _everOpened = false;
  private _timer: any = null;
  private _disposed = false;
  private _listeners = new Set<(u: IJobUpdate[]) => void>();
  private _stateListeners = new Set<(s: ConnectionState) => void>();
  private _reconnectListeners = new Set<() => void>();
}
