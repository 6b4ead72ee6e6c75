"""Data sets for the generative models: readers, processing, cache, torch datasets.

Heavy or optional parts are imported where used: ``torch_datasets`` needs torch (the ``ml``
extra), ``synthetic`` needs pyxtal (the ``synthetic`` extra). Remote databases are in
:mod:`.sources` (``sources.aflow``: standard library only, but it talks to the network).
"""

from .cache import BuildSettings, CacheError, ProcessedDataset, build_dataset, load_dataset
from .processing import split_by_formula
from .readers import (
    DataFormatError,
    from_pymatgen,
    open_source,
    read_aflow_csv,
    read_ase,
    read_cdvae_csv,
)

# what users call; the masks and pair samplers of .processing stay importable from there
__all__ = [
    "BuildSettings",
    "CacheError",
    "DataFormatError",
    "ProcessedDataset",
    "build_dataset",
    "from_pymatgen",
    "load_dataset",
    "open_source",
    "read_aflow_csv",
    "read_ase",
    "read_cdvae_csv",
    "split_by_formula",
]
