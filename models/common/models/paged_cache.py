# SPDX-License-Identifier: Apache-2.0
"""BlockAllocator: the page table of a paged KV cache, filled by a simple free-list allocator.

The pool holds ``users · ceil(max_seq_len / block_size)`` blocks plus one scratch block. A user's row of the page
table lists its blocks in position order; it grows as the user's sequence does (``reserve``) and is returned to the
pool on ``release``. Entries a user does not own point at the scratch block, so the decode step of an idle user
(the batch always decodes every row) writes and reads only scratch, never another user's blocks. ``revision``
counts the table's changes: a device copy of the table needs rewriting only when its revision is stale.
"""

import math

import torch

from models.common.modules.attention.attention_steps import PagedAttentionConfig


class BlockAllocator:
    def __init__(self, max_batch_size: int, max_seq_len: int, block_size: int):
        self.block_size = block_size
        self.blocks_per_user = math.ceil(max_seq_len / block_size)
        self.scratch = max_batch_size * self.blocks_per_user  # the last block of the pool
        self.free = list(range(self.scratch))
        self.owned: list[list[int]] = [[] for _ in range(max_batch_size)]
        self.table = torch.full((max_batch_size, self.blocks_per_user), self.scratch, dtype=torch.int32)
        self.revision = 0  # bumped by every change to ``table``

    @property
    def config(self) -> PagedAttentionConfig:
        """The attention modules' paged-cache shape: the pool with its scratch block."""
        return PagedAttentionConfig(self.block_size, self.scratch + 1)

    def reserve(self, user: int, tokens: int) -> None:
        """Give ``user`` blocks for its first ``tokens`` positions; ValueError when they do not fit."""
        needed = math.ceil(tokens / self.block_size)
        if needed > self.blocks_per_user:
            raise ValueError(f"user {user}: {tokens} positions exceed the cache's {self.blocks_per_user} blocks")
        while len(self.owned[user]) < needed:
            if not self.free:
                raise ValueError(f"user {user}: the KV-cache pool has no free block; release finished users first")
            block = self.free.pop(0)
            self.table[user, len(self.owned[user])] = block
            self.owned[user].append(block)
            self.revision += 1

    def release(self, user: int) -> None:
        self.free.extend(self.owned[user])
        self.owned[user] = []
        self.table[user] = self.scratch
        self.revision += 1

    def user_row(self, user: int, tokens: int) -> torch.Tensor:
        """[1, blocks covering ``tokens``] of ``user``'s row (a chunked prefill's page tables)."""
        return self.table[user : user + 1, : math.ceil(tokens / self.block_size)].contiguous()
