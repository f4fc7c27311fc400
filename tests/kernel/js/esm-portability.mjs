// Checks that widget ESM files use only what every anywidget host gives a module: the `{ model, el }`
// of anywidget's standard renderer, the browser's own globals and modules fetched by https URL. VS Code's
// notebooks (and any host other than JupyterLab / Notebook 7) have no @jupyterlab/* packages, no
// JupyterLab page globals (`jupyterapp`, `_JUPYTERLAB`, ...) and no RequireJS.
// Run: node tests/kernel/js/esm-portability.mjs FILE... ; prints {file: [problem, ...]} as JSON, exit 0.
// ESLint (the labextension's dev dependency) parses the files and resolves scopes.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, "../../../labextension/package.json"));
const { Linter } = require("eslint");
const globals = require("globals");

// anywidget's model interface (anywidget.dev "Anywidget Front-End Module"); widget_manager is left
// out: it is marked experimental and hosts differ in what it holds.
const MODEL_API = new Set(["get", "set", "save_changes", "send", "on", "off"]);
const GLOBAL_OBJECTS = new Set(["window", "globalThis", "self", "top", "parent", "frames"]);
const BROWSER = new Set([...Object.keys(globals.builtin), ...Object.keys(globals.browser)]);

const portability = {
  meta: { type: "problem", schema: [] },
  create(context) {
    const checkSource = (node, source) => {
      const from = source && source.type === "Literal" ? String(source.value) : null;
      if (from === null || !from.startsWith("https://")) {
        context.report({ node, message: `imports ${from ?? "a computed module"}: only https:// URLs load in every host` });
      }
    };
    let exportsDefault = false;
    return {
      ImportDeclaration: (n) => checkSource(n, n.source),
      ImportExpression: (n) => checkSource(n, n.source),
      ExportAllDeclaration: (n) => checkSource(n, n.source),
      ExportNamedDeclaration: (n) => n.source && checkSource(n, n.source),
      ExportDefaultDeclaration(n) {
        exportsDefault = true;
        const d = n.declaration;
        const hasRender = d.type === "ObjectExpression" && d.properties.some((p) => p.key && p.key.name === "render");
        if (!hasRender) context.report({ node: n, message: "the default export is not an object with render()" });
      },
      MemberExpression(n) {
        const obj = n.object.type === "Identifier" ? n.object.name : null;
        const prop = n.computed ? null : n.property.name;
        if (obj === "model" && !MODEL_API.has(prop)) {
          context.report({ node: n, message: `model.${prop ?? "[computed]"} is not part of anywidget's model API` });
        }
        if (GLOBAL_OBJECTS.has(obj) && !(prop && BROWSER.has(prop))) {
          context.report({ node: n, message: `${obj}.${prop ?? "[computed]"} is not a browser global` });
        }
      },
      "Program:exit"(n) {
        if (!exportsDefault) context.report({ node: n, message: "no default export (anywidget loads `default`)" });
      },
    };
  },
};

const config = [
  {
    files: ["**/*.js"],
    languageOptions: { ecmaVersion: "latest", sourceType: "module", globals: { ...globals.browser } },
    plugins: { aerofs: { rules: { portability } } },
    rules: { "no-undef": "error", "aerofs/portability": "error" },
  },
];

const linter = new Linter({ configType: "flat" });
const report = {};
for (const file of process.argv.slice(2)) {
  const messages = linter.verify(readFileSync(file, "utf8"), config, { filename: path.basename(file) });
  report[file] = messages.map((m) => `${path.basename(file)}:${m.line}:${m.column}: ${m.message}`);
}
console.log(JSON.stringify(report));
