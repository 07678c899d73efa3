"""Lens: one model, one image set, every view of a single network linked together.

The pane's selection (layer, neuron, image) lives on its ActivationGrid; tree,
filters, detail and picker follow it in JavaScript (links that survive export).
What needs computation (activations, top-k, weights, histograms) is wired here with
``observe(..., names=[...])`` and fills the views' payload traits.
"""

from __future__ import annotations

import difflib

import ipywidgets as W

from ..encode import encode_images, encode_maps, payload_nbytes
from ..inspector import Inspector
from .activation_grid import ActivationGrid, describe, grid_frames
from .filter_grid import FilterGrid, filter_state, selected_filter, set_histogram, weight_histogram
from .image_picker import MAX_THUMBS, ImagePicker, image_from_upload
from .layer_tree import LayerTreeView, channel_count, tree_nodes
from .neuron_detail import NeuronDetail, detail_state

SELECTION = ("layer", "neuron", "image_index")
CORE = ("batch_size", "cache_bytes", "transform", "pick")  # passed on to the Inspector
VIEW = ("colormap", "normalize", "sort", "top_k", "by")
OPTIONS = SELECTION + CORE + VIEW  # fmt: skip


def _reject_unknown(kwargs) -> None:
    unknown = sorted(set(kwargs) - set(OPTIONS))
    if unknown:
        near = {u: difflib.get_close_matches(u, OPTIONS, 1) for u in unknown}
        hints = [f"{u!r} (did you mean {m[0]!r}?)" if m else repr(u) for u, m in near.items()]
        raise TypeError(
            f"Lens() got unknown keyword argument(s) {', '.join(hints)}; "
            f"valid options: {', '.join(OPTIONS)}"
        )


