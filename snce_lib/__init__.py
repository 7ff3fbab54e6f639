"""snce: Single Neuron-based Concept Erasure with sparse autoencoders, as a workbook.

The public API, one module per idea (see the README's "How it is built").
"""
__version__ = "0.1.0"

from .activations import ActivationStore, StoreError, collect, store_bytes  # noqa: E402
from .display import image_grid, safe_images, token_html  # noqa: E402
from .encoders import OFFLINE, SD14, EncoderError, TextEncoder, from_pipeline, load_encoder, load_offline, load_sd  # noqa: E402
from .erase import Eraser, EraserError, edit_prompt_embeds, embedding_cosine  # noqa: E402
from .evaluation import evaluate_folder, results_table  # noqa: E402
from .features import Atlas, PromptCodes, build_atlas, decoder_umap, feature_card, prompt_codes, search_features  # noqa: E402
from .generate import generate as generate_images  # noqa: E402  (the module keeps the name `generate`)
from .leakage import Leakage, LeakageError, concept_latents, concept_leakage, pooled_output, probe_leakage  # noqa: E402
from .metrics import attack_success_rate, class_counts, clip_scores, detect, fid_folders, frechet_distance  # noqa: E402
from .pipelines import build_tiny_sd, load_pipeline  # noqa: E402
from .prompts import PromptFileError, PromptSet, load_set, read_prompts  # noqa: E402
from .resources import data_path, run_home  # noqa: E402
from .protocols import PRESETS, Protocol, get_protocol  # noqa: E402
from .sae import CheckpointError, SAEConfig, SAEOutput, TopKSAE  # noqa: E402
from .selection import ConceptPairs, Selection, SelectionError, auroc, load_concept, modulated_frequency, select_neurons  # noqa: E402
from .train import TrainConfig, TrainError, TrainResult, evaluate_sae, train_sae  # noqa: E402
