"""Named random streams: one independent numpy Generator per random source.

A stream's seed is ``SeedSequence(seed, spawn_key=(crc32(name),))`` — the same
construction ``SeedSequence.spawn`` uses, keyed by a stable name instead of a
position. Adding a stream (or a draw in one) never shifts another, which is what
keeps common random numbers honest in A/B comparisons.
"""
from __future__ import annotations

import zlib

import numpy as np

__all__ = ["Streams"]


class Streams:
    """Factory of named, independent generators for one model run."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._made: dict[str, np.random.Generator] = {}

    def seed_sequence(self, name: str) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.seed, spawn_key=(zlib.crc32(name.encode()),))

    def get(self, name: str) -> np.random.Generator:
        """The generator named ``name``; asking twice for one name is a bug."""
        if name in self._made:
            raise ValueError(f"random stream {name!r} requested twice")
        rng = np.random.Generator(np.random.PCG64(self.seed_sequence(name)))
        self._made[name] = rng
        return rng

    @property
    def names(self) -> list[str]:
        return sorted(self._made)
