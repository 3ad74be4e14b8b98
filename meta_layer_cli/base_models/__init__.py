"""Base models behind one interface: ``load_base_model(name, weights=None, device=None, dtype=None)``
(``device`` None: ``auto``, as everywhere; :func:`meta_layer_cli.runtime.device.resolve_device`).

Every model returns probabilities ``[L, C]`` per nucleotide; SpliceAI and
OpenSpliceAI channels are ``neither, acceptor, donor``, Pangolin's are the
splice-site probability in ``heart, liver, brain, testis``.
"""

from meta_layer_cli.base_models.base import BaseModel, NeuralBaseModel
from meta_layer_cli.base_models.loading import BASE_MODELS, load_base_model, resolve_base_model

__all__ = ["BASE_MODELS", "BaseModel", "NeuralBaseModel", "load_base_model", "resolve_base_model"]
