"""Table rows as a Dataset: the tensors live in memory and a batch is gathered in one indexing step."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from tessera.modalities.tabular.preprocessing import TableTensors


class TableDataset(Dataset):
    """Rows `rows` of a preprocessed table; a batch is the DESIGN contract:
    num (B, Dn) float, cat (B, Dc) long, missing (B, Dn + Dc) bool, index (B,) (the row in the file),
    plus label (B,) long or target (B, 1) float when the table has a target.

    `__getitem__` takes the sampler's `(index, seed)` key (or a plain index) and returns the position;
    `collate` gathers the rows, so a batch of 512 rows costs one gather per tensor, not 512 dicts.
    """

    def __init__(self, table: TableTensors, rows: Tensor | Sequence[int]) -> None:
        self.rows = torch.as_tensor(rows, dtype=torch.long)
        self.tensors = {"num": table.num, "cat": table.cat, "missing": table.missing}
        if table.label is not None:
            self.tensors["label"] = table.label
        if table.target is not None:
            self.tensors["target"] = table.target

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: tuple[int, int] | int) -> int:
        return int(key[0]) if isinstance(key, (tuple, list)) else int(key)

    def collate(self, positions: Sequence[int]) -> dict[str, Tensor]:
        index = self.rows[torch.as_tensor(list(positions), dtype=torch.long)]
        batch = {key: value[index] for key, value in self.tensors.items()}
        batch["index"] = index
        return batch

    def all_rows(self) -> dict[str, Tensor]:
        return self.collate(range(len(self)))
