/** Typed calls to the job server's REST API (all through request.ts). */
import {
  IJob,
  IJobPage,
  IJobQuery,
  IOutput,
  IPipeline,
  IStats,
  normalizeJob,
  normalizePage,
  outputName,
  outputPath,
  queryToParams
} from './models';
import { requestAPI, requestBlob, requestText } from './request';

export async function listPipelines(): Promise<IPipeline[]> {
  const body = await requestAPI<any>('pipelines');
  const list: any[] = Array.isArray(body) ? body : (body?.pipelines ?? []);
  return list.map(p => ({
    name: p.name,
    title: p.title ?? p.name,
    description: p.description ?? '',
    schema: p.schema ?? p.options_schema ?? { type: 'object', properties: {} }
  }));
}

export async function listJobs(query: IJobQuery): Promise<IJobPage> {
  return normalizePage(await requestAPI<any>(`jobs?${queryToParams(query)}`));
}

export async function getJob(id: string): Promise<IJob> {
  const body = await requestAPI<any>(`jobs/${encodeURIComponent(id)}`);
  return normalizeJob(body?.job ?? body);
}

export async function submitJob(
  pipeline: string,
  params: Record<string, unknown>
): Promise<{ id: string; state: string }> {
  const body = await requestAPI<any>('jobs', {
    method: 'POST',
    body: JSON.stringify({ pipeline, params })
  });
  return { id: String(body.id), state: String(body.state ?? 'PENDING') };
}

export async function cancelJob(id: string): Promise<void> {
  await requestAPI<any>(`jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

export async function retryJob(id: string): Promise<{ id: string }> {
  const body = await requestAPI<any>(`jobs/${encodeURIComponent(id)}/retry`, {
    method: 'POST',
    body: '{}'
  });
  return { id: String(body?.id ?? id) };
}

/** Logs as text; accepts plain text, `{logs: "..."}`, `{lines: [...]}` or a list of records. */
export async function getLogs(id: string): Promise<string> {
  const { text, contentType } = await requestText(
    `jobs/${encodeURIComponent(id)}/logs`
  );
  if (!contentType.includes('json')) {
    return text;
  }
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    return text;
  }
  const lines: any = body?.lines ?? body?.logs ?? body;
  if (typeof lines === 'string') {
    return lines;
  }
  if (Array.isArray(lines)) {
    return lines
      .map(l =>
        typeof l === 'string'
          ? l
          : [
              l.time ?? l.at ?? l.ts ?? '',
              l.level ?? '',
              l.message ?? l.msg ?? JSON.stringify(l)
            ]
              .filter(Boolean)
              .join(' ')
      )
      .join('\n');
  }
  return JSON.stringify(body, null, 2);
}

export async function listOutputs(id: string): Promise<IOutput[]> {
  const body = await requestAPI<any>(`jobs/${encodeURIComponent(id)}/outputs`);
  const list: any[] = Array.isArray(body) ? body : (body?.outputs ?? []);
  return list.map((o: any) =>
    typeof o === 'string'
      ? { path: o, name: outputName(o) }
      : { ...o, path: outputPath(o) }
  );
}

/**
 * Download one output through the authenticated connection:
 * `jobs/{id}/outputs?path=<output path>` (or the output's own `url`, when
 * the server gives one).
 */
export async function downloadOutput(
  id: string,
  output: IOutput
): Promise<Blob> {
  const url =
    typeof output.url === 'string' && output.url
      ? output.url.replace(/^.*aerofs\/api\//, '')
      : `jobs/${encodeURIComponent(id)}/outputs?path=${encodeURIComponent(output.path)}`;
  return requestBlob(url);
}

export async function getStats(): Promise<IStats> {
  return requestAPI<IStats>('stats');
}
