#!/usr/bin/env python3
"""Installs each SDK the way its docs say, into fresh projects outside the repository, and runs
the docs' examples with the installed copy against the real server. The install commands are
read from the SDK READMEs (and must be the same in docs/clients.md), with their placeholders
(``/path/to/agent-otp``, ``https://<repository URL>``, ``<full commit hash>``) filled in.

- TypeScript: a fresh ``npm init -y`` project, ``npm install <clone>/sdk/typescript`` (a directory
  install: npm links the directory and runs the package's ``prepare`` build there) and, in a
  second project, ``npm install "git+file://<repo>#<sha>::path:sdk/typescript"`` (a git install:
  npm clones, installs the dev dependencies, builds and packs). In each, the TypeScript example of
  ``sdk/typescript/README.md`` and of ``docs/clients.md`` is compiled with the project's own
  ``tsc`` (so the SDK's types must resolve, once as an ES module for ``import`` and once as a
  CommonJS module for ``require``) and run with plain ``node``.
- Python: a fresh venv with ``pip install "<clone>/sdk/python[langchain]"`` and another with
  ``pip install "agent-otp[langchain] @ git+file://localhost<repo>#subdirectory=sdk/python"``; in
  each, the Python examples of ``sdk/python/README.md`` and ``docs/clients.md`` (the blocking one,
  asyncio, LangChain) run from a directory outside the repository.

The repository is the working tree's ``sdk/`` as it is now (tracked and untracked files, not
ignored ones: no node_modules, dist or venvs), committed into a temporary git repository that
stands in for the remote, and cloned from there as a user would. Examples change only where the
docs point at a placeholder: the base URL (``https://otp.example.com``) becomes the test server's.
The operations the examples stand for (``sendEmail``, ``transfer``, ``send_invoice``,
``create_agent``) are defined as stand-ins that print what they were asked; the CommonJS run
wraps the example's statements in an ``async function`` (CommonJS has no top-level await). A
"human" thread approves every pending request, as someone on the approval page would.

Needs: python3 with venv, git, node and npm, network access to the npm registry and PyPI, and the
server binary (``AGENT_OTP_BIN``, or target/release/agent-otp). Run by sdk/run-tests.sh.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
from pathlib import Path

SDK = Path(__file__).resolve().parent
REPO = SDK.parent
BIN = os.environ.get("AGENT_OTP_BIN") or str(REPO / "target" / "release" / "agent-otp")
PLACEHOLDER_URL = "https://otp.example.com"
TIMINGS: list[tuple[str, float]] = []


def clean_env(**extra: str) -> dict:
    """The caller's environment without agent-otp settings and without variables an outer npm
    would have set (a test must not inherit another project's npm configuration)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AGENT_OTP_") and not k.lower().startswith(("npm_config_", "npm_package_", "npm_lifecycle_"))
    }
    env.update(NO_COLOR="1", **extra)
    return env


def run(cmd: list[str], cwd: Path, timeout: float = 600, env: dict | None = None, what: str | None = None) -> subprocess.CompletedProcess:
    """Runs a command; fails the test with its output if it exits non-zero. ``what`` records its
    duration under that name."""
    start = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env or clean_env())
    elapsed = time.monotonic() - start
    if what:
        TIMINGS.append((what, elapsed))
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} (in {cwd}) exited {p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}")
    return p


# ---------------------------------------------------------------------------------------------
# The docs' examples


