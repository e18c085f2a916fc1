// Type-checks README.md's examples: writes each ```ts block to test/readme/blocks/NN.ts (a module
// of its own), which `npm run typecheck` then compiles against src/ with placeholders.d.ts
// declaring the names the examples use without defining them (a logger, a database pool, ...).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const out = new URL('./blocks/', import.meta.url);
rmSync(out, { recursive: true, force: true });
mkdirSync(out);
const lines = readFileSync(new URL('../../README.md', import.meta.url), 'utf8').split('\n');
let count = 0;
let start = -1;
for (let i = 0; i < lines.length; i++) {
  if (start < 0 && /^```ts\s*$/.test(lines[i])) start = i + 1;
  else if (start >= 0 && /^```\s*$/.test(lines[i])) {
    const body = lines.slice(start, i).join('\n');
    const name = `${String(++count).padStart(2, '0')}.ts`;
    writeFileSync(new URL(name, out), `// README.md line ${start + 1}\n${body}\nexport {};\n`);
    start = -1;
  }
}
if (count === 0) throw new Error('README.md has no ```ts blocks: the extractor is out of date');
console.log(`README.md: ${count} TypeScript examples extracted`);
