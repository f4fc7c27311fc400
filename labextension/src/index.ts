/**
 * AeroFS for JupyterLab: the sidebar (live jobs, new-job form, admin view),
 * job detail tabs, commands in the palette, launcher and file browser menu.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
import { PageConfig, PathExt } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { LabIcon } from '@jupyterlab/ui-components';

import aerofsSvg from '../style/aerofs.svg';
import { IAeroFSContext } from './context';
import { AeroFSSidebar } from './dashboard';
import { JobDetailWidget } from './detail';
import { EventStream } from './events';
import { browserPath, notebookCode } from './models';
import { openEventSocket } from './request';

export const aerofsIcon = new LabIcon({
  name: 'aerofs:icon',
  svgstr: aerofsSvg
});

namespace CommandIDs {
  export const openSidebar = 'aerofs:open-dashboard';
  export const newJob = 'aerofs:new-job';
  export const openJob = 'aerofs:open-job';
  export const processWith = 'aerofs:process-with';
}

/** The Jupyter root as an absolute path, when the page tells us. */
function serverRoot(): string {
  const root = PageConfig.getOption('serverRoot');
  return root.startsWith('/') ? root.replace(/\/+$/, '') : '';
}

/** A file browser path (relative to the root) as the job server should see it. */
function toServerPath(path: string): string {
  const root = serverRoot();
  return root ? `${root}/${path}`.replace(/\/+$/, '') || '/' : path;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'aerofs-labextension:plugin',
  description:
    'AeroFS: live job dashboard, job forms, job detail and admin view.',
  autoStart: true,
  // No ILabShell: the generic shell has the left area in JupyterLab and in
  // Notebook 7 (its side panel) alike, so the sidebar starts in both.
  optional: [ICommandPalette, ILauncher, ILayoutRestorer, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    restorer: ILayoutRestorer | null,
    browser: IDefaultFileBrowser | null
  ) => {
    const shell = app.shell;
    const stream = new EventStream(since => openEventSocket(since));
    const newJobListeners = new Set<(paths: string[]) => void>();
    const tracker = new WidgetTracker<MainAreaWidget<JobDetailWidget>>({
      namespace: 'aerofs-job'
    });

    const ctx: IAeroFSContext = {
      stream,
      openJob: id => void app.commands.execute(CommandIDs.openJob, { id }),
      revealPath: async path => {
        const rel = browserPath(path, serverRoot());
        if (rel === null) {
          return false;
        }
        await app.commands.execute('filebrowser:go-to-path', { path: rel });
        return true;
      },
      openNotebook: async (path, engine) => {
        const contents = app.serviceManager.contents;
        const model = await contents.newUntitled({
          type: 'notebook',
          path: ''
        });
        const source = notebookCode(path, engine);
        await contents.save(model.path, {
          type: 'notebook',
          format: 'json',
          content: {
            nbformat: 4,
            nbformat_minor: 5,
            metadata: {
              kernelspec: {
                name: 'python3',
                display_name: 'Python 3 (ipykernel)',
                language: 'python'
              }
            },
            cells: [
              {
                cell_type: 'markdown',
                metadata: {},
                source: `Output of an AeroFS job: \`${path}\``
              },
              {
                cell_type: 'code',
                metadata: {},
                source,
                outputs: [],
                execution_count: null
              }
            ]
          }
        });
        await app.commands.execute('docmanager:open', { path: model.path });
      },
      browserSelection: () => {
        if (!browser) {
          return [];
        }
        const out: string[] = [];
        for (const item of browser.selectedItems()) {
          out.push(toServerPath(item.path));
        }
        if (!out.length) {
          out.push(toServerPath(browser.model.path));
        }
        return out;
      },
      saveBlob: (blob, name) => {
        const url = URL.createObjectURL(blob);
        const a = document.createElement('a');
        a.href = url;
        a.download = name;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      },
      requestNewJob: paths => newJobListeners.forEach(fn => fn(paths)),
      onNewJobRequest: fn => {
        newJobListeners.add(fn);
        return () => newJobListeners.delete(fn);
      }
    };

    const sidebar = new AeroFSSidebar(ctx);
    sidebar.title.icon = aerofsIcon;
    sidebar.title.caption = 'AeroFS jobs';
    shell.add(sidebar, 'left', { rank: 600 });
    restorer?.add(sidebar, 'aerofs-sidebar');
    installDropTarget(sidebar.node, toServerPath);
    stream.connect();

    if (restorer) {
      void restorer.restore(tracker, {
        command: CommandIDs.openJob,
        args: w => ({ id: w.content.jobId }),
        name: w => w.content.jobId
      });
    }

    app.commands.addCommand(CommandIDs.openSidebar, {
      label: 'AeroFS: Show Jobs',
      caption: 'Open the AeroFS jobs dashboard',
      icon: args => (args.isPalette ? undefined : aerofsIcon),
      execute: () => shell.activateById(sidebar.id)
    });
    app.commands.addCommand(CommandIDs.newJob, {
      label: args => (args.isLauncher ? 'AeroFS Job' : 'AeroFS: New Job…'),
      caption: 'Submit a job to the AeroFS job server',
      icon: args => (args.isPalette ? undefined : aerofsIcon),
      execute: () => {
        shell.activateById(sidebar.id);
        ctx.requestNewJob([]);
      }
    });
    // The job detail shown in a side panel where the main area takes no tabs.
    let sideDetail: MainAreaWidget<JobDetailWidget> | null = null;
    app.commands.addCommand(CommandIDs.openJob, {
      label: args => (args.id ? `AeroFS: Job ${args.id}` : 'AeroFS: Open Job'),
      execute: args => {
        const id = String(args.id ?? '');
        if (!id) {
          return;
        }
        const existing = tracker.find(w => w.content.jobId === id);
        if (existing) {
          shell.activateById(existing.id);
          return existing;
        }
        const content = new JobDetailWidget(ctx, id);
        const widget = new MainAreaWidget({ content });
        widget.id = `aerofs-job-tab-${id}`;
        widget.title.label = `Job ${id}`;
        widget.title.icon = aerofsIcon;
        widget.title.closable = true;
        void tracker.add(widget);
        shell.add(widget, 'main');
        if (!widget.parent) {
          // Notebook 7's notebook page keeps its one main-area widget (the
          // notebook) and silently drops any other: show the detail in the
          // right side panel instead, one job at a time.
          sideDetail?.dispose();
          sideDetail = widget;
          widget.disposed.connect(() => {
            if (sideDetail === widget) {
              sideDetail = null;
            }
          });
          shell.add(widget, 'right', { rank: 1000 });
        }
        shell.activateById(widget.id);
        return widget;
      }
    });
    app.commands.addCommand(CommandIDs.processWith, {
      label: 'Process with AeroFS…',
      caption:
        'Open the AeroFS job form with this file or folder as the source',
      icon: aerofsIcon,
      execute: () => {
        shell.activateById(sidebar.id);
        ctx.requestNewJob(ctx.browserSelection());
      }
    });
    app.contextMenu.addItem({
      command: CommandIDs.processWith,
      selector: '.jp-DirListing-item[data-isdir]',
      rank: 20
    });

    if (palette) {
      for (const command of [CommandIDs.openSidebar, CommandIDs.newJob]) {
        palette.addItem({
          command,
          category: 'AeroFS',
          args: { isPalette: true }
        });
      }
    }
    if (launcher) {
      launcher.add({
        command: CommandIDs.newJob,
        category: 'Other',
        rank: 1,
        args: { isLauncher: true }
      });
    }
  }
};

