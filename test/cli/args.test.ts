import { describe, expect, it } from 'vitest';
import {
  type CliConfig,
  DEFAULT_GRACE_MS,
  DEFAULT_PAUSE_MS,
  HELP,
  isRetriedExitCode,
  parseCli,
  UsageError,
} from '../../src/cli/args.js';
import type { DelayContext, DelayStrategy } from '../../src/index.js';

function config(...argv: string[]): CliConfig {
  const request = parseCli(argv);
  if (request.kind !== 'run') throw new Error(`expected a run request, got ${request.kind}`);
  return request.config;
}

function usageError(...argv: string[]): string {
  try {
    parseCli(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`parseCli(${JSON.stringify(argv)}) did not throw`);
}

/** The first few pauses of a `pause` option, with a fixed random draw. */
function pauses(pause: number | DelayStrategy, count = 5, draw = 0.5): number[] {
  let previousDelay: number | undefined;
  const out: number[] = [];
  for (let attempt = 1; attempt <= count; attempt++) {
    const context: DelayContext = {
      attempt,
      fails: attempt,
      kind: 'error',
      error: new Error('x'),
      result: undefined,
      previousDelay,
      elapsed: 0,
      remaining: Number.POSITIVE_INFINITY,
      random: () => draw,
    };
    const delay = typeof pause === 'number' ? pause : pause.delay(context);
    out.push(delay);
    previousDelay = delay;
  }
  return out;
}

describe('parseCli: the command', () => {
  it('takes everything after the first -- verbatim, flags included', () => {
    const c = config('--max-tries', '3', '--', 'pg_isready', '-h', '127.0.0.1', '--', '--help');
    expect(c.command).toBe('pg_isready');
    expect(c.args).toEqual(['-h', '127.0.0.1', '--', '--help']);
    expect(c.maxTries).toBe(3);
  });

  it('has library-like defaults, with a 1 s pause', () => {
    expect(config('--', 'true')).toEqual({
      command: 'true',
      args: [],
      attemptTimeout: null,
      deadline: null,
      pause: DEFAULT_PAUSE_MS,
      maxTries: null,
      retryOn: null,
      retryExcept: new Set(),
      grace: DEFAULT_GRACE_MS,
      quiet: false,
      json: false,
    } satisfies CliConfig);
  });

  it('takes the command from the first argument that is not an option, without --', () => {
    const c = config('-n', '3', '--pause', '1s', 'make', 'test', '-j', '4', '--', '-n', '9');
    expect(c).toMatchObject({ command: 'make', args: ['test', '-j', '4', '--', '-n', '9'] });
    expect(c.maxTries).toBe(3);
    expect(config('make')).toMatchObject({ command: 'make', args: [] });
    // An option's value is not the command, whether it is separate or attached.
    expect(config('-t', '2s', 'ls')).toMatchObject({ command: 'ls', attemptTimeout: 2000 });
    expect(config('-t2s', 'ls')).toMatchObject({ command: 'ls', attemptTimeout: 2000 });
    expect(config('--deadline=1m', 'ls', '-t')).toMatchObject({ command: 'ls', args: ['-t'] });
    expect(config('-qn', '2', 'ls')).toMatchObject({ command: 'ls', quiet: true, maxTries: 2 });
    expect(config('-qn2', 'ls')).toMatchObject({ command: 'ls', quiet: true, maxTries: 2 });
    // The command's own options stay its own.
    expect(config('ls', '--help').args).toEqual(['--help']);
  });

  it('requires a command', () => {
    expect(usageError()).toBe('missing the command to run');
    expect(usageError('--max-tries', '3')).toBe('missing the command to run');
    expect(usageError('--')).toBe("missing the command to run after '--'");
    expect(usageError('--', '')).toBe("missing the command to run after '--'");
    expect(usageError('')).toBe('missing the command to run');
  });

  it('refuses a repeated option, whichever spelling repeats it', () => {
    expect(usageError('-n', '2', '-n', '3', 'x')).toBe('--max-tries given more than once');
    expect(usageError('-n', '2', '--max-tries=3', 'x')).toBe('--max-tries given more than once');
    expect(usageError('--retry-on', '1', '--retry-on', '2', 'x')).toBe(
      '--retry-on given more than once',
    );
    expect(usageError('-q', '--quiet', 'x')).toBe('--quiet given more than once');
    expect(usageError('-qq', 'x')).toBe('--quiet given more than once');
  });

  it('answers --help and --version without a command', () => {
    expect(parseCli(['--help'])).toEqual({ kind: 'help' });
    expect(parseCli(['-h', '--', 'x'])).toEqual({ kind: 'help' });
    expect(parseCli(['--version'])).toEqual({ kind: 'version' });
    expect(parseCli(['-V'])).toEqual({ kind: 'version' });
    // After `--`, --help belongs to the command.
    expect(parseCli(['--', 'ls', '--help']).kind).toBe('run');
  });

  it('rejects unknown options and missing values', () => {
    expect(usageError('--bogus', '--', 'x')).toBe("unknown option '--bogus'");
    expect(usageError('-x', '--', 'x')).toBe("unknown option '-x'");
    expect(usageError('--pause')).toMatch(/--pause <value>' argument missing/);
    expect(usageError('-p')).toMatch(/-p, --pause <value>' argument missing/);
    expect(usageError('--quiet=yes', '--', 'x')).toMatch(/quiet/);
  });
});

describe('parseCli: times', () => {
  it('reads durations with units', () => {
    const c = config(
      '-t',
      '2s',
      '--deadline',
      '1m',
      '--pause',
      '500ms',
      '--grace',
      '1.5s',
      '--',
      'x',
    );
    expect(c).toMatchObject({ attemptTimeout: 2000, deadline: 60_000, pause: 500, grace: 1500 });
    expect(config('--attempt-timeout=250ms', '-d', '1h30m', '-p', '0', '--', 'x')).toMatchObject({
      attemptTimeout: 250,
      deadline: 5_400_000,
      pause: 0,
    });
  });

  it('allows a zero deadline, pause and grace, but not a zero attempt timeout', () => {
    expect(config('--deadline', '0', '--pause', '0', '--grace', '0', '--', 'x')).toMatchObject({
      deadline: 0,
      pause: 0,
      grace: 0,
    });
    expect(usageError('--attempt-timeout', '0', '--', 'x')).toMatch(
      /--attempt-timeout must be more than 0/,
    );
  });

  it.each([
    ['--pause', '-5s'],
    ['--pause=-5s'],
    ['--deadline', 'soon'],
    ['--attempt-timeout', '2 s'],
    ['--grace', '1e3'],
    ['--max-pause', '10x'],
    ['--deadline', '30d'],
  ])('rejects %s %s', (...args) => {
    const message = usageError(...args, '--', 'x');
    expect(message).toMatch(/--(pause|deadline|attempt-timeout|grace|max-pause)/);
  });

  it('refuses a bare number but 0, suggesting both readings', () => {
    expect(usageError('-t', '5', 'x')).toBe(
      "--attempt-timeout: '5' needs a unit: 5s (5000ms) or 5ms",
    );
    expect(usageError('--pause=1.5', 'x')).toBe(
      "--pause: '1.5' needs a unit: 1.5s (1500ms) or 1.5ms",
    );
    expect(usageError('--grace', '100', 'x')).toMatch(/^--grace: '100' needs a unit/);
    expect(config('--pause', '0', '--deadline', '0.0', 'x')).toMatchObject({
      pause: 0,
      deadline: 0,
    });
  });
});

describe('parseCli: tries and exit codes', () => {
  it('reads --max-tries', () => {
    expect(config('-n', '10', '--', 'x').maxTries).toBe(10);
    expect(config('--max-tries=1', '--', 'x').maxTries).toBe(1);
  });

  it.each(['0', '-1', '1.5', 'ten', '', '1e3', '2147483648', '99999999999999999999'])(
    'rejects --max-tries %j',
    (n) => {
      expect(usageError(`--max-tries=${n}`, '--', 'x')).toMatch(
        /--max-tries must be a whole number >= 1 and <= 2147483647/,
      );
    },
  );

  it('takes the largest --max-tries the library does', () => {
    expect(config('-n', '2147483647', '--', 'x').maxTries).toBe(2_147_483_647);
  });

  it('reads --retry-on lists', () => {
    const c = config('--retry-on', '1,2, 75', '--', 'x');
    expect(c.retryOn).toEqual(new Set([1, 2, 75]));
    expect([0, 1, 2, 3, 75, 143].map((code) => isRetriedExitCode(c, code))).toEqual([
      false,
      true,
      true,
      false,
      true,
      false,
    ]);
  });

  it('retries any non-zero code by default, minus --retry-except', () => {
    const all = config('--', 'x');
    expect([0, 1, 2, 127, 137].map((code) => isRetriedExitCode(all, code))).toEqual([
      false,
      true,
      true,
      true,
      true,
    ]);
    const some = config('--retry-except', '2,127', '--', 'x');
    expect([0, 1, 2, 127, 137].map((code) => isRetriedExitCode(some, code))).toEqual([
      false,
      true,
      false,
      false,
      true,
    ]);
  });

  it.each(['0', '256', '-1', '1,,2', '', 'a', '1.5', '1-3'])('rejects --retry-on %j', (list) => {
    expect(usageError(`--retry-on=${list}`, '--', 'x')).toMatch(
      /--retry-on takes exit codes from 1 to 255/,
    );
  });

  it.each(['0', '256', ''])('rejects --retry-except %j', (list) => {
    expect(usageError(`--retry-except=${list}`, '--', 'x')).toMatch(
      /--retry-except takes exit codes from 1 to 255/,
    );
  });

  it('refuses --retry-on with --retry-except', () => {
    expect(usageError('--retry-on', '1', '--retry-except', '2', '--', 'x')).toBe(
      '--retry-on and --retry-except cannot be used together',
    );
  });

  it('refuses the old --no-retry-on, naming --retry-except', () => {
    expect(usageError('--no-retry-on', '2', 'x')).toBe(
      '--no-retry-on was renamed: use --retry-except <codes>',
    );
    expect(usageError('--no-retry-on=2', '--', 'x')).toBe(
      '--no-retry-on was renamed: use --retry-except <codes>',
    );
  });
});

describe('parseCli: pauses', () => {
  it('keeps a plain constant pause a number', () => {
    expect(config('--pause', '2s', '--', 'x').pause).toBe(2000);
    expect(config('--pause', '2s', '--backoff', 'constant', '--', 'x').pause).toBe(2000);
  });

  it('builds each backoff from --pause', () => {
    const of = (...argv: string[]) => pauses(config('--pause', '100ms', ...argv, '--', 'x').pause);
    expect(of('--backoff', 'exponential')).toEqual([100, 200, 400, 800, 1600]);
    expect(of('--backoff', 'exponential', '--factor', '3', '--max-pause', '1s')).toEqual([
      100, 300, 900, 1000, 1000,
    ]);
    expect(of('--backoff', 'linear')).toEqual([100, 200, 300, 400, 500]);
    expect(of('--backoff', 'linear', '--step', '50ms', '--max-pause', '200ms')).toEqual([
      100, 150, 200, 200, 200,
    ]);
    expect(of('--backoff', 'fibonacci')).toEqual([100, 100, 200, 300, 500]);
  });

  it('applies --jitter', () => {
    const of = (...argv: string[]) =>
      pauses(config('--pause', '1s', ...argv, '--', 'x').pause, 3, 0.5);
    expect(of('--jitter', 'full')).toEqual([500, 500, 500]);
    expect(of('--jitter', 'equal')).toEqual([750, 750, 750]);
    expect(of('--backoff', 'exponential', '--jitter', 'full')).toEqual([500, 1000, 2000]);
    // decorrelated: base + (3 * previous - base) * r, capped by --max-pause.
    expect(of('--jitter', 'decorrelated', '--max-pause', '3s')).toEqual([2000, 3000, 3000]);
  });

  it.each([
    [
      ['--backoff', 'quadratic'],
      /--backoff must be one of constant, exponential, linear, fibonacci/,
    ],
    [['--jitter', 'some'], /--jitter must be one of none, full, equal, decorrelated/],
    [['--factor', '2'], /--factor only applies to --backoff exponential/],
    [['--step', '1s'], /--step only applies to --backoff linear/],
    [['--backoff', 'exponential', '--factor', '0.5'], /--factor must be a number >= 1/],
    [['--backoff', 'exponential', '--factor', 'x'], /--factor must be a number >= 1/],
    [['--backoff', 'exponential', '--factor=-2'], /--factor must be a number >= 1/],
    [
      ['--pause', '2s', '--max-pause', '1s'],
      /--max-pause \(1s\) must not be shorter than --pause \(2s\)/,
    ],
    [['--pause', '0', '--jitter', 'decorrelated'], /--jitter decorrelated needs a --pause above 0/],
  ])('rejects %j', (argv, message) => {
    expect(usageError(...argv, '--', 'x')).toMatch(message);
  });
});

describe('HELP', () => {
  it('no longer mentions the renamed option', () => {
    expect(HELP).not.toContain('--no-retry-on');
  });

  it('documents every option', () => {
    for (const option of [
      '--attempt-timeout',
      '--deadline',
      '--grace',
      '--max-tries',
      '--retry-on',
      '--retry-except',
      '--pause',
      '--backoff',
      '--factor',
      '--step',
      '--max-pause',
      '--jitter',
      '--quiet',
      '--json',
      '--help',
      '--version',
    ])
      expect(HELP).toContain(option);
  });
});

describe('parseCli: edges of the option grammar', () => {
  it('throws errors named UsageError', () => {
    expect(() => parseCli(['--bogus', 'x'])).toThrow(
      expect.objectContaining({ name: 'UsageError' }),
    );
    expect(new UsageError('m').name).toBe('UsageError');
  });

  it('takes a lone - as the command, not as an option', () => {
    expect(config('-', 'x')).toMatchObject({ command: '-', args: ['x'] });
    expect(config('-q', '-')).toMatchObject({ command: '-', args: [], quiet: true });
  });

  it('says which option needs a value when the next argument looks like an option', () => {
    const message = '--pause needs a value (a negative one is not allowed)';
    expect(usageError('--pause', '-5s', 'x')).toBe(message);
    expect(usageError('-p', '-5s', 'x')).toBe(message);
    expect(usageError('--pause', '--json', 'x')).toBe(message);
  });

  it("starts parseArgs' other messages in lower case", () => {
    expect(usageError('--pause')).toBe("option '-p, --pause <value>' argument missing");
    expect(usageError('--json=1', 'x')).toBe("option '--json' does not take an argument");
  });
});

describe('parseCli: edges of the values', () => {
  it('accepts exit code 255, the highest', () => {
    expect(config('--retry-on', '1,255', 'x').retryOn).toEqual(new Set([1, 255]));
    expect(config('--retry-except=255', 'x').retryExcept).toEqual(new Set([255]));
  });

  it('accepts a --max-pause equal to the --pause', () => {
    const c = config('--pause', '1s', '--max-pause', '1s', '--backoff', 'exponential', 'x');
    expect(pauses(c.pause, 3)).toEqual([1000, 1000, 1000]);
  });

  it('accepts --factor 1, multi-digit factors and several decimals', () => {
    const of = (factor: string) =>
      pauses(config('-p', '100ms', '--backoff', 'exponential', '--factor', factor, 'x').pause, 3);
    expect(of('1')).toEqual([100, 100, 100]);
    expect(of('10')).toEqual([100, 1000, 10_000]);
    expect(of('1.25')).toEqual([100, 125, 156.25]);
    expect(of('1.5')).toEqual([100, 150, 225]);
  });

  it.each(['+2', ' 2', '2 ', '2e1', '0x10', '2.'])('rejects --factor %j', (factor) => {
    expect(usageError('--backoff', 'exponential', `--factor=${factor}`, 'x')).toBe(
      `--factor must be a number >= 1, got '${factor}'`,
    );
  });

  it('names --step when its duration is bad', () => {
    expect(usageError('--backoff', 'linear', '--step', '5', 'x')).toBe(
      "--step: '5' needs a unit: 5s (5000ms) or 5ms",
    );
  });
});
