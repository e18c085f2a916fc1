// `npm run docs`: the API reference, generated from the TSDoc of every package entry point
// (package.json "exports", read by scripts/entries.mjs) into docs/api/ (git-ignored). CI runs it
// with --treatWarningsAsErrors.
import { libraryEntries } from './scripts/entries.mjs';

/** @type {Partial<import('typedoc').TypeDocOptions>} */
export default {
  name: 'asyncbackoff',
  entryPoints: libraryEntries().map((entry) => entry.source),
  // src/ only: the tests, benchmarks and demo need not be compiled for the reference.
  tsconfig: 'tsconfig.docs.json',
  out: 'docs/api',
  readme: 'none',
  includeVersion: true,
  excludeInternal: true,
  excludePrivate: true,
  sort: ['source-order'],
  // The house rule: TSDoc on every export (members are documented where they need it).
  validation: { notExported: true, invalidLink: true, rewrittenLink: true, notDocumented: true },
  requiredToBeDocumented: ['Class', 'Function', 'Interface', 'TypeAlias', 'Variable', 'Enum'],
  // Known gaps in files this branch does not own (src/errors.ts, src/decorators.ts). typedoc warns
  // about an entry here that is documented by now, so the list only shrinks.
  intentionallyNotDocumented: [
    'TimeoutError.[hasInstance]',
    'AttemptTimeoutError.[hasInstance]',
    'DeadlineExceededError.[hasInstance]',
    'RetryConditionError.[hasInstance]',
    'BrokenCircuitError.[hasInstance]',
    'LockUnavailableError.[hasInstance]',
    'LockLostError.[hasInstance]',
    'BackoffDecorator.M',
    'BackoffDecorator.T',
  ],
};
