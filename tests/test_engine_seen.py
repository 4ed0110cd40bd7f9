"""SpillingSet: membership stays exact when the ids move to disk."""

from pipelines_repo.engine.seen import SpillingSet


def test_membership_is_exact_before_and_after_spilling() -> None:
    seen = SpillingSet(memory_limit=50)
    seen.update(f"root-{i}" for i in range(30))
    assert "root-7" in seen and "root-30" not in seen
    for start in range(30, 500, 40):
        seen.update(f"root-{i}" for i in range(start, start + 40))
    assert seen._db is not None, "more ids than the memory limit spill to disk"
    assert all(f"root-{i}" in seen for i in range(0, 510, 7))
    assert "root-510" not in seen and "other" not in seen
    seen.update(["root-3", "root-3"])
    assert seen.count == 510
    seen.close()