def fenced_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def section(text: str, heading: str) -> str:
    """The text under a markdown heading, up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines(keepends=True)
    assert heading + "\n" in lines, f"heading {heading!r} not found"
    out, fenced = [], False
    for line in lines[lines.index(heading + "\n") + 1:]:
        if line.startswith("```"):
            fenced = not fenced
        # A `# comment` inside a code block is not a heading.
        elif not fenced and re.match(rf"#{{1,{level}}} ", line):
            break
        out.append(line)
    return "".join(out)


def first_block(path: Path, lang: str, heading: str | None = None, index: int = 0) -> str:
    text = path.read_text()
    if heading:
        text = section(text, heading)
    blocks = fenced_blocks(text, lang)
    assert len(blocks) > index, f"no ```{lang} block #{index} in {path} {heading or ''}"
    return blocks[index]


TS_EXAMPLES = {
    # name: (file, heading, the stand-ins it needs printed when called)
    "sdk-readme": (SDK / "typescript" / "README.md", None),
    "clients-md": (REPO / "docs" / "clients.md", "## TypeScript / JavaScript"),
}
TS_STANDINS = """\
// Stand-ins for the example's own operations (not part of the SDK).
async function sendEmail(...args: unknown[]): Promise<void> {
  console.log(`stand-in sendEmail ${JSON.stringify(args)}`);
}
async function transfer(amount: number): Promise<void> {
  console.log(`stand-in transfer ${amount}`);
}
"""
IMPORTS = re.compile(r"^import\b[^;]*?from\s+'[^']+';\n", flags=re.M | re.S)


def ts_example(name: str, module: str) -> str:
    """The example as a TypeScript file: ``esm`` keeps it as written (top-level await), ``cjs``
    keeps its imports at the top and wraps its statements in an async function."""
    path, heading = TS_EXAMPLES[name]
    code = first_block(path, "ts", heading)
    assert PLACEHOLDER_URL in code or "baseUrl" not in code, f"{name}: unexpected base URL in the example"
    code = code.replace(f"'{PLACEHOLDER_URL}'", "process.env.AGENT_OTP_URL!")
    imports = "".join(IMPORTS.findall(code))
    assert "'@agent-otp/sdk'" in imports, f"{name}: the example does not import @agent-otp/sdk"
    body = IMPORTS.sub("", code)
    standins = TS_STANDINS if re.search(r"\b(sendEmail|transfer)\(", body) else ""
    if module == "esm":
        return f"{imports}\n{standins}\n{body}"
    return (
        f"{imports}\n{standins}\nasync function main(): Promise<void> {{\n{body}}}\n\n"
        "main().catch((e) => {\n  console.error(e);\n  process.exit(1);\n});\n"
    )


PY_STANDINS = """\
# Stand-ins for the example's own operations (not part of the SDK).
def send_invoice():
    print("stand-in send_invoice")

async def transfer(amount):
    print(f"stand-in transfer {amount}")

model = "stand-in model"

def create_agent(model, tools):
    print(f"stand-in create_agent with {[t.name for t in tools]}")
    return tools

"""
PY_EXAMPLES = {
    # name: (file, heading, index of the ```python block there, code appended to drive it)
    "sdk-readme": (SDK / "python" / "README.md", None, 0, ""),
    "clients-md": (REPO / "docs" / "clients.md", "## Python", 0, ""),
    "clients-md-asyncio": (REPO / "docs" / "clients.md", "## Python", 1, ""),
    # The example builds the guarded tool for an agent; calling it, as the agent would, is added.
    "clients-md-langchain": (
        REPO / "docs" / "clients.md",
        "### LangChain",
        0,
        '\nprint("tool answer:", guarded_send.invoke('
        '{"recipients": ["client@example.com"], "subject": "Invoice 2026-11", "body": "attached"}))\n',
    ),
}


def py_example(name: str) -> str:
    path, heading, index, driver = PY_EXAMPLES[name]
    code = first_block(path, "python", heading, index)
    assert PLACEHOLDER_URL not in code, f"{name}: the Python examples take the URL from AGENT_OTP_URL"
    # `from __future__` lines must come first; none of the examples has one.
    assert "__future__" not in code
    return PY_STANDINS + code + driver


def doc_install_spec(tool: str, kind: str) -> str:
    """The package spec of the docs' install command: ``tool`` ``npm`` or ``pip``, ``kind``
    ``directory`` or ``git``. The SDK's README and docs/clients.md give the same lines; the
    placeholders become this test's clone, repository and commit."""
    readme = SDK / ("typescript" if tool == "npm" else "python") / "README.md"
    lines = [l.strip() for b in fenced_blocks(readme.read_text(), "sh") for l in b.splitlines()
             if l.startswith(f"{tool} install ")]
    assert len(lines) == 2, f"expected a directory and a git install line in {readme}: {lines}"
    clients = (REPO / "docs" / "clients.md").read_text()
    for line in lines:
        assert f"\n{line}\n" in clients, f"docs/clients.md does not give {line!r}"
    line = next(l for l in lines if ("git+" in l) == (kind == "git"))
    args = shlex.split(line)
    assert args[:2] == [tool, "install"] and len(args) == 3, line
    spec = args[2].replace("/path/to/agent-otp", str(CLONE)).replace("<full commit hash>", SHA)
    # The test's repository is on the local disk: git+file instead of git+https. (pip 23.x wants
    # a host in a file URL here: localhost.)
    local = f"file://{ORIGIN}" if tool == "npm" else f"file://localhost{ORIGIN}"
    spec = spec.replace("https://<repository URL>", local)
    assert "<" not in spec and "/path/to" not in spec, f"placeholder left in {spec!r}"
    return spec


