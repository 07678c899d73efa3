"""The wire format: tensors -> one uint8 buffer + per-channel scale (mirror: js/lib/decode.js).

This package is the only place that knows how activations, images and weights travel
to the browser. A payload is a plain dict of JSON scalars plus ``bytes`` values;
ipywidgets lifts every ``bytes`` value out into a binary buffer, so nothing
numeric ever travels as a JSON list or a PNG. One module per concept:

* :mod:`~cnnlens.encode.quant`: uint8 + per-tile ``offset``/``scale`` (float32, or
  float16 when float32 metadata would cost more than ~5 % of the payload; float16
  offsets round down and scales up, so the range still covers the data), ``decode``
  (within half a step of every ``encode_*``) and wire sizes;
* :mod:`~cnnlens.encode.maps`: activation tiles for the grid (pages, downsampling);
* :mod:`~cnnlens.encode.images`: input images as thumbnails / overlay backgrounds, and
  feature visualisations as they are;
* :mod:`~cnnlens.encode.weights`: learned filters;
* :mod:`~cnnlens.encode.canonical`: Compare's canonical maps (a pair's directions, one
  image's paired maps);
* :mod:`~cnnlens.encode.tables`: Compare's spectra and metric matrices (float32, NaN-padded).

Small side tables go as ``encode_vector`` (float32) and ``encode_ids`` (int32) bytes.

Import from here (``from cnnlens.encode import encode_maps``); the split is internal.

>>> import torch
>>> p = encode_maps(torch.rand(64, 56, 56), layer="conv1")
>>> p["shape"], len(p["data"])
([64, 56, 56], 200704)
>>> bool(abs(decode(p) - decode(p)).max() == 0)
True
"""

from __future__ import annotations

from .canonical import encode_canonical_image, encode_canonical_pair
from .images import encode_images, encode_unit_images
from .maps import MAX_PIXELS, MAX_SIDE, MAX_TILES, SORTS, as_maps, channel_indices, encode_maps
from .quant import FORMAT, decode, encode_ids, encode_vector, payload_nbytes
from .tables import pack_matrices, pack_spectra
from .weights import encode_weights

__all__ = [
    "FORMAT", "MAX_PIXELS", "MAX_SIDE", "MAX_TILES", "SORTS", "as_maps", "channel_indices",
    "decode", "encode_canonical_image", "encode_canonical_pair", "encode_ids", "encode_images",
    "encode_maps", "encode_unit_images", "encode_vector", "encode_weights", "pack_matrices",
    "pack_spectra", "payload_nbytes",
]  # fmt: skip
