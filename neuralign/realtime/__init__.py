"""The live path: LSL inlets, ring buffer, online epoching, recording, and the sources the
window paints (live sessions and replays) with their shared refresh worker.
"""
