import { IJob, IJobPage, IJobQuery, normalizeJob } from '../models';
import { JobListModel, matchesQuery } from '../store';

function makeJobs(n: number): IJob[] {
  return Array.from({ length: n }, (_, i) =>
    normalizeJob({
      id: `j${i}`,
      pipeline: i % 2 ? 'exif' : 'csv-to-parquet',
      owner: i % 3 ? 'ana' : 'bo',
      state: 'QUEUED'
    })
  );
}

/** A fake server holding `all` jobs, paging like the real one. */
function server(all: IJob[]) {
  const calls: IJobQuery[] = [];
  const fetch = async (q: IJobQuery): Promise<IJobPage> => {
    calls.push(q);
    const hits = all.filter(j => matchesQuery(j, q));
    return {
      jobs: hits.slice(q.offset, q.offset + q.limit),
      total: hits.length
    };
  };
  return { fetch, calls };
}

describe('JobListModel', () => {
  it('holds one page of 10,000 jobs and pages server-side', async () => {
    const s = server(makeJobs(10000));
    const m = new JobListModel(s.fetch);
    await m.refresh();
    expect(m.jobs).toHaveLength(50);
    expect(m.total).toBe(10000);
    await m.setQuery({ offset: 9950 });
    expect(m.jobs[0].id).toBe('j9950');
    expect(s.calls[s.calls.length - 1].offset).toBe(9950);
  });

  it('goes back to the first page when a filter changes', async () => {
    const s = server(makeJobs(500));
    const m = new JobListModel(s.fetch);
    await m.setQuery({ offset: 200 });
    await m.setQuery({ pipeline: 'exif' });
    expect(m.query.offset).toBe(0);
    expect(m.total).toBe(250);
    expect(m.jobs.every(j => j.pipeline === 'exif')).toBe(true);
  });

  it('keeps the newest answer when requests race', async () => {
    let release: (p: IJobPage) => void = () => undefined;
    const slow = new Promise<IJobPage>(r => (release = r));
    let n = 0;
    const m = new JobListModel(() =>
      n++ === 0 ? slow : Promise.resolve({ jobs: makeJobs(2), total: 2 })
    );
    const first = m.refresh();
    await m.refresh();
    release({ jobs: makeJobs(7), total: 7 });
    await first;
    expect(m.total).toBe(2);
  });

  it('does not let a page fetched before an event undo that event', async () => {
    let release: (p: IJobPage) => void = () => undefined;
    const m = new JobListModel(() => new Promise<IJobPage>(r => (release = r)));
    const loading = m.refresh();
    // The answer was computed while the job was RUNNING; SUCCEEDED arrives first.
    m.applyUpdates([
      { eventId: 9, job: { id: 'j1', state: 'SUCCEEDED', attempts: 1 } }
    ]);
    release({
      jobs: [normalizeJob({ id: 'j1', state: 'RUNNING', attempts: 1 })],
      total: 1
    });
    await loading;
    expect(m.jobs[0].state).toBe('SUCCEEDED');
  });

  it('keeps the error and the last page when the server fails', async () => {
    let fail = false;
    const m = new JobListModel(async () => {
      if (fail) {
        throw new Error('down');
      }
      return { jobs: makeJobs(3), total: 3 };
    });
    await m.refresh();
    fail = true;
    await m.refresh();
    expect(m.error?.message).toBe('down');
    expect(m.jobs).toHaveLength(3);
  });

  it('applies live updates to the page and inserts new matching jobs on top', async () => {
    const s = server(makeJobs(3));
    const m = new JobListModel(s.fetch);
    await m.refresh();
    let changes = 0;
    m.onChange(() => changes++);
    m.applyUpdates([
      {
        eventId: 1,
        job: { id: 'j1', state: 'RUNNING', progress: { fraction: 0.4 } }
      }
    ]);
    expect(m.jobs.find(j => j.id === 'j1')?.state).toBe('RUNNING');
    m.applyUpdates([
      {
        eventId: 2,
        job: { id: 'new', pipeline: 'exif', state: 'PENDING', owner: 'ana' }
      }
    ]);
    expect(m.jobs[0].id).toBe('new');
    expect(m.total).toBe(4);
    // The same new job again (a second event) is not counted twice.
    m.applyUpdates([{ eventId: 3, job: { id: 'new', state: 'QUEUED' } }]);
    expect(m.total).toBe(4);
    expect(m.jobs[0].state).toBe('QUEUED');
    // Updates for jobs on no page and not matching cause no re-render.
    const before = changes;
    await m.setQuery({ pipeline: 'csv-to-parquet' });
    const afterQuery = changes;
    m.applyUpdates([
      { eventId: 4, job: { id: 'other', pipeline: 'exif', state: 'PENDING' } }
    ]);
    expect(changes).toBe(afterQuery);
    expect(afterQuery).toBeGreaterThan(before);
  });

  it('does not insert into a page that is not the newest-first first page', async () => {
    const s = server(makeJobs(120));
    const m = new JobListModel(s.fetch);
    await m.setQuery({ offset: 50 });
    m.applyUpdates([
      { eventId: 1, job: { id: 'x', pipeline: 'exif', state: 'PENDING' } }
    ]);
    expect(m.jobs.some(j => j.id === 'x')).toBe(false);
    expect(m.total).toBe(121);
  });

  it('caps the page at the page size when jobs arrive', async () => {
    const s = server(makeJobs(60));
    const m = new JobListModel(s.fetch);
    await m.refresh();
    m.applyUpdates([
      { eventId: 1, job: { id: 'y', pipeline: 'exif', state: 'PENDING' } }
    ]);
    expect(m.jobs).toHaveLength(50);
    expect(m.jobs[0].id).toBe('y');
  });
});

describe('matchesQuery', () => {
  const j = normalizeJob({
    id: '42',
    pipeline: 'exif',
    owner: 'ana',
    state: 'FAILED',
    params: { src: '/photos/2024' }
  });
  it('filters by state, pipeline, owner and text in params', () => {
    expect(
      matchesQuery(j, {
        sort: 'created_at',
        order: 'desc',
        limit: 5,
        offset: 0,
        state: ['FAILED']
      })
    ).toBe(true);
    expect(
      matchesQuery(j, {
        sort: 'created_at',
        order: 'desc',
        limit: 5,
        offset: 0,
        state: ['RUNNING']
      })
    ).toBe(false);
    expect(
      matchesQuery(j, {
        sort: 'created_at',
        order: 'desc',
        limit: 5,
        offset: 0,
        owner: 'bo'
      })
    ).toBe(false);
    expect(
      matchesQuery(j, {
        sort: 'created_at',
        order: 'desc',
        limit: 5,
        offset: 0,
        q: 'PHOTOS/2024'
      })
    ).toBe(true);
    expect(
      matchesQuery(j, {
        sort: 'created_at',
        order: 'desc',
        limit: 5,
        offset: 0,
        q: 'nope'
      })
    ).toBe(false);
  });
});