# What each example must leave on the server: (action, final status) of its requests, in order.
EXPECTED = {
    ("ts", "sdk-readme"): [("gmail.send", "used")],
    ("ts", "clients-md"): [("gmail.send", "used"), ("bank.transfer", "used")],
    ("py", "sdk-readme"): [("email.send", "used")],
    ("py", "clients-md"): [("email.send", "used"), ("file.read", "used")],
    ("py", "clients-md-asyncio"): [("payment.transfer", "used")],
    ("py", "clients-md-langchain"): [("email.send", "used")],
}
# And print (stand-ins called, the pending notice).
EXPECTED_OUTPUT = {
    ("ts", "sdk-readme"): [r"^Approve at http://127\.0\.0\.1:\d+/requests/[0-9a-f-]+$"],
    ("ts", "clients-md"): [
        r"^Waiting for approval: http://127\.0\.0\.1:\d+/requests/[0-9a-f-]+$",
        r"^stand-in sendEmail \[\]$",
        r"^stand-in transfer 40$",
    ],
    ("py", "sdk-readme"): [r"^stand-in send_invoice$"],
    ("py", "clients-md"): [r"^stand-in send_invoice$"],
    ("py", "clients-md-asyncio"): [r"^stand-in transfer 40$"],
    ("py", "clients-md-langchain"): [r"^stand-in create_agent with \['send_email'\]$", r"^tool answer: None$"],
}


# ---------------------------------------------------------------------------------------------
# The server and a human


