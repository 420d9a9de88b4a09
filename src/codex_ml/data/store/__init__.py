"""The token store: a corpus tokenised once into memory-mapped ids, fingerprinted, reused.

``open_or_build`` opens the store for a (data, tokenizer, split) fingerprint
or builds it (:mod:`.build`); :class:`TokenStore` maps its ids (:mod:`.layout`,
which also says where stores go by default: :func:`default_root`);
:mod:`.fingerprint` says what a store depends on; :mod:`.encode` tokenises in
batches. ``codex_ml.run.prepare`` wires this to a run's config.
"""

from codex_ml.data.store.build import (
    StoreFolderTaken,
    StoreFolderUnwritable,
    StoreWriteError,
    build_store,
    open_or_build,
)
from codex_ml.data.store.layout import TokenSplit, TokenStore, check_store, default_root

__all__ = [
    "StoreFolderTaken",
    "StoreFolderUnwritable",
    "StoreWriteError",
    "TokenSplit",
    "TokenStore",
    "build_store",
    "check_store",
    "default_root",
    "open_or_build",
]
