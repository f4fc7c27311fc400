/**
 * Notebook 7 browser check: a real Jupyter Notebook 7 server (the `notebook` package) and Debian's
 * Chromium run a notebook that shows AeroFS's progress widget. Kept apart from the Galata tests
 * (labextension/ui-tests), which drive JupyterLab. scripts/ui-test-notebook7.sh prepares the data
 * folder, links ../ui-tests/node_modules here and runs this.
 */
const port = process.env.AEROFS_NB7_PORT || '8893';

module.exports = {
  testDir: '.',
  testMatch: /.*\.spec\.js/,
  timeout: 180000,
  expect: { timeout: 60000 },
  retries: 0,
  workers: 1,
  outputDir: 'test-results',
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    viewport: { width: 1300, height: 900 },
    video: 'off',
    trace: 'off',
    screenshot: 'on',
    launchOptions: {
      executablePath: process.env.AEROFS_CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-dev-shm-usage']
    }
  },
  webServer: {
    command:
      `jupyter notebook --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port=${port} ` +
      `--ServerApp.port_retries=0 --ServerApp.allow_root=True --IdentityProvider.token= ` +
      `--ServerApp.password= --ServerApp.disable_check_xsrf=True ` +
      `--ServerApp.root_dir="${process.env.AEROFS_NB7_ROOT}"`,
    url: `http://127.0.0.1:${port}/tree`,
    timeout: 120000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe'
  }
};
