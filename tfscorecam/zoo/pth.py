"""Reading a PyTorch state dict (legacy ``torch.save`` format) with NumPy alone, no torch.

The legacy format is a run of pickles (magic number, protocol version, system info, the state
dict whose tensors refer to storages by key, the list of storage keys) followed by each
storage's element count (int64) and raw little-endian data. The unpickler here resolves only
the four globals such a file needs, so a file that asks for anything else is refused rather
than executed; still, read only files you trust.
"""

from __future__ import annotations

import collections
import pickle
from pathlib import Path

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


class _Storage:
    def __init__(self, dtype: type) -> None:
        self.dtype = dtype
        self.data: np.ndarray | None = None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise ValueError("a tensor's storage was not found in the checkpoint")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], self.shape, [s * item for s in self.stride]
        )
        return np.array(view)


def _rebuild_tensor(storage, offset, shape, stride, *unused) -> _Tensor:
    return _Tensor(storage, offset, tuple(shape), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, saved_id):
        kind, dtype, key = saved_id[:3]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {kind!r}")
        return self.storages.setdefault(key, _Storage(dtype))


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a legacy-format PyTorch state dict file as NumPy arrays, by name."""
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise ValueError(
                f"{path} is a zip-format torch file; only the legacy format is supported"
            )
        f.seek(0)
        if pickle.load(f) != MAGIC:
            raise ValueError(f"{path} is not a PyTorch weights file (bad magic number)")
        pickle.load(f)  # protocol version
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            raise ValueError(f"{path} was saved on a big-endian machine")
        unpickler = _Unpickler(f)
        state = unpickler.load()
        for key in pickle.load(f):
            storage = unpickler.storages[key]
            count = int(np.frombuffer(f.read(8), "<i8")[0])
            storage.data = np.frombuffer(
                f.read(count * np.dtype(storage.dtype).itemsize), storage.dtype
            )
    return {name: tensor.array() for name, tensor in state.items()}
