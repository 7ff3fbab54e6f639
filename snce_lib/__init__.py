"""snce: Single Neuron-based Concept Erasure with sparse autoencoders, as a workbook."""
__version__ = "0.1.0"

from .activations import ActivationStore, StoreError, collect, store_bytes  # noqa: E402
from .encoders import OFFLINE, SD14, EncoderError, TextEncoder, load_encoder, load_offline, load_sd  # noqa: E402
from .sae import CheckpointError, SAEConfig, SAEOutput, TopKSAE  # noqa: E402
from .train import TrainConfig, TrainError, TrainResult, evaluate_sae, train_sae  # noqa: E402
