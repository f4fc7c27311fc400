/**
 * End to end: JupyterLab + the real AeroFS job server (embedded default).
 * scripts/ui-test.sh makes AEROFS_UI_ROOT with data/csv (small CSVs) and
 * data/big (many large inputs, for a job that runs long enough to cancel).
 */
import {
  expect,
  galata,
  IJupyterLabPageFixture,
  test
} from '@jupyterlab/galata';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = process.env.AEROFS_UI_ROOT ?? '';
const SHOTS = path.resolve(__dirname, '..', 'test-results', 'screenshots');

test.use({ autoGoto: true });

async function openSidebar(page: IJupyterLabPageFixture): Promise<void> {
  await page.sidebar.openTab('aerofs-sidebar');
  await expect(page.locator('#aerofs-sidebar')).toBeVisible();
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

async function shot(
  page: IJupyterLabPageFixture,
  name: string,
  locator?: string
): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, name);
  if (locator) {
    await page.locator(locator).screenshot({ path: file });
  } else {
    await page.screenshot({ path: file });
  }
}

test.describe('before the page loads', () => {
  // The route must be in place before JupyterLab loads: no automatic first load.
  test.use({ autoGoto: false });

  test('says what to do when the job server is unreachable, and recovers on Retry', async ({
    page
  }) => {
    await page.route('**/aerofs/api/**', route =>
      route.fulfill({ status: 503, body: '' })
    );
    await page.goto();
    await openSidebar(page);
    const panel = page.locator('#aerofs-sidebar .jp-AeroFS-errorPanel');
    await expect(panel).toContainText('The AeroFS job server is unreachable.');
    await shot(page, 'unreachable.png', '#aerofs-sidebar');
    await page.unroute('**/aerofs/api/**');
    await panel.getByRole('button', { name: 'Retry' }).click();
    await expect(panel).toHaveCount(0);
    await expect(
      page.locator('#aerofs-sidebar .jp-AeroFS-pager')
    ).toContainText('of');
  });
});