class Server:
    def __init__(self, root: Path):
        self.data = root / "data"
        # Operator commands never create a database: `init` makes it, as a newcomer's first step.
        subprocess.run([BIN, "init", "--data-dir", str(self.data)], check=True, capture_output=True,
                       env=clean_env())
        self.admin = self.operator("admin", "token", "create")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data),
             "--policies", str(SDK / "testdata" / "policies.yaml")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=clean_env(RUST_LOG="info"),
        )
        seen, url = [], None
        deadline = time.monotonic() + 20
        assert self.proc.stderr is not None
        while url is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            line = re.sub(r"\x1b\[[0-9;]*m", "", line)
            seen.append(line)
            m = re.search(r"agent-otp listening.*?addr=(\S+)", line)
            if m:
                url = f"http://{m.group(1)}"
        assert url, "server did not start:\n" + "".join(seen)
        self.url = url
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()  # type: ignore[union-attr]
        self._stop = threading.Event()
        self.approved: list[str] = []
        self._human = threading.Thread(target=self._approve_everything, daemon=True)
        self._human.start()

    def operator(self, *args: str) -> str:
        out = subprocess.run([BIN, *args, "--data-dir", str(self.data)], check=True, capture_output=True, text=True,
                             env=clean_env())
        return out.stdout.strip().splitlines()[-1]

    def agent(self, name: str) -> str:
        return self.operator("agent", "create", name)

    def admin_api(self, method: str, path: str) -> dict:
        req = urllib.request.Request(f"{self.url}/api/v1/admin/{path}", method=method,
                                     headers={"Authorization": f"Bearer {self.admin}", "Content-Type": "application/json"},
                                     data=b"{}" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def requests_of(self, agent: str) -> list[tuple[str, str]]:
        rows = self.admin_api("GET", "permissions?limit=100")["data"]
        # By time, parsed: RFC 3339 strings drop trailing zeros ("…:03Z", "…:03.12Z"), so they do
        # not sort as text. Ids are UUID v7 (time, then a counter): they order requests made in the
        # same millisecond.
        def when(r: dict) -> datetime.datetime:
            return datetime.datetime.fromisoformat(r["createdAt"].replace("Z", "+00:00"))

        mine = sorted((r for r in rows if r["agentName"] == agent), key=lambda r: (when(r), r["id"]))
        return [(r["action"], r["status"]) for r in mine]

    def _approve_everything(self) -> None:
        """Someone on the approval page who approves whatever shows up."""
        while not self._stop.wait(0.1):
            try:
                for p in self.admin_api("GET", "permissions?status=pending&limit=100")["data"]:
                    self.admin_api("POST", f"permissions/{p['id']}/approve")
                    self.approved.append(p["id"])
            except Exception as e:  # the server is stopping, or a race with an expiry
                print(f"approver: {e}", file=sys.stderr)

    def stop(self) -> None:
        self._stop.set()
        self._human.join(timeout=5)
        self.proc.terminate()
        self.proc.wait(timeout=10)


ROOT: Path
SERVER: Server
ORIGIN: Path  # the bare repository standing in for the remote
SHA: str
CLONE: Path  # the user's clone


def setUpModule() -> None:
    global ROOT, SERVER, ORIGIN, SHA, CLONE
    assert Path(BIN).exists(), f"build the server first, or set AGENT_OTP_BIN: {BIN}"
    ROOT = Path(tempfile.mkdtemp(prefix="agent-otp-install-"))
    # The repository as a user gets it: sdk/ of the working tree, committed and cloned.
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard", "--", "sdk"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    work = ROOT / "snapshot"
    for f in filter(None, files):
        if (REPO / f).is_file():
            (work / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, work / f)
    git = ["git", "-c", "user.name=install-test", "-c", "user.email=install-test@localhost", "-c", "init.defaultBranch=main"]
    run([*git, "init", "-q"], work)
    run([*git, "add", "-A"], work)
    run([*git, "commit", "-q", "-m", "snapshot of sdk/"], work)
    ORIGIN = ROOT / "agent-otp.git"
    run(["git", "clone", "-q", "--bare", str(work), str(ORIGIN)], ROOT)
    SHA = run(["git", "rev-parse", "HEAD"], work).stdout.strip()
    CLONE = ROOT / "clone"
    run(["git", "clone", "-q", str(ORIGIN), str(CLONE)], ROOT)
    SERVER = Server(ROOT)


def tearDownModule() -> None:
    SERVER.stop()
    shutil.rmtree(ROOT, ignore_errors=True)


def check_example(test: unittest.TestCase, kind: str, name: str, agent: str, out: subprocess.CompletedProcess) -> None:
    lines = out.stdout.splitlines()
    for pattern in EXPECTED_OUTPUT[(kind, name)]:
        test.assertTrue(any(re.search(pattern, line) for line in lines),
                        f"no line matching {pattern!r} in\n{out.stdout}\n--- stderr\n{out.stderr}")
    test.assertEqual(SERVER.requests_of(agent), EXPECTED[(kind, name)], out.stdout + out.stderr)


# ---------------------------------------------------------------------------------------------
# TypeScript


CONSUMER_TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "module": "NodeNext",
        "moduleResolution": "NodeNext",
        "strict": True,
        "types": ["node"],
        "skipLibCheck": False,
        "outDir": "out",
    },
}


