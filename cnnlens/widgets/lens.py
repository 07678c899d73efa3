"""Lens: one model, one image set, every view of a single network linked together.

The pane's selection (layer, neuron, image) lives on its ActivationGrid; tree,
filters, detail and picker follow it in JavaScript (links that survive export).
What needs computation (activations, top-k, weights, histograms) is wired here with
``observe(..., names=[...])``; the callbacks that fill the views' payload traits live in
a :class:`~cnnlens.widgets.lens_links.LensLinks`, and a neuron's top images are ranked
off the kernel thread (``detail_job.py``; :meth:`Lens.wait` blocks until done).
"""

from __future__ import annotations

import difflib

import ipywidgets as W

from ..encode import payload_nbytes
from ..inspector import Inspector
from ..views.featvis import lens_featvis
from ..views.grid import grid_frames
from ..views.tree import channel_count, tree_nodes
from .activation_grid import ActivationGrid
from .detail_job import DetailJob
from .featvis_job import FeatvisJob
from .filter_grid import FilterGrid, weight_histogram
from .image_picker import ImagePicker
from .layer_tree import LayerTreeView
from .lens_links import LensLinks
from .neuron_detail import NeuronDetail

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
    >>> lens.wait(), lens.detail.top_status        # top images rank off the kernel thread
    (True, 'ready')
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
            colormap=opts.pop("colormap", "auto"),
            normalize=opts.pop("normalize", "channel"),
            sort=opts.pop("sort", "index"),
        )
        self.tree = LayerTreeView(
            nodes=tree_nodes(tree),
            grid=self.grid,
            layout=W.Layout(flex="0 0 260px", width="260px", max_height="560px", overflow="auto"),
        )
        self.tree.add_class("cnnlens-lens-tree")  # a compact pane hides it (js/lib/style.js)
        self.filters = FilterGrid(grid=self.grid)
        self.detail = NeuronDetail(
            grid=self.grid,
            filters=self.filters,
            k=opts.pop("top_k", 8),
            by=opts.pop("by", "mean"),
            layout=W.Layout(flex="0 0 300px", width="300px"),
        )
        self.detail.add_class("cnnlens-lens-detail")
        self._job = DetailJob(self._inspector, self.detail, self.grid)
        self._featvis = FeatvisJob(self._inspector, self.detail, self.grid)
        self.picker = ImagePicker(grid=self.grid)
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="Add image",
                                   tooltip="add an image of your own: it joins the image set, "
                                           "is selected and shown in every view")
        self.upload.add_class("cnnlens-needs-kernel")  # hidden in exported pages (no kernel)
        self.histogram = weight_histogram()
        self._links = LensLinks(self._inspector, self.grid, self.filters, self.picker,
                                self.histogram, self._job)
        # tree | grid | detail; the grid takes what is left and the detail wraps below it
        # when the row is narrow (widths and gaps: js/lib/style.js, "Lens layout")
        mid = W.VBox([self.grid], layout=W.Layout(flex="1 1 320px", min_width="0"))
        left = W.VBox([self.picker, self.upload], layout=W.Layout(flex="2 1 280px", min_width="0"))
        right = W.VBox([self.filters, self.histogram], layout=W.Layout(flex="3 1 400px", min_width="0"))
        rows = [W.HBox(c, layout=W.Layout(flex_flow="row wrap")) for c in
                ([self.tree, mid, self.detail], [left, right])]
        for box, name in zip((mid, *rows), ("mid", "main", "lower")):
            box.add_class(f"cnnlens-lens-{name}")
        super().__init__(rows)
        self.add_class("cnnlens-lens")
        self._links.update_thumbs()
        self._links.update_grid()
        self._links.update_filters()
        self.neuron = opts.pop("neuron", -1)
        self._job.update()
        # One place for the Python-side links; JS-side links live in the views.
        self.grid.observe(self._links.on_grid, names=["layer", "image_index", "page", "sort"])
        self.grid.observe(self._links.on_neuron, names=["neuron"])
        self.detail.observe(lambda _: self._job.update(), names=["by", "k"])
        self.detail.on_msg(self._featvis.on_msg)  # the "visualise" button
        self.grid.observe(lambda _: self._featvis.show_cached(), names=["layer", "neuron"])
        self.upload.observe(self._links.on_upload, names=["value"])

    # -- public mirrors of the UI selection ------------------------------------------
    @property
    def inspector(self) -> Inspector:
        """The :class:`cnnlens.Inspector` behind this pane (activation cache, top images)."""
        return self._inspector

    @property
    def featvis_settings(self) -> dict:
        """``{"steps", "seed"}`` of the pane's feature visualisations (its button's settings)."""
        return {"steps": self._featvis.steps, "seed": self._featvis.seed}

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
        n = channel_count(self._inspector.layers, self.layer)
        if not (value == -1 or 0 <= value < n):
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

    def grid_first(self):
        """Context manager: within it a selection change paints the grid at once and the
        detail and filters follow when it ends (Compare moves both panes' grids first)."""
        return self._links.grid_first()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the detail's top images are ranked; False if ``timeout`` (s) passed first.

        They rank on a worker thread (clicks return at once); read ``lens.detail.top`` after
        this in scripts, tests and notebooks. A failed ranking shows in ``detail.error``.
        """
        return self._job.wait(timeout)

    def to_html(self, path, **kwargs):
        """Write an offline page of this Lens; see :func:`cnnlens.export.export_lens`."""
        from ..export import export_lens

        return export_lens(self, path, **kwargs)

    def visualize(self, layer=None, channel=None, size=None, steps: int = 256, seed: int = 0):
        """Feature visualisation of ``channel`` of ``layer`` (default: the selected ones).

        See :func:`cnnlens.featvis.visualize`; the size defaults to the images' size and
        the input normalisation follows the image set (:func:`cnnlens.featvis.normalization`).
        Runs on the calling thread (the pane's "visualise" button runs it on a worker) and
        is cached: the neuron pane shows the result when that neuron is selected.

        >>> vis = lens.visualize("conv3", 5, steps=64)     # doctest: +SKIP
        >>> vis.image.shape, vis.activation                # doctest: +SKIP
        ((16, 16, 1), 3.1...)
        """
        layer = self.layer if layer is None else layer
        channel = self.neuron if channel is None else int(channel)
        if channel < 0:
            raise ValueError("no channel given and no neuron selected (lens.neuron is -1)")
        vis = lens_featvis(self._inspector, layer, channel, size=size, steps=steps, seed=seed)
        self._featvis.show(vis)  # in the pane, if that neuron is selected
        return vis

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
            self._inspector, layers or self.grid.layers, idx, sort=self.grid.sort,
            max_bytes=max_bytes,
        )
        return sum(payload_nbytes(p) for p in frames.values())
