"""Results as figures and as one self-contained HTML report (matplotlib, imported lazily).

- :mod:`hybridrad.report.html`: :func:`~hybridrad.report.html.write_report`, the study
  report of a ``hybridrad run`` output folder;
- :mod:`hybridrad.report.plots`: plots of result objects (Kaplan-Meier, ROC, forest
  plots, calibration, decision curves, importance, heatmaps, Dice);
- :mod:`hybridrad.report.overlay`: segmentation overlays in the radiological display;
- :mod:`hybridrad.report.correlation`: handcrafted versus deep feature correlation;
- :mod:`hybridrad.report.checklist`: the CLEAR and TRIPOD+AI items a run fills in.

The report reads results; it never imports ``hybridrad.study``, ``hybridrad.segment`` or
the CLI.
"""
