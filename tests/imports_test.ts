/**
 * The import rules of ARCHITECTURE.md, read off every .ts file of the repository: imports point
 * one way (tasks → train/score/data/models → kernels → runtime). Each file's imports are parsed
 * here; a second test holds that parser against Deno's own module graph (`deno info --json`).
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";

const ROOT = new URL("../", import.meta.url);
/** Folders that hold no project source: dependencies, generated bundles, data and run outputs. */
const SKIP = new Set(["node_modules", "vendor", "runs", "results"]);

/** Every .ts file below the repository root, as a path relative to it ("models/core.ts"). */
function sourceFiles(dir = ROOT, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.name.startsWith(".") || SKIP.has(e.name)) continue;
    if (e.isDirectory) out.push(...sourceFiles(new URL(`${e.name}/`, dir), `${prefix}${e.name}/`));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

/** A token of TypeScript source: a string literal (its value), or a word or punctuation mark. */
type Token = { str: string } | { word: string };

/** Words after which a `/` starts a regular expression rather than a division. */
const BEFORE_REGEX = new Set([
  "return",
  "typeof",
  "case",
  "do",
  "else",
  "in",
  "of",
  "new",
  "void",
  "yield",
  "await",
]);

/**
 * Splits `src` into the tokens an import statement is made of: words, punctuation and string
 * literals. Comments, template literals (with their `${…}` parts) and regular expressions are
 * skipped, so an import written inside one of them is not one.
 */
