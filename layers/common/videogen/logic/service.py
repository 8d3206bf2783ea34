"""GenerationService: the use cases built together over one recorder. Every entry point (API,
poller, workflow, uploads) holds one, built by videogen.bootstrap; tests build it with fakes or
moto-backed adapters. Each use case lives in its own module; this class only assembles them and
names them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from videogen.domain.catalog import get_model
from videogen.domain.models import Generation, utc_now_iso
from videogen.domain.ports import Archive, MetricsSink, Provider, Store
from videogen.logic.dispatch import Dispatcher
from videogen.logic.queries import Queries
from videogen.logic.queue import SubmitQueue
from videogen.logic.recorder import Recorder
from videogen.logic.refresh import Refresher
from videogen.logic.schedule import PollSchedule
from videogen.logic.submit import Submitter
from videogen.logic.sweep import Sweeper
from videogen.logic.timers import PollTimers, TimerArming, TimerFiring
from videogen.logic.workflow_steps import WorkflowSteps


class GenerationService:
    def __init__(
        self,
        *,
        store: Store,
        provider: Provider,
        archive: Archive,
        check_image_url: Callable[[str], None],
        check_callback_url: Callable[[str], None],
        schedule: PollSchedule | None = None,
        max_age_seconds: int = 1800,
        presign_expiry_seconds: int = 3600,
        submit_grace_seconds: int = 120,
        archive_lease_seconds: int = 600,
        concurrency: int = 32,
        timers: PollTimers | None = None,
        timer_grace_seconds: int = 30,
        clock: Callable[[], float] = time.time,
        metrics: MetricsSink | None = None,
        log: Any = None,
        spend: Any = None,
        queue: SubmitQueue | None = None,
        mint: Callable[[Mapping[str, str]], str] | None = None,
    ) -> None:
        self.store, self.provider, self.archive, self.clock = store, provider, archive, clock
        self.schedule = schedule or PollSchedule()
        self.max_age_seconds = max_age_seconds
        self.submit_grace_seconds = submit_grace_seconds
        self.recorder = Recorder(store, clock=clock, metrics=metrics, log=log)
        self.arming = TimerArming(self.recorder, timers)
        # The submit queue (logic/queue.py): without one, requests go straight to the provider.
        self.queue = queue
        if queue is not None:
            self.recorder.on_leave.append(queue.left)
        self.submitter = Submitter(
            self.recorder,
            provider,
            self.schedule,
            submit_grace_seconds=submit_grace_seconds,
            check_image_url=check_image_url,
            check_callback_url=check_callback_url,
            spend=spend,
            arming=self.arming,
            queue=queue,
        )
        self.refresher = Refresher(
            self.recorder,
            provider,
            archive,
            self.schedule,
            max_age_seconds=max_age_seconds,
            submit_grace_seconds=submit_grace_seconds,
            archive_lease_seconds=archive_lease_seconds,
            arming=self.arming,
            queue=queue,
        )
        self.dispatcher = (
            Dispatcher(
                self.recorder, self.submitter, queue, submit_grace_seconds=submit_grace_seconds, mint=mint
            )
            if queue is not None
            else None
        )
        # With timers on, the sweep is the safety net: it takes what is overdue by more than the
        # grace (a lost timer), not what a timer is about to poll this second.
        self.sweeper = Sweeper(
            self.recorder,
            self.refresher,
            concurrency=concurrency,
            lag_seconds=timer_grace_seconds if self.arming.enabled else 0,
            batched=self.batched,
        )
        self.timer_firing = TimerFiring(self.recorder, self.refresher, self.arming)
        self.queries = Queries(self.recorder, archive, presign_expiry_seconds=presign_expiry_seconds)
        self.workflow = WorkflowSteps(self.recorder, self.submitter, self.refresher)

        # The use cases by name.
        self.submit = self.submitter.submit
        self.accept = self.submitter.accept
        self.record_rejected = self.submitter.record_rejected
        self.refresh = self.refresher.refresh
        self.due = self.sweeper.due
        self.sweep = self.sweeper.sweep
        self.get = self.queries.get
        self.list_for_owner = self.queries.list_for_owner
        self.cancel = self.queries.cancel
        self.video_link = self.queries.video_link
        self.submit_once = self.workflow.submit_once
        self.fetch = self.workflow.fetch
        self.wait_seconds = self.workflow.wait_seconds
        self.record_failure = self.workflow.record_failure
        self.spend = self.submitter.spend
        self.fire_timer = self.timer_firing.fire

    def queue_view(self, generation: Generation) -> tuple[int | None, str | None]:
        """A pending generation's place in the queue and its estimated start (ISO time);
        (None, None) for any other."""
        if self.queue is None:
            return None, None
        position = self.queue.position(generation)
        if position is None:
            return None, None
        now = self.clock()
        typical = get_model(generation.model).typical_seconds
        wait = self.queue.estimated_wait(position, typical, self.queue.slots.read(), now)
        return position, utc_now_iso(now + wait)

    def batched(self) -> AbstractContextManager[Any]:
        """The block a sweep or a batch of fired timers runs in: the next poll timers go out ten
        to a call and the slots of the jobs that ended are given back in one write when it
        ends (TimerArming.batched, SubmitQueue.batched)."""
        stack = ExitStack()
        stack.enter_context(self.arming.batched())
        if self.queue is not None:
            stack.enter_context(self.queue.batched())
        return stack

    def wake_dispatcher(self) -> None:
        if self.queue is not None:
            self.queue.wake()

    @property
    def metrics(self) -> MetricsSink:
        return self.recorder.metrics

    @property
    def log(self) -> Any:
        return self.recorder.log
