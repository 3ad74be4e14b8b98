"""Training the meta-layer: gene splits, chunk sampling, the trainer, run configuration."""

from metasplice.training.config import RunConfig, load_run_config
from metasplice.training.data import ChunkSampler
from metasplice.training.splits import GeneSplit, split_genes
from metasplice.training.trainer import Trainer, TrainerConfig

__all__ = ["ChunkSampler", "GeneSplit", "RunConfig", "Trainer", "TrainerConfig", "load_run_config", "split_genes"]
