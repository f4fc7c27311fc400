/**
 * A widget host with no JupyterLab front end in it, standing in for VS Code's
 * notebook webview (which cannot run here): a plain page that starts a kernel
 * on a real Jupyter server with @jupyterlab/services, answers the kernel's
 * `jupyter.widget` comms with an @jupyter-widgets/html-manager HTMLManager and
 * renders the views of what the executed code displays.
 *
 * What it shares with VS Code: widget models and views come from
 * @jupyter-widgets/base 8 in a manager of its own (not JupyterLab's), and the
 * front end of a third-party widget module, here anywidget's, is the AMD file
 * that anywidget installs as `share/jupyter/nbextensions/anywidget/index.js`,
 * which VS Code loads for a local kernel with its RequireJS. The npm package
 * `anywidget` ships that same file (the ui-tests pin it to the kernel's
 * version; tests/kernel/test_widget_esm.py checks), so this page gets it from
 * the bundle instead of a CDN. AeroFS's own code arrives only in the widgets'
 * synced state (`_esm`).
 *
 * The Playwright spec drives it through `window.aerofsHost.execute(code)`.
 * Bundled by bundle.ts (esbuild); the `anywidget` import is that file's text.
 */
import * as base from '@jupyter-widgets/base';
// The manager alone: the package's index also brings its embedding code
// (a CDN module loader and webpack globals), which no live host uses.
import { HTMLManager } from '@jupyter-widgets/html-manager/lib/htmlmanager';
import {
  Kernel,
  KernelManager,
  KernelMessage,
  ServerConnection
} from '@jupyterlab/services';
import { satisfies } from 'semver';
import anywidgetAmdSource from 'anywidget';

const WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json';

/**
 * anywidget's front end, evaluated the way RequireJS would: its one
 * `define(["@jupyter-widgets/base"], factory)` gets the page's own base module,
 * the same one whose classes the manager uses.
 */
function loadAnywidget(): Record<string, unknown> {
  let exported: Record<string, unknown> | undefined;
  const define = (deps: string[], factory: (...m: unknown[]) => any) => {
    const resolved = deps.map(d => {
      if (d !== '@jupyter-widgets/base') {
        throw new Error(`anywidget's front end asks for ${d}, not provided`);
      }
      return base;
    });
    exported = factory(...resolved);
  };
  new Function('define', anywidgetAmdSource as unknown as string)(define);
  if (!exported) {
    throw new Error("anywidget's front end did not call define()");
  }
  return exported;
}

class WidgetHost extends HTMLManager {
  private anywidget?: Record<string, unknown>;

  constructor(readonly kernel: Kernel.IKernelConnection) {
    super();
    kernel.registerCommTarget('jupyter.widget', (comm, msg) => {
      void this.handle_comm_open(new base.shims.services.Comm(comm), msg);
    });
  }

  /** Resolves `anywidget` locally, as VS Code's loader does from its list of
   * widget sources; everything else (base, controls, output) is built in. */
  protected async loadClass(
    className: string,
    moduleName: string,
    moduleVersion: string
  ): Promise<any> {
    if (moduleName !== 'anywidget') {
      return super.loadClass(className, moduleName, moduleVersion);
    }
    this.anywidget ??= loadAnywidget();
    // A kernel whose anywidget differs from the front end's would be a
    // version mismatch in a real host too: say so instead of rendering.
    const version = (this.anywidget.AnyModel as any)?.model_module_version;
    if (!satisfies(version, moduleVersion)) {
      throw new Error(
        `anywidget ${version} does not satisfy the kernel's ${moduleVersion}`
      );
    }
    const cls = this.anywidget[className];
    if (!cls) {
      throw new Error(`anywidget has no ${className}`);
    }
    return cls;
  }

  /** One "cell": runs `code` and renders what it displays under a new element. */
  async execute(
    code: string
  ): Promise<{ cell: number; status: string; text: string }> {
    const cells = document.getElementById('cells')!;
    const cell = document.createElement('div');
    cell.className = 'cell';
    cell.dataset.cell = String(cells.children.length);
    cells.appendChild(cell);
    const text: string[] = [];
    const views: Promise<void>[] = [];
    const future = this.kernel.requestExecute({ code, store_history: false });
    future.onIOPub = msg => {
      if (
        KernelMessage.isDisplayDataMsg(msg) ||
        KernelMessage.isExecuteResultMsg(msg)
      ) {
        const data = msg.content.data[WIDGET_VIEW] as any;
        if (data?.model_id) {
          views.push(this.show(data.model_id, cell));
        } else {
          text.push(String(msg.content.data['text/plain'] ?? ''));
        }
      } else if (KernelMessage.isStreamMsg(msg)) {
        text.push(msg.content.text);
      } else if (KernelMessage.isErrorMsg(msg)) {
        text.push(msg.content.traceback.join('\n'));
      }
    };
    const reply = await future.done;
    await Promise.all(views);
    const out = document.createElement('pre');
    out.className = 'text';
    out.textContent = text.join('');
    cell.appendChild(out);
    return {
      cell: Number(cell.dataset.cell),
      status: reply.content.status,
      text: out.textContent
    };
  }

  private async show(modelId: string, cell: HTMLElement): Promise<void> {
    const node = document.createElement('div');
    node.className = 'widget';
    cell.appendChild(node);
    const model = await this.get_model(modelId);
    const view = this.create_view(model);
    // display_view shows an error widget in place of a view that failed but
    // logs no cause: say which widget and why.
    view.catch(e =>
      console.error(
        `no view for ${model.get('_view_module')}.${model.get('_view_name')} ${modelId}:`,
        e
      )
    );
    await this.display_view(view, node);
  }
}

async function start(): Promise<WidgetHost> {
  // The page is served on the Jupyter server's own origin (the spec routes
  // it there), which runs with no token for the UI tests.
  const baseUrl = `${location.origin}/`;
  const serverSettings = ServerConnection.makeSettings({
    baseUrl,
    wsUrl: baseUrl.replace(/^http/, 'ws')
  });
  const kernels = new KernelManager({ serverSettings });
  const kernel = await kernels.startNew({ name: 'python3' });
  await kernel.info;
  const host = new WidgetHost(kernel);
  document.body.dataset.kernel = 'ready';
  return host;
}

(window as any).aerofsHost = start().catch(e => {
  // Said on the page at once (the spec waits for this attribute), rather
  // than a spec timing out on a kernel that never comes.
  document.body.dataset.kernel = `failed: ${e}`;
  throw e;
});
