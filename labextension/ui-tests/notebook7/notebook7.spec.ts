/**
 * AeroFS in Jupyter Notebook 7 (`jupyter notebook`, with the AeroFS job
 * server), in a real notebook page: the anywidget widgets render and talk to
 * the kernel both ways (a job form edited in the page runs a word count here
 * and through the job server, each with a live progress widget that reaches
 * 100 %), a blocking run shows its widget, a background run's widget moves and
 * stops on Cancel. The test writes its own text file and notebook through the
 * Contents API; scripts/ui-test.sh provides data/big (a run long enough to
 * cancel) under AEROFS_UI_ROOT.
 */
import { expect, Page, test } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = process.env.AEROFS_UI_ROOT ?? '';
const SHOTS = path.resolve(__dirname, '..', 'test-results', 'screenshots');

// A small text with counts known here: classic word rules (ASCII
// whitespace, lowercase letters only, so no rule choice matters).
const VOCABULARY =
  'alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike'.split(
    ' '
  );
const LINES = Array.from({ length: 400 }, (_, i) =>
  [i * 7, i * 3, i * 5 + 1]
    .map(k => VOCABULARY[k % VOCABULARY.length])
    .join(' ')
);
const TOTAL_WORDS = LINES.length * 3;
const DISTINCT_WORDS = new Set(LINES.join(' ').split(' ')).size;

function code(id: string, source: string) {
  return {
    id,
    cell_type: 'code',
    metadata: {},
    source,
    outputs: [],
    execution_count: null
  };
}

/** A notebook for the Contents API, naming its kernel so that no "Select Kernel" dialog covers the page. */
function notebookModel(cells: object[]) {
  return {
    type: 'notebook',
    format: 'json',
    content: {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: {
        kernelspec: {
          name: 'python3',
          display_name: 'Python 3 (ipykernel)',
          language: 'python'
        }
      },
      cells
    }
  };
}

async function put(page: Page, file: string, model: object): Promise<void> {
  const r = await page.request.put(`api/contents/${file}`, { data: model });
  expect(r.status(), `PUT ${file}`).toBeLessThan(300);
}

async function exists(page: Page, file: string): Promise<boolean> {
  const r = await page.request.get(`api/contents/${file}?content=0`);
  return r.status() === 200;
}

/** Run > Run All Cells, once the notebook's kernel is connected and idle. */
async function runAll(page: Page): Promise<void> {
  // The toolbar's execution indicator says "idle" before any kernel is there,
  // so ask the session itself (window.jupyterapp, exposed by the test server).
  await page.waitForFunction(
    () => {
      const panel = (window as any).jupyterapp?.shell?.currentWidget;
      const kernel = panel?.sessionContext?.session?.kernel;
      return (
        kernel?.connectionStatus === 'connected' && kernel.status === 'idle'
      );
    },
    undefined,
    { timeout: 60000 }
  );
  await page.getByRole('menuitem', { name: 'Run', exact: true }).click();
  await page.getByRole('menuitem', { name: /^Run All Cells/ }).click();
}

/** The output area of the notebook's cell number `index` (0-based). */
function outputOf(page: Page, index: number) {
  return page
    .locator('.jp-Notebook .jp-CodeCell')
    .nth(index)
    .locator('.jp-OutputArea');
}

