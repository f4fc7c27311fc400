/**
 * Galata end-to-end tests: a real JupyterLab with the real AeroFS job server
 * (embedded default: SQLite + local worker pool), in Debian's Chromium.
 * scripts/ui-test.sh prepares the data folder and runs these.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const port = process.env.AEROFS_UI_PORT || '8891';

module.exports = {
  ...baseConfig,
  timeout: 180000,
  expect: { timeout: 30000 },
  retries: 0,
  workers: 1,
  outputDir: 'test-results',
  reporter: [
    ['list'],
    ['html', { open: 'never', outputFolder: 'playwright-report' }]
  ],
  use: {
    ...baseConfig.use,
    baseURL: `http://127.0.0.1:${port}`,
    viewport: { width: 1400, height: 850 },
    acceptDownloads: true,
    video: 'off',
    trace: 'off',
    screenshot: 'on',
    launchOptions: {
      executablePath: process.env.AEROFS_CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-dev-shm-usage']
    }
  },
  webServer: {
    command: 'jupyter lab --config jupyter_server_test_config.py',
    url: `http://127.0.0.1:${port}/lab`,
    timeout: 120000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe'
  }
};
