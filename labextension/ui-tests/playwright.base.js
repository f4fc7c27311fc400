/**
 * What every AeroFS UI suite shares: Debian's headless Chromium (Playwright's
 * browser downloads are not used), one worker, no retries, artifacts under
 * test-results/<suite>, and a Jupyter server per run on the port and scratch
 * folder scripts/ui-test.sh chose, configured by jupyter_server_test_config.py.
 * A suite's config is `uiConfig({ suite, app, path, ... })` plus its own keys.
 */
const path = require('path');

const port = process.env.AEROFS_UI_PORT;
if (!port || !process.env.AEROFS_UI_ROOT) {
  throw new Error(
    'AEROFS_UI_PORT and AEROFS_UI_ROOT are unset: run the UI tests through scripts/ui-test.sh'
  );
}
const serverConfig = path.join(__dirname, 'jupyter_server_test_config.py');

/**
 * suite: the name of the artifact folders; app: the Jupyter command that
 * serves it (`lab` or `notebook`); path: the page whose answer means the
 * server is up; use/rest: the suite's own Playwright settings.
 */
function uiConfig({ suite, app, path: readyPath, use = {}, ...rest }) {
  // The server's log goes to a file (the script prints its tail on failure)
  // rather than interleaving hundreds of lines with the test report.
  const log = path.join(
    process.env.AEROFS_UI_LOGS || '.',
    `${suite}-server.log`
  );
  return {
    timeout: 180000,
    expect: { timeout: 30000 },
    retries: 0,
    workers: 1,
    reportSlowTests: null,
    outputDir: `test-results/${suite}`,
    reporter: [
      ['list'],
      ['html', { open: 'never', outputFolder: `playwright-report/${suite}` }]
    ],
    ...rest,
    use: {
      baseURL: `http://127.0.0.1:${port}`,
      viewport: { width: 1400, height: 850 },
      video: 'off',
      trace: 'off',
      screenshot: 'on',
      launchOptions: {
        executablePath: process.env.AEROFS_CHROMIUM || '/usr/bin/chromium',
        args: ['--no-sandbox', '--disable-dev-shm-usage']
      },
      ...use
    },
    webServer: {
      command: `exec jupyter ${app} --config "${serverConfig}" >"${log}" 2>&1`,
      env: { ...process.env, AEROFS_UI_APP: app },
      url: `http://127.0.0.1:${port}${readyPath}`,
      timeout: 120000,
      reuseExistingServer: false,
      // SIGTERM lets the server shut its kernels and the job server's worker
      // pool down; Playwright's default would kill it outright.
      gracefulShutdown: { signal: 'SIGTERM', timeout: 10000 }
    }
  };
}

module.exports = { uiConfig };
