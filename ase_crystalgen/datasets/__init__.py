"""Data sets for the generative models: readers, processing, cache, torch datasets.

Heavy or optional parts are imported where used: ``torch_datasets`` needs torch (the ``ml``
extra), ``synthetic`` needs pyxtal (the ``synthetic`` extra), ``aflow`` needs only the
standard library but talks to the network.
"""

from .cache import BuildSettings, CacheError, ProcessedDataset, build_dataset, load_dataset
from .processing import (
    SPLIT_NAMES,
    duplicate_mask,
    frequency_mask,
    modification_pairs,
    polymorph_groups,
    sample_epoch_pairs,
    size_mask,
    split_by_formula,
)
from .readers import (
    DataFormatError,
    from_pymatgen,
    open_source,
    read_aflow_csv,
    read_ase,
    read_cdvae_csv,
)

__all__ = [
    "SPLIT_NAMES",
    "BuildSettings",
    "CacheError",
    "DataFormatError",
    "duplicate_mask",
    "ProcessedDataset",
    "build_dataset",
    "frequency_mask",
    "from_pymatgen",
    "load_dataset",
    "modification_pairs",
    "open_source",
    "polymorph_groups",
    "read_aflow_csv",
    "read_ase",
    "read_cdvae_csv",
    "sample_epoch_pairs",
    "size_mask",
    "split_by_formula",
]
