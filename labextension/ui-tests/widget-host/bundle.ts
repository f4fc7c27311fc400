/**
 * Bundles the widget host page (host.ts + index.html) into `outdir` with
 * esbuild: one script and one style sheet, built from the ui-tests' own npm
 * packages in about a second, so the spec builds it fresh on every run.
 */
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as path from 'path';

/** `import src from 'anywidget'` gives the text of anywidget's front end (an
 * AMD module: host.ts evaluates it with its own `define`). */
const anywidgetAsText: esbuild.Plugin = {
  name: 'anywidget-as-text',
  setup(build) {
    build.onResolve({ filter: /^anywidget$/ }, () => ({
      path: require.resolve('anywidget'),
      namespace: 'anywidget-text'
    }));
    build.onLoad({ filter: /.*/, namespace: 'anywidget-text' }, args => ({
      contents: fs.readFileSync(args.path, 'utf8'),
      loader: 'text'
    }));
  }
};

export async function bundleHost(outdir: string): Promise<void> {
  fs.mkdirSync(outdir, { recursive: true });
  await esbuild.build({
    entryPoints: { host: path.join(__dirname, 'host.ts') },
    outdir,
    bundle: true,
    format: 'iife',
    target: 'chrome120',
    logLevel: 'error',
    plugins: [anywidgetAsText],
    // Fonts and images of the widgets' style sheets, next to the bundle.
    loader: {
      '.woff': 'file',
      '.woff2': 'file',
      '.ttf': 'file',
      '.eot': 'file',
      '.svg': 'file',
      '.png': 'file',
      '.gif': 'file'
    },
    define: { 'process.env.NODE_ENV': '"production"' }
  });
  fs.copyFileSync(
    path.join(__dirname, 'index.html'),
    path.join(outdir, 'index.html')
  );
}
