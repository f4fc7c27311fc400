/**
 * AeroFS's widgets outside JupyterLab and Notebook 7, in the nearest stand-in
 * for VS Code's notebook webview that runs here: a plain page (host.ts, no
 * JupyterLab front end) with the widget manager VS Code's renderer uses (a
 * subclass of @jupyter-widgets/jupyterlab-manager's WidgetManager, built as
 * vscode-jupyter-ipywidgets builds it) and anywidget's front end from the
 * local npm package, on a kernel of a real Jupyter server (`jupyter server`,
 * with the AeroFS job server). The spec runs
 * code in that kernel the way a notebook cell would and works the views: a
 * background word count's progress bar moves and reaches done, Cancel stops a
 * longer one (the kernel says so; no ETA is left shown), the job form renders its schema's fields,
 * shows the kernel's check of a bad path, and a run from it shows its result
 * (and a submit, the job's live widget), and the page logs no error.
 * scripts/ui-test.sh provides data/big (600 links to one gzipped CSV).
 */
import { expect, Locator, Page, test } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { bundleHost } from './bundle';

const ROOT = process.env.AEROFS_UI_ROOT ?? '';
const SHOTS = path.resolve(__dirname, '..', 'test-results', 'screenshots');
const PAGE = '/aerofs-widget-host/';

// Each linked file holds 600,001 words (a header and 600,000 rows without
// spaces): counts known here without running anything.
const WORDS_PER_BIG_FILE = 600_001;
// The form's input: 3 words a line, 2 distinct.
const FORM_TEXT = 'alpha bravo bravo\n'.repeat(100);

// Playwright fulfils the page itself, so Chromium knows no address for it and
// treats it as public: its Local Network Access checks then block the
// kernel's WebSocket to 127.0.0.1 unless the page holds that permission (a
// person would be asked). Pages the server serves itself do not need it.
test.use({ permissions: ['local-network-access'] });

interface IExecuted {
  cell: number;
  status: string;
  text: string;
}

/** Runs `code` in the page's kernel; its outputs go under a new `.cell`. */
async function run(page: Page, code: string): Promise<IExecuted> {
  const done = await page.evaluate(
    async code => (await (window as any).aerofsHost).execute(code),
    code
  );
  expect(done.status, `${code}\n${done.text}`).toBe('ok');
  return done;
}

function cell(page: Page, done: IExecuted): Locator {
  return page.locator(`.cell[data-cell="${done.cell}"]`);
}

/** Records every text the progress widget's percentage shows from now on. */
async function recordPercentages(progress: Locator): Promise<void> {
  await progress.locator('.pct').evaluate(el => {
    const seen: string[] = [el.textContent ?? ''];
    (window as any).percentages = seen;
    new MutationObserver(() => seen.push(el.textContent ?? '')).observe(el, {
      childList: true,
      characterData: true,
      subtree: true
    });
  });
}

