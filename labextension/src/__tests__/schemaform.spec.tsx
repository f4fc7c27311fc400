import * as React from 'react';
import { act } from 'react';
import { createRoot, Root } from 'react-dom/client';

import { IJSONSchema } from '../models';
import {
  buildParams,
  droppedPaths,
  fieldsFromSchema,
  FormValues,
  IField,
  initialValues,
  SchemaForm,
  serverErrorsByField
} from '../schemaform';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

/** A schema shaped like csv-to-parquet's (the server's is the source of truth). */
const CSV_SCHEMA: IJSONSchema = {
  type: 'object',
  required: ['src', 'dst'],
  properties: {
    compression: {
      type: 'string',
      enum: ['zstd', 'snappy', 'gzip', 'none'],
      default: 'zstd'
    },
    dst: {
      type: 'string',
      title: 'Destination',
      description: 'Folder for the Parquet files'
    },
    src: { type: 'string', format: 'path', title: 'Source' },
    delimiter: { type: 'string', default: ',' },
    header: { type: 'boolean', default: true },
    row_group_size: { type: 'integer', minimum: 1, default: 122880 },
    sample_fraction: { type: 'number', minimum: 0, maximum: 1 },
    null_values: { type: 'array', items: { type: 'string' } },
    on_error: { type: ['string', 'null'], enum: ['skip', 'fail'] },
    partition: {
      type: 'object',
      properties: {
        by: { type: 'array', items: { type: 'string' } },
        max_files: { type: 'integer' }
      }
    },
    column_types: { type: 'object', additionalProperties: { type: 'string' } }
  }
};

describe('fieldsFromSchema', () => {
  const fields = fieldsFromSchema(CSV_SCHEMA);
  const byPath = (p: string) => fields.find(f => f.path === p) as IField;

  it('puts src and dst first and keeps the rest in declaration order', () => {
    expect(fields.map(f => f.name)).toEqual([
      'src',
      'dst',
      'compression',
      'delimiter',
      'header',
      'row_group_size',
      'sample_fraction',
      'null_values',
      'on_error',
      'partition',
      'column_types'
    ]);
  });

  it('picks a widget from each property schema', () => {
    expect(byPath('src').kind).toBe('path');
    expect(byPath('dst').kind).toBe('path'); // by name
    expect(byPath('compression').kind).toBe('enum');
    expect(byPath('header').kind).toBe('boolean');
    expect(byPath('row_group_size').kind).toBe('integer');
    expect(byPath('sample_fraction').kind).toBe('number');
    expect(byPath('null_values').kind).toBe('list');
    expect(byPath('on_error').kind).toBe('enum');
    expect(byPath('partition').kind).toBe('object');
    expect(byPath('partition').children?.map(c => c.path)).toEqual([
      'partition.by',
      'partition.max_files'
    ]);
    expect(byPath('column_types').kind).toBe('json');
  });

  it('labels from title, else from the name', () => {
    expect(byPath('src').label).toBe('Source');
    expect(byPath('row_group_size').label).toBe('Row group size');
    expect(byPath('src').required).toBe(true);
    expect(byPath('delimiter').required).toBe(false);
  });
});

