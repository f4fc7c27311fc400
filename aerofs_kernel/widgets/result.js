// A run's result: summary, outputs, errors, charts (inline SVG) and table previews, rendered server-side
// as self-contained HTML (no scripts, no network).
function render({ model, el }) {
  const update = () => { el.innerHTML = model.get("html"); };
  model.on("change:html", update);
  update();
}
export default { render };
