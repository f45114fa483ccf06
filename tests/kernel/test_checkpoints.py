"""``nbcellar.checkpoint`` / ``nbcellar.resumable`` in a notebook: a loop stopped in the middle
and run again goes on from its last checkpoint, and ends as an uninterrupted loop ends."""

from __future__ import annotations

import pytest

from tests.kernel.conftest import Session

pytest.importorskip("numpy", reason="the training loop uses numpy")

SETUP = """\
import numpy as np
import nbcellar
np.random.seed(1)
X = np.random.default_rng(0).normal(size=(200, 3))
target = X @ np.array([1.0, -2.0, 0.5])
"""

LOOP = """\
w = np.zeros(3)
losses = []
for epoch in nbcellar.resumable(range(8)):
    batch = np.random.randint(0, 200, size=32)
    w = w - 0.1 * X[batch].T @ (X[batch] @ w - target[batch]) / 32
    losses.append(float(((X @ w - target) ** 2).mean()))
    nbcellar.checkpoint(epoch, loss=losses[-1])
    if epoch == STOP:
        raise KeyboardInterrupt
"""


def final(session: Session) -> tuple[list[float], list[float], int]:
    return (
        list(session.ns["w"]),
        list(session.ns["losses"]),
        int(session.ns["np"].random.randint(10**6)),
    )


def test_a_loop_run_again_goes_on_from_its_last_checkpoint(session: Session) -> None:
    session.start(cached=True)
    session.run_all([SETUP, "STOP = -1", LOOP])
    uninterrupted = final(session)

    session.start(cached=True)
    session.run_all([SETUP, "STOP = 3"])
    stopped = session.run(LOOP)
    assert not stopped.success  # (stopped at epoch 3, as a Ctrl-C would)
    session.run("STOP = -1")
    again = session.run(LOOP)  # the same cell, run again
    assert again.success
    assert final(session) == uninterrupted  # weights, every loss, the random generator
    steps = session.ns["nbcellar"].checkpoints()
    assert steps["step"].tolist() == list(range(8))
    assert steps["loss"].tolist() == uninterrupted[1]


def test_an_edited_loop_starts_again(session: Session) -> None:
    session.start(cached=True)
    session.run_all([SETUP, "STOP = 2"])
    session.run(LOOP)
    edited = LOOP.replace("0.1 *", "0.05 *")
    session.run("STOP = -1")
    session.run(edited)
    assert len(session.ns["losses"]) == 8  # from the first step: another loop


def test_a_loop_using_what_the_kernel_provides_goes_on_from_its_checkpoint(
    session: Session,
) -> None:
    """get_ipython (a bound method the kernel puts in the namespace) is no state to keep: a
    checkpoint holding it could not be put back."""
    with_kernel = LOOP.replace(
        "    nbcellar.checkpoint(", "    get_ipython()\n    nbcellar.checkpoint("
    )
    session.start(cached=True)
    session.run_all([SETUP, "STOP = -1", with_kernel])
    uninterrupted = final(session)
    session.start(cached=True)
    session.run_all([SETUP, "STOP = 3"])
    assert not session.run(with_kernel).success
    session.run("STOP = -1")
    again = session.run(with_kernel)
    assert again.success, again.stdout
    assert final(session) == uninterrupted


def test_a_checkpoint_without_a_store_is_one_clear_error(session: Session) -> None:
    session.start(cached=False)
    found = session.run("import nbcellar\nnbcellar.checkpoint(0, loss=1.0)")
    assert not found.success
    assert "keeps checkpoints in the notebook's store" in found.stdout + str(found.result)


def test_a_checkpoint_writes_only_what_changed(session: Session) -> None:
    def stored_bytes() -> int:
        objects = session.store_dir / "objects"
        return sum(p.stat().st_size for p in objects.rglob("*") if p.is_file())

    session.start(cached=True)
    session.run(
        "import numpy as np\nimport nbcellar\ndata = np.ones((1000, 1000))\nw = np.zeros(1000)"
    )
    session.run("nbcellar.checkpoint(0, data=float(data[0, 0]), w=float(w[0]))\nw = w + 1")
    session.extension.flush()
    before = stored_bytes()
    for step in range(1, 6):
        session.run(f"w = w + 1\nnbcellar.checkpoint({step}, state=['data', 'w'])")
    session.extension.flush()
    grown = stored_bytes() - before
    assert grown < 5 * 8000 + 500_000, grown  # five weight vectors (8 KB each), not 8 MB data
    assert before > 8_000_000  # (the data was written once)


def test_a_loop_changing_its_state_in_place_keeps_exact_checkpoints(session: Session) -> None:
    session.start(cached=True)
    session.run("import numpy as np\nimport nbcellar\nw = np.ones(4_000_000)")
    done = session.run(
        "for epoch in nbcellar.resumable(range(6)):\n"
        "    w *= 1.5  # in place, while the checkpoint before may still be being written\n"
        "    nbcellar.checkpoint(epoch, first=float(w[0]))"
    )
    assert done.success
    steps = session.ns["nbcellar"].checkpoints()
    assert steps["first"].tolist() == [1.5 ** (k + 1) for k in steps["step"]]
    assert len(steps) >= 5  # (one may be dropped: changed in memory while written)
    from nbcellar.checkpointing import checkpoints_of, series

    store = session.extension.cache.store
    last = checkpoints_of(store, series())[-1]
    kept = store.load_namespace(last.snapshot, ["w"])["w"]
    assert float(kept[0]) == float(kept[-1]) == 1.5 ** (last.step + 1)  # not torn


def test_what_the_loop_only_reads_is_kept_once_and_what_it_changes_every_step(
    session: Session,
) -> None:
    """A checkpoint pickles again only what the loop's cell may change (what it assigns,
    changes in place, or hands to a call not known to leave it as it was): ``data`` is only
    read (``pickle.dump`` of it included), ``grown`` is changed through a notebook function,
    ``counts`` through a method; each checkpoint keeps each as it was at its step."""
    session.start(cached=True)
    session.run(
        "import io, pickle\nimport numpy as np\nimport nbcellar\n"
        "data = np.arange(300_000.0)\ngrown = np.zeros(3)\ncounts = []\n"
        "def bump(a, k):\n    a[:] = k\n"
    )
    done = session.run(
        "for epoch in nbcellar.resumable(range(4)):\n"
        "    pickle.dump({'data': data}, io.BytesIO())\n"
        "    total = float(data.sum())\n"
        "    bump(grown, epoch)\n"
        "    counts.append(epoch)\n"
        "    nbcellar.checkpoint(epoch)\n"
    )
    assert done.success
    session.extension.flush()
    from nbcellar.checkpointing import checkpoints_of, series

    store = session.extension.cache.store
    kept = checkpoints_of(store, series())
    assert [c.step for c in kept] == [0, 1, 2, 3]
    for taken in kept:
        values = store.load_namespace(taken.snapshot, ["data", "grown", "counts"])
        assert values["grown"].tolist() == [taken.step] * 3
        assert values["counts"] == list(range(taken.step + 1))
        assert float(values["data"][-1]) == 299_999.0
    snapshots = [store.snapshot(c.snapshot) for c in kept]
    data_keys = {s["data"].value_key for s in snapshots}
    assert len(data_keys) == 1  # (one stored value, used by every checkpoint)