describe('buildParams', () => {
  const fields = fieldsFromSchema(CSV_SCHEMA);

  it('sends typed values and leaves untouched optional fields to the server defaults', () => {
    const values: FormValues = {
      ...initialValues(fields),
      src: 'data/csv',
      dst: 'out',
      row_group_size: '1000',
      sample_fraction: '0.5',
      null_values: 'NA, -',
      'partition.by': 'year,month',
      column_types: '{"id": "int64"}'
    };
    const { params, errors } = buildParams(fields, values);
    expect(errors).toEqual({});
    expect(params).toEqual({
      src: 'data/csv',
      dst: 'out',
      row_group_size: 1000,
      sample_fraction: 0.5,
      null_values: ['NA', '-'],
      partition: { by: ['year', 'month'] },
      column_types: { id: 'int64' }
    });
  });

  it('leaves out options left at their default, and sends changed ones', () => {
    const values = { ...initialValues(fields), src: 'a', dst: 'b' };
    expect(buildParams(fields, values).params).toEqual({ src: 'a', dst: 'b' });
    const changed = buildParams(fields, {
      ...values,
      compression: 'gzip',
      delimiter: ';',
      row_group_size: '122880'
    });
    expect(changed.params).toEqual({
      src: 'a',
      dst: 'b',
      compression: 'gzip',
      delimiter: ';'
    });
  });

  it('reads a src that may be a string or a list (anyOf), as the real pipelines declare it', () => {
    const real = fieldsFromSchema({
      type: 'object',
      required: ['src'],
      properties: {
        src: {
          anyOf: [
            { type: 'string' },
            { type: 'array', items: { type: 'string' } }
          ]
        },
        layout: { enum: ['per_file', 'merged'], default: 'per_file' },
        tags: {
          type: ['array', 'null'],
          items: { type: 'string' },
          default: null
        },
        delimiter: { type: ['string', 'null'], default: null },
        columns: {
          type: 'object',
          additionalProperties: { type: 'string' },
          default: {}
        }
      }
    });
    expect(real.map(f => f.kind)).toEqual([
      'path',
      'enum',
      'list',
      'string',
      'json'
    ]);
    const v = initialValues(real);
    expect(v).toEqual({
      src: '',
      layout: 'per_file',
      tags: '',
      delimiter: '',
      columns: '{}'
    });
    expect(buildParams(real, { ...v, src: '/d/a.csv' }).params).toEqual({
      src: '/d/a.csv'
    });
    expect(
      buildParams(real, {
        ...v,
        src: '/d/a.csv\n/d/b.csv',
        tags: 'Make, Model'
      }).params
    ).toEqual({
      src: ['/d/a.csv', '/d/b.csv'],
      tags: ['Make', 'Model']
    });
  });

  it('sends a boolean only when it differs from its default', () => {
    const values = { ...initialValues(fields), src: 'a', dst: 'b' };
    expect(buildParams(fields, values).params.header).toBeUndefined();
    expect(
      buildParams(fields, { ...values, header: false }).params.header
    ).toBe(false);
  });

  it('sends several dropped paths as a list', () => {
    const { params } = buildParams(fields, { src: 'a.csv\nb.csv', dst: 'o' });
    expect(params.src).toEqual(['a.csv', 'b.csv']);
  });

  it('reports client-side errors by field', () => {
    const { errors } = buildParams(fields, {
      src: '',
      dst: ' ',
      row_group_size: '1.5',
      sample_fraction: '3',
      column_types: '{'
    });
    expect(Object.keys(errors).sort()).toEqual([
      'column_types',
      'dst',
      'row_group_size',
      'sample_fraction',
      'src'
    ]);
    expect(errors.src).toBe('Source is required.');
    expect(errors.row_group_size).toMatch(/whole number/);
    expect(errors.sample_fraction).toMatch(/at most 1/);
  });
});

describe('serverErrorsByField', () => {
  const fields = fieldsFromSchema(CSV_SCHEMA);
  it('maps the server’s per-path errors to fields', () => {
    const out = serverErrorsByField(
      {
        message: 'invalid params',
        errors: [
          { path: 'params.src', message: 'no such file or directory: data/x' },
          {
            path: ['params', 'partition', 'max_files'],
            message: 'must be >= 1'
          },
          { path: '/params/null_values/1', message: 'must be a string' },
          { path: 'params.bogus', message: "unknown option 'bogus'" }
        ]
      },
      fields
    );
    expect(out.src).toBe('no such file or directory: data/x');
    expect(out['partition.max_files']).toBe('must be >= 1');
    expect(out.null_values).toBe('must be a string');
    expect(out['']).toBe("unknown option 'bogus'");
  });

  it('accepts a {field: message} map and falls back to the message', () => {
    expect(
      serverErrorsByField({ errors: { dst: ['is required'] } }, fields)
    ).toEqual({ dst: 'is required' });
    expect(
      serverErrorsByField({ message: 'unknown pipeline' }, fields)
    ).toEqual({ '': 'unknown pipeline' });
  });
});

