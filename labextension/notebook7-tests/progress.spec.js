// A notebook run in Notebook 7 shows AeroFS's progress widget: the anywidget front end loads (no
// "Error displaying widget"), a blocking run ends at 100 % "succeeded", and a background run's live
// widget stops on its Cancel button.
const { test, expect } = require('@playwright/test');

async function runAll(page) {
  // Notebook 7's menu bar: Run > Run All Cells.
  await page.getByRole('menuitem', { name: 'Run', exact: true }).click();
  await page.getByRole('menuitem', { name: /^Run All Cells/ }).click();
}

test('progress widget in Notebook 7', async ({ page }) => {
  await page.goto('/notebooks/progress.ipynb');
  // The kernel is up when the toolbar's kernel status shows idle.
  await expect(page.locator('.jp-Notebook')).toBeVisible();
  await expect(page.getByText('Python 3 (ipykernel)').first()).toBeVisible();
  await page.waitForTimeout(1000);
  await runAll(page);

  const widgets = page.locator('.aerofs-progress');
  // 1: a blocking run, with its widget.
  const done = widgets.nth(0);
  await expect(done.locator('.label')).toContainText('succeeded');
  await expect(done.locator('.pct')).toHaveText('100%');
  await expect(done.locator('.detail')).toContainText('2/2 inputs');

  // 2: a background run over many inputs; the kernel stays free, the widget is live, Cancel stops it.
  const live = widgets.nth(1);
  await expect(live.locator('.label')).toContainText('running');
  await expect(live.locator('.cancel')).toBeEnabled();
  // Live: the bar moves while the run goes on (updates from the kernel's background thread).
  await expect(live.locator('.pct')).not.toHaveText('0%');
  await expect(live.locator('.label')).toContainText('running');
  await live.locator('.cancel').click();
  await expect(live.locator('.label')).toContainText('cancelled');
  await expect(live.locator('.detail')).toContainText('cancelled');

  await expect(page.getByText('Error displaying widget')).toHaveCount(0);
  await page.screenshot({ path: 'test-results/notebook7-progress.png' });
});
