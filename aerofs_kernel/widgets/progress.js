// Live progress of one run or job: bar, rate, ETA, current input, error count, cancel.
function fmtBytes(n) {
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
function fmtSecs(s) {
  if (s == null || !isFinite(s)) return "–";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
// The states after which a run or job changes no more (ProgressWidget's ENDED_STATES).
const ENDED = ["succeeded", "failed", "cancelled"];
function render({ model, el }) {
  el.classList.add("aerofs-progress");
  el.innerHTML = `
    <div style="display:flex;gap:8px;align-items:center;font-family:var(--jp-ui-font-family,sans-serif);font-size:12px">
      <span class="label" style="min-width:9em;font-weight:600"></span>
      <progress class="bar" max="1" value="0" style="flex:1;height:14px"></progress>
      <span class="pct" style="min-width:3.5em;text-align:right"></span>
      <button class="cancel">Cancel</button>
    </div>
    <div class="detail" style="font-size:11px;color:var(--jp-ui-font-color2,#666);margin-top:2px"></div>`;
  const $ = (s) => el.querySelector(s);
  $(".cancel").addEventListener("click", () => { model.send({ type: "cancel" }); $(".cancel").disabled = true; });
  function update() {
    const total = model.get("bytes_total"), done = model.get("bytes_done");
    const itotal = model.get("inputs_total"), idone = model.get("inputs_done");
    const frac = total > 0 ? done / total : itotal > 0 ? idone / itotal : 0;
    const state = model.get("state");
    $(".label").textContent = `${model.get("description")} · ${state}`;
    $(".bar").value = state === "succeeded" ? 1 : Math.min(1, frac);
    $(".pct").textContent = `${Math.round(100 * (state === "succeeded" ? 1 : frac))}%`;
    const errs = model.get("errors");
    $(".detail").innerHTML = "";
    const parts = [`${idone}/${itotal} inputs`, `${fmtBytes(done)}/${fmtBytes(total)}`];
    // Rate and ETA describe a run in progress: once it ended they would be stale guesses (an ETA
    // under a cancelled run), so the line keeps only what was done.
    if (!ENDED.includes(state)) parts.push(`${fmtBytes(model.get("rate"))}/s`, `ETA ${fmtSecs(model.get("eta"))}`);
    parts.push(`${model.get("rows").toLocaleString()} rows`);
    const span = document.createElement("span");
    span.textContent = parts.join(" · ");
    $(".detail").appendChild(span);
    const e = document.createElement("span");
    e.textContent = ` · ${errs} errors`;
    if (errs > 0) e.style.color = "#b00";
    $(".detail").appendChild(e);
    const cur = model.get("current");
    if (cur && state === "running") {
      const c = document.createElement("div");
      c.textContent = cur;
      c.style.cssText = "overflow:hidden;text-overflow:ellipsis;white-space:nowrap";
      $(".detail").appendChild(c);
    }
    const msg = model.get("message");
    if (msg) { const m = document.createElement("div"); m.textContent = msg; $(".detail").appendChild(m); }
    $(".cancel").disabled = !["running", "queued", "pending", "starting"].includes(state);
  }
  for (const k of ["bytes_total", "bytes_done", "inputs_total", "inputs_done", "rows", "errors", "current", "rate", "eta", "state", "message", "description"]) {
    model.on(`change:${k}`, update);
  }
  update();
}
export default { render };
