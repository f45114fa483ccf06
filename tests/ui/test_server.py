"""The dashboard's pages and JSON over HTTP (starlette's TestClient on the real application and
a real store)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from nbcellar.runs.records import RunBook, RunRecord
from nbcellar.store import open_store
from nbcellar.ui.server import create_app


def client(root: Path, token: str | None = None) -> TestClient:
    return TestClient(create_app(root, token=token))


def test_runs_filter_sort_and_page_as_the_cli_language_says(runs_store: Path) -> None:
    with client(runs_store) as http:
        everything = http.get("/api/runs").json()
        assert everything["total"] == 30
        assert everything["runs"][0]["id"].endswith("29-aaaaaa")  # newest first
        assert everything["differ"] == ["C", "model"]  # seed is 0 everywhere
        svm = http.get("/api/runs", params={"where": "model=svm; accuracy>0.6"}).json()
        assert {r["params"]["model"] for r in svm["runs"]} == {"svm"}
        assert all(r["values"]["accuracy"] > 0.6 for r in svm["runs"])
        assert svm["total"] == 6  # i = 13, 16, ..., 28
        assert svm["differ"] == ["C"]
        low = http.get("/api/runs", params={"sort": "loss", "order": "asc", "limit": 3}).json()
        assert [r["values"]["loss"] for r in low["runs"]] == pytest.approx([0.71, 0.72, 0.73])
        second = http.get("/api/runs", params={"sort": "loss", "order": "asc", "limit": 3,
                                               "offset": 3}).json()  # fmt: skip
        assert second["runs"][0]["values"]["loss"] == pytest.approx(0.74)
        failed = http.get("/api/runs", params={"status": "failed"}).json()
        assert [r["error"] for r in failed["runs"]] == ["cell [3] ValueError: bad C"]
        chosen = http.get("/api/runs", params={"columns": "loss", "limit": 1}).json()
        assert chosen["runs"][0]["values"] == {"loss": pytest.approx(0.71)}
        assert chosen["runs"][0]["params"] == {}
        keys = {k["key"]: k for k in http.get("/api/keys").json()["keys"]}
        assert keys["model"]["params"] == 30
        assert keys["accuracy"]["numbers"] == 30
        assert keys["report"]["numbers"] == 0


def test_a_condition_that_cannot_be_read_is_one_line_and_a_400(runs_store: Path) -> None:
    with client(runs_store) as http:
        answer = http.get("/api/runs", params={"where": "accuracy"})
        assert answer.status_code == 400
        assert "expected NAME=VALUE" in answer.json()["error"]
        half = http.get("/api/runs", params={"where": "accuracy>"})  # (not "no run matches")
        assert half.status_code == 400
        assert "no value after '>'" in half.json()["error"]
        assert http.get("/api/runs", params={"limit": "many"}).status_code == 400


def test_not_equal_matches_what_python_says(runs_store: Path) -> None:
    """``model!=svm`` keeps the other models; ``report!=1`` keeps runs whose report is not a
    number (a dict is not 1); a name no run has matches nothing."""
    with client(runs_store) as http:
        other = http.get("/api/runs", params={"where": "model!=svm", "limit": 500}).json()
        assert other["total"] == 20
        assert http.get("/api/runs", params={"where": "report!=1"}).json()["total"] == 30
        assert http.get("/api/runs", params={"where": "nothing=1"}).json()["total"] == 0
        listed = http.get("/api/runs", params={"where": "C=[1.0]"}).json()  # (a list: Python)
        assert listed["total"] == 0


def test_the_catalog_follows_the_store_as_runs_are_written(runs_store: Path) -> None:
    with client(runs_store) as http:
        assert http.get("/api/runs").json()["total"] == 30
        store = open_store(runs_store)
        try:
            book = RunBook(store)
            book.save(RunRecord(id="20261202-000000-bbbbbb", notebook="/project/other.ipynb",
                                params={"model": "knn"}, status="running",
                                created=time.time()))  # fmt: skip
            first = book.get("20261201-000000-aaaaaa")
            assert first is not None
            from dataclasses import replace

            book.save(replace(first, values={"accuracy": 0.99}))
            store.delete_records("run", ["20261201-000001-aaaaaa"])
        finally:
            store.close()
        time.sleep(0.6)  # (the catalog looks at the store at most twice a second)
        now = http.get("/api/runs", params={"limit": 500}).json()
        assert now["total"] == 30
        ids = {r["id"]: r for r in now["runs"]}
        assert ids["20261202-000000-bbbbbb"]["status"] == "running"
        assert "20261201-000001-aaaaaa" not in ids
        best = http.get("/api/runs", params={"sort": "accuracy", "limit": 1}).json()
        assert best["runs"][0]["id"] == "20261201-000000-aaaaaa"
        notebooks = http.get("/api/notebooks").json()["notebooks"]
        assert {n["notebook"] for n in notebooks} == {"/project/train.ipynb",
                                                      "/project/other.ipynb"}  # fmt: skip


def test_pages_and_a_run_as_json(runs_store: Path) -> None:
    with client(runs_store) as http:
        page = http.get("/")
        assert page.status_code == 200
        assert 'data-page="runs"' in page.text.replace("'", '"')
        assert http.get("/static/app.js").status_code == 200
        run = http.get("/api/runs/20261201-000007-aaaaaa").json()
        assert run["status"] == "failed"
        assert run["params"]["model"] == "svm"
        missing = http.get("/api/runs/nope")
        assert missing.status_code == 404
        assert "no run 'nope'" in missing.json()["error"]
        assert http.get("/runs/nope").status_code == 404
        # A unique start or end of an id names the run, as on the command line; one that
        # names several names none.
        assert http.get("/api/runs/20261201-000007").json()["id"] == "20261201-000007-aaaaaa"
        assert "20261201-000012-aaaaaa" in http.get("/runs/000012-aaaaaa").text
        assert http.get("/api/runs/aaaaaa").status_code == 404
        assert http.get("/api/runs/2026%25").status_code == 404  # (no wildcard)


def test_the_executed_notebook_is_rendered_sandboxed_and_artifacts_download(
    executed_store: tuple[Path, str],
) -> None:
    root, run_id = executed_store
    with client(root) as http:
        page = http.get(f"/runs/{run_id}")
        assert page.status_code == 200
        assert f"sandbox='' src='/runs/{run_id}/notebook.html'" in page.text
        rendered = http.get(f"/runs/{run_id}/notebook.html")
        assert rendered.status_code == 200
        assert rendered.headers["content-security-policy"].startswith("sandbox;")
        assert 'id="bold"' in rendered.text  # what the cell showed, as it showed it
        record = http.get(f"/api/runs/{run_id}").json()
        assert record["values"]["score"] == 0.75
        assert record["artifacts"] == ["table.csv"]
        download = http.get(f"/runs/{run_id}/artifacts/table.csv")
        assert download.text == "a,b\n1,2\n"
        assert "attachment" in download.headers["content-disposition"]
        outside = http.get(f"/runs/{run_id}/artifacts/..%2F..%2Findex.sqlite")
        assert outside.status_code == 404


def test_two_runs_compared_say_what_differs(executed_store: tuple[Path, str]) -> None:
    root, first = executed_store
    with client(root) as http:
        listed = http.get("/api/runs").json()["runs"]
        (second,) = [r["id"] for r in listed if r["id"] != first]
        diff = http.get("/api/compare", params={"runs": f"{first},{second}"}).json()["diff"]
    assert not diff["same"]
    assert diff["params"] == [{"name": "k", "before": 3, "after": 4}]
    assert diff["values"] == [{"name": "score", "before": 0.75, "after": 1.0}]
    assert "-k = 3" in diff["source"]  # (the injected parameters cell)
    assert "+k = 4" in diff["source"]


def test_a_token_is_asked_for_then_kept_in_a_cookie(runs_store: Path) -> None:
    with client(runs_store, token="s3cret") as http:
        assert http.get("/api/runs").status_code == 403
        assert http.get("/api/runs", params={"token": "wrong"}).status_code == 403
        assert http.get("/", params={"token": "s3cret"}).status_code == 200
        assert http.get("/api/runs").status_code == 200  # the cookie from the first
    with client(runs_store, token="s3cret") as http:
        assert http.get("/api/runs", headers={"Authorization": "token s3cret"}).status_code == 200


def test_the_store_is_not_written_by_reading_it(runs_store: Path) -> None:
    """Its records stay as they were, bytes and times (a live run is shown as died, not
    written so)."""
    import sqlite3

    def records() -> list[tuple[object, ...]]:
        db = sqlite3.connect(runs_store / "index.sqlite")
        try:
            return db.execute(
                "SELECT kind, key, payload, created FROM records ORDER BY 1, 2"
            ).fetchall()
        finally:
            db.close()

    before = records()
    with client(runs_store) as http:
        http.get("/api/runs")
        http.get("/api/runs/20261201-000003-aaaaaa")
        http.get("/api/keys")
    assert records() == before
    assert len(before) == 60  # 30 runs, 30 logs


def test_compare_selected_runs_best_highlighted_and_histories(runs_store: Path) -> None:
    ids = ["20261201-000001-aaaaaa", "20261201-000004-aaaaaa", "20261201-000005-aaaaaa"]
    with client(runs_store) as http:
        answer = http.get("/api/compare", params={"runs": ",".join(ids)}).json()
        assert [r["id"] for r in answer["runs"]] == ids
        assert answer["varied"] == ["model", "C"]
        scalars = {s["key"]: s for s in answer["scalars"]}
        assert scalars["accuracy"]["values"] == pytest.approx([0.51, 0.54, 0.55])
        assert scalars["accuracy"]["best"] == [2]  # highest accuracy
        (loss,) = answer["histories"]
        assert loss["key"] == "loss"
        first = loss["series"][0]["points"]
        assert [p[0] for p in first] == [1, 2, 3, 4, 5]
        assert first[-1][1] == pytest.approx(0.99)  # its last value, as the record says
        assert scalars["loss"]["best"] == [2]  # lowest loss
        assert answer["parallel"]["params"] == ["model", "C"]
        assert len(answer["parallel"]["rows"]) == 3
        page = http.get("/compare", params={"runs": ",".join(ids)})
        assert page.status_code == 200
        assert "echarts.min.js" in page.text
        missing = http.get("/api/compare", params={"runs": "nope," + ids[0]})
        assert missing.status_code == 404
        assert "no run 'nope'" in missing.json()["error"]
        assert http.get("/api/compare").status_code == 400


def test_lttb_keeps_the_ends_and_the_peaks() -> None:
    from nbcellar.ui.compare import lttb

    points = [(float(x), 1.0 if x == 5000 else 0.0) for x in range(20_000)]
    kept = lttb(points, 1000)
    assert len(kept) == 1000
    assert kept[0] == points[0]
    assert kept[-1] == points[-1]
    assert (5000.0, 1.0) in kept
    assert lttb(points[:10], 1000) == points[:10]


def test_jobs_as_json_and_cancel_only_when_allowed(runs_store: Path) -> None:
    from tests.ui.conftest import record_a_launch

    runs = ["20261201-000010-aaaaaa", "20261201-000011-aaaaaa"]
    launch = record_a_launch(runs_store, runs)
    with client(runs_store) as http:
        (job,) = http.get("/api/jobs").json()["jobs"]
        assert job["id"] == launch
        assert job["counts"] == {"running": 2}
        assert [r["id"] for r in job["runs"]] == runs
        assert job["runs"][0]["worker"] == "tcp://127.0.0.1:40001"
        assert job["runs"][0]["cell"] == 2  # (1-based, as the notebook numbers it)
        refused = http.post(f"/api/jobs/{launch}/cancel")
        assert refused.status_code == 403
        assert "--allow-cancel" in refused.json()["error"]
        assert http.get("/jobs").status_code == 200
    with TestClient(create_app(runs_store, allow_cancel=True)) as http:
        unknown = http.post("/api/jobs/nope/cancel")
        assert unknown.status_code == 409
        assert "no launch 'nope'" in unknown.json()["error"]


def test_the_pipeline_page_explains_each_task(tmp_path: Path) -> None:
    from tests.ui.conftest import recorded_store

    (tmp_path / "clean.py").write_text(
        "# %% tags=['parameters']\nupstream = None\n# %%\nrows = [1, 2, 3]\n", encoding="utf-8"
    )
    (tmp_path / "fit.py").write_text(
        "# %% tags=['parameters']\nupstream = ['clean']\n# %%\nfit = 1\n", encoding="utf-8"
    )
    root = recorded_store(tmp_path / ".nbcellar", runs=3)
    with client(root) as http:
        answer = http.get("/api/pipeline").json()
        assert answer["error"] is None
        tasks = {t["task"]: t for t in answer["tasks"]}
        assert set(tasks) == {"clean", "fit"}
        assert tasks["fit"]["upstream"] == ["clean"]
        assert tasks["clean"]["status"] == "would run"
        assert "<svg" in answer["svg"]
        assert ">fit<" in answer["svg"]
        assert http.get("/pipeline").status_code == 200


def test_no_pipeline_is_said_on_its_page(runs_store: Path) -> None:
    with client(runs_store) as http:
        answer = http.get("/api/pipeline").json()
        assert answer["tasks"] == []
        assert answer["error"]
