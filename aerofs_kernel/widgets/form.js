// A job form rendered from a pipeline's JSON Schema: one field per option, paths checked by the kernel,
// "Run here" (background thread in the kernel) or "Submit to the job server".
function fieldFor(name, prop, value, onChange) {
  const row = document.createElement("label");
  row.style.cssText = "display:grid;grid-template-columns:11em 1fr;gap:6px;align-items:center;margin:2px 0";
  const title = document.createElement("span");
  title.textContent = name + (prop.__required ? " *" : "");
  title.title = prop.description || "";
  row.appendChild(title);
  let input;
  const types = [].concat(prop.type || []);
  if (prop.enum) {
    input = document.createElement("select");
    for (const v of prop.enum) {
      const o = document.createElement("option");
      o.value = JSON.stringify(v); o.textContent = String(v);
      if (JSON.stringify(v) === JSON.stringify(value)) o.selected = true;
      input.appendChild(o);
    }
    input.addEventListener("change", () => onChange(JSON.parse(input.value)));
  } else if (types.includes("boolean")) {
    input = document.createElement("input"); input.type = "checkbox"; input.checked = !!value;
    input.addEventListener("change", () => onChange(input.checked));
  } else if (types.includes("integer") || types.includes("number")) {
    input = document.createElement("input"); input.type = "number"; input.value = value ?? "";
    input.addEventListener("change", () => onChange(input.value === "" ? null : Number(input.value)));
  } else if (types.includes("array") || types.includes("object")) {
    input = document.createElement("input"); input.value = value == null ? "" : JSON.stringify(value);
    input.placeholder = "JSON";
    input.addEventListener("change", () => { try { onChange(input.value === "" ? null : JSON.parse(input.value)); } catch { onChange(input.value); } });
  } else {
    input = document.createElement("input"); input.value = value ?? "";
    input.addEventListener("change", () => onChange(input.value === "" ? null : input.value));
  }
  input.name = name;
  input.title = prop.description || "";
  row.appendChild(input);
  return row;
}
function render({ model, el }) {
  el.classList.add("aerofs-form");
  const build = () => {
    el.innerHTML = "";
    const schema = model.get("schema") || {};
    const values = { ...model.get("values") };
    const h = document.createElement("div");
    h.style.fontWeight = "600"; h.textContent = model.get("title");
    el.appendChild(h);
    const required = new Set(schema.required || []);
    for (const [name, prop] of Object.entries(schema.properties || {})) {
      const p = { ...prop, __required: required.has(name) };
      el.appendChild(fieldFor(name, p, values[name] ?? prop.default, (v) => {
        const next = { ...model.get("values") }; next[name] = v;
        model.set("values", next); model.save_changes();
      }));
    }
    const errs = document.createElement("ul");
    errs.style.color = "#b00";
    for (const e of model.get("problems")) { const li = document.createElement("li"); li.textContent = `${e.path}: ${e.message}`; errs.appendChild(li); }
    el.appendChild(errs);
    const bar = document.createElement("div");
    const run = document.createElement("button"); run.textContent = "Run here";
    run.addEventListener("click", () => model.send({ type: "run", mode: "local" }));
    const sub = document.createElement("button"); sub.textContent = "Submit to the job server";
    sub.addEventListener("click", () => model.send({ type: "run", mode: "submit" }));
    bar.append(run, sub);
    const st = document.createElement("span"); st.textContent = " " + model.get("status"); bar.append(st);
    el.appendChild(bar);
  };
  model.on("change:problems", build);
  model.on("change:status", build);
  model.on("change:schema", build);
  build();
}
export default { render };
