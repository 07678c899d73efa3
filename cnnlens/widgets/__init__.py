"""Widgets: traits and wiring only. Each anywidget class mirrors one js/ entry."""