/**
 * The file browser drags with Lumino's drag and drop, not the browser's:
 * accept its `application/x-jupyter-icontents` payload (a list of paths) on
 * any path field of the sidebar.
 */
function installDropTarget(
  node: HTMLElement,
  toServer: (p: string) => string
): void {
  const MIME = 'application/x-jupyter-icontents';
  const fieldOf = (ev: Event) =>
    (ev.target as HTMLElement | null)?.closest?.('.jp-AeroFS-pathField');
  const accept = (ev: any) => {
    if (!ev.mimeData?.hasData?.(MIME) || !fieldOf(ev)) {
      return false;
    }
    ev.preventDefault();
    ev.stopPropagation();
    return true;
  };
  node.addEventListener('lm-dragenter', (ev: any) => {
    if (accept(ev)) {
      fieldOf(ev)?.classList.add('jp-mod-dropTarget');
    }
  });
  node.addEventListener('lm-dragleave', (ev: any) => {
    fieldOf(ev)?.classList.remove('jp-mod-dropTarget');
  });
  node.addEventListener('lm-dragover', (ev: any) => {
    if (accept(ev)) {
      ev.dropAction = ev.proposedAction === 'none' ? 'none' : ev.proposedAction;
    }
  });
  node.addEventListener('lm-drop', (ev: any) => {
    if (!accept(ev)) {
      return;
    }
    const field = fieldOf(ev);
    field?.classList.remove('jp-mod-dropTarget');
    const data = ev.mimeData.getData(MIME);
    const paths: string[] = (Array.isArray(data) ? data : [data])
      .filter(Boolean)
      .map(String);
    const input = field?.querySelector('input');
    if (input && paths.length) {
      ev.dropAction = ev.proposedAction;
      setReactInputValue(
        input as HTMLInputElement,
        paths.map(p => toServer(PathExt.normalize(p))).join('\n')
      );
    }
  });
}

/** Set an input's value so React's onChange sees it. */
function setReactInputValue(input: HTMLInputElement, value: string): void {
  const setter = Object.getOwnPropertyDescriptor(
    HTMLInputElement.prototype,
    'value'
  )?.set;
  setter?.call(input, value);
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

export default plugin;
