import {
  applyUpdates,
  backoffDelay,
  EventStream,
  ISocketLike,
  mergeJob,
  parseEvents
} from '../events';
import { normalizeJob } from '../models';

describe('parseEvents', () => {
  it('reads {event_id, job}', () => {
    const [u] = parseEvents(
      JSON.stringify({
        event_id: 12,
        job: { id: 5, state: 'running', progress: { fraction: 0.5 } }
      })
    );
    expect(u.eventId).toBe(12);
    expect(u.job).toEqual({
      id: '5',
      state: 'RUNNING',
      progress: { fraction: 0.5 }
    });
  });

  it('reads flat {event_id, job_id, ...fields}', () => {
    const [u] = parseEvents(
      JSON.stringify({
        event_id: 'e3',
        type: 'progress',
        job_id: 'j1',
        progress: 0.1
      })
    );
    expect(u.eventId).toBe('e3');
    expect(u.job).toEqual({ id: 'j1', progress: 0.1 });
  });

  it('reads event rows {id, job_id, type, data, at} as the store keeps them', () => {
    const [state] = parseEvents(
      JSON.stringify({
        id: 57,
        job_id: 'j9',
        owner: 'ana',
        type: 'state',
        data: { state: 'running' },
        at: 'x'
      })
    );
    expect(state.eventId).toBe(57);
    expect(state.job).toEqual({ id: 'j9', owner: 'ana', state: 'RUNNING' });
    const [progress] = parseEvents(
      JSON.stringify({
        id: 58,
        job_id: 'j9',
        type: 'progress',
        data: { bytes_done: 5, bytes_total: 10 }
      })
    );
    expect(progress.job).toEqual({
      id: 'j9',
      progress: { bytes_done: 5, bytes_total: 10 }
    });
    const [log] = parseEvents(
      JSON.stringify({
        id: 59,
        job_id: 'j9',
        type: 'log',
        data: { state: 'FAILED' }
      })
    );
    expect(log.eventId).toBe(59);
    expect(log.job).toEqual({ id: 'j9' });
  });

  it('reads lists and {events: [...]}, ignores keep-alives and garbage', () => {
    expect(
      parseEvents(JSON.stringify([{ job_id: 1 }, { job_id: 2 }])).map(
        u => u.job.id
      )
    ).toEqual(['1', '2']);
    expect(
      parseEvents(JSON.stringify({ events: [{ job: { id: 9 } }] }))
    ).toHaveLength(1);
    expect(parseEvents(JSON.stringify({ type: 'ping' }))).toEqual([]);
    expect(parseEvents('not json')).toEqual([]);
  });
});

describe('reducer', () => {
  const base = [
    normalizeJob({
      id: 'a',
      state: 'RUNNING',
      attempts: 1,
      progress: { fraction: 0.1 }
    }),
    normalizeJob({ id: 'b', state: 'QUEUED', attempts: 0 })
  ];

  it('updates known jobs without touching the others', () => {
    const out = applyUpdates(base, [
      { eventId: 1, job: { id: 'a', progress: { fraction: 0.6 } } }
    ]);
    expect(out).not.toBe(base);
    expect(out[0].progress).toEqual({ fraction: 0.6 });
    expect(out[0].state).toBe('RUNNING');
    expect(out[1]).toBe(base[1]);
    expect(base[0].progress).toEqual({ fraction: 0.1 }); // immutable
  });

  it('returns the same list when nothing it holds changed', () => {
    expect(
      applyUpdates(base, [{ eventId: 1, job: { id: 'zzz', state: 'RUNNING' } }])
    ).toBe(base);
  });

  it('prepends unknown jobs only when asked', () => {
    const out = applyUpdates(
      base,
      [{ eventId: 1, job: { id: 'c', state: 'PENDING' } }],
      () => true
    );
    expect(out.map(j => j.id)).toEqual(['c', 'a', 'b']);
  });

  it('never moves a finished job back because of a late progress event', () => {
    const done = normalizeJob({
      id: 'a',
      state: 'SUCCEEDED',
      attempts: 1,
      finished_at: '2026-01-01T00:00:00Z'
    });
    const late = mergeJob(done, {
      id: 'a',
      state: 'RUNNING',
      progress: { fraction: 0.9 }
    });
    expect(late.state).toBe('SUCCEEDED');
    expect(late.finished_at).toBe('2026-01-01T00:00:00Z');
  });

  it('lets a retry (a new attempt) run again', () => {
    const failed = normalizeJob({ id: 'a', state: 'FAILED', attempts: 1 });
    expect(
      mergeJob(failed, { id: 'a', state: 'QUEUED', attempts: 2 }).state
    ).toBe('QUEUED');
  });
});

