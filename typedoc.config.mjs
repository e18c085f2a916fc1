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
  // Source links point at the repository named in package.json, whatever the clone's remotes are.
  sourceLinkTemplate:
    'https://github.com/asyncbackoff/asyncbackoff/blob/{gitRevision}/{path}#L{line}',
  // The house rule: TSDoc on every export (members are documented where they need it).
  validation: { notExported: true, invalidLink: true, rewrittenLink: true, notDocumented: true },
  requiredToBeDocumented: ['Class', 'Function', 'Interface', 'TypeAlias', 'Variable', 'Enum'],
};
