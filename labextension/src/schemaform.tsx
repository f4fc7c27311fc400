/**
 * A job form rendered from a pipeline's JSON Schema: one description of the
 * options (the server's) feeds this form, so no pipeline has a hand-written
 * form. Path fields accept a folder dragged from the file browser.
 */
import * as React from 'react';

import { IJSONSchema } from './models';

export type FieldKind =
  | 'path'
  | 'string'
  | 'enum'
  | 'number'
  | 'integer'
  | 'boolean'
  | 'list'
  | 'object'
  | 'json';

export interface IField {
  name: string;
  /** Dotted path from the params root (`a.b` for nested objects). */
  path: string;
  kind: FieldKind;
  label: string;
  description: string;
  required: boolean;
  schema: IJSONSchema;
  options?: unknown[];
  children?: IField[];
}

/** Mime type the file browser uses when dragging items. */
export const CONTENTS_MIME = 'application/x-jupyter-icontents';

const PATH_NAMES = new Set([
  'src',
  'dst',
  'source',
  'destination',
  'input',
  'output'
]);

function primaryType(s: IJSONSchema): string | undefined {
  if (Array.isArray(s.type)) {
    return s.type.find(t => t !== 'null');
  }
  if (s.type) {
    return s.type;
  }
  const alt = (s.anyOf ?? s.oneOf ?? []).find(a => a.type && a.type !== 'null');
  return alt ? primaryType(alt) : undefined;
}

function isPathSchema(name: string, s: IJSONSchema): boolean {
  if (
    s.format &&
    ['path', 'uri', 'uri-reference', 'file-path', 'directory'].includes(
      s.format
    )
  ) {
    return true;
  }
  return PATH_NAMES.has(name);
}

