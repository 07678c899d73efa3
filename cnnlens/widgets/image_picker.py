"""ImagePicker: thumbnails of the pane's images; a click selects one (twin: js/image_picker.js)."""

from __future__ import annotations

import io

import anywidget
import ipywidgets as W
import traitlets as t

from .activation_grid import ActivationGrid
from .esm import bundle

MAX_THUMBS = 256  # more thumbnails than this are not browsable anyway; the rest by number


class ImagePicker(anywidget.AnyWidget):
    """Image thumbnails; clicking one sets ``grid.image_index``.

    Examples
    --------
    >>> import torch
    >>> from cnnlens.encode import encode_images
    >>> picker = ImagePicker(thumbs=encode_images(torch.rand(4, 3, 16, 16)), count=4)
    >>> picker.count
    4
    """

    _esm = bundle("image_picker")

    thumbs = t.Dict().tag(sync=True)
    """dict: ``encode_images`` payload of the first ``MAX_THUMBS`` images. Default ``{}``."""
    count = t.Int(0).tag(sync=True)
    """int: number of images in the set (may exceed the thumbnails shown). Default 0."""
    grid = t.Instance(ActivationGrid, allow_none=True).tag(sync=True, **W.widget_serialization)
    """ActivationGrid: the selection model whose ``image_index`` this picker sets. Default None."""
    error = t.Unicode("").tag(sync=True)
    """str: error shown in place (e.g. an upload that is not an image). Default ``""``."""


def image_from_upload(item):
    """A FileUpload entry (ipywidgets 8: dict with ``content`` bytes) as an RGB PIL image."""
    from PIL import Image

    return Image.open(io.BytesIO(bytes(item["content"]))).convert("RGB")