function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const readString = (q: string): string => {
    let j = i + 1, v = "";
    while (j < src.length && src[j] !== q && src[j] !== "\n") {
      if (src[j] === "\\") j++;
      v += src[j++];
    }
    i = j + 1;
    return v;
  };
  const skipRegex = () => {
    let j = i + 1, inClass = false;
    while (j < src.length && (inClass || src[j] !== "/") && src[j] !== "\n") {
      if (src[j] === "\\") j++;
      else if (src[j] === "[") inClass = true;
      else if (src[j] === "]") inClass = false;
      j++;
    }
    i = j + 1;
    while (/[a-z]/.test(src[i] ?? "")) i++;
  };
  // Skips a template literal from its opening backtick, nested `${…}` expressions included.
  const skipTemplate = () => {
    i++;
    while (i < src.length && src[i] !== "`") {
      if (src[i] === "\\") i += 2;
      else if (src[i] === "$" && src[i + 1] === "{") {
        i += 2;
        lex(1);
      } else i++;
    }
    i++;
  };
  // Tokenizes up to the `}` that closes `depth` open braces (0: to the end of the source).
  const lex = (depth: number) => {
    while (i < src.length) {
      const c = src[i];
      if (c === "/" && src[i + 1] === "/") {
        while (i < src.length && src[i] !== "\n") i++;
      } else if (c === "/" && src[i + 1] === "*") {
        const end = src.indexOf("*/", i + 2);
        i = end < 0 ? src.length : end + 2;
      } else if (c === '"' || c === "'") {
        out.push({ str: readString(c) });
      } else if (c === "`") {
        skipTemplate();
        out.push({ word: "`" });
      } else if (c === "/") {
        const prev = out[out.length - 1];
        const isRegex = !prev || ("word" in prev &&
          (/^[(,=:[!&|?{};+\-*%<>~^]$/.test(prev.word) || BEFORE_REGEX.has(prev.word)));
        if (isRegex) skipRegex();
        else i++;
        out.push({ word: isRegex ? "/regex/" : "/" });
      } else if (/[A-Za-z_$0-9]/.test(c)) {
        let j = i;
        while (j < src.length && /[A-Za-z_$0-9]/.test(src[j])) j++;
        out.push({ word: src.slice(i, j) });
        i = j;
      } else {
        i++;
        if (/\s/.test(c)) continue;
        if (c === "{" && depth) depth++;
        if (c === "}" && depth && --depth === 0) return;
        out.push({ word: c });
      }
    }
  };
  lex(0);
  return out;
}

/** Words that end an `import`/`export` clause before any `from`: a declaration follows. */
const DECLARATION = new Set([
  "function",
  "class",
  "const",
  "let",
  "var",
  "interface",
  "enum",
  "default",
  "async",
  "declare",
  "namespace",
  "abstract",
]);

/**
 * The module specifiers `src` imports: static imports and re-exports (type-only ones too),
 * side-effect imports and dynamic `import("…")` with a literal specifier.
 */
export function importsOf(src: string): string[] {
  const t = tokenize(src);
  const found = new Set<string>();
  const word = (k: number) => (t[k] && "word" in t[k] ? (t[k] as { word: string }).word : undefined);
  const str = (k: number) => (t[k] && "str" in t[k] ? (t[k] as { str: string }).str : undefined);
  for (let k = 0; k < t.length; k++) {
    const w = word(k);
    if ((w !== "import" && w !== "export") || word(k - 1) === ".") continue;
    if (w === "import" && str(k + 1) !== undefined) found.add(str(k + 1)!);
    else if (w === "import" && word(k + 1) === "(") {
      if (str(k + 2) !== undefined && word(k + 3) === ")") found.add(str(k + 2)!);
    } else {
      for (let j = k + 1; j < t.length; j++) {
        const v = word(j);
        if (v === "from" && str(j + 1) !== undefined) {
          found.add(str(j + 1)!);
          break;
        }
        if (v === undefined || v === ";" || v === "=" || v === "(" || DECLARATION.has(v)) break;
      }
    }
  }
  return [...found].sort();
}

/** The repository path a relative specifier of `file` names, or undefined for a package import. */
function resolve(file: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  const parts = file.split("/").slice(0, -1);
  for (const p of spec.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return parts.join("/");
}

/** The top folder of a repository path ("" for a file at the root, such as mod.ts). */
const layer = (path: string) => (path.includes("/") ? path.slice(0, path.indexOf("/")) : "");

/** Layers each layer must not import (ARCHITECTURE.md, "Layers"). */
const FORBIDDEN: Record<string, readonly string[]> = {
  runtime: ["models", "data", "train", "score", "tasks"],
  kernels: ["models", "data", "train", "score", "tasks"],
  models: ["data", "train", "tasks"],
};

/** Every broken rule among `files` (path → source), one line each. */
export function importViolations(files: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [file, src] of files) {
    const from = layer(file);
    for (const spec of importsOf(src)) {
      const target = resolve(file, spec);
      if (target === undefined) continue;
      const to = layer(target);
      if (FORBIDDEN[from]?.includes(to)) {
        out.push(`${file} imports ${target}: ${from}/ must not import ${to}/`);
      }
      if (from !== "tests" && to === "tests") {
        out.push(`${file} imports ${target}: production code imports no tests`);
      }
      if (from === "tasks" && to === "tasks") {
        out.push(`${file} imports ${target}: a task imports no other task`);
      }
    }
  }
  return out;
}

function readTree(): Map<string, string> {
  return new Map(sourceFiles().map((f) => [f, Deno.readTextFileSync(new URL(f, ROOT))]));
}

Deno.test("imports: kernels/ and runtime/ import no upper layer, models/ no data/train/tasks, no production file imports tests/, no task imports a task", () => {
  const files = readTree();
  for (const layerName of ["runtime", "kernels", "models", "data", "train", "score", "tasks", "tests"]) {
    assert([...files.keys()].some((f) => f.startsWith(`${layerName}/`)), `found ${layerName}/ files`);
  }
  const broken = importViolations(files);
  assert(broken.length === 0, `import rules broken:\n${broken.join("\n")}`);
});

Deno.test("imports: the rules catch each kind of wrong import (hand-written files)", () => {
  const files = new Map([
    ["kernels/a.ts", 'import { x } from "../models/core.ts";\n// import "../data/cache/mod.ts";'],
    ["runtime/b.ts", 'const m = await import("../train/loop.ts");'],
    ["models/c.ts", 'export { y } from "../data/loader.ts";\nimport "../kernels/mod.ts";'],
    ["data/d.ts", 'import type {\n  Z,\n} from "../tests/fixtures.ts";'],
    ["tasks/e.ts", 'import "./train.ts";\nconst s = "import x from \'../tasks/f.ts\'";'],
    ["tests/f_test.ts", 'import { t } from "../tasks/train.ts";\nimport { u } from "./fixtures.ts";'],
    ["mod.ts", 'export * from "./models/zoo.ts";'],
  ]);
  assertEquals(importViolations(files), [
    "kernels/a.ts imports models/core.ts: kernels/ must not import models/",
    "runtime/b.ts imports train/loop.ts: runtime/ must not import train/",
    "models/c.ts imports data/loader.ts: models/ must not import data/",
    "data/d.ts imports tests/fixtures.ts: production code imports no tests",
    "tasks/e.ts imports tasks/train.ts: a task imports no other task",
  ]);
});

Deno.test({
  name: "imports: the parser finds exactly the local imports Deno's module graph records (deno info)",
  permissions: { read: true, write: true, run: ["deno"], env: true },
  fn: async () => {
    const files = readTree();
    const dir = await Deno.makeTempDir();
    try {
      const root = `${dir}/all.ts`;
      const abs = (f: string) => new URL(f, ROOT).href;
      await Deno.writeTextFile(root, [...files.keys()].map((f) => `import "${abs(f)}";\n`).join(""));
      const out = await new Deno.Command("deno", {
        args: [
          "info",
          "--json",
          "--no-npm",
          "--no-remote",
          "--config",
          new URL("deno.json", ROOT).pathname,
          root,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert(out.success, new TextDecoder().decode(out.stderr));
      const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
        modules: { specifier: string; dependencies?: { specifier: string }[] }[];
      };
      const byUrl = new Map(graph.modules.map((m) => [m.specifier, m]));
      let compared = 0;
      for (const [file, src] of files) {
        const mod = byUrl.get(abs(file));
        assert(mod, `${file} is in Deno's module graph`);
        const local = (specs: string[]) => specs.filter((s) => s.startsWith(".")).sort();
        assertEquals(
          local(importsOf(src)),
          local([...new Set((mod.dependencies ?? []).map((d) => d.specifier))]),
          `${file}: local imports`,
        );
        compared++;
      }
      assertEquals(compared, files.size);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
