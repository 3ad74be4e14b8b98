"""The lowest layer: device and dtype policy, errors with exit codes, progress, folder locks, input fingerprints."""
