/**
 * Galata end-to-end tests (tests/): a real JupyterLab with the real AeroFS job
 * server (embedded default: SQLite + local worker pool). `scripts/ui-test.sh lab`
 * prepares the scratch folder and runs these. Galata's fixtures come with its
 * `test` import; its default config has nothing the shared base does not set.
 */
const { uiConfig } = require('./playwright.base');

module.exports = uiConfig({
  suite: 'lab',
  app: 'lab',
  path: '/lab',
  testDir: 'tests',
  use: { acceptDownloads: true }
});
