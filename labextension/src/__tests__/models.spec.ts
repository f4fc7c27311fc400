import {
  browserPath,
  durationSeconds,
  formatBytes,
  formatDuration,
  IJob,
  normalizeJob,
  normalizePage,
  notebookCode,
  progressFraction,
  queryToParams,
  srcDst,
  volume
} from '../models';

function job(over: Partial<IJob> = {}): IJob {
  return normalizeJob({
    id: 1,
    pipeline: 'csv-to-parquet',
    state: 'RUNNING',
    ...over
  });
}

describe('queryToParams', () => {
  it('sends filters, sort and paging the server understands', () => {
    const qs = queryToParams({
      state: ['RUNNING', 'QUEUED'],
      pipeline: 'exif',
      owner: 'ana',
      q: '  sales ',
      sort: 'started_at',
      order: 'asc',
      limit: 50,
      offset: 100
    });
    const p = new URLSearchParams(qs);
    expect(p.getAll('state')).toEqual(['RUNNING', 'QUEUED']);
    expect(p.get('pipeline')).toBe('exif');
    expect(p.get('owner')).toBe('ana');
    expect(p.get('q')).toBe('sales');
    expect(p.get('sort')).toBe('started_at');
    expect(p.get('order')).toBe('asc');
    expect(p.get('limit')).toBe('50');
    expect(p.get('offset')).toBe('100');
  });

  it('leaves empty filters out', () => {
    const p = new URLSearchParams(
      queryToParams({
        q: '  ',
        sort: 'created_at',
        order: 'desc',
        limit: 25,
        offset: 0
      })
    );
    expect(p.has('q')).toBe(false);
    expect(p.has('state')).toBe(false);
    expect(p.has('owner')).toBe(false);
  });
});

describe('normalizePage / normalizeJob', () => {
  it('reads {jobs, total}, {items, total} and bare lists', () => {
    expect(normalizePage({ jobs: [{ id: 'a' }], total: 9 })).toMatchObject({
      total: 9
    });
    expect(
      normalizePage({ items: [{ id: 'a' }, { id: 'b' }], total: 2 }).jobs.map(
        j => j.id
      )
    ).toEqual(['a', 'b']);
    const bare = normalizePage([{ id: 3 }]);
    expect(bare.total).toBe(1);
    expect(bare.jobs[0].id).toBe('3');
  });

  it('fills missing fields and upper-cases the state', () => {
    const j = normalizeJob({ id: 7, state: 'running' });
    expect(j.state).toBe('RUNNING');
    expect(j.params).toEqual({});
    expect(j.attempts).toBe(0);
    expect(j.outputs).toBeNull();
  });
});

describe('progressFraction', () => {
  it('understands fraction, bytes, inputs, plain numbers and percentages', () => {
    expect(progressFraction(job({ progress: { fraction: 0.25 } }))).toBeCloseTo(
      0.25
    );
    expect(
      progressFraction(job({ progress: { bytes_done: 30, bytes_total: 120 } }))
    ).toBeCloseTo(0.25);
    expect(
      progressFraction(job({ progress: { inputs_done: 1, inputs_total: 4 } }))
    ).toBeCloseTo(0.25);
    expect(progressFraction(job({ progress: 0.5 }))).toBeCloseTo(0.5);
    expect(progressFraction(job({ progress: 75 }))).toBeCloseTo(0.75);
  });

  it('prefers bytes over inputs (one huge file has one input)', () => {
    expect(
      progressFraction(
        job({
          progress: {
            inputs_done: 0,
            inputs_total: 1,
            bytes_done: 50,
            bytes_total: 100
          }
        })
      )
    ).toBeCloseTo(0.5);
  });

  it('is 1 for a succeeded job, null when unknown, and clamped', () => {
    expect(progressFraction(job({ state: 'SUCCEEDED', progress: null }))).toBe(
      1
    );
    expect(progressFraction(job({ progress: null }))).toBeNull();
    expect(
      progressFraction(job({ progress: { bytes_total: 0, bytes_done: 0 } }))
    ).toBeNull();
    expect(progressFraction(job({ progress: { fraction: 1.7 } }))).toBe(1);
  });
});

describe('durations and formatting', () => {
  it('measures finished jobs between start and finish', () => {
    const j = job({
      state: 'SUCCEEDED',
      started_at: '2026-01-01T00:00:00Z',
      finished_at: '2026-01-01T00:01:30Z'
    });
    expect(durationSeconds(j)).toBe(90);
    expect(formatDuration(90)).toBe('1 min 30 s');
  });

  it('measures running jobs up to now, and nothing before start', () => {
    const j = job({ started_at: '2026-01-01T00:00:00Z' });
    expect(durationSeconds(j, Date.parse('2026-01-01T00:00:05Z'))).toBe(5);
    expect(durationSeconds(job({ started_at: null }))).toBeNull();
    expect(formatDuration(null)).toBe('—');
  });

  it('formats bytes in SI units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1_500_000)).toBe('1.5 MB');
    expect(formatBytes(5_000_000_000)).toBe('5.0 GB');
    expect(formatBytes(undefined)).toBe('—');
  });
});

describe('srcDst and volume', () => {
  it('shows lists of sources by count', () => {
    expect(
      srcDst(job({ params: { src: ['a.csv', 'b.csv'], dst: 'out/' } }))
    ).toEqual({
      src: '2 paths',
      dst: 'out/'
    });
    expect(srcDst(job({ params: { src: 's3://b/p/' } })).dst).toBe('—');
  });

  it('takes inputs/bytes/rows from the summary, else from live progress', () => {
    expect(
      volume(job({ summary: { files: 3, bytes_in: 10, rows: 99 } }))
    ).toEqual({ inputs: 3, bytes: 10, rows: 99 });
    expect(
      volume(job({ progress: { inputs_done: 1, bytes_done: 5, rows: 7 } }))
    ).toEqual({
      inputs: 1,
      bytes: 5,
      rows: 7
    });
  });
});

describe('browserPath', () => {
  it('makes absolute paths under the root relative, and refuses the rest', () => {
    expect(browserPath('/home/u/work/out/a.parquet', '/home/u/work')).toBe(
      'out/a.parquet'
    );
    expect(browserPath('/home/u/work/out/a.parquet', '/home/u/work/')).toBe(
      'out/a.parquet'
    );
    expect(browserPath('/elsewhere/a.parquet', '/home/u/work')).toBeNull();
    expect(browserPath('/home/u/workshop/a', '/home/u/work')).toBeNull();
    expect(browserPath('s3://bucket/a.parquet', '/home/u/work')).toBeNull();
    expect(browserPath('./out/a.parquet', '')).toBe('out/a.parquet');
  });
});

describe('notebookCode', () => {
  it('loads Parquet with pyarrow and DuckDB', () => {
    expect(notebookCode('/d/out.parquet', 'pyarrow')).toContain(
      'ds.dataset("/d/out.parquet", format="parquet")'
    );
    expect(notebookCode('/d/out.parquet', 'duckdb')).toContain(
      "read_parquet('/d/out.parquet')"
    );
    expect(notebookCode('/d/outdir', 'duckdb')).toContain(
      "read_parquet('/d/outdir/**/*.parquet')"
    );
    expect(notebookCode('/d/summary.json', 'pyarrow')).toContain('json.load');
  });
});
