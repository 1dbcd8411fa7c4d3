"""What the read side derives from the registry is kept while the registry's version stays, asked
at most once per probe, and read again once it changes (streams.read.registry_memo)."""

from __future__ import annotations

from streams.read.registry_memo import RegistryMemo


class Night:
    def __init__(self) -> None:
        self.now, self.version, self.probes, self.reads = 0.0, 1, 0, 0

    def read_version(self) -> int:
        self.probes += 1
        return self.version

    def read(self, value: str) -> str:
        self.reads += 1
        return f"{value}@{self.version}"


def test_kept_while_the_version_stays_and_read_again_once_it_changes():
    night = Night()
    memo = RegistryMemo(night.read_version, probe_s=1.0, clock=lambda: night.now)
    assert memo.get("names", lambda: night.read("names")) == "names@1"
    night.now = 0.5
    assert memo.get("names", lambda: night.read("names")) == "names@1"
    assert (night.probes, night.reads) == (1, 1)  # within the probe: not even the version
    night.now, night.version = 0.9, 2
    assert memo.get("names", lambda: night.read("names")) == "names@1"  # at most probe_s late
    night.now = 1.0
    assert memo.get("names", lambda: night.read("names")) == "names@2"
    night.now = 2.5
    assert memo.get("names", lambda: night.read("names")) == "names@2"
    assert (night.probes, night.reads) == (3, 2)


def test_an_answer_read_across_a_change_is_not_kept_for_the_new_version():
    night = Night()
    memo = RegistryMemo(night.read_version, probe_s=1.0, clock=lambda: night.now)

    def during_a_load() -> str:
        night.now, night.version = 1.0, 2  # the registry changes while this answer is read
        memo.get("other", lambda: night.read("other"))  # and someone probes the new version
        return night.read("names")

    memo.get("names", during_a_load)
    night.now = 1.5
    assert memo.get("names", lambda: night.read("names")) == "names@2"
    assert night.reads == 3


def test_the_answers_kept_are_bounded():
    night = Night()
    memo = RegistryMemo(night.read_version, clock=lambda: night.now, max_answers=2)
    for scope in ("11", "32", "35", "32"):
        memo.get(scope, lambda s=scope: night.read(s))
    assert list(memo.answers) == ["35", "32"] and night.reads == 3  # 32 asked again: kept


def test_a_pinned_answer_outlives_every_scope_readers_ask_and_not_a_new_registry():
    night = Night()
    memo = RegistryMemo(
        night.read_version, clock=lambda: night.now, max_answers=2, pinned=frozenset({"dpt"})
    )
    memo.get("dpt", lambda: night.read("dpt"))
    for scope in ("11", "32", "35"):
        memo.get(scope, lambda s=scope: night.read(s))
    assert memo.get("dpt", lambda: night.read("dpt")) == "dpt@1" and night.reads == 4
    night.now, night.version = 5.0, 2
    assert memo.get("dpt", lambda: night.read("dpt")) == "dpt@2"
