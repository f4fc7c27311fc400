/**
 * The sidebar against a scripted API (Playwright routes for REST and the
 * WebSocket): live updates pushed at a known moment, a reconnect that
 * catches up from the last event id, 10,000 jobs paged server-side, the
 * admin view and server validation messages by field. Runs with or without
 * the real job server (the routes answer before it).
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import * as fs from 'fs';
import * as path from 'path';

// Each test installs its scripted API before it loads JupyterLab (page.goto()):
// an automatic first load would only be thrown away.
test.use({ autoGoto: false });

const SHOTS = path.resolve(__dirname, '..', 'test-results', 'screenshots');
const N = 10000;
const T0 = Date.parse('2026-11-28T09:00:00Z');

function job(i: number): any {
  const states = ['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
  const pipelines = ['csv-to-parquet', 'exif', 'word-count', 'log-sessions'];
  const created = new Date(T0 + i * 60000).toISOString();
  return {
    id: String(i),
    pipeline: pipelines[i % 4],
    params: { src: `/data/in/batch-${i}/`, dst: `/data/out/batch-${i}/` },
    owner: ['ana', 'bo', 'chen'][i % 3],
    state: states[i % 5],
    progress: { fraction: 1 },
    created_at: created,
    started_at: new Date(T0 + i * 60000 + 2000).toISOString(),
    finished_at: new Date(
      T0 + i * 60000 + 2000 + (i % 50) * 1000
    ).toISOString(),
    attempts: 1,
    summary: {
      files: (i % 9) + 1,
      bytes_in: 1_000_000 * ((i % 90) + 1),
      rows: 25_000 * ((i % 40) + 1)
    },
    outputs: [],
    errors: []
  };
}

const SCHEMA = {
  type: 'object',
  required: ['src', 'dst'],
  properties: {
    src: {
      anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
      description: 'CSV files'
    },
    dst: { type: 'string', description: 'Output folder' },
    compression: { enum: ['zstd', 'snappy', 'lz4', 'none'], default: 'zstd' },
    row_group_size: { type: 'integer', minimum: 1, default: 1048576 }
  }
};

interface IScript {
  jobs: any[];
  queries: URLSearchParams[];
  sockets: Array<{
    url: string;
    send: (m: unknown) => void;
    close: () => void;
  }>;
  posted: any[];
  cancelled: string[];
  logs: string[];
}

async function script(page: IJupyterLabPageFixture): Promise<IScript> {
  const s: IScript = {
    jobs: Array.from({ length: N }, (_, i) => job(i)),
    queries: [],
    sockets: [],
    posted: [],
    cancelled: [],
    logs: []
  };
  await page.route('**/aerofs/api/**', async route => {
    const url = new URL(route.request().url());
    const p = url.pathname.replace(/^.*aerofs\/api\//, '');
    const method = route.request().method();
    const json = (body: unknown, status = 200) =>
      route.fulfill({
        status,
        contentType: 'application/json',
        body: JSON.stringify(body)
      });
    if (p === 'pipelines') {
      return json({
        pipelines: [
          {
            name: 'csv-to-parquet',
            title: 'CSV to Parquet',
            description: 'Convert',
            schema: SCHEMA
          }
        ]
      });
    }
    if (p === 'stats') {
      return json({
        queue_length: 4,
        workers: { busy: 2, idle: 1 },
        jobs_per_minute: 12.5,
        failure_rate: 0.2,
        longest_running: [
          { ...job(9999), id: 'long-1', state: 'RUNNING', finished_at: null }
        ]
      });
    }
    const m = /^jobs\/([^/]+)(?:\/(logs|outputs|retry)(?:\/(\d+))?)?$/.exec(p);
    if (m) {
      const j = s.jobs.find(x => x.id === m[1]);
      if (!j) {
        return json({ message: `no job ${m[1]}` }, 404);
      }
      if (!m[2] && method === 'DELETE') {
        s.cancelled.push(j.id);
        return json({ id: j.id, state: j.state }, 202);
      }
      if (m[2] === 'retry') {
        return json({ id: j.id, state: 'QUEUED' }, 202);
      }
      if (m[2] === 'logs') {
        return route.fulfill({
          status: 200,
          contentType: 'text/plain',
          body: s.logs.join('\n')
        });
      }
      if (m[2] === 'outputs' && url.searchParams.get('path')) {
        if (url.searchParams.get('path') !== '/data/out/a.parquet') {
          return json({ message: 'not an output of this job' }, 404);
        }
        return route.fulfill({
          status: 200,
          contentType: 'application/octet-stream',
          body: Buffer.from('PAR1-scripted-PAR1')
        });
      }
      if (m[2] === 'outputs') {
        return json({
          outputs: (j.outputs ?? []).map((o: string) => ({ path: o, size: 18 }))
        });
      }
      return json(j);
    }
    if (p === 'jobs' && method === 'POST') {
      const body = route.request().postDataJSON();
      s.posted.push(body);
      if (!body.params.dst.startsWith('/')) {
        return json(
          {
            message: 'invalid params',
            errors: [
              { path: 'params.dst', message: 'must be an absolute path' }
            ]
          },
          400
        );
      }
      return json({ id: 'new-1', state: 'PENDING' }, 202);
    }
    if (p === 'jobs') {
      const q = url.searchParams;
      s.queries.push(q);
      let list = s.jobs.filter(
        j =>
          (!q.getAll('state').length || q.getAll('state').includes(j.state)) &&
          (!q.get('pipeline') || j.pipeline === q.get('pipeline')) &&
          (!q.get('q') || JSON.stringify(j).includes(q.get('q')!))
      );
      const key = q.get('sort') ?? 'created_at';
      const dir = q.get('order') === 'asc' ? 1 : -1;
      list = list
        .slice()
        .sort((a, b) => (a[key] < b[key] ? -dir : a[key] > b[key] ? dir : 0));
      const offset = Number(q.get('offset') ?? 0);
      const limit = Number(q.get('limit') ?? 50);
      return json({
        jobs: list.slice(offset, offset + limit),
        total: list.length
      });
    }
    return json({ message: 'not found' }, 404);
  });
  await page.routeWebSocket(/aerofs\/api\/events/, ws => {
    s.sockets.push({
      url: ws.url(),
      send: m => ws.send(JSON.stringify(m)),
      close: () => ws.close()
    });
  });
  return s;
}

async function widenLeftPanel(
  page: IJupyterLabPageFixture,
  by: number
): Promise<void> {
  const handle = page
    .locator('#jp-main-split-panel > .lm-SplitPanel-handle')
    .first();
  const box = await handle.boundingBox();
  if (!box) {
    return;
  }
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + by, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
}

async function openSidebar(page: IJupyterLabPageFixture): Promise<void> {
  await page.sidebar.openTab('aerofs-sidebar');
  await expect(page.locator('#aerofs-sidebar')).toBeVisible();
}

test('pages 10,000 jobs server-side, sorts, filters and shows live updates', async ({
  page
}) => {
  const s = await script(page);
  await page.goto();
  await openSidebar(page);
  // Narrow, the sidebar shows fewer columns; widened, all of them.
  await expect(
    page.locator('#aerofs-sidebar th.jp-AeroFS-col-created_at')
  ).toBeHidden();
  await widenLeftPanel(page, 800);
  await expect(
    page.locator('#aerofs-sidebar th.jp-AeroFS-col-started_at')
  ).toBeVisible();
  const rows = page.locator('#aerofs-sidebar tbody tr');
  await expect(rows).toHaveCount(50);
  await expect(page.locator('.jp-AeroFS-pager')).toContainText(
    '1–50 of 10,000'
  );
  await expect(rows.first()).toHaveAttribute('data-job-id', String(N - 1)); // newest first

  // Paging is one request per page, whatever the total.
  const before = s.queries.length;
  await page.getByRole('button', { name: 'Next page' }).click();
  await expect(page.locator('.jp-AeroFS-pager')).toContainText(
    '51–100 of 10,000'
  );
  expect(s.queries.length).toBe(before + 1);
  expect(s.queries[s.queries.length - 1].get('offset')).toBe('50');

  // 200 rows per page render quickly.
  const t = Date.now();
  await page.getByLabel('Jobs per page').selectOption('200');
  await expect(rows).toHaveCount(200);
  const ms = Date.now() - t;
  console.log(`200 of 10,000 jobs rendered in ${ms} ms`);
  expect(ms).toBeLessThan(5000);

  // Filters and sorting go to the server.
  await page.getByLabel('State').selectOption('FAILED');
  await expect(page.locator('.jp-AeroFS-pager')).toContainText('of 2,000');
  await expect(rows.first()).toHaveAttribute('data-state', 'FAILED');
  await page.locator('.jp-AeroFS-sort', { hasText: 'Submitted' }).click();
  await expect(rows.first()).toHaveAttribute('data-job-id', '3');
  await page.getByLabel('State').selectOption('');
  await page.locator('.jp-AeroFS-sort', { hasText: 'Submitted' }).click();
  await expect(rows.first()).toHaveAttribute('data-job-id', String(N - 1));

  // Live: a new job appears on top and moves to SUCCEEDED, with no request.
  await expect.poll(() => s.sockets.length).toBeGreaterThan(0);
  await expect(page.locator('.jp-AeroFS-live')).toHaveText('Live');
  const ws = s.sockets[s.sockets.length - 1];
  // What the server pushes, it also answers afterwards (a refetch sees the same state).
  const push = (sock: { send: (m: unknown) => void }, m: any) => {
    const patch = m.job ?? { ...m, id: m.job_id };
    const i = s.jobs.findIndex(j => j.id === patch.id);
    if (i >= 0) {
      s.jobs[i] = { ...s.jobs[i], ...patch };
    } else {
      s.jobs.push({ ...patch });
    }
    sock.send(m);
  };
  const requests = s.queries.length;
  const fresh: any = {
    ...job(N),
    id: 'live-1',
    state: 'PENDING',
    started_at: null,
    finished_at: null,
    progress: null,
    summary: null
  };
  push(ws, { event_id: 101, job: fresh });
  const live = page.locator('tr[data-job-id="live-1"]');
  await expect(live).toHaveAttribute('data-state', 'PENDING');
  await expect(page.locator('.jp-AeroFS-pager')).toContainText('of 10,001');
  push(ws, {
    event_id: 102,
    job_id: 'live-1',
    state: 'RUNNING',
    started_at: new Date().toISOString(),
    progress: { bytes_done: 30, bytes_total: 100 }
  });
  await expect(live).toHaveAttribute('data-state', 'RUNNING');
  await expect(live.getByRole('progressbar')).toHaveAttribute(
    'aria-valuenow',
    '30'
  );
  push(ws, {
    event_id: 103,
    job_id: 'live-1',
    progress: { bytes_done: 75, bytes_total: 100 }
  });
  await expect(live.getByRole('progressbar')).toHaveAttribute(
    'aria-valuenow',
    '75'
  );
  expect(s.queries.length).toBe(requests);

  // The socket drops: the sidebar says so, reconnects with since=<last event id>, and refetches.
  ws.close();
  await expect(page.locator('.jp-AeroFS-live')).not.toHaveText('Live');
  await expect
    .poll(() => s.sockets.length, { timeout: 15000 })
    .toBeGreaterThan(1);
  expect(
    new URL(s.sockets[s.sockets.length - 1].url).searchParams.get('since')
  ).toBe('103');
  await expect(page.locator('.jp-AeroFS-live')).toHaveText('Live');
  push(s.sockets[s.sockets.length - 1], {
    event_id: 104,
    job_id: 'live-1',
    state: 'SUCCEEDED',
    finished_at: new Date().toISOString(),
    summary: { files: 3, bytes_in: 4_200_000, rows: 120_000 }
  });
  await expect(live).toHaveAttribute('data-state', 'SUCCEEDED');
  await expect(live).toContainText('4.2 MB');

  await page.getByLabel('Jobs per page').selectOption('25');
  fs.mkdirSync(SHOTS, { recursive: true });
  await page
    .locator('#aerofs-sidebar')
    .screenshot({ path: path.join(SHOTS, 'sidebar-scripted.png') });
});

test('admin view: queue, workers, throughput, failure rate, longest runs', async ({
  page
}) => {
  await script(page);
  await page.goto();
  await openSidebar(page);
  await page.getByRole('tab', { name: 'Admin', exact: true }).click();
  const admin = page.locator('.jp-AeroFS-admin');
  await expect(
    admin.getByRole('group', { name: 'Queue length' })
  ).toContainText('4');
  await expect(
    admin.getByRole('group', { name: 'Workers busy' })
  ).toContainText('2');
  await expect(
    admin.getByRole('group', { name: 'Workers idle' })
  ).toContainText('1');
  await expect(
    admin.getByRole('group', { name: 'Jobs per minute' })
  ).toContainText('12.5');
  await expect(
    admin.getByRole('group', { name: 'Failure rate' })
  ).toContainText('20.0 %');
  await expect(admin.locator('tbody tr')).toContainText(['long-1']);
  // The owner column shows for administrators.
  await widenLeftPanel(page, 800);
  await page.getByRole('tab', { name: 'Jobs', exact: true }).click();
  await expect(
    page.locator('#aerofs-sidebar th', { hasText: 'Owner' })
  ).toBeVisible();
  // Keyboard: arrows move between the tabs.
  await page.getByRole('tab', { name: 'Jobs', exact: true }).focus();
  await page.keyboard.press('ArrowRight');
  await expect(
    page.getByRole('tab', { name: 'New job', exact: true })
  ).toHaveAttribute('aria-selected', 'true');
});

test('shows the server validation message next to its field', async ({
  page
}) => {
  const s = await script(page);
  await page.goto();
  await openSidebar(page);
  await page.getByRole('tab', { name: 'New job', exact: true }).click();
  await page.getByRole('button', { name: 'Submit job' }).click();
  await expect(page.locator('#aerofs-field-src-err')).toHaveText(/required/);
  expect(s.posted).toHaveLength(0);
  await page.locator('#aerofs-field-src').fill('/data/in');
  await page.locator('#aerofs-field-dst').fill('relative/out');
  await page.getByRole('button', { name: 'Submit job' }).click();
  await expect(page.locator('#aerofs-field-dst-err')).toHaveText(
    'must be an absolute path'
  );
  await expect(page.locator('#aerofs-field-dst')).toHaveAttribute(
    'aria-invalid',
    'true'
  );
  expect(s.posted[0]).toEqual({
    pipeline: 'csv-to-parquet',
    params: { src: '/data/in', dst: 'relative/out' }
  });
  await page.locator('#aerofs-field-dst').fill('/data/out');
  await page.getByRole('button', { name: 'Submit job' }).click();
  await expect(page.locator('.jp-AeroFS-submitted')).toContainText('new-1');
});

test('job detail: timeline, live progress, errors, streaming logs, outputs, cancel', async ({
  page
}) => {
  const s = await script(page);
  const started = new Date(Date.now() - 5000).toISOString();
  s.jobs.push({
    ...job(1),
    id: 'run-1',
    pipeline: 'csv-to-parquet',
    state: 'RUNNING',
    started_at: started,
    finished_at: null,
    summary: null,
    outputs: [],
    progress: {
      inputs_done: 1,
      inputs_total: 4,
      bytes_done: 100,
      bytes_total: 400,
      rows: 5000
    },
    errors: [
      {
        path: '/data/in/bad.csv',
        kind: 'input',
        message: 'unterminated quote',
        line: 17,
        offset: 1234
      }
    ]
  });
  s.logs.push('started 4 inputs');
  await page.goto();
  await openSidebar(page);
  await expect.poll(() => s.sockets.length).toBeGreaterThan(0);
  await page.evaluate(async () => {
    await (window as any).jupyterapp.commands.execute('aerofs:open-job', {
      id: 'run-1'
    });
  });
  const detail = page.locator('.jp-AeroFS-detailInner[data-job-id="run-1"]');
  await expect(detail).toHaveAttribute('data-state', 'RUNNING');
  await expect(detail.getByRole('progressbar')).toHaveAttribute(
    'aria-valuenow',
    '25'
  );
  await expect(detail.locator('.jp-AeroFS-counters')).toContainText(
    'inputs 1/4'
  );
  await expect(detail.locator('section[aria-label="Errors"]')).toContainText(
    'unterminated quote'
  );
  await expect(detail.locator('section[aria-label="Errors"]')).toContainText(
    'line 17 byte 1234'
  );
  await expect(detail.locator('.jp-AeroFS-logs')).toContainText(
    'started 4 inputs'
  );
  // Logs stream while the job runs.
  s.logs.push('input 2/4 done');
  await expect(detail.locator('.jp-AeroFS-logs')).toContainText(
    'input 2/4 done',
    { timeout: 10000 }
  );
  // Live progress from the socket.
  const ws = s.sockets[s.sockets.length - 1];
  ws.send({
    event_id: 7,
    job_id: 'run-1',
    progress: {
      inputs_done: 3,
      inputs_total: 4,
      bytes_done: 300,
      bytes_total: 400
    }
  });
  await expect(detail.getByRole('progressbar')).toHaveAttribute(
    'aria-valuenow',
    '75'
  );
  await page.screenshot({
    path: path.join(SHOTS, 'job-detail-running-scripted.png')
  });

  // Cancel: the request goes out; the server's event makes it CANCELLED.
  await detail.getByRole('button', { name: 'Cancel job' }).click();
  await expect.poll(() => s.cancelled).toEqual(['run-1']);
  const i = s.jobs.findIndex(x => x.id === 'run-1');
  s.jobs[i] = {
    ...s.jobs[i],
    state: 'CANCELLED',
    finished_at: new Date().toISOString(),
    outputs: ['/data/out/a.parquet']
  };
  ws.send({
    event_id: 8,
    job_id: 'run-1',
    state: 'CANCELLED',
    finished_at: s.jobs[i].finished_at
  });
  await expect(detail).toHaveAttribute('data-state', 'CANCELLED');
  await expect(detail.getByRole('button', { name: 'Cancel job' })).toHaveCount(
    0
  );
  await expect(detail.getByRole('button', { name: 'Retry' })).toBeVisible();
  await expect(detail.locator('.jp-AeroFS-timeline li')).toHaveCount(3);
  await expect(detail.locator('.jp-AeroFS-timeline')).toContainText(
    'CANCELLED'
  );

  // Outputs: download goes through the authenticated request module.
  const out = detail.locator('.jp-AeroFS-outputs li').first();
  await expect(out).toContainText('a.parquet');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    out.getByRole('button', { name: 'Download' }).click()
  ]);
  expect(download.suggestedFilename()).toBe('a.parquet');
  expect(fs.readFileSync(await download.path()).toString()).toBe(
    'PAR1-scripted-PAR1'
  );
  // Outside the Jupyter root, Reveal says why it cannot.
  await out.getByRole('button', { name: 'Reveal' }).click();
  await expect(detail.getByRole('alert')).toContainText(
    'outside the Jupyter root'
  );
});

test('follows the dark theme', async ({ page }) => {
  await script(page);
  await page.goto();
  await openSidebar(page);
  const bg = () =>
    page
      .locator('#aerofs-sidebar')
      .evaluate(el => getComputedStyle(el).backgroundColor);
  const light = await bg();
  await page.theme.setDarkTheme();
  await expect.poll(bg).not.toBe(light);
  await widenLeftPanel(page, 800);
  await page
    .locator('#aerofs-sidebar')
    .screenshot({ path: path.join(SHOTS, 'sidebar-dark-scripted.png') });
  await page.theme.setLightTheme();
});
