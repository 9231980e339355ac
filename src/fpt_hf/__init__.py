"""fpt-hf: Frozen Pretrained Transformers (Lu, Grover, Abbeel, Mordatch 2021) as HuggingFace models."""

from .backbones import DEFAULT_BACKBONE, EMBEDDED_BACKBONES, classify_parameters, load_backbone, resolve_backbone
from .baselines import LSTMBaseline, LSTMConfig
from .configuration_fpt import PARAMETER_GROUPS, POLICIES, FPTConfig
from .heads import SequenceModelOutput
from .modeling_fpt import FPTModel, register_auto_classes
from .peft_interop import fpt_peft_config

register_auto_classes()

__version__ = "0.1.0"
__all__ = [
    "DEFAULT_BACKBONE",
    "EMBEDDED_BACKBONES",
    "FPTConfig",
    "FPTModel",
    "LSTMBaseline",
    "LSTMConfig",
    "PARAMETER_GROUPS",
    "POLICIES",
    "SequenceModelOutput",
    "classify_parameters",
    "fpt_peft_config",
    "load_backbone",
    "resolve_backbone",
]
