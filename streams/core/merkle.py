"""RFC 9162's Merkle tree (section 2.1): tree hashes, inclusion and consistency proofs, and their
verification. Pure; SHA-256; leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left ||
right).

Proofs are built from a `SubtreeHash` callable: the hash of leaves [start, end) of the tree, for the
ranges an RFC 9162 proof needs (a perfect subtree, or the right edge of the tree). The log keeps the
perfect subtrees' hashes, so a proof costs O(log n) lookups, never a pass over the leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

SubtreeHash = Callable[[int, int], bytes]  # (start, end) -> MTH(D[start:end])
EMPTY = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where RFC 9162 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


# (level, hash) of the perfect subtrees covering [0, n), levels decreasing
Frontier = list[tuple[int, bytes]]


def push(frontier: Frontier, leaf: bytes) -> list[tuple[int, bytes]]:
    """Add a leaf hash to a compact range in place; return the perfect subtrees it completed, as
    (level, hash), from level 0 up (the leaf itself first)."""
    made = [(0, leaf)]
    level, node = 0, leaf
    while frontier and frontier[-1][0] == level:
        node, level = node_hash(frontier.pop()[1], node), level + 1
        made.append((level, node))
    frontier.append((level, node))
    return made


def frontier_root(frontier: Frontier) -> bytes:
    """MTH of the leaves a compact range covers: its subtrees folded right to left."""
    if not frontier:
        return EMPTY
    node = frontier[-1][1]
    for _, left in reversed(frontier[:-1]):
        node = node_hash(left, node)
    return node


def root_of(hashes: Sequence[bytes]) -> bytes:
    """MTH of leaves given by their leaf hashes, bottom-up in one pass (a compact range, left to
    right)."""
    frontier: Frontier = []
    for h in hashes:
        push(frontier, h)
    return frontier_root(frontier)


def inclusion_path(index: int, size: int, subtree: SubtreeHash, start: int = 0) -> list[bytes]:
    """PATH(index, D[start:start+size]) of RFC 9162 2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    while size > 1:
        k = split(size)
        if index < k:
            path.append(subtree(start + k, start + size))
            size = k
        else:
            path.append(subtree(start, start + k))
            index, start, size = index - k, start + k, size - k
    return path[::-1]


def consistency_path(old: int, new: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(old, D[new]) of RFC 9162 2.1.4.1."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")
    proof: list[bytes] = []
    start, m, n, complete = 0, old, new, True
    while m != n:
        k = split(n)
        if m <= k:
            proof.append(subtree(start + k, start + n))
            n = k
        else:
            proof.append(subtree(start, start + k))
            start, m, n, complete = start + k, m - k, n - k, False
    if not complete:
        proof.append(subtree(start, start + m))
    return proof[::-1]


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does `path` prove that `leaf` is leaf `index` of the tree of `size` with
    `root`?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf_hash(leaf)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: does `proof` show that the tree of `old` leaves is a prefix of the one of
    `new`?"""
    if old == new:
        return not proof and old_root == new_root
    if not 0 < old < new or not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


def subtree_from_leaves(hashes: Sequence[bytes]) -> SubtreeHash:
    """A SubtreeHash over leaf hashes held in memory (tests, the auditor's recount, small logs)."""
    return lambda start, end: root_of(hashes[start:end])
