/**
 * Retrying on a result: `retryIf` (aomaker's `retry_condition`) and the polling decorator of the
 * "retry an API call until it leaves the running state" article (`loop_retry(times, sleep_time)`),
 * translated: poll a task until its status leaves 'run'.
 */
import { describe, expect, it } from 'vitest';
import { asyncretry, Backoff, currentAttempt, RetryConditionError } from '../src/index.js';
import {
  decorateMethod,
  FatalError,
  hang,
  now,
  scripted,
  stats,
  TransientError,
  track,
  useFakeClock,
} from './support/harness.js';

const t = useFakeClock();

interface TaskData {
  readonly totalStatus: 'run' | 'success' | 'failed';
  readonly poll: number;
}

/** A task-status endpoint: 'run' for the first `running` polls, then `final`. */
function taskApi(running: number, final: TaskData['totalStatus'] = 'success') {
  const polls: number[] = [];
  const responses: TaskData[] = [];
  const taskStatus = async (taskId: string): Promise<TaskData> => {
    expect(taskId).toBe('task-1');
    polls.push(now());
    const data: TaskData = {
      totalStatus: polls.length <= running ? 'run' : final,
      poll: polls.length,
    };
    responses.push(data);
    return data;
  };
  return { taskStatus, polls, responses };
}

const stillRunning = (data: TaskData) => data.totalStatus === 'run';

