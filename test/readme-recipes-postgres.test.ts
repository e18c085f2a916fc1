/**
 * The PostgreSQL recipes of README.md are the code the integration tests run: each ```ts block
 * that follows a `<!-- recipe: path -->` comment must be that file, character for character.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');
const shown = new Map(
  [...readme.matchAll(/<!-- recipe: (\S+)[^\n]*-->\n```ts\n([\s\S]*?)```\n/g)].map(
    ([, path, block]) => [path!, block!] as const,
  ),
);

describe('README PostgreSQL recipes', () => {
  it.each(['test/integration/recipes/guarded-call.ts', 'test/integration/recipes/batch-outage.ts'])(
    '%s is shown verbatim',
    (path) => {
      expect(shown.has(path)).toBe(true);
      expect(shown.get(path)).toBe(readFileSync(new URL(path, root), 'utf8'));
    },
  );
});