test.describe('with the job server', () => {
  test('submits csv-to-parquet from the form, sees it succeed live, opens it and downloads an output', async ({
    page
  }) => {
    await openSidebar(page);
    // A marker that a page reload would wipe out.
    await page.evaluate(() => ((window as any).__aerofsNoReload = true));

    await page.getByRole('tab', { name: 'New job', exact: true }).click();
    await page.selectOption('#aerofs-pipeline', 'csv-to-parquet');
    await expect(page.locator('#aerofs-field-src')).toBeVisible();

    // Source from the file browser's selection.
    await page.sidebar.openTab('filebrowser');
    await page.filebrowser.openDirectory('data');
    await page
      .locator(
        '.jp-DirListing-item[data-isdir="true"] .jp-DirListing-itemText',
        { hasText: /^csv$/ }
      )
      .click();
    await page.sidebar.openTab('aerofs-sidebar');
    await page
      .locator(
        '.jp-AeroFS-field:has(#aerofs-field-src) .jp-AeroFS-pathField button'
      )
      .click();
    await expect(page.locator('#aerofs-field-src')).toHaveValue(
      `${ROOT}/data/csv`
    );
    await page.locator('#aerofs-field-dst').fill(`${ROOT}/out/csv`);
    await shot(page, 'new-job-form.png', '#aerofs-sidebar');

    await page.getByRole('button', { name: 'Submit job' }).click();
    const submitted = page.locator('.jp-AeroFS-submitted');
    await expect(submitted).toBeVisible();
    const id = ((await submitted.locator('code').textContent()) ?? '').trim();
    expect(id).not.toBe('');

    await page.getByRole('tab', { name: 'Jobs', exact: true }).click();
    const row = page.locator(`tr[data-job-id="${id}"]`);
    await expect(row).toBeVisible();
    await expect(row).toHaveAttribute('data-state', 'SUCCEEDED', {
      timeout: 120000
    });
    expect(await page.evaluate(() => (window as any).__aerofsNoReload)).toBe(
      true
    );
    await expect(row).toContainText('csv-to-parquet');
    await expect(row).toContainText(`${ROOT}/data/csv`);

    await widenLeftPanel(page, 700);
    await page.waitForTimeout(300);
    await shot(page, 'sidebar-first-job.png', '#aerofs-sidebar');
    await shot(page, 'lab-with-sidebar.png');

    // Open the detail with the keyboard.
    await row.focus();
    await page.keyboard.press('Enter');
    const detail = page.locator(`.jp-AeroFS-detailInner[data-job-id="${id}"]`);
    await expect(detail).toBeVisible();
    await expect(detail).toHaveAttribute('data-state', 'SUCCEEDED');
    await expect(detail.locator('section[aria-label="Summary"]')).toContainText(
      'rows'
    );
    const outputs = detail.locator('.jp-AeroFS-outputs li');
    await expect(outputs.first()).toBeVisible();
    expect(await outputs.count()).toBeGreaterThanOrEqual(2); // one Parquet file per CSV
    await shot(page, 'job-detail.png');

    const parquet = detail
      .locator('.jp-AeroFS-outputs li', { hasText: '.parquet' })
      .first();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      parquet.getByRole('button', { name: 'Download' }).click()
    ]);
    expect(download.suggestedFilename()).toMatch(/\.parquet$/);
    const file = await download.path();
    const bytes = fs.readFileSync(file);
    expect(bytes.length).toBeGreaterThan(8);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('PAR1');
    expect(bytes.subarray(bytes.length - 4).toString('latin1')).toBe('PAR1');
  });

  test('cancels a long job from its detail tab', async ({ page }) => {
    const response = await page.request.post('aerofs/api/jobs', {
      data: {
        pipeline: 'csv-to-parquet',
        params: { src: `${ROOT}/data/big`, dst: `${ROOT}/out/big` }
      }
    });
    expect(response.status()).toBe(202);
    const { id } = await response.json();

    await openSidebar(page);
    await page.evaluate(async jobId => {
      await (window as any).jupyterapp.commands.execute('aerofs:open-job', {
        id: jobId
      });
    }, String(id));
    const detail = page.locator(`.jp-AeroFS-detailInner[data-job-id="${id}"]`);
    await expect(detail).toHaveAttribute('data-state', 'RUNNING', {
      timeout: 60000
    });
    await shot(page, 'job-running.png');
    await detail.getByRole('button', { name: 'Cancel job' }).click();
    await expect(detail).toHaveAttribute('data-state', 'CANCELLED', {
      timeout: 60000
    });
    await expect(detail.getByRole('button', { name: 'Retry' })).toBeVisible();
    await expect(
      page.locator(`#aerofs-sidebar tr[data-job-id="${id}"]`)
    ).toHaveAttribute('data-state', 'CANCELLED');
    await shot(page, 'job-cancelled.png');
    // The dashboard for the README: a finished job beside the cancelled one.
    const small = await page.request.post('aerofs/api/jobs', {
      data: {
        pipeline: 'csv-to-parquet',
        params: { src: `${ROOT}/data/csv`, dst: `${ROOT}/out/csv-again` }
      }
    });
    expect(small.status()).toBe(202);
    const smallId = (await small.json()).id;
    await expect(
      page.locator(`#aerofs-sidebar tr[data-job-id="${smallId}"]`)
    ).toHaveAttribute('data-state', 'SUCCEEDED', { timeout: 120000 });
    await page.evaluate(async () => {
      await (window as any).jupyterapp.commands.execute(
        'application:close-all'
      );
    });
    await widenLeftPanel(page, 700);
    await page.waitForTimeout(300);
    await shot(page, 'sidebar.png', '#aerofs-sidebar');
  });
});

// Keep the galata import used (its helpers come through the fixtures).
void galata;