function humanize(name: string): string {
  const s = name.replace(/[_-]+/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** The fields of an object schema, in declaration order, required first for paths. */
export function fieldsFromSchema(schema: IJSONSchema, prefix = ''): IField[] {
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const fields: IField[] = [];
  for (const [name, raw] of Object.entries(props)) {
    const s = raw ?? {};
    const path = prefix ? `${prefix}.${name}` : name;
    const t = primaryType(s);
    const base = {
      name,
      path,
      label: s.title ?? humanize(name),
      description: s.description ?? '',
      required: required.has(name),
      schema: s
    };
    if (s.enum) {
      fields.push({ ...base, kind: 'enum', options: s.enum });
    } else if (t === 'object' && s.properties) {
      fields.push({
        ...base,
        kind: 'object',
        children: fieldsFromSchema(s, path)
      });
    } else if (t === 'object') {
      fields.push({ ...base, kind: 'json' });
    } else if (t === 'array') {
      const itemT = s.items ? primaryType(s.items) : 'string';
      if (isPathSchema(name, s) || isPathSchema(name, s.items ?? {})) {
        fields.push({ ...base, kind: 'path' });
      } else if (
        itemT === 'string' ||
        itemT === 'number' ||
        itemT === 'integer'
      ) {
        fields.push({ ...base, kind: 'list' });
      } else {
        fields.push({ ...base, kind: 'json' });
      }
    } else if (t === 'boolean') {
      fields.push({ ...base, kind: 'boolean' });
    } else if (t === 'integer' || t === 'number') {
      fields.push({ ...base, kind: t });
    } else if (isPathSchema(name, s)) {
      fields.push({ ...base, kind: 'path' });
    } else {
      fields.push({ ...base, kind: 'string' });
    }
  }
  // src and dst first: they are what every job is about.
  const rank = (f: IField) => (f.name === 'src' ? 0 : f.name === 'dst' ? 1 : 2);
  return fields.sort((a, b) => rank(a) - rank(b));
}

/** Form values keyed by dotted path; raw strings for text inputs. */
export type FormValues = Record<string, unknown>;

/** How a field's default shows in its input ('' when it has none). */
export function defaultText(f: IField): string {
  const d = f.schema.default;
  if (d === undefined || d === null) {
    return '';
  }
  if (f.kind === 'list' || (f.kind === 'path' && Array.isArray(d))) {
    return Array.isArray(d)
      ? d.join(f.kind === 'path' ? '\n' : ', ')
      : String(d);
  }
  if (f.kind === 'json') {
    return JSON.stringify(d);
  }
  return String(d);
}

/** Initial values: the schema's defaults, then any values given (e.g. a path). */
export function initialValues(
  fields: IField[],
  given: Record<string, unknown> = {}
): FormValues {
  const out: FormValues = {};
  const walk = (fs: IField[]) => {
    for (const f of fs) {
      if (f.kind === 'object') {
        walk(f.children ?? []);
        continue;
      }
      const d = f.path in given ? given[f.path] : f.schema.default;
      if (d === undefined || d === null) {
        out[f.path] = f.kind === 'boolean' ? false : '';
      } else if (f.kind === 'list') {
        out[f.path] = Array.isArray(d) ? d.join(', ') : String(d);
      } else if (f.kind === 'json') {
        out[f.path] = JSON.stringify(d);
      } else if (f.kind === 'path' && Array.isArray(d)) {
        out[f.path] = d.join('\n');
      } else {
        out[f.path] = d;
      }
    }
  };
  walk(fields);
  return out;
}

/**
 * Turn form values into the `params` object the server expects, with the
 * client-side errors found on the way (required, numbers, JSON). Empty
 * optional fields are left out, so the server's defaults apply.
 */
export function buildParams(
  fields: IField[],
  values: FormValues
): { params: Record<string, unknown>; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const build = (fs: IField[]): Record<string, unknown> => {
    const obj: Record<string, unknown> = {};
    for (const f of fs) {
      if (f.kind === 'object') {
        const child = build(f.children ?? []);
        if (Object.keys(child).length) {
          obj[f.name] = child;
        }
        continue;
      }
      const raw = values[f.path];
      const empty =
        raw === undefined ||
        raw === null ||
        (typeof raw === 'string' && raw.trim() === '');
      if (f.kind === 'boolean') {
        if (
          raw !== undefined &&
          (raw !== (f.schema.default ?? false) || f.required)
        ) {
          obj[f.name] = Boolean(raw);
        }
        continue;
      }
      if (empty) {
        if (f.required) {
          errors[f.path] = `${f.label} is required.`;
        }
        continue;
      }
      const text = String(raw).trim();
      if (!f.required && text === defaultText(f).trim()) {
        continue; // unchanged: the server applies its default
      }
      switch (f.kind) {
        case 'integer':
        case 'number': {
          const n = Number(text);
          if (
            !Number.isFinite(n) ||
            (f.kind === 'integer' && !Number.isInteger(n))
          ) {
            errors[f.path] =
              `${f.label} must be ${f.kind === 'integer' ? 'a whole number' : 'a number'}.`;
          } else if (
            typeof f.schema.minimum === 'number' &&
            n < f.schema.minimum
          ) {
            errors[f.path] = `${f.label} must be at least ${f.schema.minimum}.`;
          } else if (
            typeof f.schema.maximum === 'number' &&
            n > f.schema.maximum
          ) {
            errors[f.path] = `${f.label} must be at most ${f.schema.maximum}.`;
          } else {
            obj[f.name] = n;
          }
          break;
        }
        case 'enum': {
          const match = (f.options ?? []).find(o => String(o) === text);
          obj[f.name] = match === undefined ? text : match;
          break;
        }
        case 'list': {
          const itemT = f.schema.items ? primaryType(f.schema.items) : 'string';
          const items = text
            .split(/[,\n]/)
            .map(s => s.trim())
            .filter(Boolean);
          obj[f.name] = itemT === 'string' ? items : items.map(Number);
          break;
        }
        case 'json': {
          try {
            obj[f.name] = JSON.parse(text);
          } catch {
            errors[f.path] = `${f.label} must be valid JSON.`;
          }
          break;
        }
        case 'path': {
          const isArray = primaryType(f.schema) === 'array';
          const lines = text
            .split('\n')
            .map(s => s.trim())
            .filter(Boolean);
          obj[f.name] = isArray ? lines : lines.length > 1 ? lines : lines[0];
          break;
        }
        default:
          obj[f.name] = text;
      }
    }
    return obj;
  };
  const params = build(fields);
  return { params, errors };
}

/**
 * The server's validation errors, keyed by field path. Accepts
 * `{errors: [{path, message}]}` (path as "src", "params.src", "/params/src"
 * or ["params", "src"]), `{errors: {"src": "..."}}` and `{message}`; errors
 * that match no field go under "" (shown above the form).
 */
export function serverErrorsByField(
  body: any,
  fields: IField[]
): Record<string, string> {
  const known = new Set<string>();
  const walk = (fs: IField[]) =>
    fs.forEach(f => {
      known.add(f.path);
      walk(f.children ?? []);
    });
  walk(fields);
  const out: Record<string, string> = {};
  const add = (rawPath: unknown, message: string) => {
    let parts: string[];
    if (Array.isArray(rawPath)) {
      parts = rawPath.map(String);
    } else {
      parts = String(rawPath ?? '')
        .split(/[./]/)
        .filter(Boolean);
    }
    if (parts[0] === 'params' || parts[0] === '$' || parts[0] === 'body') {
      parts = parts.slice(1);
    }
    // An index into an array belongs to the array field.
    while (parts.length && !known.has(parts.join('.'))) {
      const last = parts[parts.length - 1];
      if (/^\d+$/.test(last)) {
        parts = parts.slice(0, -1);
      } else {
        break;
      }
    }
    const key = known.has(parts.join('.')) ? parts.join('.') : '';
    out[key] = out[key] ? `${out[key]} ${message}` : message;
  };
  const errs = body?.errors ?? body?.detail;
  if (Array.isArray(errs)) {
    for (const e of errs) {
      if (typeof e === 'string') {
        add('', e);
      } else {
        add(
          e.path ?? e.loc ?? e.field ?? e.instancePath ?? '',
          String(e.message ?? e.msg ?? e)
        );
      }
    }
  } else if (errs && typeof errs === 'object') {
    for (const [k, v] of Object.entries(errs)) {
      add(k, Array.isArray(v) ? v.join(' ') : String(v));
    }
  }
  if (!Object.keys(out).length && body?.message) {
    out[''] = String(body.message);
  }
  return out;
}

/** Paths carried by a drag from the file browser (or plain text). */
export function droppedPaths(data: {
  getData(type: string): string;
  types?: readonly string[];
}): string[] {
  const text = data.getData('text/plain') || data.getData('text/uri-list');
  return text
    .split(/\r?\n/)
    .map(s => s.trim())
    .filter(s => s && !s.startsWith('#'));
}

export interface ISchemaFormProps {
  fields: IField[];
  values: FormValues;
  errors: Record<string, string>;
  onChange: (path: string, value: unknown) => void;
  /** Fill a path field from the file browser's selection. */
  pickPath?: (field: IField) => void;
  idPrefix?: string;
}

/**
 * Renders fields; the parent owns values and errors. Required fields and
 * paths come first; the other options sit under a disclosure that opens by
 * itself when one of them has an error.
 */
export function SchemaForm(props: ISchemaFormProps): JSX.Element {
  const main = props.fields.filter(f => f.required || f.kind === 'path');
  const rest = props.fields.filter(f => !main.includes(f));
  const restHasError = rest.some(f =>
    Object.keys(props.errors).some(
      k => k === f.path || k.startsWith(`${f.path}.`)
    )
  );
  return (
    <>
      {main.map(f => renderField(f, props))}
      {rest.length > 0 && (
        <details className="jp-AeroFS-options" open={restHasError || undefined}>
          <summary>Options ({rest.length})</summary>
          {rest.map(f => renderField(f, props))}
        </details>
      )}
    </>
  );
}

function renderField(f: IField, props: ISchemaFormProps): JSX.Element {
  const id = `${props.idPrefix ?? 'aerofs-field'}-${f.path.replace(/\./g, '-')}`;
  const error = props.errors[f.path];
  const value = props.values[f.path];
  const describedBy = [
    f.description ? `${id}-desc` : '',
    error ? `${id}-err` : ''
  ]
    .filter(Boolean)
    .join(' ');
  const common = {
    id,
    name: f.path,
    'aria-invalid': error ? true : undefined,
    'aria-describedby': describedBy || undefined,
    'data-field': f.path
  };
  if (f.kind === 'object') {
    return (
      <fieldset key={f.path} className="jp-AeroFS-fieldset">
        <legend>{f.label}</legend>
        {f.description && (
          <p className="jp-AeroFS-fieldDesc">{f.description}</p>
        )}
        {(f.children ?? []).map(c => renderField(c, props))}
      </fieldset>
    );
  }
  let input: JSX.Element;
  switch (f.kind) {
    case 'boolean':
      input = (
        <input
          {...common}
          type="checkbox"
          checked={Boolean(value)}
          onChange={e => props.onChange(f.path, e.currentTarget.checked)}
        />
      );
      break;
    case 'enum':
      input = (
        <select
          {...common}
          className="jp-mod-styled"
          value={value === undefined || value === null ? '' : String(value)}
          onChange={e => props.onChange(f.path, e.currentTarget.value)}
        >
          {!f.required && <option value="">(default)</option>}
          {(f.options ?? []).map(o => (
            <option key={String(o)} value={String(o)}>
              {String(o)}
            </option>
          ))}
        </select>
      );
      break;
    case 'integer':
    case 'number':
      input = (
        <input
          {...common}
          className="jp-mod-styled"
          type="number"
          step={f.kind === 'integer' ? 1 : 'any'}
          min={f.schema.minimum}
          max={f.schema.maximum}
          placeholder={
            f.schema.default !== undefined ? String(f.schema.default) : ''
          }
          value={String(value ?? '')}
          onChange={e => props.onChange(f.path, e.currentTarget.value)}
        />
      );
      break;
    case 'path':
      input = (
        <div
          className="jp-AeroFS-pathField"
          onDragOver={e => {
            e.preventDefault();
            e.currentTarget.classList.add('jp-mod-dropTarget');
          }}
          onDragLeave={e =>
            e.currentTarget.classList.remove('jp-mod-dropTarget')
          }
          onDrop={e => {
            e.preventDefault();
            e.currentTarget.classList.remove('jp-mod-dropTarget');
            const paths = droppedPaths(e.dataTransfer);
            if (paths.length) {
              props.onChange(f.path, paths.join('\n'));
            }
          }}
        >
          <input
            {...common}
            className="jp-mod-styled"
            type="text"
            placeholder="folder, file, glob or s3://bucket/prefix/ — or drop a folder here"
            value={String(value ?? '')}
            onChange={e => props.onChange(f.path, e.currentTarget.value)}
          />
          {props.pickPath && (
            <button
              type="button"
              className="jp-AeroFS-button jp-mod-small"
              title="Use the item selected in the file browser"
              aria-label={`${f.label}: use the file browser's selection`}
              onClick={() => props.pickPath?.(f)}
            >
              From file browser
            </button>
          )}
        </div>
      );
      break;
    case 'json':
    case 'list':
    case 'string':
    default:
      input = (
        <input
          {...common}
          className="jp-mod-styled"
          type="text"
          placeholder={
            f.kind === 'list'
              ? 'comma-separated'
              : f.schema.default !== undefined
                ? String(
                    f.kind === 'json'
                      ? JSON.stringify(f.schema.default)
                      : f.schema.default
                  )
                : ''
          }
          value={String(value ?? '')}
          onChange={e => props.onChange(f.path, e.currentTarget.value)}
        />
      );
  }
  return (
    <div
      key={f.path}
      className={`jp-AeroFS-field${error ? ' jp-mod-error' : ''}`}
    >
      <label htmlFor={id}>
        {f.label}
        {f.required && (
          <span className="jp-AeroFS-required" aria-hidden="true">
            {' '}
            *
          </span>
        )}
      </label>
      {input}
      {f.description && (
        <div id={`${id}-desc`} className="jp-AeroFS-fieldDesc">
          {f.description}
        </div>
      )}
      {error && (
        <div id={`${id}-err`} className="jp-AeroFS-fieldError" role="alert">
          {error}
        </div>
      )}
    </div>
  );
}
