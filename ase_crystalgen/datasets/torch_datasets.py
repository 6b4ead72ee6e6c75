"""torch ``Dataset`` classes over a processed data set: generation, and modification pairs.

Items are dicts of fixed-shape tensors, so the default collate function batches them:

==================  ====================  =================================================
key                 shape                 meaning
==================  ====================  =================================================
``x``               (M + 4, 3)            structure matrix (target for generation)
``mask``            (M + 4,)              True on atom rows
``elements``        (M + 4, 103)          one-hot over H-Lr
``properties``      (M + 4, 22)           standardised elemental properties
``spacegroup_ops``  (192, 4, 4)           affine operations of the space group
``spacegroup``      ()                    space-group number (int64)
``energy``          ()                    formation energy, eV/atom
``n_sites``         ()                    number of atoms (int64)
==================  ====================  =================================================

The modification dataset adds ``x_init`` and gives ``x`` = the target, ``energy`` =
E(target) - E(initial) and the target's space group (paper section 2.2).
"""

from __future__ import annotations

import numpy as np

try:
    import torch
    from torch.utils.data import Dataset
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("torch is needed for the datasets: pip install 'ase_crystalgen[ml]'") from exc

from ..representation.elements import N_ELEMENTS, property_table
from ..representation.spacegroups import operation_table
from .cache import ProcessedDataset
from .processing import sample_epoch_pairs


class _Tables:
    """Row tables indexed by atomic number (row 0 = padding), shared by all items."""

    def __init__(self) -> None:
        self.one_hot = torch.zeros(N_ELEMENTS + 1, N_ELEMENTS)
        self.one_hot[1:] = torch.eye(N_ELEMENTS)
        self.properties = torch.zeros(N_ELEMENTS + 1, property_table().shape[1])
        self.properties[1:] = torch.as_tensor(property_table(), dtype=torch.float32)
        self.ops = torch.tensor(np.array(operation_table()))


