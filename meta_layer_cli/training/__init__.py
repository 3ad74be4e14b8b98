"""Training the meta-layer: gene splits, chunk sampling, the trainer, run configuration."""

from meta_layer_cli.training.config import RunConfig, load_run_config
from meta_layer_cli.training.data import ChunkSampler
from meta_layer_cli.training.splits import GeneSplit, split_genes
from meta_layer_cli.training.trainer import Trainer, TrainerConfig

__all__ = ["ChunkSampler", "GeneSplit", "RunConfig", "Trainer", "TrainerConfig", "load_run_config", "split_genes"]
