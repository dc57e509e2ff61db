"""fleet.cluster without Dask: the flags, the resources var, the shard plan, what a host's
password becomes on its way to a worker, and the messages workers send."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.cluster.credentials import Sealed, WireTarget, outbound
from fleet.cluster.messages import (
    ChangeStarted,
    HostFinished,
    RunNames,
    ShardEnded,
    decode,
    encode,
)
from fleet.cluster.shards import WorkerSlot, plan_shards
from fleet.cluster.spec import ClusterSpec, parse_cluster, parse_resources
from fleet.errors import InputError
from fleet.inventory.credentials import PasswordSource
from fleet.results import HostResult, HostStatus
from fleet.runner import HostRef, HostRun
from fleet.secret import Secret
from fleet.transports.base import Target

PASSWORD = "correct horse battery staple"


def _unpickle(data: bytes) -> WireTarget:
    wire = pickle.loads(data)  # noqa: S301 - bytes this test pickled itself
    assert isinstance(wire, WireTarget)
    return wire


# -- flags --------------------------------------------------------------------------------


def test_one_worker_and_no_scheduler_is_one_process() -> None:
    assert parse_cluster(1, None) is None


def test_workers_start_a_local_cluster_that_is_tls() -> None:
    spec = parse_cluster(3, None)
    assert spec == ClusterSpec(workers=3)
    assert spec.tls


@pytest.mark.parametrize(
    ("address", "tls"), [("tcp://127.0.0.1:8786", False), ("tls://sched.example:8786", True)]
)
def test_a_scheduler_address(address: str, tls: bool) -> None:
    spec = parse_cluster(1, address)
    assert spec is not None and spec.scheduler == address and spec.tls is tls


@pytest.mark.parametrize(
    ("workers", "scheduler", "says"),
    [
        (0, None, "at least 1"),
        (2, "tcp://127.0.0.1:8786", "not both"),
        (1, "127.0.0.1:8786", "tcp://HOST:PORT"),
        (1, "http://127.0.0.1:8786", "tcp://HOST:PORT"),
        (1, "tcp://127.0.0.1:99999", "tcp://HOST:PORT"),
        (1, "", "tcp://HOST:PORT"),
    ],
)
def test_bad_flags_are_one_line_errors(workers: int, scheduler: str | None, says: str) -> None:
    with pytest.raises(InputError, match=says):
        parse_cluster(workers, scheduler)


# -- fleet_dask_resources -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (None, {}),
        ("site_b", {"site_b": 1.0}),
        ("site_b=2, vpn=0.5", {"site_b": 2.0, "vpn": 0.5}),
        ({"site_b": 1}, {"site_b": 1.0}),
    ],
)
def test_resources_var(value: object, want: dict[str, float]) -> None:
    assert parse_resources(value, "h1") == want


@pytest.mark.parametrize("value", ["", "site_b=0", "site_b=-1", "site b=1", {"x": True}, 3])
def test_bad_resources_var(value: object) -> None:
    with pytest.raises(InputError, match=r"h1.*fleet_dask_resources"):
        parse_resources(value, "h1")


# -- the shard plan ---------------------------------------------------------------------------


def test_one_shard_per_worker_balanced_and_concurrency_split() -> None:
    hosts = [(f"h{i}", {}) for i in range(10)]
    plans = plan_shards(hosts, [WorkerSlot("w1"), WorkerSlot("w2")], concurrency=50)
    assert [len(p.hosts) for p in plans] == [5, 5]
    assert sorted(n for p in plans for n in p.hosts) == sorted(n for n, _ in hosts)
    assert [p.concurrency for p in plans] == [25, 25]
    assert {p.worker for p in plans} == {"w1", "w2"}


def test_pinned_hosts_go_to_the_workers_that_offer_their_resources() -> None:
    site_b = {"site_b": 1.0}
    hosts = [("a1", {}), ("b1", site_b), ("a2", {}), ("b2", site_b), ("a3", {}), ("a4", {})]
    workers = [WorkerSlot("near-a"), WorkerSlot("near-b", {"site_b": 1.0})]
    plans = {p.worker: p for p in plan_shards(hosts, workers, concurrency=6)}
    assert {"b1", "b2"} <= set(plans["near-b"].hosts)
    assert plans["near-b"].resources == site_b
    assert plans["near-a"].resources == {}
    assert not {"b1", "b2"} & set(plans["near-a"].hosts)
    assert len(plans["near-a"].hosts) + len(plans["near-b"].hosts) == 6


def test_resources_no_worker_offers_are_refused_before_anything_runs() -> None:
    with pytest.raises(InputError, match=r"b1 need Dask worker resources site_b=1.*--resources"):
        plan_shards([("b1", {"site_b": 1.0})], [WorkerSlot("w1", {"site_a": 1.0})], 5)


def test_a_cluster_without_workers_is_refused() -> None:
    with pytest.raises(InputError, match="no workers"):
        plan_shards([("h1", {})], [], 5)


def test_fewer_hosts_than_workers_leaves_workers_idle() -> None:
    plans = plan_shards([("h1", {})], [WorkerSlot("w1"), WorkerSlot("w2")], 50)
    assert [(p.index, p.hosts, p.concurrency) for p in plans] == [(0, ("h1",), 50)]


# -- credentials on the wire ------------------------------------------------------------------


def _target(password: Secret | None = None, **options: object) -> Target:
    return Target("h1", "127.0.0.1", 22, "ssh", "admin", password, options)


def test_a_referenced_password_does_not_travel_and_is_read_on_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEET_TEST_PW", PASSWORD)
    wire = outbound(_target(Secret(PASSWORD)), PasswordSource("env", "FLEET_TEST_PW"), tls=False)
    data = pickle.dumps(wire)
    assert PASSWORD.encode() not in data
    assert wire.target.password is None
    assert _unpickle(data).resolve().password == Secret(PASSWORD)


def test_a_reference_missing_on_the_worker_fails_that_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FLEET_TEST_PW", raising=False)
    wire = WireTarget(_target(), PasswordSource("env", "FLEET_TEST_PW"))
    with pytest.raises(InputError, match=r"h1.*FLEET_TEST_PW.*not set"):
        wire.resolve()
    loose = tmp_path / "pw"
    loose.write_text(PASSWORD)
    loose.chmod(0o644)
    with pytest.raises(InputError, match="owner only"):
        WireTarget(_target(), PasswordSource("file", str(loose))).resolve()


@pytest.mark.parametrize("kind", ["inline", "prompt"])
def test_a_password_without_reference_never_crosses_tcp(kind: str) -> None:
    with pytest.raises(InputError, match=r"h1.*tcp:// Dask connection in clear.*tls://"):
        outbound(_target(Secret(PASSWORD)), PasswordSource(kind), tls=False)


def test_over_tls_it_travels_sealed_and_never_shows() -> None:
    wire = outbound(_target(Secret(PASSWORD)), PasswordSource("inline"), tls=True)
    assert PASSWORD not in repr(wire) and PASSWORD not in str(wire.sealed)
    assert _unpickle(pickle.dumps(wire)).resolve().password == Secret(PASSWORD)
    assert repr(Sealed(PASSWORD)) == "Sealed('***')"


def test_a_secret_option_is_sealed_too_or_refused_over_tcp() -> None:
    target = _target(None, passphrase=Secret(PASSWORD))
    with pytest.raises(InputError, match="option passphrase"):
        outbound(target, PasswordSource("none"), tls=False)
    wire = outbound(target, PasswordSource("none"), tls=True)
    assert _unpickle(pickle.dumps(wire)).resolve().options["passphrase"] == Secret(PASSWORD)


def test_a_secret_left_in_a_target_cannot_be_pickled_by_mistake() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(_target(Secret(PASSWORD)))


# -- messages ------------------------------------------------------------------------------------


def test_messages_round_trip_tagged_with_their_run() -> None:
    ref = HostRef("h1", "127.0.0.1", "ssh")
    result = HostResult(name="h1", address="127.0.0.1", transport="ssh", status=HostStatus.OK)
    for message in (
        HostFinished(0, HostRun(ref, 0.5, value=result)),
        ChangeStarted(1, ref, {"seq": 0}, "fleet-x-ack-1-1"),
        ShardEnded(1, True, ["h2"]),
    ):
        assert decode(encode("fleet-x", message)) == ("fleet-x", message)


def test_what_the_scheduler_logs_on_the_topic_is_not_a_message() -> None:
    assert decode({"action": "retry", "count": 1}) is None


def test_task_keys_name_no_host() -> None:
    names = RunNames.new("Client-1")
    assert names.task(3).startswith("fleet-") and names.task(3).endswith("-shard-3")
    assert names.topic == "Client-1"


def test_one_process_never_imports_dask() -> None:
    """`--workers 1` (the default) is today's run: the commands, the audit and apply
    pipelines and the cluster request all load without Dask."""
    code = (
        "import sys, fleet.cli.audit_cmd, fleet.cli.sweep_cmd, fleet.cli.apply_cmd, "
        "fleet.audit, fleet.remediate.apply, fleet.cluster.request, fleet.cluster.coordinator, "
        "fleet.cluster.connect; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
