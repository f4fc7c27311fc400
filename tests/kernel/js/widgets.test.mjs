// Renders each widget's ESM into jsdom with a fake anywidget model and checks what the user sees and sends.
// Run: node tests/kernel/js/widgets.test.mjs (needs jsdom; NODE_PATH=labextension/node_modules).
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");
const require = createRequire(path.join(root, "labextension", "package.json"));
const { JSDOM } = require("jsdom");
const dom = new JSDOM("<!doctype html><body></body>");
globalThis.document = dom.window.document;

function fakeModel(state) {
  const handlers = {};
  const sent = [];
  return {
    sent,
    get: (k) => state[k],
    set: (k, v) => { state[k] = v; },
    save_changes: () => {},
    send: (msg) => sent.push(msg),
    on: (ev, fn) => { (handlers[ev] ||= []).push(fn); },
    update(k, v) { state[k] = v; for (const fn of handlers[`change:${k}`] || []) fn(); },
  };
}

async function load(name) {
  return (await import(pathToFileURL(path.join(root, "aerofs_kernel", "widgets", name)).href)).default;
}

// progress.js
{
  const w = await load("progress.js");
  const model = fakeModel({ description: "csv-to-parquet", state: "running", inputs_total: 4, inputs_done: 1,
    bytes_total: 1000, bytes_done: 250, rows: 1234, errors: 2, current: "/data/a.csv", rate: 2048, eta: 90, message: "" });
  const el = document.createElement("div");
  w.render({ model, el });
  assert.equal(el.querySelector("progress").value, 0.25);
  assert.match(el.textContent, /25%/);
  assert.match(el.textContent, /1\/4 inputs/);
  assert.match(el.textContent, /2 errors/);
  assert.match(el.textContent, /\/data\/a\.csv/);
  assert.match(el.textContent, /ETA 1 min 30 s/);
  model.update("bytes_done", 500);
  assert.equal(el.querySelector("progress").value, 0.5);
  el.querySelector("button.cancel").click();
  assert.deepEqual(model.sent, [{ type: "cancel" }]);
  model.update("state", "cancelled");
  assert.equal(el.querySelector("button.cancel").disabled, true);
  // An ended run shows what was done, not a rate or a time left (even if the model still held an ETA).
  assert.doesNotMatch(el.textContent, /ETA/);
  assert.doesNotMatch(el.textContent, /\/s\b/);
  assert.match(el.textContent, /1\/4 inputs · 500 B\/1000 B · 1,234 rows/);
  for (const ended of ["succeeded", "failed"]) {
    model.update("state", ended);
    assert.doesNotMatch(el.textContent, /ETA|\/s\b/, ended);
  }
  // Text from the kernel is text, never markup.
  model.update("state", "running");
  model.update("current", "<img src=x onerror=alert(1)>");
  assert.equal(el.querySelector("img"), null);
}

// form.js
{
  const w = await load("form.js");
  const schema = { required: ["src"], properties: {
    src: { type: "string", description: "input" },
    layout: { enum: ["per_file", "merged"], default: "per_file" },
    header: { type: "boolean", default: true },
    threads: { type: "integer", default: 0 },
  } };
  const model = fakeModel({ title: "CSV to Parquet", schema, values: { layout: "per_file", header: true, threads: 0 },
    problems: [{ path: "$.src", message: "no such file or folder: /nope" }], status: "" });
  const el = document.createElement("div");
  w.render({ model, el });
  assert.match(el.textContent, /no such file or folder/);
  const src = el.querySelector("input[name=src]");
  src.value = "/data";
  src.dispatchEvent(new dom.window.Event("change"));
  const layout = el.querySelector("select[name=layout]");
  layout.value = JSON.stringify("merged");
  layout.dispatchEvent(new dom.window.Event("change"));
  assert.equal(model.get("values").src, "/data");
  assert.equal(model.get("values").layout, "merged");
  const [run, submit] = el.querySelectorAll("button");
  run.click();
  submit.click();
  assert.deepEqual(model.sent, [{ type: "run", mode: "local" }, { type: "run", mode: "submit" }]);
}

// result.js
{
  const w = await load("result.js");
  const model = fakeModel({ html: "<b>summary</b>" });
  const el = document.createElement("div");
  w.render({ model, el });
  assert.equal(el.querySelector("b").textContent, "summary");
  model.update("html", "<i>new</i>");
  assert.equal(el.querySelector("i").textContent, "new");
}
console.log("widgets.test.mjs: ok");
