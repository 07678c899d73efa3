// The Compare's panes: compact (grid + neuron detail) or the full Lens, one click apart.
// View state only, kept in the pane's class: it works the same with and without a kernel.

/**
 * A "full Lens" / "compact" button at the head of each Compare pane (idempotent): the
 * compact pane shows the grid and the neuron detail, the full one the whole Lens. View
 * state only (no trait): it works the same with and without a kernel.
 */
export function addPaneToggles(compare) {
  for (const pane of compare?.querySelectorAll(".cnnlens-compare-pane") || []) {
    if (pane.querySelector(":scope > .cnnlens-pane-toggle, :scope .cnnlens-pane-toggle")) continue;
    const button = pane.ownerDocument.createElement("button");
    button.className = "cnnlens-pane-toggle";
    const say = () => {
      const compact = pane.classList.contains("cnnlens-compact");
      button.textContent = compact ? "full Lens ▾" : "compact ▴";
      button.title = compact ? "show this model's layer tree, images and filters"
        : "back to the grid and the neuron detail";
      button.setAttribute("aria-expanded", String(!compact));
    };
    button.addEventListener("click", () => { pane.classList.toggle("cnnlens-compact"); say(); });
    say();
    const head = pane.firstElementChild;  // the pane's title
    if (head) { head.classList.add("cnnlens-pane-head"); head.append(button); } else pane.prepend(button);
  }
}
