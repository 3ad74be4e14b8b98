"""The ``metasplice`` command line: thin wrappers over library functions."""
