"""The live Qt window (PySide6 + pyqtgraph): it paints snapshots, it computes nothing.

- :mod:`.window`: :class:`~neuralign.app.window.MainWindow`, painting a
  :class:`~neuralign.realtime.source.SnapshotSource` from a QTimer;
- :mod:`.panels`, :mod:`.traces`: the maps, peaks, ceilings, EEG scope and ERP;
- :mod:`.controls`: the side panel; :mod:`.connect`: the LSL stream picker and the live source
  factory; :mod:`.export`: PNGs and results; :mod:`.settings`: settings kept between runs;
- :mod:`.run`: :func:`~neuralign.app.run.run_window`, the event loop; :mod:`.qt`: the
  QApplication.

Importing this package imports no Qt and sets nothing.
"""
