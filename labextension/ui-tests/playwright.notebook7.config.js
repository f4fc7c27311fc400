/**
 * The Notebook 7 check (notebook7/): a real Jupyter Notebook 7 server (the
 * `notebook` package) with the AeroFS job server, AeroFS's widgets in its
 * notebook page. `scripts/ui-test.sh notebook7` prepares the scratch folder
 * and runs it.
 */
const { uiConfig } = require('./playwright.base');

module.exports = uiConfig({
  suite: 'notebook7',
  app: 'notebook',
  path: '/tree',
  testDir: 'notebook7'
});