class TypeScriptInstall:
    """A fresh npm project that installs the SDK with ``spec``; the examples compiled by the
    project's own tsc, as an ES module (.mts) and as CommonJS (.cts), and run with node."""

    label = ""

    @classmethod
    def spec(cls) -> str:
        raise NotImplementedError

    @classmethod
    def setUpClass(cls) -> None:
        cls.project = ROOT / f"ts-{cls.label}"
        cls.project.mkdir()
        run(["npm", "init", "-y"], cls.project)
        # A TypeScript user's own tools, installed first so that the timing below is the SDK's.
        run(["npm", "install", "--no-audit", "--no-fund", "-D", "typescript", "@types/node"], cls.project,
            what=f"npm install -D typescript @types/node ({cls.label} project)")
        run(["npm", "install", "--no-audit", "--no-fund", cls.spec()], cls.project,
            what=f"npm install @agent-otp/sdk from {cls.label}")

    def compile(self, name: str, module: str) -> Path:
        ext = {"esm": "mts", "cjs": "cts"}[module]
        src = self.project / f"{name}-{module}.{ext}"
        src.write_text(ts_example(name, module))
        tsconfig = self.project / f"tsconfig.{name}-{module}.json"
        tsconfig.write_text(json.dumps({**CONSUMER_TSCONFIG, "files": [src.name]}))
        listed = run(["npx", "--no-install", "tsc", "-p", tsconfig.name, "--listFiles"], self.project,
                     what=f"tsc {name} {module} ({self.label})").stdout
        types = "dist/index.d.ts" if module == "esm" else "dist/cjs/index.d.ts"
        self.assertTrue(any(l.endswith(f"sdk/typescript/{types}") or l.endswith(f"@agent-otp/sdk/{types}")
                            for l in listed.splitlines()),
                        f"the {module} example did not get the SDK's {types}:\n{listed}")
        return self.project / "out" / f"{name}-{module}.{'mjs' if module == 'esm' else 'cjs'}"

    def run_example(self, name: str, module: str) -> None:
        js = self.compile(name, module)
        agent = f"ts-{self.label}-{name}-{module}"
        key = SERVER.agent(agent)
        out = run(["node", str(js)], self.project, timeout=120,
                  env=clean_env(AGENT_OTP_URL=SERVER.url, AGENT_OTP_KEY=key), what=f"node {js.name} ({self.label})")
        check_example(self, "ts", name, agent, out)

    def test_resolves_to_the_built_package(self) -> None:
        # `require` gets the CommonJS build and `import` the ES module build, both with the client.
        cjs = run(["node", "-e", "const m = require('@agent-otp/sdk');"
                   "console.log(require.resolve('@agent-otp/sdk'), typeof m.AgentOTPClient, typeof m.PermissionDeniedError)"],
                  self.project).stdout.split()
        self.assertTrue(cjs[0].endswith(os.path.join("dist", "cjs", "index.js")), cjs)
        self.assertEqual(cjs[1:], ["function", "function"])
        esm = run(["node", "--input-type=module", "-e",
                   "import { AgentOTPClient } from '@agent-otp/sdk';"
                   "console.log(import.meta.resolve('@agent-otp/sdk'), typeof AgentOTPClient)"],
                  self.project).stdout.split()
        self.assertTrue(esm[0].endswith("/dist/index.js"), esm)
        self.assertEqual(esm[1], "function")

    def test_sdk_readme_example_esm(self) -> None:
        self.run_example("sdk-readme", "esm")

    def test_sdk_readme_example_cjs(self) -> None:
        self.run_example("sdk-readme", "cjs")

    def test_clients_md_example_esm(self) -> None:
        self.run_example("clients-md", "esm")

    def test_clients_md_example_cjs(self) -> None:
        self.run_example("clients-md", "cjs")


class T1_TypeScriptFromDirectory(TypeScriptInstall, unittest.TestCase):
    label = "directory"

    @classmethod
    def spec(cls) -> str:
        spec = doc_install_spec("npm", "directory")
        assert spec == str(CLONE / "sdk" / "typescript"), spec
        return spec

    def test_built_in_the_clone(self) -> None:
        # A directory install is a link to the clone, built there by the package's prepare script
        # (npm 9.0-9.3, Debian 12's among them, packed it into a copy instead: install-links).
        pkg = self.project / "node_modules" / "@agent-otp" / "sdk"
        self.assertTrue((CLONE / "sdk" / "typescript" / "dist" / "cjs" / "index.js").is_file())
        if run(["npm", "config", "get", "install-links"], self.project).stdout.strip() == "true":
            self.assertFalse(pkg.is_symlink())
            self.assertTrue((pkg / "dist" / "cjs" / "index.js").is_file())
        else:
            self.assertTrue(pkg.is_symlink())
            self.assertEqual(pkg.resolve(), (CLONE / "sdk" / "typescript").resolve())

    def test_types_with_typescript_5(self) -> None:
        # Projects still on TypeScript 5 (the SDK is built with 7): both examples type-check as
        # ES module and as CommonJS. (The types are the same in the git install.)
        version = run(["npx", "--yes", "-p", "typescript@5", "tsc", "--version"], self.project).stdout
        self.assertTrue(version.startswith("Version 5."), version)
        files = []
        for name in TS_EXAMPLES:
            for module, ext in (("esm", "mts"), ("cjs", "cts")):
                src = self.project / f"{name}-{module}.ts5.{ext}"
                src.write_text(ts_example(name, module))
                files.append(src.name)
        opts = {**CONSUMER_TSCONFIG["compilerOptions"], "noEmit": True}
        (self.project / "tsconfig.ts5.json").write_text(json.dumps({"compilerOptions": opts, "files": files}))
        run(["npx", "--yes", "-p", "typescript@5", "tsc", "-p", "tsconfig.ts5.json"], self.project,
            what=f"tsc 5, all examples ({self.label})")