test('AeroFS widgets in a widget host without JupyterLab: progress, cancel, job form, result', async ({
  page
}) => {
  // Every error the page logs fails the test at the end; each is also
  // printed when it happens, so a step that times out shows why.
  const problems: string[] = [];
  const problem = (p: string) => {
    problems.push(p);
    console.log(`[widget-host page] ${p}`);
  };
  page.on('console', m => {
    if (m.type() === 'error') {
      problem(`console: ${m.text()}`);
    }
  });
  page.on('pageerror', e => problem(`page error: ${e.message}`));

  // The page and its bundle, served on the Jupyter server's origin (the
  // server itself knows nothing of them).
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'widget-host-'));
  await bundleHost(bundle);
  await page.route(`**${PAGE}**`, route => {
    const name = new URL(route.request().url()).pathname.slice(PAGE.length);
    return route.fulfill({ path: path.join(bundle, name || 'index.html') });
  });
  await page.goto(PAGE);
  // The page says when its kernel is connected, or why not.
  await page
    .waitForFunction(() => document.body.dataset.kernel, undefined, {
      timeout: 60000
    })
    .catch(() => undefined);
  expect(
    await page.locator('body').getAttribute('data-kernel'),
    problems.join('\n')
  ).toBe('ready');
  await run(
    page,
    'import os\n' +
      `os.chdir(${JSON.stringify(ROOT)})\n` +
      'from aerofs_kernel.widgets import BackgroundRun, JobForm, ResultWidget\n' +
      `_ = open('widget-host-words.txt', 'w').write(${JSON.stringify(FORM_TEXT)})`
  );

  await test.step('a small background run: the bar moves and reaches done', async () => {
    // The widget is shown before the run starts, so the view sees every update.
    const shown = await run(
      page,
      "small = BackgroundRun('word-count', {'src': 'data/big/part-000[0-1].csv.gz'})\n" +
        'small.widget'
    );
    const progress = cell(page, shown).locator('.aerofs-progress');
    await expect(progress.locator('.label')).toContainText('word-count');
    await recordPercentages(progress);
    await run(page, '_ = small.start()');
    await expect(progress.locator('.label')).toContainText('succeeded');
    await expect(progress.locator('.pct')).toHaveText('100%');
    await expect(progress.locator('.bar')).toHaveJSProperty('value', 1);
    await expect(progress.locator('.detail')).toContainText('2/2 inputs');
    await expect(progress.locator('.detail')).not.toContainText('ETA');
    const seen: string[] = await page.evaluate(
      () => (window as any).percentages
    );
    const between = seen.filter(p => p !== '0%' && p !== '100%');
    expect(between.length, `percentages shown: ${seen}`).toBeGreaterThan(0);
    const said = await run(
      page,
      "print(small.widget.state, small.result.summary['total_words'])"
    );
    expect(said.text.trim()).toBe(`succeeded ${2 * WORDS_PER_BIG_FILE}`);

    // The result view widget of that run.
    const result = await run(page, 'ResultWidget(small.result)');
    const summary = cell(page, result).locator(
      '.aerofs-result .aerofs-summary'
    );
    await expect(summary).toContainText('total_words');
    await expect(summary).toContainText(
      (2 * WORDS_PER_BIG_FILE).toLocaleString('en-US')
    );
  });

  await test.step('Cancel stops a longer run', async () => {
    const shown = await run(
      page,
      "long = BackgroundRun('word-count', {'src': 'data/big'})\nlong.widget"
    );
    const progress = cell(page, shown).locator('.aerofs-progress');
    await run(page, '_ = long.start()');
    await expect(progress.locator('.label')).toContainText('running');
    await expect(progress.locator('.pct')).not.toHaveText('0%');
    await progress.locator('.cancel').click();
    await expect(progress.locator('.label')).toContainText('cancelled');
    await expect(progress.locator('.cancel')).toBeDisabled();
    // A run that ended says what it did, not how long it would still take.
    await expect(progress.locator('.detail')).not.toContainText('ETA');
    const said = await run(
      page,
      'long.done.wait(60)\n' +
        'print(long.widget.state, type(long.error).__name__, long.widget.inputs_done < long.widget.inputs_total)'
    );
    expect(said.text.trim()).toBe('cancelled Cancelled True');
  });

  await test.step('the job form: fields from the schema, a run shows its result', async () => {
    const shown = await run(page, "form = JobForm('word-count')\nform");
    const out = cell(page, shown);
    const form = out.locator('.aerofs-form');
    await expect(form).toContainText('Word count');
    const fields = await run(
      page,
      "print(*form.schema['properties'], sep='\\n')"
    );
    const names = fields.text.trim().split('\n');
    expect(names).toContain('src');
    for (const name of names) {
      await expect(form.locator(`[name="${name}"]`)).toHaveCount(1);
    }
    // Edits reach the kernel, which checks them and answers under the field.
    const src = form.locator('input[name="src"]');
    await src.fill(`${ROOT}/no-such-file.txt`);
    await src.press('Tab');
    await form.getByRole('button', { name: 'Run here' }).click();
    await expect(form).toContainText('no such file or folder');

    await src.fill(`${ROOT}/widget-host-words.txt`);
    await src.press('Tab');
    await form.getByRole('button', { name: 'Run here' }).click();
    const progress = out.locator('.aerofs-progress').first();
    await expect(progress.locator('.label')).toContainText(
      'word-count · succeeded'
    );
    await expect(progress.locator('.pct')).toHaveText('100%');
    await expect(form).toContainText('succeeded');
    const summary = out.locator('.aerofs-result .aerofs-summary');
    await expect(summary).toContainText('total_words');
    await expect(summary).toContainText('distinct_words');
    const said = await run(
      page,
      "s = form.run_.result.summary\nprint(s['total_words'], s['distinct_words'])"
    );
    expect(said.text.trim()).toBe('300 2');

    // The same form through this server's job server: the job's widget,
    // fed by the kernel's polling thread, appears under the form and ends.
    await form
      .getByRole('button', { name: 'Submit to the job server' })
      .click();
    await expect(form).toContainText(/submitted job \S+/);
    const job = out.locator('.aerofs-progress').nth(1);
    await expect(job.locator('.label')).toContainText('succeeded', {
      timeout: 120000
    });
    await expect(job.locator('.pct')).toHaveText('100%');
  });

  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({
    path: path.join(SHOTS, 'widget-host.png'),
    fullPage: true
  });
  // A view that failed would show base's error widget in its place.
  await expect(page.locator('.jupyter-widgets-error-widget')).toHaveCount(0);
  expect(problems).toEqual([]);
});
