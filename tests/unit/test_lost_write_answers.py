"""A record write that lands but whose answer is lost (the connection drops after DynamoDB
committed it, or DynamoDB answers 500): botocore retries, and the retry meets its own write as a
ConditionalCheckFailed. The store must take that for the success it was, not for a lost race;
a real lost race must still be one. The faults are injected by bench/reliability/faults.py's
AwsFaults: the write is made for real, then its answer replaced by a 500."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.config import Config

from bench.reliability.controls import no_own_write_check_store
from bench.reliability.faults import AwsFaults
from local.clock import Clock
from tests.unit.conftest import make_service
from videogen.adapters.dynamodb_store import GenerationStore
from videogen.domain.models import Generation, Status, new_generation_id
from videogen.domain.ports import StaleWriteError
from videogen.lazy import AWS_RETRIES


def _client() -> Any:
    return boto3.client("dynamodb", config=Config(retries=AWS_RETRIES))


def _generation() -> Generation:
    return Generation(
        id=new_generation_id(),
        owner="alice",
        status=Status.SUBMITTING,
        model="video-01",
        request={"prompt": "a fox"},
        created_at="2026-12-01T00:00:00Z",
        updated_at="2026-12-01T00:00:00Z",
        created_epoch=1_796_000_000.0,
        next_poll_at=1_796_000_060,
    )


def _every_put_loses_its_answer(client: Any) -> AwsFaults:
    return AwsFaults(client, boto3.client("s3"), every=0, lose_every=1)


def test_a_landed_creation_whose_answer_was_lost_succeeds(aws: dict[str, str]) -> None:
    client = _client()
    store = GenerationStore(client, aws["GenerationsTable"], due_shards=4)
    generation = _generation()
    with _every_put_loses_its_answer(client) as faults:
        assert store.create(generation) == generation
        saved = store.save(generation, status=Status.QUEUED, provider_id="job-1")
    assert faults.injected["dynamodb.PutItem:landed, answer lost"] == 2  # both writes' answers lost
    stored = store.get(generation.id)
    assert stored is not None and stored.version == saved.version == 2
    assert stored.status is Status.QUEUED and stored.provider_id == "job-1"


def test_a_real_lost_race_is_still_one(aws: dict[str, str]) -> None:
    client = _client()
    store = GenerationStore(client, aws["GenerationsTable"], due_shards=4)
    generation = store.create(_generation())
    store.save(generation, status=Status.QUEUED, provider_id="job-1")  # another writer got there
    with _every_put_loses_its_answer(client), pytest.raises(StaleWriteError):
        store.save(generation, status=Status.FAILED)  # on the version it read: stale
    with _every_put_loses_its_answer(client), pytest.raises(StaleWriteError):
        store.create(generation)  # the id exists, written by someone else's earlier write
    stored = store.get(generation.id)
    assert stored is not None and stored.status is Status.QUEUED


def test_without_the_own_write_check_the_lost_answer_reads_as_a_lost_race(aws: dict[str, str]) -> None:
    """The negative control of the two tests above: the check removed, the same fault fails."""
    client = _client()
    settings = SimpleNamespace(table_name=aws["GenerationsTable"], due_shards=4)
    store = no_own_write_check_store({"dynamodb": client, "settings": settings})
    with _every_put_loses_its_answer(client), pytest.raises(StaleWriteError):
        store.create(_generation())


def test_a_submit_whose_record_writes_lose_their_answers_is_paid_once_and_recorded(
    aws: dict[str, str], client: Any, sim: Any, clock: Clock
) -> None:
    dynamodb = _client()
    store = GenerationStore(dynamodb, aws["GenerationsTable"], due_shards=4)
    service = make_service(aws, client, clock, store=store)
    with _every_put_loses_its_answer(dynamodb) as faults:
        generation = service.submit("alice", {"model": "video-01", "prompt": "a lost answer"})
    assert faults.injected["dynamodb.PutItem:landed, answer lost"] >= 2  # the record, then the provider's id
    assert generation.status is Status.QUEUED and generation.provider_id
    stored = store.get(generation.id)
    assert stored == generation
    assert sim.submits_by("prompt") == {"a lost answer": 1}
