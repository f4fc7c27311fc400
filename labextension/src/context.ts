/** What the views need from JupyterLab, given to them by the plugin. */
import { EventStream } from './events';

export interface IAeroFSContext {
  /** The shared live connection; every view listens to the same socket. */
  stream: EventStream;
  openJob(id: string): void;
  /** Show a path in the file browser (absolute paths under the root work too). */
  revealPath(path: string): Promise<boolean>;
  /** Create a notebook that loads an output with pyarrow or DuckDB. */
  openNotebook(path: string, engine: 'pyarrow' | 'duckdb'): Promise<void>;
  /** Paths selected in the file browser (relative to the Jupyter root, or absolute when known). */
  browserSelection(): string[];
  /** Save a blob as a download. */
  saveBlob(blob: Blob, name: string): void;
  /** Ask the sidebar to open the new-job form, prefilled with paths. */
  requestNewJob(paths: string[]): void;
  onNewJobRequest(fn: (paths: string[]) => void): () => void;
}
