"""Reads of a caller's generations, their video links, and cancel."""

from __future__ import annotations

from videogen.domain.errors import ConflictError, NotFoundError
from videogen.domain.models import Generation, GenerationError, Status
from videogen.domain.ports import Archive, StaleWriteError, VideoLink
from videogen.logic.recorder import Recorder


class Queries:
    def __init__(self, recorder: Recorder, archive: Archive, *, presign_expiry_seconds: int) -> None:
        self.recorder = recorder
        self.archive = archive
        self.presign_expiry_seconds = presign_expiry_seconds

    def get(self, owner: str, generation_id: str) -> Generation:
        generation = self.recorder.store.get(generation_id)
        if generation is None or generation.owner != owner:
            raise NotFoundError(f"generation {generation_id} not found")  # same answer: no probing ids
        return generation

    def list_for_owner(
        self, owner: str, *, status: Status | None = None, limit: int = 20, next_token: str | None = None
    ) -> tuple[list[Generation], str | None]:
        return self.recorder.store.list_by_owner(owner, status=status, limit=limit, next_token=next_token)

    def cancel(self, owner: str, generation_id: str) -> Generation:
        """Stop tracking a generation. The provider has no cancel call, so a job it already
        started still runs (and is paid); we only stop polling and archiving it."""
        generation = self.get(owner, generation_id)
        for _ in range(3):
            if generation.is_terminal:
                raise ConflictError(f"generation {generation_id} is already {generation.status.value}")
            if generation.status is Status.SUBMITTING:
                # The paid submit is in flight: a cancel written now would stop the record from
                # ever learning the provider's id, and the job would run unseen.
                raise ConflictError(
                    f"generation {generation_id} is being submitted to the provider; "
                    "try again in a few seconds"
                )
            try:
                error = GenerationError(code="cancelled", message="cancelled by the caller")
                return self.recorder.end(generation, Status.CANCELLED, self.recorder.clock(), error=error)
            except StaleWriteError:
                generation = self.get(owner, generation_id)
        raise ConflictError(f"generation {generation_id} is changing; try again")

    def video_link(self, generation: Generation) -> VideoLink | None:
        if generation.status is not Status.COMPLETED or not generation.video_key:
            return None
        return self.archive.link(
            generation.video_key, expires_in=self.presign_expiry_seconds, now=self.recorder.clock()
        )
