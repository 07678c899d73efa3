// Twin of cnnlens/widgets/activation_grid.py (placeholder until the widgets land).
export default { render({ el }) { el.textContent = "cnnlens"; return () => {}; } };
