/**
 * A widget host with no JupyterLab front end in it, standing in for VS Code's
 * notebook webview (which cannot run here): a plain page that starts a kernel
 * on a real Jupyter server with @jupyterlab/services and answers the kernel's
 * `jupyter.widget` comms with the widget manager class VS Code's renderer
 * uses, built the way it builds it (microsoft/vscode-jupyter-ipywidgets,
 * src/manager.ts and src/index.ts):
 * - a subclass of @jupyter-widgets/jupyterlab-manager's `WidgetManager`, over
 *   a stand-in for a notebook's document context that holds only the kernel
 *   (VS Code's `DocumentContext`), saving no state and restoring nothing from
 *   the kernel when it starts;
 * - a rendermime registry with the standard renderers, a typesetter that does
 *   nothing, and jupyterlab-manager's `WidgetRenderer` for widget views (what
 *   an Output widget uses to show a widget displayed into it);
 * - an empty module registry: every class is loaded by the fallback in
 *   `loadClass`, where VS Code asks RequireJS. @jupyter-widgets/base and
 *   controls and jupyterlab-manager's output module are built in, as VS Code
 *   defines them; `anywidget` is the AMD file that anywidget installs as
 *   `share/jupyter/nbextensions/anywidget/index.js`, which VS Code loads for a
 *   local kernel. The npm package `anywidget` ships that same file (the
 *   ui-tests pin it to the kernel's version; tests/kernel/test_widget_esm.py
 *   checks), so this page gets it from the bundle instead of a script tag;
 * - a view shown by `create_view` + `display_view` into the output's element,
 *   attached as a Lumino widget.
 * AeroFS's own code arrives only in the widgets' synced state (`_esm`).
 *
 * The Playwright spec drives it through `window.aerofsHost.execute(code)`.
 * Bundled by bundle.ts (esbuild); the `anywidget` import is that file's text.
 */
import * as base from '@jupyter-widgets/base';
import * as controls from '@jupyter-widgets/controls';
// The manager, renderer and output modules alone, as VS Code's bundle uses
// them: the package's index also brings the JupyterLab plugin.
import { WidgetManager } from '@jupyter-widgets/jupyterlab-manager/lib/manager';
import * as output from '@jupyter-widgets/jupyterlab-manager/lib/output';
import { WidgetRenderer } from '@jupyter-widgets/jupyterlab-manager/lib/renderer';
import {
  IRenderMime,
  RenderMimeRegistry,
  standardRendererFactories
} from '@jupyterlab/rendermime';
import {
  Kernel,
  KernelManager,
  KernelMessage,
  ServerConnection
} from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';
import { satisfies } from 'semver';
import anywidgetAmdSource from 'anywidget';
// What VS Code's widgets.css imports: the controls' styles and the `--jp-*`
// variables they use (VS Code then maps those to its theme).
import '@jupyter-widgets/controls/css/widgets.css';

const WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json';

/** The modules VS Code's bundle defines in RequireJS for every kernel. */
const BUILT_IN: Record<string, Record<string, unknown>> = {
  '@jupyter-widgets/base': base,
  '@jupyter-widgets/controls': controls,
  '@jupyter-widgets/output': output
};

/**
 * anywidget's front end, evaluated the way RequireJS would: its one
 * `define(["@jupyter-widgets/base"], factory)` gets the page's own base module,
 * the same one whose classes the manager uses.
 */
function loadAnywidget(): Record<string, unknown> {
  let exported: Record<string, unknown> | undefined;
  const define = (deps: string[], factory: (...m: unknown[]) => any) => {
    const resolved = deps.map(d => {
      if (!BUILT_IN[d]) {
        throw new Error(`anywidget's front end asks for ${d}, not provided`);
      }
      return BUILT_IN[d];
    });
    exported = factory(...resolved);
  };
  new Function('define', anywidgetAmdSource as unknown as string)(define);
  if (!exported) {
    throw new Error("anywidget's front end did not call define()");
  }
  return exported;
}

/**
 * What `WidgetManager` (and jupyterlab-manager's Output model) read of a
 * notebook's document context, over one kernel, as VS Code's DocumentContext
 * gives it: the session's kernel and its status signals. The kernel never
 * changes and nothing is saved here, so those two signals never fire.
 */
