/**
 * The dashboard's model: one page of jobs fetched from the server (paging,
 * filters and sorting happen server-side, so 10,000 jobs cost one page),
 * kept live by the event stream.
 */
import { applyUpdates, IJobUpdate } from './events';
import { DEFAULT_QUERY, IJob, IJobPage, IJobQuery } from './models';

export type PageFetcher = (query: IJobQuery) => Promise<IJobPage>;

/** True when a job belongs to the filtered list (used for live inserts). */
export function matchesQuery(job: IJob, query: IJobQuery): boolean {
  if (query.state?.length && !query.state.includes(job.state)) {
    return false;
  }
  if (query.pipeline && job.pipeline !== query.pipeline) {
    return false;
  }
  if (query.owner && job.owner !== query.owner) {
    return false;
  }
  const q = query.q?.trim().toLowerCase();
  if (q) {
    const hay = [
      job.id,
      job.pipeline,
      job.owner,
      JSON.stringify(job.params ?? {})
    ]
      .join(' ')
      .toLowerCase();
    if (!hay.includes(q)) {
      return false;
    }
  }
  return true;
}

export class JobListModel {
  constructor(private readonly fetchPage: PageFetcher) {}

  get query(): IJobQuery {
    return this._query;
  }
  get jobs(): IJob[] {
    return this._page.jobs;
  }
  get total(): number {
    return this._page.total;
  }
  get loading(): boolean {
    return this._loading;
  }
  get error(): Error | null {
    return this._error;
  }
  /** False until the first page has arrived (or failed). */
  get loaded(): boolean {
    return this._loaded;
  }

  onChange(fn: () => void): () => void {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  /** Change filters/sort/page and fetch. Filter changes go back to page one. */
  async setQuery(patch: Partial<IJobQuery>): Promise<void> {
    const filterChanged = [
      'state',
      'pipeline',
      'owner',
      'q',
      'sort',
      'order'
    ].some(k => k in patch && (patch as any)[k] !== (this._query as any)[k]);
    this._query = {
      ...this._query,
      ...patch,
      offset:
        filterChanged && !('offset' in patch)
          ? 0
          : (patch.offset ?? this._query.offset)
    };
    await this.refresh();
  }

  async refresh(): Promise<void> {
    const seq = ++this._seq;
    this._loading = true;
    // Events that arrive while the request is in flight are newer than its
    // answer: keep them and apply them again on top of it.
    this._inFlight = [];
    this._emit();
    try {
      const page = await this.fetchPage(this._query);
      if (seq !== this._seq) {
        return; // a newer request superseded this one
      }
      const since = this._inFlight ?? [];
      this._inFlight = null;
      this._page = since.length
        ? { jobs: applyUpdates(page.jobs, since), total: page.total }
        : page;
      this._error = null;
    } catch (e) {
      if (seq !== this._seq) {
        return;
      }
      this._error = e as Error;
    } finally {
      if (seq === this._seq) {
        this._loading = false;
        this._loaded = true;
        this._emit();
      }
    }
  }

  /**
   * Fold live updates into the page. A job the page does not hold is added
   * at the top only when the page shows the newest jobs first and the job
   * matches the filters; otherwise only the total moves.
   */
  applyUpdates(updates: IJobUpdate[]): void {
    this._inFlight?.push(...updates);
    const q = this._query;
    const newestFirst =
      q.sort === 'created_at' && q.order === 'desc' && q.offset === 0;
    let added = 0;
    const jobs = applyUpdates(this._page.jobs, updates, job => {
      if (this._seen.has(job.id) || !matchesQuery(job, q)) {
        return false;
      }
      this._seen.add(job.id);
      added++;
      return newestFirst;
    });
    for (const j of this._page.jobs) {
      this._seen.add(j.id);
    }
    if (jobs === this._page.jobs && !added) {
      return;
    }
    this._page = {
      jobs: jobs.length > q.limit ? jobs.slice(0, q.limit) : jobs,
      total: this._page.total + added
    };
    this._emit();
  }

  private _emit(): void {
    this._listeners.forEach(fn => fn());
  }

  private _query: IJobQuery = { ...DEFAULT_QUERY };
  private _page: IJobPage = { jobs: [], total: 0 };
  private _loading = false;
  private _loaded = false;
  private _error: Error | null = null;
  private _seq = 0;
  private _inFlight: IJobUpdate[] | null = null;
  private _seen = new Set<string>();
  private _listeners = new Set<() => void>();
}