describe('polling: retryIf marks a result as "not done yet"', () => {
  it('polls until the status leaves "run"; retried results follow the pause', async () => {
    const { clock } = t;
    // @MyTool.loop_retry(10, 5) def task_status(self, task_id): ...
    const backoff = new Backoff({ maxTries: 10, pause: 5000, retryIf: stillRunning });
    const api = taskApi(2);
    const result = track(backoff.execute(api.taskStatus, 'task-1'));
    await clock.tickAsync(9999);
    expect(result.status).toBe('pending');
    await clock.tickAsync(1);
    expect(api.polls).toEqual([0, 5000, 10_000]);
    expect(result.status).toBe('fulfilled');
    expect(result.value).toBe(api.responses[2]);
    expect(result.value?.totalStatus).toBe('success');
  });

  it("'failed' is a final status too: resolved, not retried", async () => {
    const { clock } = t;
    const backoff = new Backoff({ maxTries: 10, pause: 5000, retryIf: stillRunning });
    const api = taskApi(1, 'failed');
    const result = track(backoff.execute(api.taskStatus, 'task-1'));
    await clock.tickAsync(60_000);
    expect(result.value?.totalStatus).toBe('failed');
    expect(api.polls).toEqual([0, 5000]);
  });

  it('out of tries: RetryConditionError with lastResult (identity) and attempts', async () => {
    const { clock } = t;
    const backoff = new Backoff({ maxTries: 3, pause: 1000, retryIf: stillRunning });
    const api = taskApi(Number.POSITIVE_INFINITY);
    const result = track(backoff.execute(api.taskStatus, 'task-1'));
    await clock.tickAsync(60_000);
    expect(api.polls).toEqual([0, 1000, 2000]);
    expect(result.status).toBe('rejected');
    expect(result.at).toBe(2000);
    const error = result.error as RetryConditionError<TaskData>;
    expect(error).toBeInstanceOf(RetryConditionError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('RetryConditionError');
    expect(error.code).toBe('ASYNCBACKOFF_RETRY_CONDITION');
    expect(error.lastResult).toBe(api.responses[2]);
    expect(error.attempts).toBe(3);
  });

  it('returnLastResult: true resolves with the last result instead', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      maxTries: 3,
      pause: 1000,
      retryIf: stillRunning,
      returnLastResult: true,
    });
    const api = taskApi(Number.POSITIVE_INFINITY);
    const result = track(backoff.execute(api.taskStatus, 'task-1'));
    await clock.tickAsync(60_000);
    expect(result.status).toBe('fulfilled');
    expect(result.value).toBe(api.responses[2]);
    expect(result.at).toBe(2000);
  });

  it('the deadline with the condition still true: RetryConditionError at the last result (the pause would cross it)', async () => {
    const { clock } = t;
    const backoff = new Backoff({ deadline: 2500, pause: 1000, retryIf: stillRunning });
    const api = taskApi(Number.POSITIVE_INFINITY);
    const result = track(backoff.execute(api.taskStatus, 'task-1'));
    await clock.tickAsync(60_000);
    expect(api.polls).toEqual([0, 1000, 2000]);
    expect(result.at).toBe(2000);
    const error = result.error as RetryConditionError<TaskData>;
    expect(error).toBeInstanceOf(RetryConditionError);
    expect(error.lastResult).toBe(api.responses[2]);
    expect(error.attempts).toBe(3);
  });

  it('the deadline with the condition still true, with returnLastResult: the last result', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      deadline: 2500,
      pause: 1000,
      retryIf: stillRunning,
      returnLastResult: true,
    });
    const api = taskApi(Number.POSITIVE_INFINITY);
    const result = track(backoff.execute(api.taskStatus, 'task-1'));
    await clock.tickAsync(60_000);
    expect(result.value).toBe(api.responses[2]);
    expect(result.at).toBe(2000);
  });

  it('the deadline passing during the next poll: RetryConditionError with the previous result, at the deadline', async () => {
    const { clock } = t;
    const first: TaskData = { totalStatus: 'run', poll: 1 };
    let calls = 0;
    const backoff = new Backoff({ deadline: 500, pause: 100, retryIf: stillRunning });
    const result = track(
      backoff.execute(async () => {
        calls++;
        if (calls === 1) return first;
        return hang<TaskData>();
      }),
    );
    await clock.tickAsync(499);
    expect(result.status).toBe('pending');
    await clock.tickAsync(1);
    expect(result.at).toBe(500);
    const error = result.error as RetryConditionError<TaskData>;
    expect(error).toBeInstanceOf(RetryConditionError);
    expect(error.lastResult).toBe(first);
    expect(calls).toBe(2);
  });

  it('the same with returnLastResult: resolves with the previous result at the deadline', async () => {
    const { clock } = t;
    const first: TaskData = { totalStatus: 'run', poll: 1 };
    let calls = 0;
    const backoff = new Backoff({
      deadline: 500,
      pause: 100,
      retryIf: stillRunning,
      returnLastResult: true,
    });
    const result = track(backoff.execute(async () => (++calls === 1 ? first : hang<TaskData>())));
    await clock.tickAsync(500);
    expect(result.status).toBe('fulfilled');
    expect(result.value).toBe(first);
    expect(result.at).toBe(500);
  });

  it('a retryIf that throws rejects with that very error; no further attempt', async () => {
    const { clock } = t;
    const boom = new Error('bad predicate');
    const backoff = new Backoff({
      maxTries: 5,
      pause: 100,
      retryIf: (data: TaskData) => {
        if (data.poll === 2) throw boom;
        return true;
      },
    });
    const api = taskApi(Number.POSITIVE_INFINITY);
    const result = track(backoff.execute(api.taskStatus, 'task-1'));
    await clock.tickAsync(10_000);
    expect(result.error).toBe(boom);
    expect(result.at).toBe(100);
    expect(api.polls).toEqual([0, 100]);
  });

  it('errors and results mixed: an error on attempt 1, "run" on 2, done on 3', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      maxTries: 5,
      pause: 100,
      retryIf: (status: string) => status === 'run',
    });
    const { fn, starts } = scripted<string>(new TransientError('503'), 'run', 'success');
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.value).toBe('success');
    expect(starts).toEqual([0, 100, 200]);
  });

  it('mixed, ending on an error: rejects with that error, not a RetryConditionError', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      maxTries: 3,
      pause: 100,
      retryIf: (status: string) => status === 'run',
    });
    const { fn, thrown } = scripted<string>('run', 'run', new TransientError('503'));
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.error).toBe(thrown[0]);
  });

  it('mixed, ending on a result: RetryConditionError although an earlier attempt threw', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      maxTries: 3,
      pause: 100,
      retryIf: (status: string) => status === 'run',
    });
    const { fn } = scripted<string>(new TransientError('503'), 'run', 'run');
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.error).toBeInstanceOf(RetryConditionError);
    expect((result.error as RetryConditionError).lastResult).toBe('run');
    expect((result.error as RetryConditionError).attempts).toBe(3);
  });

  it('a non-retriable error while polling rejects at once', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      maxTries: 5,
      pause: 100,
      retryIf: (status: string) => status === 'run',
    });
    const { fn, starts, thrown } = scripted<string>('run', new FatalError('404'), 'success');
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.error).toBe(thrown[0]);
    expect(starts).toEqual([0, 100]);
  });

  it('giveup is not consulted for results', async () => {
    const { clock } = t;
    let asked = 0;
    const backoff = new Backoff({
      maxTries: 3,
      pause: 10,
      retryIf: (status: string) => status === 'run',
      giveup: () => {
        asked++;
        return true;
      },
    });
    const { fn } = scripted('run', 'run', 'success');
    const result = track(backoff.execute(fn));
    await clock.tickAsync(100);
    expect(result.value).toBe('success');
    expect(asked).toBe(0);
  });

  it('each poll runs in its own attempt (currentAttempt().attempt counts polls)', async () => {
    const { clock } = t;
    const seen: number[] = [];
    const backoff = new Backoff({ pause: 10, retryIf: (n: number) => n < 3 });
    const result = track(
      backoff.execute(async () => {
        const attempt = currentAttempt()!.attempt;
        seen.push(attempt);
        return attempt;
      }),
    );
    await clock.tickAsync(100);
    expect(result.value).toBe(3);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('statistics count result-failures in errors and retries', async () => {
    const { clock } = t;
    const backoff = new Backoff({ maxTries: 10, pause: 5000, retryIf: stillRunning });
    const api = taskApi(2);
    track(backoff.execute(api.taskStatus, 'task-1'));
    await clock.tickAsync(10_000);
    expect(backoff.statistics).toEqual(
      stats({ attempts: 3, done: 3, errors: 2, retries: 2, sleptTime: 10_000, successes: 1 }),
    );
  });

  it('statistics of a poll that runs out of tries: one give-up', async () => {
    const { clock } = t;
    const backoff = new Backoff({ maxTries: 3, pause: 100, retryIf: stillRunning });
    const api = taskApi(Number.POSITIVE_INFINITY);
    track(backoff.execute(api.taskStatus, 'task-1'));
    await clock.tickAsync(1000);
    expect(backoff.statistics).toEqual(
      stats({ attempts: 3, done: 3, errors: 3, retries: 2, sleptTime: 200, giveUps: 1 }),
    );
  });
});

