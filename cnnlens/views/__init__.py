"""What each view shows, computed without ipywidgets: the layer under the widgets and pages.

Functions here take an :class:`~cnnlens.inspector.Inspector` (or plain data) and return
trait values: payload dicts from :mod:`cnnlens.encode` and plain JSON scalars. The live
widgets (:mod:`cnnlens.widgets`) put them into traits; the offline pages
(:mod:`cnnlens.export`) embed the same values, so a page and the live view cannot
drift. One builder per payload; nothing here imports ipywidgets, anywidget or bqplot.

* :mod:`~cnnlens.views.errors`: one line per error for the in-place error areas;
* :mod:`~cnnlens.views.tree`: the layer tree's rows, the weighted layer behind a
  layer's channels, selectable neurons;
* :mod:`~cnnlens.views.grid`: the activation grid's payload and frames;
* :mod:`~cnnlens.views.filters`: the filter view's payloads and weight histogram;
* :mod:`~cnnlens.views.detail`: the neuron detail and its top-k tables;
* :mod:`~cnnlens.views.featvis`: feature visualisations as payloads and frames;
* :mod:`~cnnlens.views.maps`: which canonical directions a Compare's maps show.
"""