describe('backoffDelay', () => {
  it('grows exponentially and is capped', () => {
    const max = (n: number) => backoffDelay(n, 500, 30000, () => 1);
    const min = (n: number) => backoffDelay(n, 500, 30000, () => 0);
    expect(max(0)).toBe(500);
    expect(max(1)).toBe(1000);
    expect(max(3)).toBe(4000);
    expect(max(20)).toBe(30000);
    expect(min(3)).toBe(2000);
  });
});

class FakeSocket implements ISocketLike {
  onopen: any = null;
  onmessage: any = null;
  onclose: any = null;
  onerror: any = null;
  closed = false;
  constructor(readonly since: string | number | null) {}
  close(): void {
    this.closed = true;
  }
  send(data: unknown): void {
    this.onmessage?.({ data: JSON.stringify(data) });
  }
}

describe('EventStream', () => {
  function setup() {
    const sockets: FakeSocket[] = [];
    const timers: Array<{ fn: () => void; ms: number }> = [];
    const stream = new EventStream(
      since => {
        const s = new FakeSocket(since);
        sockets.push(s);
        return s;
      },
      (fn, ms) => timers.push({ fn, ms }),
      () => undefined
    );
    return { stream, sockets, timers };
  }

  it('delivers updates and reconnects from the last event id after a drop', () => {
    const { stream, sockets, timers } = setup();
    const got: string[] = [];
    const reconnects: number[] = [];
    stream.onUpdates(us =>
      us.forEach(u => got.push(`${u.job.id}:${u.job.state}`))
    );
    stream.onReconnect(() => reconnects.push(1));
    stream.connect();
    expect(sockets[0].since).toBeNull();
    sockets[0].onopen({});
    expect(stream.state).toBe('open');
    sockets[0].send({ event_id: 41, job: { id: 'j', state: 'QUEUED' } });
    sockets[0].send({ event_id: 42, job: { id: 'j', state: 'RUNNING' } });
    expect(got).toEqual(['j:QUEUED', 'j:RUNNING']);

    sockets[0].onclose({});
    expect(stream.state).toBe('closed');
    expect(timers).toHaveLength(1);
    timers[0].fn();
    expect(sockets).toHaveLength(2);
    expect(sockets[1].since).toBe(42);
    sockets[1].onopen({});
    expect(reconnects).toHaveLength(1);
    sockets[1].send({ event_id: 43, job: { id: 'j', state: 'SUCCEEDED' } });
    expect(got[got.length - 1]).toBe('j:SUCCEEDED');
  });

  it("resumes from the greeting's last_event_id when no event came yet", () => {
    const { stream, sockets, timers } = setup();
    stream.connect();
    sockets[0].onopen({});
    sockets[0].send({ type: 'hello', last_event_id: 500 });
    expect(stream.lastEventId).toBe(500);
    sockets[0].onclose({});
    timers[0].fn();
    expect(sockets[1].since).toBe(500);
  });

  it('backs off longer while the server stays away, and resets once connected', () => {
    const { stream, sockets, timers } = setup();
    stream.connect();
    for (let i = 0; i < 4; i++) {
      sockets[sockets.length - 1].onclose({});
      timers[timers.length - 1].fn();
    }
    const ceilings = timers.map(t => t.ms);
    expect(ceilings[3]).toBeGreaterThanOrEqual(ceilings[0] * 2);
    sockets[sockets.length - 1].onopen({});
    sockets[sockets.length - 1].onclose({});
    expect(timers[timers.length - 1].ms).toBeLessThanOrEqual(500);
  });

  it('stops for good when disposed', () => {
    const { stream, sockets, timers } = setup();
    stream.connect();
    sockets[0].onopen({});
    stream.dispose();
    expect(sockets[0].closed).toBe(true);
    sockets[0].onclose?.({});
    expect(timers).toHaveLength(0);
  });
});
