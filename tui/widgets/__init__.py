"""Widgets of the app: folder picker, config form, image grids, plots, meters, modals."""
