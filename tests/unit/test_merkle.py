"""RFC 9162 Merkle proofs against a plain reference written from the RFC's recursive definitions."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core import merkle


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]), RFC 9162 2.1.1, as written there."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 2.1.3.1."""
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), RFC 9162 2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return subproof(m, leaves[:k], complete) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def tree(n: int) -> list[bytes]:
    return [f"leaf {i}".encode() for i in range(n)]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.data())
def test_inclusion_proofs_equal_the_rfc_and_verify(n, data):
    leaves = tree(n)
    hashes = [merkle.leaf_hash(x) for x in leaves]
    root = merkle.root_of(hashes)
    assert root == mth(leaves)
    m = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_path(m, n, merkle.subtree_from_leaves(hashes))
    assert proof == path(m, leaves)
    assert merkle.verify_inclusion(leaves[m], m, n, proof, root)
    # Tampering with the leaf, the index or any one step of the proof is detected.
    assert not merkle.verify_inclusion(leaves[m] + b"x", m, n, proof, root)
    if n > 1:
        assert not merkle.verify_inclusion(leaves[m], (m + 1) % n, n, proof, root)
        step = data.draw(st.integers(0, len(proof) - 1))
        bad = [bytes([h[0] ^ 1]) + h[1:] if i == step else h for i, h in enumerate(proof)]
        assert not merkle.verify_inclusion(leaves[m], m, n, bad, root)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.data())
def test_consistency_proofs_equal_the_rfc_and_verify(n, data):
    leaves = tree(n)
    hashes = [merkle.leaf_hash(x) for x in leaves]
    m = data.draw(st.integers(1, n))
    proof = merkle.consistency_path(m, n, merkle.subtree_from_leaves(hashes))
    assert proof == subproof(m, leaves, True)
    old, new = mth(leaves[:m]), mth(leaves)
    assert merkle.verify_consistency(m, n, old, new, proof)
    if m < n:
        step = data.draw(st.integers(0, len(proof) - 1))
        bad = [bytes([h[0] ^ 1]) + h[1:] if i == step else h for i, h in enumerate(proof)]
        assert not merkle.verify_consistency(m, n, old, new, bad)
        # A rewritten history: the old tree with one leaf changed is not a prefix of the new one.
        forged = mth([b"rewritten"] + leaves[1:m])
        assert not merkle.verify_consistency(m, n, forged, new, proof)


def test_the_rfc_6962_test_vectors_root():
    # The eight leaves of the Certificate Transparency test vectors (certificate-transparency-go,
    # RFC 6962 hashing, which RFC 9162 keeps): the root of all eight.
    leaves = [
        bytes.fromhex(x)
        for x in (
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        )
    ]
    root = merkle.root_of([merkle.leaf_hash(x) for x in leaves])
    assert root.hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
