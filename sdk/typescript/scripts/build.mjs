// Builds dist/ (ES modules, the package's "import" entry) and dist/cjs/ (CommonJS, its "require"
// entry), each with its .d.ts types. Run by `npm run build` and by the `prepare` script, which npm
// runs when the package is installed from a directory, a git URL or packed.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// The package's own typescript (devDependencies), not one found further up.
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

rmSync(join(root, 'dist'), { recursive: true, force: true });
for (const project of ['tsconfig.build.json', 'tsconfig.cjs.json']) {
  execFileSync(process.execPath, [tsc, '-p', join(root, project)], { cwd: root, stdio: 'inherit' });
}
// The package says "type": "module"; this marks the files under dist/cjs as CommonJS for Node
// and for TypeScript (so dist/cjs/index.d.ts describes a CommonJS module).
mkdirSync(join(root, 'dist', 'cjs'), { recursive: true });
writeFileSync(join(root, 'dist', 'cjs', 'package.json'), '{ "type": "commonjs" }\n');
