"""`Flags`: the one object the gateway asks, per request, where a conversation goes."""

from __future__ import annotations

from flags._decision import Backend, Decision, RolloutCheck, decide, percent_rollout
from flags._model import FlagSnapshot
from flags._unleash import UnleashRollout
from flags._watcher import FlagWatcher


class Flags:
    """In-memory evaluation over the watcher's current snapshot (plus Unleash when configured)."""

    def __init__(
        self,
        watcher: FlagWatcher,
        *,
        group_id: str,
        shadow_group_id: str = "new-chat-shadow",
        unleash: UnleashRollout | None = None,
    ) -> None:
        self.watcher = watcher
        self.unleash = unleash
        self._group_id = group_id
        self._shadow_group_id = shadow_group_id
        self._checks_for: FlagSnapshot | None = None
        self._rollout: RolloutCheck = percent_rollout(group_id, 0)
        self._shadow: RolloutCheck = percent_rollout(group_id, 0)

    @property
    def snapshot(self) -> FlagSnapshot:
        return self.watcher.snapshot

    def decide(self, *, pin: Backend | None, override: Backend | None, bucket_id: str) -> Decision:
        snapshot = self.watcher.snapshot
        return decide(
            snapshot,
            pin=pin,
            override=override,
            bucket_id=bucket_id,
            in_rollout=self._checks(snapshot)[0],
        )

    def shadowed(self, bucket_id: str) -> bool:
        """Is this conversation one whose turns are mirrored to the other backend? Bucketed in
        its own group, so the shadowed share is spread evenly over both backends' traffic."""
        snapshot = self.watcher.snapshot
        if snapshot.kill_switch:
            return False
        return self._checks(snapshot)[1](bucket_id)

    def _checks(self, snapshot: FlagSnapshot) -> tuple[RolloutCheck, RolloutCheck]:
        if snapshot is not self._checks_for:
            if self.unleash is not None:
                self._rollout, self._shadow = self.unleash.in_rollout, self.unleash.in_shadow
            else:
                self._rollout = percent_rollout(self._group_id, snapshot.values.new_chat_percent)
                self._shadow = percent_rollout(
                    self._shadow_group_id, snapshot.values.shadow_percent
                )
            self._checks_for = snapshot
        return self._rollout, self._shadow
