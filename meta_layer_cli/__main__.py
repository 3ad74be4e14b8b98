"""``python -m meta_layer_cli`` (what ``torchrun -m meta_layer_cli train-canonical ...`` runs on every rank)."""

from meta_layer_cli.commands.main import main

main()
