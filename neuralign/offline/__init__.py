"""Offline analysis: dataset loaders (THINGS-EEG2 preprocessed and raw, THINGS-EEG1, MNE
epochs), variance partitioning and many-subject studies, all on the one engine.
"""
