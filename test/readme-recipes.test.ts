/**
 * README recipes are the code the integration tests run: every ```ts block that follows a
 * `<!-- recipe: path -->` comment must be that file, character for character.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');
const recipes = [...readme.matchAll(/<!-- recipe: (\S+)[^\n]*-->\n```ts\n([\s\S]*?)```\n/g)].map(
  ([, path, block]) => ({ path: path!, block: block! }),
);

describe('README recipes', () => {
  it('has the lock recipe', () => {
    expect(recipes.map((recipe) => recipe.path)).toContain(
      'test/integration/recipes/redis-lock.ts',
    );
  });

  it.each(recipes)('$path is shown verbatim', ({ path, block }) => {
    expect(block).toBe(readFileSync(new URL(path, root), 'utf8'));
  });
});