function kernelContext(kernel: Kernel.IKernelConnection): any {
  const silent = { connect: () => true, disconnect: () => true };
  return {
    sessionContext: {
      session: { kernel },
      kernelChanged: silent,
      statusChanged: kernel.statusChanged,
      connectionStatusChanged: kernel.connectionStatusChanged
    },
    saveState: silent
  };
}

class WidgetHost extends WidgetManager {
  private anywidget?: Record<string, unknown>;

  constructor(readonly hostKernel: Kernel.IKernelConnection) {
    super(
      kernelContext(hostKernel),
      new RenderMimeRegistry({
        initialFactories: standardRendererFactories,
        // VS Code's: widget labels render without MathJax set up.
        latexTypesetter: { typeset: () => undefined }
      }),
      { saveState: false }
    );
    this.rendermime.addFactory(
      {
        safe: false,
        mimeTypes: [WIDGET_VIEW],
        createRenderer: (options: IRenderMime.IRendererOptions) =>
          new WidgetRenderer(options, this)
      },
      0
    );
  }

  /** As VS Code's: widget state comes only from a notebook's metadata, which
   * this page has none of (WidgetManager's constructor asks for both). */
  async restoreWidgets(): Promise<void> {
    return;
  }

  /** The module registry is empty, as in VS Code: every class comes from
   * here, where VS Code asks RequireJS for what its bundle defined or a widget
   * script it loaded. */
  protected async loadClass(
    className: string,
    moduleName: string,
    moduleVersion: string
  ): Promise<any> {
    try {
      return await super.loadClass(className, moduleName, moduleVersion);
    } catch (notRegistered) {
      const module = BUILT_IN[moduleName] ?? this.script(moduleName);
      if (!module?.[className]) {
        throw notRegistered;
      }
      this.checkVersion(moduleName, module, moduleVersion);
      return module[className];
    }
  }

  /** A third-party widget module's script: only `anywidget` is provided. */
  private script(moduleName: string): Record<string, unknown> | undefined {
    if (moduleName !== 'anywidget') {
      return undefined;
    }
    this.anywidget ??= loadAnywidget();
    return this.anywidget;
  }

  /** A kernel whose anywidget differs from the front end's would be a version
   * mismatch in a real host too: say so instead of rendering. */
  private checkVersion(
    moduleName: string,
    module: Record<string, unknown>,
    wanted: string
  ): void {
    if (moduleName !== 'anywidget') {
      return;
    }
    const version = (module.AnyModel as any)?.model_module_version;
    if (!satisfies(version, wanted)) {
      throw new Error(
        `anywidget ${version} does not satisfy the kernel's ${wanted}`
      );
    }
  }

  /** As VS Code's: the view's Lumino widget attached to the output's node
   * (the first argument, the output's data, is unused there too). */
  async display_view(
    _data: unknown,
    view: base.DOMWidgetView,
    options: { node?: HTMLElement } = {}
  ): Promise<Widget> {
    Widget.attach(view.luminoWidget, options.node ?? document.body);
    return view.luminoWidget;
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
    const future = this.hostKernel.requestExecute({
      code,
      store_history: false
    });
    future.onIOPub = msg => {
      if (
        KernelMessage.isDisplayDataMsg(msg) ||
        KernelMessage.isExecuteResultMsg(msg)
      ) {
        const data = msg.content.data[WIDGET_VIEW] as any;
        if (data?.model_id) {
          views.push(this.show(data, cell));
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

  /** A widget output, as VS Code's renderer shows one (vscode-jupyter's
   * webview-side WidgetManager.renderWidget): the model, a view of it, and
   * that view displayed into the output's element. */
  private async show(data: any, cell: HTMLElement): Promise<void> {
    const node = document.createElement('div');
    node.className = 'widget';
    cell.appendChild(node);
    const modelId = data.model_id;
    const model = await this.get_model(modelId);
    try {
      const view = await this.create_view(model, { el: node });
      await this.display_view(data, view as base.DOMWidgetView, { node });
    } catch (e) {
      // Say which widget and why (the spec fails on any console error).
      console.error(
        `no view for ${model.get('_view_module')}.${model.get('_view_name')} ${modelId}:`,
        e
      );
    }
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
