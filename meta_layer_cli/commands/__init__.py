"""The ``metalayer`` command line: thin wrappers over library functions."""
