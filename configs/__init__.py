"""Built-in YAML configs (job configs here, hardware profiles in ``profiles/``).

This folder is ``configs/`` at the top of the repository and ships inside the wheel as
``meta_layer_cli.configs``; it holds no code.
"""
