"""The Python side of a Lens's links: a selection change -> payloads for its views.

:class:`LensLinks` gets the pane's views in its constructor, so that ``lens.py`` keeps
the layout, the options and the public API; the ``observe`` calls that connect these
callbacks stay in ``Lens.__init__`` (one place links views). The neuron detail's
payloads come from ``detail_job.py``.
"""

from __future__ import annotations

from contextlib import contextmanager

from ..encode import encode_images
from ..views.errors import describe
from ..views.filters import filter_state, selected_filter
from ..views.grid import grid_state
from ..views.tree import keeps_neuron
from .filter_grid import set_histogram
from .image_picker import MAX_THUMBS, image_from_upload

__all__ = ["LensLinks"]


class LensLinks:
    """Observers and payload builders of a :class:`cnnlens.Lens`.

    Parameters
    ----------
    inspector : cnnlens.Inspector
    grid : ActivationGrid
        The pane's selection model.
    filters : FilterGrid
    picker : ImagePicker
    histogram : bqplot Figure
        The weight histogram (:func:`~cnnlens.widgets.filter_grid.weight_histogram`).
    job : DetailJob
        Keeps the neuron detail in step with the selection.
    """

    def __init__(self, inspector, grid, filters, picker, histogram, job):
        self._inspector, self._grid, self._filters = inspector, grid, filters
        self._picker, self._histogram, self._job = picker, histogram, job
        self._pages = 1  # of the grid's layer (one page: the view sorts it itself)
        self._quiet = False  # while a new layer resets the page and the neuron
        self._deferred = None  # within grid_first(): the updates queued until it ends

    # -- observers -----------------------------------------------------------------
    def on_grid(self, change):
        if self._quiet:
            return
        name = change["name"]
        if name == "layer":
            self._quiet = True
            try:  # a new layer starts on its first page; the neuron stays only if it means
                self._grid.page = 0  # the same there (views.tree.keeps_neuron)
                if not keeps_neuron(self._inspector.layers, change["old"], change["new"],
                                    self._grid.neuron):
                    self._grid.neuron = -1
            finally:
                self._quiet = False
        if name == "sort" and self._pages <= 1:
            return  # the view sorts a single page itself
        self.update_grid()
        later = []
        if name in ("layer", "image_index"):
            later.append(self._job.update)
        if name == "layer":
            later.append(self.update_filters)
        if self._deferred is not None:
            self._deferred.extend(later)
            return
        for update in later:
            update()

    @contextmanager
    def grid_first(self):
        """Within this block a selection change paints the grid at once and queues the
        detail and filter updates until the block ends.

        The browser handles kernel messages in order: a Compare click selects a layer in
        both panes, and pane B's grid should not wait behind pane A's filters, histogram
        and detail (the grids are what the user looks at first).
        """
        if self._deferred is not None:  # nested: the outermost block runs them
            yield
            return
        self._deferred = queue = []
        try:
            yield
        finally:
            self._deferred = None
        for update in queue:
            update()

    def on_neuron(self, _):
        self._job.update()
        self._update_selected_filter()

    def on_upload(self, change):
        files = change["new"]
        if not files:
            return
        try:
            index = self._inspector.add_image(image_from_upload(files[0]))
            self._picker.error = ""
        except Exception as exc:  # noqa: BLE001 - not an image, wrong channels...: say so in place
            self._picker.error = f"upload failed: {describe(exc)}"
            return
        self.update_thumbs()
        self._grid.image_index = index

    # -- payload builders ------------------------------------------------------------
    def update_grid(self):
        g = self._grid
        p, err = grid_state(self._inspector, g.layer, g.image_index, page=g.page, sort=g.sort)
        self._pages = p.get("pages", 1)
        with g.hold_sync():
            g.payload = p
            g.error = err

    def update_thumbs(self):
        ims = self._inspector.images
        self._picker.thumbs = encode_images(ims[:MAX_THUMBS], size=48)
        self._picker.count = len(ims)

    def update_filters(self):
        f = self._filters
        state = filter_state(self._inspector, self._grid.layer)
        set_histogram(self._histogram, state.pop("histogram"), state.get("weights_layer", ""))
        with f.hold_sync():
            for key, value in state.items():
                setattr(f, key, value)
        self._update_selected_filter()

    def _update_selected_filter(self):
        f = self._filters
        f.selected = selected_filter(self._inspector, f.weights_layer, f.payload.get("mode"),
                                     self._grid.neuron)
