/**
 * The widget host check (widget-host/): AeroFS's widgets in a plain page with
 * no JupyterLab front end (jupyterlab-manager's WidgetManager, subclassed as
 * VS Code's notebook webview does), on a kernel of a plain `jupyter server`
 * with the AeroFS job server. `scripts/ui-test.sh widget-host` prepares the
 * scratch folder and runs it.
 */
const { uiConfig } = require('./playwright.base');

module.exports = uiConfig({
  suite: 'widget-host',
  app: 'server',
  path: '/api',
  testDir: 'widget-host'
});
