"""File formats of the ground: restricted unpickling, config files, features, THINGS metadata.

Nothing here imports any other part of neuralign.
"""
