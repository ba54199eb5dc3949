// npm's `prepare` script: builds dist/ when the package is installed from a directory
// (`npm install /path/to/sdk/typescript`), a git URL, or packed (`npm pack`, `npm publish`).
//
// Installing from a git URL, npm installs the devDependencies first. Installing from a directory
// it does not: it links the directory and runs this script there, where a fresh clone has no
// node_modules. Then the build tools are installed here from package-lock.json (`npm ci
// --ignore-scripts`, a few seconds) before building.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// Its own copy only: a typescript found further up (a project this directory sits in) may be a
// version this build does not support.
if (!existsSync(join(root, 'node_modules', 'typescript', 'package.json'))) {
  console.error('@agent-otp/sdk: installing its build tools (package-lock.json) to build dist/');
  // The outer npm passes its settings down as npm_config_* variables; some would point this
  // install elsewhere (local_prefix names the outer project, global, omit, install_links…).
  // Keep only those about reaching the registry.
  const keep = /registry|cache|cafile|^npm_config_(ca|cert|key)$|proxy|strict_ssl|userconfig|globalconfig|_auth|token/i;
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^npm_(config|package|lifecycle)_/i.test(k) || (/^npm_config_/i.test(k) && keep.test(k)),
    ),
  );
  const args = ['ci', '--include=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'];
  const npmCli = process.env.npm_execpath;
  if (npmCli && /\.(c|m)?js$/.test(npmCli)) {
    execFileSync(process.execPath, [npmCli, ...args], { cwd: root, env, stdio: 'inherit' });
  } else {
    execFileSync('npm', args, { cwd: root, env, stdio: 'inherit', shell: process.platform === 'win32' });
  }
}

await import('./build.mjs');