class Lens(W.VBox):
    """Inspect one CNN: layer tree, activation grid, neuron detail, filters, image picker.

    Examples
    --------
    >>> import torch, cnnlens as cl
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    >>> lens = cl.Lens(net, torch.rand(6, 3, 12, 12))
    >>> lens.layer, lens.neuron
    ('0', -1)
    >>> lens.layer = "1"; lens.neuron = 2          # the views follow
    >>> lens.activations("1").shape
    torch.Size([6, 4, 10, 10])

    Parameters
    ----------
    model : nn.Module or Inspector
        The network (an existing :class:`cnnlens.Inspector` is reused as is).
    images : Tensor, PIL images, paths or Dataset
        The image set (anything :func:`cnnlens.inputs.to_batch` accepts).
    layer, neuron, image_index : optional
        Initial selection (default: first conv/linear layer, no neuron, image 0).
    batch_size, cache_bytes, transform, pick : optional
        Passed to :class:`cnnlens.Inspector`.
    colormap, normalize, sort : str
        Initial grid options (see :class:`ActivationGrid`).
    top_k : int, by : {"mean", "max"}
        Top images shown for a neuron and how they are ranked.
    """

    def __init__(self, model, images=None, **kwargs):
        _reject_unknown(kwargs)
        opts = dict(kwargs)
        if isinstance(model, Inspector):
            if images is not None:
                raise TypeError(
                    "Lens(inspector) takes its images from the Inspector; pass images=None"
                )
            self._inspector = model
        else:
            if images is None:
                raise TypeError(
                    "Lens(model, images) needs images: a tensor, PIL images, paths or a Dataset"
                )
            core = {k: opts.pop(k) for k in CORE if k in opts}
            self._inspector = Inspector(model, images, **core)
        tree = self._inspector.layers
        shown = [x.name for x in tree if x.shape is not None]
        if not shown:
            raise ValueError(
                f"no layer of {type(self._inspector.model).__name__} produced an output "
                "in the dry run; nothing to show"
            )
        default = next((x.name for x in tree.select(None) if x.shape is not None), shown[0])
        layer = opts.pop("layer", None) or default
        if not isinstance(layer, str):
            (layer,) = [x.name for x in tree.select(layer)]
        tree[layer]  # unknown names raise here, with the closest names listed
        self.grid = ActivationGrid(
            layer=layer,
            layers=shown,
            image_index=opts.pop("image_index", 0),
            colormap=opts.pop("colormap", "viridis"),
            normalize=opts.pop("normalize", "channel"),
            sort=opts.pop("sort", "index"),
        )
        self.tree = LayerTreeView(
            nodes=tree_nodes(tree),
            grid=self.grid,
            layout=W.Layout(width="280px", max_height="560px", overflow="auto"),
        )
        self.detail = NeuronDetail(
            grid=self.grid,
            k=opts.pop("top_k", 8),
            by=opts.pop("by", "mean"),
            layout=W.Layout(width="340px"),
        )
        self.filters = FilterGrid(grid=self.grid)
        self.picker = ImagePicker(grid=self.grid)
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="Add image")
        self.histogram = weight_histogram()
        self._pages, self._quiet, self._weights_cache = 1, False, {}
        mid = W.Box([self.grid], layout=W.Layout(flex="1 1 auto", min_width="320px"))
        left = W.VBox([self.picker, self.upload], layout=W.Layout(width="40%"))
        right = W.VBox([self.filters, self.histogram], layout=W.Layout(width="60%"))
        super().__init__([W.HBox([self.tree, mid, self.detail]), W.HBox([left, right])])
        self.add_class("cnnlens-lens")
        self._update_thumbs()
        self._update_grid()
        self._update_filters()
        self.neuron = opts.pop("neuron", -1)
        self._update_detail()
        # One place for the Python-side links; JS-side links live in the views.
        self.grid.observe(self._on_grid, names=["layer", "image_index", "page", "sort"])
        self.grid.observe(self._on_neuron, names=["neuron"])
        self.detail.observe(lambda _: self._update_detail(), names=["by", "k"])
        self.upload.observe(self._on_upload, names=["value"])

    # -- public mirrors of the UI selection ------------------------------------------
    @property
    def inspector(self) -> Inspector:
        """The :class:`cnnlens.Inspector` behind this pane (activation cache, top images)."""
        return self._inspector

    @property
    def layer(self) -> str:
        """Selected layer name; setting it selects the layer in every view."""
        return self.grid.layer

    @layer.setter
    def layer(self, name):
        if not isinstance(name, str):
            (name,) = [x.name for x in self._inspector.layers.select(name)]
        self._inspector.layers[name]  # KeyError with the closest names when unknown
        self.grid.layer = name

    @property
    def neuron(self) -> int:
        """Selected channel of :attr:`layer` (-1: none)."""
        return self.grid.neuron

    @neuron.setter
    def neuron(self, value: int):
        value = int(value)
        n = self._channels(self.layer)
        if not -1 <= value < max(n, 0) and value != -1:
            raise IndexError(f"neuron {value} out of range: layer {self.layer!r} has {n} channels")
        self.grid.neuron = value

    @property
    def image_index(self) -> int:
        """Index of the selected image in :attr:`images`."""
        return self.grid.image_index

    @image_index.setter
    def image_index(self, value: int):
        n = len(self._inspector.images)
        if not 0 <= int(value) < n:
            raise IndexError(f"image_index {value} out of range for {n} images")
        self.grid.image_index = int(value)

    @property
    def images(self):
        """float32 (N, C, H, W) image set (uploads included)."""
        return self._inspector.images

    def activations(self, layer=None, images=None):
        """Activations of ``layer`` (default: the selected one); see :meth:`Inspector.activations`."""
        return self._inspector.activations(self.layer if layer is None else layer, images)

    def precompute(self, layers=None, images=None, max_bytes: int = 64 << 20) -> int:
        """Store grid payloads in ``grid.frames`` so a kernel-less (exported) page can switch views.

        Parameters
        ----------
        layers : list of str, optional
            Default: every layer with an output.
        images : list of int, optional
            Default: the selected image.
        max_bytes : int
            Refuse to embed more than this (pages grow with every frame).

        Returns
        -------
        int
            Bytes of all frames.
        """
        idx = [self.image_index] if images is None else list(images)
        self.grid.frames = frames = grid_frames(
            self._inspector, layers or self.grid.layers, idx, max_bytes
        )
        return sum(payload_nbytes(p) for p in frames.values())

    # -- observers -----------------------------------------------------------------
    def _on_grid(self, change):
        if self._quiet:
            return
        name = change["name"]
        if name == "layer":
            self._quiet = True
            try:  # a new layer starts on its first page; keep the neuron only if it exists there
                self.grid.page = 0
                if self.grid.neuron >= self._channels(self.grid.layer):
                    self.grid.neuron = -1
            finally:
                self._quiet = False
        if name == "sort" and self._pages <= 1:
            return  # the view sorts a single page itself
        self._update_grid()
        if name in ("layer", "image_index"):
            self._update_detail()
        if name == "layer":
            self._update_filters()

    def _on_neuron(self, _):
        self._update_detail()
        self._update_selected_filter()

    def _on_upload(self, change):
        files = change["new"]
        if not files:
            return
        try:
            index = self._inspector.add_image(image_from_upload(files[0]))
            self.picker.error = ""
        except Exception as exc:  # noqa: BLE001 - not an image, wrong channels...: say so in place
            self.picker.error = f"upload failed: {describe(exc)}"
            return
        self._update_thumbs()
        self.grid.image_index = index

    # -- payload builders ------------------------------------------------------------
    def _channels(self, layer) -> int:
        return channel_count(self._inspector.layers, layer)

    def _act(self, layer, index):
        return self._inspector.activations(layer, images=index)[0]

    def _update_grid(self):
        g = self.grid
        try:
            p = encode_maps(
                self._act(g.layer, g.image_index),
                layer=g.layer,
                image_index=g.image_index,
                page=g.page,
                sort=g.sort,
            )
            self._pages, err = p["pages"], ""
            if p["nonfinite"]:
                err = f"layer {g.layer!r}: {p['nonfinite']} non-finite values, drawn at the channel minimum"
        except Exception as exc:  # noqa: BLE001 - failing forward, NaN layer, bad index: show it, stay usable
            p, err, self._pages = {"layer": g.layer, "image_index": g.image_index}, describe(exc), 1
        with g.hold_sync():
            g.payload = p
            g.error = err

    def _update_thumbs(self):
        ims = self._inspector.images
        self.picker.thumbs = encode_images(ims[:MAX_THUMBS], size=48)
        self.picker.count = len(ims)

    def _update_detail(self):
        d, g = self.detail, self.grid
        fresh = d.image_index != g.image_index or not d.image  # uploads append: indices stay
        state = detail_state(
            self._inspector, g.layer, g.neuron, g.image_index, k=d.k, by=d.by, with_image=fresh
        )
        with d.hold_sync():
            for key, value in state.items():
                setattr(d, key, value)

    def _update_filters(self):
        f = self.filters
        state = filter_state(self._inspector, self.grid.layer, self._weights_cache)
        set_histogram(self.histogram, state.pop("histogram"), state.get("weights_layer", ""))
        with f.hold_sync():
            for key, value in state.items():
                setattr(f, key, value)
        self._update_selected_filter()

    def _update_selected_filter(self):
        self.filters.selected = selected_filter(self._inspector, self.filters, self.grid.neuron)
