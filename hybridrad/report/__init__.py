"""Plots and reports of results (matplotlib, imported lazily)."""
