"""The selected pair of ``cl.Compare``: both panes on its layers, its spectrum, its maps.

Composition, not a mixin: :class:`PairViews` gets every view it drives in its
constructor. Its links need the kernel (the panes compute, the maps job queues work);
the links that also work in an exported page live in ``js/compare_link.js``.
"""
from __future__ import annotations

import contextlib

from ..views.errors import describe
from ..views.maps import cca_metric
from .compare_job import METRICS
from .spectrum import spectrum_title

__all__ = ["PairViews"]


class PairViews:
    """What follows the heatmap's selected cell, an image pick and the spectrum's curve.

    Parameters
    ----------
    heatmap, lenses, spectrum, maps, maps_job, matrix_job, link
        The Compare's heatmap, its two Lens panes (None where one failed), the spectrum
        figure, the canonical maps view, its job, the similarity pass and the link whose
        ``error`` shows problems in place.
    names : (str, str)
        The two models' names (the spectrum's title).
    metric : callable
        The metric the heatmap shows now.
    """

    def __init__(self, heatmap, lenses, spectrum, maps, maps_job, matrix_job, link, names,
                 metric):
        self.heatmap, (self.lens_a, self.lens_b) = heatmap, lenses
        self.spectrum, self.maps, self.maps_job = spectrum, maps, maps_job
        self.matrix_job, self.link, self.names, self.metric = matrix_job, link, names, metric

    def show(self, _change=None) -> None:
        """The selected cell: both panes on its layers, its spectrum and its maps."""
        pair = self.heatmap.pair
        if pair is None:
            return
        i, j = pair
        name_a, name_b = self.heatmap.layers_a[i], self.heatmap.layers_b[j]
        try:
            # Both grids first, then each pane's detail and filters: the browser handles
            # messages in order, so pane B's grid would otherwise wait behind pane A's views.
            moves = [(lens, name) for lens, name in ((self.lens_a, name_a), (self.lens_b, name_b))
                     if lens is not None and lens.layer != name]
            with contextlib.ExitStack() as stack:
                for lens, _ in reversed(moves):  # exits in reverse: pane A's views go first
                    stack.enter_context(lens.grid_first())
                for lens, name in moves:
                    lens.layer = name
            self._show_spectrum(i, j, name_a, name_b)
            self.show_maps()
        except Exception as exc:  # noqa: BLE001 - keep the widget usable; say what went wrong
            self.link.error = f"pair {name_a} x {name_b}: {describe(exc)}"

    def _show_spectrum(self, i, j, name_a, name_b) -> None:
        title = spectrum_title(self.names, name_a, name_b)
        with self.matrix_job.lock:
            result = self.matrix_job.result if self.matrix_job.complete else None
            if result is None:
                self.spectrum.clear(title=f"{title}: matrix not ready")
                return
            reason = result.reason("svcca", i, j)  # the spectrum is the pair's SVCCA one
            try:
                rho, base = result.spectrum(i, j), result.baseline(i, j)
            except Exception as exc:  # noqa: BLE001 - undefined pair: its title says why
                self.spectrum.show([], [], pair=(i, j), title=f"{title}: {reason or describe(exc)}")
                return
        if len(rho) == 0:  # undefined pair: say why instead of drawing nothing silently
            title = f"{title}: {reason or 'no spectrum'}"
        self.spectrum.show(rho, base, pair=(i, j), title=title)

    def show_maps(self, image=None) -> None:
        """Queue the selected pair's canonical maps for the maps view (maps_job's worker)."""
        pair = self.heatmap.pair
        if pair is None or self.lens_a is None or self.lens_b is None:
            return
        i, j = pair
        shown = self.metric()
        metric = cca_metric(shown)
        note = ("" if metric == shown else f"The heatmap shows {METRICS[shown]}, which has no "
                "directions: these maps come from SVCCA of the same pair.")
        image = self.lens_a.image_index if image is None else image
        self.maps_job.request((i, j), self.heatmap.layers_a[i], self.heatmap.layers_b[j],
                              image, metric, k=self.maps.k, note=note)

    def on_image(self, change) -> None:
        """A pane's image picker: the maps of that image (same directions, no new pass)."""
        try:
            self.show_maps(image=change["new"])
        except Exception as exc:  # noqa: BLE001 - shown in place
            self.maps.error = describe(exc)

    def on_curve(self, _change=None) -> None:
        """The spectrum's clickable points stay on its curve."""
        dots, curve = self.maps.dots, self.spectrum.curve
        with dots.hold_sync():
            dots.x, dots.y, dots.visible = curve.x, curve.y, curve.visible
            dots.selected = None if not curve.visible else [min(self.maps.direction, len(curve.y) - 1)]