test('AeroFS widgets in a Notebook 7 page: job form, live progress, cancel', async ({
  page
}) => {
  const words = `${ROOT}/nb7-words.txt`;
  await put(page, 'nb7-words.txt', {
    type: 'file',
    format: 'text',
    content: LINES.join('\n') + '\n'
  });
  await put(
    page,
    'nb7-widgets.ipynb',
    notebookModel([
      // 0: a blocking run shows its progress widget while the cell runs.
      code(
        'blocking',
        'import aerofs_kernel as aero\n' +
          `r = aero.count_words(${JSON.stringify(words)}, show_progress='widget')\n` +
          "print('words', r.summary['total_words'], r.summary['distinct_words'])"
      ),
      // 1: a background run over many inputs: the cell returns at once.
      code(
        'background',
        'from aerofs_kernel.widgets import BackgroundRun, JobForm\n' +
          "run = BackgroundRun('csv-to-parquet', {'src': 'data/big', 'dst': 'out/big'}).start()\n" +
          'run'
      ),
      // 2: an empty job form, filled in the page.
      code('form', "JobForm('word-count')")
    ])
  );

  await page.goto('notebooks/nb7-widgets.ipynb');
  await expect(page.locator('.jp-Notebook')).toBeVisible();
  await runAll(page);

  // 0: the blocking run.
  const blocking = outputOf(page, 0).locator('.aerofs-progress');
  await expect(blocking.locator('.label')).toContainText('succeeded');
  await expect(blocking.locator('.pct')).toHaveText('100%');
  await expect(blocking.locator('.detail')).toContainText('1/1 inputs');
  await expect(outputOf(page, 0)).toContainText(
    `words ${TOTAL_WORDS} ${DISTINCT_WORDS}`
  );

  // 1: live updates from the kernel's background thread while no cell runs,
  // then the widget's Cancel button reaches the run.
  const live = outputOf(page, 1).locator('.aerofs-progress');
  await expect(live.locator('.label')).toContainText('running');
  await expect(live.locator('.pct')).not.toHaveText('0%');
  await expect(live.locator('.label')).toContainText('running');
  await live.locator('.cancel').click();
  await expect(live.locator('.label')).toContainText('cancelled');
  await expect(live.locator('.detail')).toContainText('cancelled');

  // 2: the job form. Edits in the page reach the kernel, which checks them.
  const form = outputOf(page, 2).locator('.aerofs-form');
  await expect(form).toContainText('Word count');
  const src = form.locator('input[name="src"]');
  await src.fill(`${ROOT}/no-such-file.txt`);
  await src.press('Tab');
  await form.getByRole('button', { name: 'Run here' }).click();
  await expect(form).toContainText('no such file or folder');

  await src.fill(words);
  await src.press('Tab');
  const dst = form.locator('input[name="dst"]');
  await dst.fill(`${ROOT}/out/nb7-here.parquet`);
  await dst.press('Tab');
  await form.getByRole('button', { name: 'Run here' }).click();
  const here = outputOf(page, 2).locator('.aerofs-progress').first();
  await expect(here.locator('.label')).toContainText('word-count · succeeded');
  await expect(here.locator('.pct')).toHaveText('100%');
  await expect(form).toContainText('succeeded');
  expect(await exists(page, 'out/nb7-here.parquet')).toBe(true);

  // The same form through the job server of this Notebook 7 server.
  await dst.fill(`${ROOT}/out/nb7-job.parquet`);
  await dst.press('Tab');
  await form.getByRole('button', { name: 'Submit to the job server' }).click();
  await expect(form).toContainText(/submitted job \S+/);
  const job = outputOf(page, 2).locator('.aerofs-progress').nth(1);
  await expect(job.locator('.label')).toContainText('succeeded', {
    timeout: 120000
  });
  await expect(job.locator('.pct')).toHaveText('100%');
  expect(await exists(page, 'out/nb7-job.parquet')).toBe(true);

  // The run-here result view, shown under the form from the run's thread.
  const summary = outputOf(page, 2).locator('.aerofs-result .aerofs-summary');
  await expect(summary).toContainText('total_words');
  await expect(summary).toContainText('distinct_words');

  await expect(page.getByText('Error displaying widget')).toHaveCount(0);
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({
    path: path.join(SHOTS, 'notebook7.png'),
    fullPage: true
  });
});

test('the AeroFS jobs sidebar opens in a Notebook 7 side panel, lists the jobs and opens a job detail', async ({
  page
}) => {
  // The plugin needs only the generic shell, so Notebook 7 starts it: the
  // sidebar goes to the notebook page's left side panel, opened by its command.
  const activation: string[] = [];
  page.on('console', m => {
    if (m.text().includes('aerofs-labextension:plugin')) {
      activation.push(m.text());
    }
  });
  await put(page, 'nb7-sidebar.ipynb', notebookModel([]));
  await page.goto('notebooks/nb7-sidebar.ipynb');
  await page.waitForFunction(
    () =>
      (window as any).jupyterapp?.commands?.hasCommand('aerofs:open-dashboard'),
    undefined,
    { timeout: 60000 }
  );
  await page.evaluate(() =>
    (window as any).jupyterapp.commands.execute('aerofs:open-dashboard')
  );
  const sidebar = page.locator('#aerofs-sidebar');
  await expect(sidebar).toBeVisible();
  await expect(sidebar.locator('.jp-AeroFS-errorPanel')).toHaveCount(0);
  // A job submitted now appears live, and reaches SUCCEEDED, in the open sidebar.
  await put(page, 'nb7-sidebar.txt', {
    type: 'file',
    format: 'text',
    content: 'one two two\n'
  });
  const r = await page.request.post('aerofs/api/jobs', {
    data: {
      pipeline: 'word-count',
      params: {
        src: `${ROOT}/nb7-sidebar.txt`,
        dst: `${ROOT}/out/nb7-sidebar.parquet`
      }
    }
  });
  expect(r.status(), await r.text()).toBe(202);
  const id = (await r.json()).id as string;
  await expect(sidebar.locator(`tr[data-job-id="${id}"]`)).toContainText(
    'SUCCEEDED',
    { timeout: 60000 }
  );
  // Its detail opens from the row: the notebook page's main area holds only
  // the notebook, so the detail goes to the right side panel beside it.
  await sidebar.locator(`tr[data-job-id="${id}"]`).click();
  const detail = page.locator(`.jp-AeroFS-detailInner[data-job-id="${id}"]`);
  await expect(detail).toBeVisible();
  await expect(detail).toHaveAttribute('data-state', 'SUCCEEDED');
  await expect(detail.locator('section[aria-label="Summary"]')).toContainText(
    'total_words'
  );
  await expect(
    page.locator(`#jp-right-stack .jp-AeroFS-detailInner[data-job-id="${id}"]`)
  ).toHaveCount(1);
  await expect(page.locator('.jp-Notebook')).toBeVisible();
  expect(activation.join('\n')).not.toMatch(/failed to activate/);
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({
    path: path.join(SHOTS, 'notebook7-sidebar.png'),
    fullPage: true
  });
});