// ---- aomaker: @aomaker.retry(counts=2, interval=3, retry_condition=lambda resp: resp.get("ret_code") != 0)

interface Resp {
  readonly ret_code: number;
  readonly instances?: string[];
}

class Instance {
  calls: number[] = [];
  constructor(private readonly codes: number[]) {}

  /** send_http: the business code of each response comes from `codes`. */
  async sendHttp(data: { action: string }): Promise<Resp> {
    expect(data.action).toBe('DescribeInstances');
    this.calls.push(now());
    const code = this.codes[Math.min(this.calls.length, this.codes.length) - 1]!;
    return code === 0 ? { ret_code: 0, instances: ['i-1', 'i-2'] } : { ret_code: code };
  }

  // @asyncretry(3, { pause: 3000, retryIf: (resp) => resp.ret_code !== 0 })  (counts=2 retries)
  async getInstances(): Promise<Resp> {
    return this.sendHttp({ action: 'DescribeInstances' });
  }
}
decorateMethod(
  Instance,
  'getInstances',
  asyncretry(3, { pause: 3000, retryIf: (resp: Resp) => resp.ret_code !== 0 }),
);

describe("aomaker's retry_condition, translated", () => {
  it('retries while ret_code != 0, every 3 s', async () => {
    const { clock } = t;
    const instance = new Instance([5000, 5000, 0]);
    const result = track(instance.getInstances());
    await clock.tickAsync(6000);
    expect(instance.calls).toEqual([0, 3000, 6000]);
    expect(result.value).toEqual({ ret_code: 0, instances: ['i-1', 'i-2'] });
  });

  it('counts=2: after 2 retries the condition still holding rejects with RetryConditionError', async () => {
    const { clock } = t;
    const instance = new Instance([5000]);
    const result = track(instance.getInstances());
    await clock.tickAsync(60_000);
    expect(instance.calls).toEqual([0, 3000, 6000]);
    const error = result.error as RetryConditionError<Resp>;
    expect(error).toBeInstanceOf(RetryConditionError);
    expect(error.lastResult).toEqual({ ret_code: 5000 });
    expect(error.attempts).toBe(3);
  });
});
