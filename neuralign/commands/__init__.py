"""Sub-commands of the ``neuralign`` CLI, one module each (see :mod:`neuralign.cli`)."""
