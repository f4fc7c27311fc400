/**
 * The only module that talks to the server. Everything goes through
 * ServerConnection so the base URL, the token and the XSRF cookie are right
 * under JupyterHub and behind proxies too.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The REST prefix of the AeroFS job server, under the server's base URL. */
export const API_PREFIX = 'aerofs/api';

/** An error answered by the job server (or the failure to reach it). */
export class ApiError extends Error {
  constructor(
    message: string,
    /** HTTP status; 0 when the server could not be reached at all. */
    readonly status: number,
    /** The decoded JSON body, when there was one (400s carry per-path errors). */
    readonly body: any = null
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** True when the job server (or the Jupyter server) did not answer. */
  get unreachable(): boolean {
    return this.status === 0 || this.status === 502 || this.status === 503;
  }

  /** True when the server has no AeroFS routes (the server extension is off). */
  get notInstalled(): boolean {
    return this.status === 404 && !this.body;
  }
}

let settings: ServerConnection.ISettings | null = null;

/** Settings used by every request; tests and the plugin may set their own. */
export function serverSettings(): ServerConnection.ISettings {
  if (!settings) {
    settings = ServerConnection.makeSettings();
  }
  return settings;
}

export function setServerSettings(s: ServerConnection.ISettings): void {
  settings = s;
}

/** Absolute URL of an API endpoint (`jobs/42` → `<base>/aerofs/api/jobs/42`). */
export function apiUrl(endPoint: string): string {
  return URLExt.join(serverSettings().baseUrl, API_PREFIX, endPoint);
}

async function send(
  endPoint: string,
  init: RequestInit = {}
): Promise<Response> {
  const s = serverSettings();
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(apiUrl(endPoint), init, s);
  } catch (error) {
    throw new ApiError(
      `The Jupyter server could not be reached: ${String(
        (error as Error)?.message ?? error
      )}`,
      0
    );
  }
  if (!response.ok) {
    const text = await response.text();
    let body: any = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    const message =
      (body && (body.message || body.reason || body.error)) ||
      `${response.status} ${response.statusText}`.trim();
    throw new ApiError(String(message), response.status, body);
  }
  return response;
}

/** Call a JSON endpoint of the job server. */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {}
): Promise<T> {
  if (init.body && typeof init.body === 'string') {
    init.headers = { 'Content-Type': 'application/json', ...init.headers };
  }
  const response = await send(endPoint, init);
  const text = await response.text();
  if (!text) {
    return null as T;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    return text as unknown as T;
  }
}

/** Fetch an endpoint as text (logs may be plain text or JSON). */
export async function requestText(
  endPoint: string
): Promise<{ text: string; contentType: string }> {
  const response = await send(endPoint);
  return {
    text: await response.text(),
    contentType: response.headers.get('Content-Type') ?? ''
  };
}

/** Fetch a file (an output) through the authenticated connection. */
export async function requestBlob(endPoint: string): Promise<Blob> {
  const response = await send(endPoint);
  return response.blob();
}

/** The WebSocket URL of the live job events, with the token when one is set. */
export function eventsUrl(since?: string | number | null): string {
  const s = serverSettings();
  let url = URLExt.join(s.wsUrl, API_PREFIX, 'events');
  const query: Record<string, string> = {};
  if (s.token) {
    query.token = s.token;
  }
  if (since !== undefined && since !== null && since !== '') {
    query.since = String(since);
  }
  const qs = URLExt.objectToQueryString(query);
  if (qs) {
    url += qs;
  }
  return url;
}

/** Open a WebSocket with the server settings' WebSocket class. */
export function openEventSocket(since?: string | number | null): WebSocket {
  const s = serverSettings();
  return new s.WebSocket(eventsUrl(since));
}