class CrystalDataset(Dataset):
    """Structures of one split of a processed data set, for the generation task.

    Parameters
    ----------
    data
        A :class:`ProcessedDataset` or the directory of one.
    split
        ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
    dtype
        Floating dtype of ``x`` and the condition tensors.
    augment
        Augmentations of ``x`` (:mod:`ase_crystalgen.datasets.augment`): a list of
        ``"permute"``, ``"shift"``, ``"lattice"``, True for all three; none by default.
        Item ``i`` of epoch ``e`` is drawn from ``default_rng([seed, e, i])``
        (:meth:`set_epoch` sets ``e``).
    seed
        Seed of the augmentation draws.
    """

    def __init__(
        self,
        data: ProcessedDataset | str,
        split: str = "train",
        dtype: torch.dtype = torch.float32,
        augment=None,
        seed: int = 0,
    ):
        from ..representation.tensors import lattice_rows
        from .augment import lattice_operations, parse_augment

        self.data = data if isinstance(data, ProcessedDataset) else ProcessedDataset.load(data)
        self.index = self.data.indices(split)
        self.dtype = dtype
        a = self.data.arrays
        self._x = torch.as_tensor(a["x"], dtype=dtype)
        self._numbers = torch.as_tensor(a["numbers"].astype(np.int64))
        self._n_sites = torch.as_tensor(a["n_sites"].astype(np.int64))
        self._sg = torch.as_tensor(a["spacegroup"].astype(np.int64))
        self._energy = torch.as_tensor(a["energy"], dtype=torch.float64)  # differences in float64
        self._tables = _Tables()
        self.rows = a["x"].shape[1]
        self.augment = parse_augment(augment)
        self.seed = int(seed)
        self.epoch = 0
        # point groups of the lattices, once per structure of the split
        self._operations = (
            {int(i): lattice_operations(a["x"][i, lattice_rows(self.rows - 4)]) for i in self.index}
            if "lattice" in self.augment
            else {}
        )

    def set_epoch(self, epoch: int) -> None:
        """Use the augmentation draws of ``epoch``."""
        self.epoch = int(epoch)

    def structure_matrix(self, i: int) -> torch.Tensor:
        """``x`` of structure ``i``, augmented when the dataset was asked to."""
        if not self.augment:
            return self._x[i]
        from .augment import augment_structure

        rng = np.random.default_rng([self.seed, self.epoch, i])
        x = augment_structure(
            self.data.arrays["x"][i], self.data.arrays["numbers"][i], rng, self.augment,
            self._operations.get(i),
        )
        return torch.as_tensor(x, dtype=self.dtype)

    def __len__(self) -> int:
        return len(self.index)

    def conditions(self, i: int) -> dict[str, torch.Tensor]:
        """Condition tensors of structure ``i`` of the underlying data set."""
        return {k: v[0] for k, v in self.batch_conditions(np.array([i])).items()}

    def batch_conditions(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """:meth:`conditions` of the structures ``rows`` of the data set, stacked in one go."""
        idx = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        padded = torch.zeros((len(idx), self.rows), dtype=torch.int64)
        padded[:, : self._numbers.shape[1]] = self._numbers[idx]
        n = self._n_sites[idx]
        sg = self._sg[idx]
        return {
            "mask": torch.arange(self.rows)[None, :] < n[:, None],
            "elements": self._tables.one_hot[padded].to(self.dtype),
            "properties": self._tables.properties[padded].to(self.dtype),
            "spacegroup_ops": self._tables.ops[sg].to(self.dtype),
            "spacegroup": sg,
            "n_sites": n,
        }

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i = int(self.index[k])
        item = self.conditions(i)
        item["x"] = self.structure_matrix(i)
        item["energy"] = self._energy[i].to(self.dtype)
        item["index"] = torch.tensor(i)
        return item

    def batch(self, ks) -> dict[str, torch.Tensor]:
        """Items ``ks`` stacked: what the default collate makes of ``[self[k] for k in ks]``.

        Built from whole-array indexing instead of one item at a time, which is what the
        trainer's data loading spends its time on otherwise (small networks on a GPU).
        """
        rows = self.index[np.asarray(ks, dtype=np.int64)]
        out = self.batch_conditions(rows)
        idx = torch.as_tensor(rows)
        if self.augment:
            out["x"] = torch.stack([self.structure_matrix(int(i)) for i in rows])
        else:
            out["x"] = self._x[idx]
        out["energy"] = self._energy[idx].to(self.dtype)
        out["index"] = idx
        return out


class ModificationDataset(CrystalDataset):
    """Pairs (initial, more stable target) of one polymorph group, for modification.

    With ``resample=True`` (training) the pairs are re-drawn by :meth:`set_epoch` from the
    lowest-energy and non-lowest pairs, equal numbers of each and at most ``cap_per_group`` of
    each kind per group; with ``resample=False`` (validation) the items are all lowest-energy
    pairs, the paper's validation set.
    """

    def __init__(
        self,
        data: ProcessedDataset | str,
        split: str = "train",
        cap_per_group: int = 8,
        resample: bool = True,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(data, split, dtype)
        self.lowest, self.nonlowest = self.data.pairs(split)
        self.cap_per_group = cap_per_group
        self.resample = resample
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the pairs of ``epoch`` (deterministic in ``seed`` and ``epoch``)."""
        self.epoch = int(epoch)
        if not self.resample:
            self.pairs = self.lowest
            return
        rng = np.random.default_rng([self.seed, epoch])
        self.pairs = sample_epoch_pairs(
            self.lowest, self.nonlowest, self.data.arrays["group"], self.cap_per_group, rng
        )

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, ks) -> dict[str, torch.Tensor]:
        """Items ``ks`` stacked, as the default collate would stack them."""
        pairs = torch.as_tensor(np.asarray(self.pairs, dtype=np.int64)[np.asarray(ks, dtype=np.int64)])
        init, target = pairs[:, 0], pairs[:, 1]
        out = self.batch_conditions(target.numpy())
        out["x"] = self._x[target]
        out["x_init"] = self._x[init]
        out["energy"] = (self._energy[target] - self._energy[init]).to(self.dtype)
        out["index"] = target
        out["index_init"] = init
        return out

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        init, target = (int(v) for v in self.pairs[k])
        item = self.conditions(target)
        item["x"] = self._x[target]
        item["x_init"] = self._x[init]
        item["energy"] = (self._energy[target] - self._energy[init]).to(self.dtype)
        item["index"] = torch.tensor(target)
        item["index_init"] = torch.tensor(init)
        return item
