// Fails when src/ has an import cycle. Counts every relative import: static,
// type-only and dynamic (import()), since each one ties two modules together.
// Usage: node scripts/import-cycles.mjs [DIR]   (default: src)
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import ts from 'typescript';

const root = path.resolve(process.argv[2] ?? 'src');
const files = fs
  .readdirSync(root, { recursive: true })
  .map((f) => path.join(root, String(f)))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));

/** file -> the files it imports */
const graph = new Map();
for (const file of files) {
  const { importedFiles } = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  const deps = new Set();
  for (const { fileName } of importedFiles) {
    if (!fileName.startsWith('.')) continue;
    const target = path.resolve(path.dirname(file), fileName).replace(/\.js$/, '.ts');
    if (fs.existsSync(target)) deps.add(target);
  }
  graph.set(file, deps);
}

// Tarjan's strongly connected components: each one with more than one file is a cycle.
let counter = 0;
const index = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const cycles = [];
function visit(v) {
  index.set(v, counter);
  low.set(v, counter++);
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v)) {
    if (!index.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
  }
  if (low.get(v) !== index.get(v)) return;
  const component = [];
  let w;
  do {
    w = stack.pop();
    onStack.delete(w);
    component.push(path.relative(root, w));
  } while (w !== v);
  if (component.length > 1 || graph.get(v).has(v)) cycles.push(component);
}
for (const file of graph.keys()) if (!index.has(file)) visit(file);

for (const c of cycles)
  process.stderr.write(`import cycle in ${path.relative('.', root)}: ${c.sort().join(' <-> ')}\n`);
if (cycles.length) process.exit(1);
process.stdout.write(`${path.relative('.', root)}: ${files.length} modules, no import cycle\n`);
