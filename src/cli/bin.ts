#!/usr/bin/env node
// The `asyncbackoff` command (package.json "bin", built as dist/cli.js). All of it is in ./main.ts.
import { main } from './main.js';

const code = await main(process.argv.slice(2));
// Exit once stdout has taken everything written so far (a pipe may be asynchronous).
process.stdout.write('', () => process.exit(code));
