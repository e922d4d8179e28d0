"""The order in which a reader meets the examples of each sub-gallery."""

ORDER = [
    # formats
    "plot_format_table.py",
    "plot_bit_layouts.py",
    "plot_range_precision.py",
    "plot_rounding.py",
    "plot_mx_block_scaling.py",
    # clipping
    "plot_seed_demonstration.py",
    "plot_clipping_in_training.py",
    "plot_clipping_pitfalls.py",
    # amp
    "plot_autocast_tour.py",
    "plot_fp16_gradient_underflow.py",
    "plot_dynamic_loss_scaling.py",
    "plot_amp_recipe.py",
    "plot_precision_shootout.py",
    "plot_master_weights.py",
    "plot_fp16_activation_overflow.py",
]


class ReadingOrder:
    """sphinx-gallery sort key: the position of an example in :data:`ORDER`."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        if filename not in ORDER:
            raise ValueError(f"{filename} is missing from ORDER in {__file__}")
        return ORDER.index(filename)
