"""mixprec: the numerics of training neural networks with PyTorch.

The public names live in one module per concern and are re-exported here. They are
imported on first use, so that ``import mixprec`` (and the ``mixprec`` command) does
not pay for importing torch until something needs it.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "formats": [
        "FORMATS",
        "FloatFormat",
        "decode",
        "encode",
        "get_format",
        "round_to",
    ],
    "inspect": ["Explanation", "explain"],
    "clipping": [
        "ParamGradStats",
        "cosine_similarity",
        "format_grad_table",
        "grad_absmax",
        "grad_norm",
        "grad_snapshot",
        "grad_table",
        "nonfinite_count",
    ],
    "amp": [
        "DynamicLossScale",
        "History",
        "ScaleEvent",
        "ScalerTrace",
        "StepRecord",
        "autocast_dtypes",
        "pick_device",
        "train",
    ],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'mixprec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mixprec.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