class T2_TypeScriptFromGit(TypeScriptInstall, unittest.TestCase):
    label = "git"

    @classmethod
    def spec(cls) -> str:
        # npm keeps the ::path: part only with a full commit hash (a branch or tag loses it when
        # npm resolves it to a commit: npm/pacote#513).
        spec = doc_install_spec("npm", "git")
        assert spec == f"git+file://{ORIGIN}#{SHA}::path:sdk/typescript", spec
        return spec

    def test_installed_as_a_built_package(self) -> None:
        pkg = self.project / "node_modules" / "@agent-otp" / "sdk"
        self.assertFalse(pkg.is_symlink())
        self.assertTrue((pkg / "dist" / "index.js").is_file())
        self.assertTrue((pkg / "dist" / "cjs" / "index.js").is_file())
        self.assertFalse((pkg / "node_modules").exists(), "the package brought its build tools along")


# ---------------------------------------------------------------------------------------------
# Python


class PythonInstall:
    """A fresh venv that installs the SDK with ``spec``; the examples run from outside the repo."""

    label = ""

    @classmethod
    def spec(cls) -> str:
        raise NotImplementedError

    @classmethod
    def setUpClass(cls) -> None:
        cls.venv = ROOT / f"py-{cls.label}"
        run([sys.executable, "-m", "venv", str(cls.venv)], ROOT, what=f"python -m venv ({cls.label})")
        cls.python = str(cls.venv / "bin" / "python")
        run([cls.python, "-m", "pip", "install", "-q", cls.spec()], ROOT,
            what=f"pip install agent-otp[langchain] from {cls.label}")
        cls.workdir = ROOT / f"py-{cls.label}-run"
        cls.workdir.mkdir()

    def run_example(self, name: str) -> None:
        script = self.workdir / f"{name}.py"
        script.write_text(py_example(name))
        agent = f"py-{self.label}-{name}"
        key = SERVER.agent(agent)
        out = run([self.python, str(script)], self.workdir, timeout=120,
                  env=clean_env(AGENT_OTP_URL=SERVER.url, AGENT_OTP_KEY=key, PYTHONPATH=""),
                  what=f"python {script.name} ({self.label})")
        check_example(self, "py", name, agent, out)

    def test_installed_copy_with_the_extra(self) -> None:
        out = run([self.python, "-c", "import agent_otp, agent_otp.langchain, langchain_core, importlib.metadata as m;"
                   "print(agent_otp.__file__); print(m.version('agent-otp'))"], self.workdir).stdout.split()
        self.assertIn(str(self.venv), out[0])
        self.assertIn("site-packages", out[0])
        self.assertTrue((Path(out[0]).parent / "py.typed").is_file(), "py.typed is not installed")

    def test_sdk_readme_example(self) -> None:
        self.run_example("sdk-readme")

    def test_clients_md_example(self) -> None:
        self.run_example("clients-md")

    def test_clients_md_asyncio_example(self) -> None:
        self.run_example("clients-md-asyncio")

    def test_clients_md_langchain_example(self) -> None:
        self.run_example("clients-md-langchain")


class T3_PythonFromDirectory(PythonInstall, unittest.TestCase):
    label = "directory"

    @classmethod
    def spec(cls) -> str:
        spec = doc_install_spec("pip", "directory")
        assert spec == f"{CLONE / 'sdk' / 'python'}[langchain]", spec
        return spec


class T4_PythonFromGit(PythonInstall, unittest.TestCase):
    label = "git"

    @classmethod
    def spec(cls) -> str:
        # file://localhost/…: the pip that Python 3.11's venv brings (23.x) refuses file:/// with
        # an empty host in a `name @ url` requirement; newer pips take both.
        spec = doc_install_spec("pip", "git")
        assert spec == f"agent-otp[langchain] @ git+file://localhost{ORIGIN}#subdirectory=sdk/python", spec
        return spec


if __name__ == "__main__":
    started = time.monotonic()
    program = unittest.main(verbosity=2, exit=False)
    result = program.result
    print("\ntimings:")
    for what, secs in TIMINGS:
        print(f"  {secs:6.1f} s  {what}")
    print(f"  {time.monotonic() - started:6.1f} s  total")
    failed = len(result.failures) + len(result.errors)
    print(f"install: {result.testsRun - failed - len(result.skipped)} passed, {failed} failed")
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