describe('droppedPaths', () => {
  it('reads text/plain and uri lists', () => {
    const dt = {
      getData: (t: string) => (t === 'text/plain' ? 'a/b\n# c\n d \n' : '')
    };
    expect(droppedPaths(dt)).toEqual(['a/b', 'd']);
  });
});

describe('<SchemaForm>', () => {
  let container: HTMLDivElement;
  let root: Root;
  beforeEach(() => {
    container = document.createElement('div');
    document.body.appendChild(container);
    root = createRoot(container);
  });
  afterEach(() => {
    act(() => root.unmount());
    container.remove();
  });

  function Harness(props: {
    errors?: Record<string, string>;
    onValues: (v: FormValues) => void;
  }) {
    const fields = React.useMemo(() => fieldsFromSchema(CSV_SCHEMA), []);
    const [values, setValues] = React.useState<FormValues>(() =>
      initialValues(fields, { src: 'given' })
    );
    React.useEffect(() => {
      props.onValues(values);
    }, [values]);
    return (
      <SchemaForm
        fields={fields}
        values={values}
        errors={props.errors ?? {}}
        onChange={(p, v) => setValues(old => ({ ...old, [p]: v }))}
        pickPath={f =>
          setValues(old => ({ ...old, [f.path]: 'picked/folder' }))
        }
      />
    );
  }

  it('renders one labelled control per field, with defaults', () => {
    act(() => root.render(<Harness onValues={() => undefined} />));
    const src = container.querySelector<HTMLInputElement>('#aerofs-field-src')!;
    expect(src.value).toBe('given');
    expect(
      container.querySelector('label[for="aerofs-field-src"]')?.textContent
    ).toContain('Source');
    const compression = container.querySelector<HTMLSelectElement>(
      '#aerofs-field-compression'
    )!;
    expect(compression.tagName).toBe('SELECT');
    expect(compression.value).toBe('zstd');
    expect(Array.from(compression.options).map(o => o.value)).toEqual([
      '',
      'zstd',
      'snappy',
      'gzip',
      'none'
    ]);
    expect(
      container.querySelector<HTMLInputElement>('#aerofs-field-header')!.checked
    ).toBe(true);
    expect(
      container.querySelector<HTMLInputElement>('#aerofs-field-row_group_size')!
        .type
    ).toBe('number');
    expect(
      container.querySelector('#aerofs-field-partition-max_files')
    ).not.toBeNull();
    expect(container.querySelector('fieldset legend')?.textContent).toBe(
      'Partition'
    );
  });

  it('fills a path from the file browser selection', () => {
    let values: FormValues = {};
    act(() => root.render(<Harness onValues={v => (values = v)} />));
    const buttons = container.querySelectorAll<HTMLButtonElement>(
      '.jp-AeroFS-pathField button'
    );
    expect(buttons.length).toBe(2);
    act(() => buttons[1].click());
    expect(values.dst).toBe('picked/folder');
    expect(
      container.querySelector<HTMLInputElement>('#aerofs-field-dst')!.value
    ).toBe('picked/folder');
  });

  it('shows errors next to their field, linked for screen readers', () => {
    act(() =>
      root.render(
        <Harness
          errors={{
            dst: 'must be a folder',
            'partition.max_files': 'too small'
          }}
          onValues={() => undefined}
        />
      )
    );
    const dst = container.querySelector<HTMLInputElement>('#aerofs-field-dst')!;
    expect(dst.getAttribute('aria-invalid')).toBe('true');
    const err = container.querySelector('#aerofs-field-dst-err')!;
    expect(err.textContent).toBe('must be a folder');
    expect(dst.getAttribute('aria-describedby')).toContain(
      'aerofs-field-dst-err'
    );
    expect(
      container.querySelector('#aerofs-field-partition-max_files-err')
        ?.textContent
    ).toBe('too small');
    expect(container.querySelectorAll('[role="alert"]')).toHaveLength(2);
    // An error inside the options opens them.
    expect(
      (
        container.querySelector(
          'details.jp-AeroFS-options'
        ) as HTMLDetailsElement
      ).open
    ).toBe(true);
  });
});
