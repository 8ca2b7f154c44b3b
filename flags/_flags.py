"""`Flags`: the one object the gateway asks, per request, where a conversation goes."""

from __future__ import annotations

from flags._decision import Backend, Decision, RolloutCheck, decide, percent_rollout
from flags._model import EffectiveRouting, FlagSnapshot
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
        record_group_id: str = "new-chat-record",
        unleash: UnleashRollout | None = None,
    ) -> None:
        self.watcher = watcher
        self.unleash = unleash
        self._group_id = group_id
        self._shadow_group_id = shadow_group_id
        self._record_group_id = record_group_id
        self._record_check: tuple[int, RolloutCheck] | None = None
        self._checks: tuple[FlagSnapshot, RolloutCheck, RolloutCheck] | None = None
        """The rollout and shadow checks, built once per snapshot."""

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
            in_rollout=self._checks_for(snapshot)[1],
        )

    def shadowed(self, bucket_id: str) -> bool:
        """Is this conversation one whose turns are mirrored to the other backend? Bucketed in
        its own group, so the shadowed share is spread evenly over both backends' traffic."""
        snapshot = self.watcher.snapshot
        if snapshot.kill_switch:
            return False
        return self._checks_for(snapshot)[2](bucket_id)

    def effective(self) -> EffectiveRouting:
        """What routes now on this gateway, and what decides it."""
        snapshot = self.watcher.snapshot
        values = snapshot.values
        switch = values.enable_new_chat and not snapshot.kill_switch
        if self.unleash is None:
            return EffectiveRouting(
                decided_by="flags",
                source="env+redis",
                new_chat_percent=values.new_chat_percent,
                new_chat_enabled=switch,
                shadow_percent=values.shadow_percent,
            )
        status = self.unleash.status()
        toggles = (status.rollout, status.shadow)
        return EffectiveRouting(
            decided_by="unleash",
            source=status.source,
            new_chat_percent=status.rollout.percent,
            new_chat_enabled=switch and status.rollout.enabled,
            shadow_percent=status.shadow.percent,
            detail="; ".join(
                f"{t.name}: {t.strategy if t.known else 'unknown to Unleash'}"
                + ("" if t.enabled or not t.known else " (off)")
                for t in toggles
            ),
            unleash_reachable=status.reachable,
            unleash_environment=status.environment,
            fetched_at=status.fetched_at,
        )

    def recorded(self, bucket_id: str) -> bool:
        """Is this conversation one whose legacy turns are recorded for replay? Bucketed in its
        own group (`<group>-record`), so the recorded share is independent of the rollout's."""
        snapshot = self.watcher.snapshot
        percent = snapshot.values.record_percent
        if percent <= 0:
            return False
        if self._record_check is None or self._record_check[0] != percent:
            self._record_check = (percent, percent_rollout(self._record_group_id, percent))
        return self._record_check[1](bucket_id)

    def _checks_for(
        self, snapshot: FlagSnapshot
    ) -> tuple[FlagSnapshot, RolloutCheck, RolloutCheck]:
        if self._checks is None or self._checks[0] is not snapshot:
            if self.unleash is not None:
                self._checks = (snapshot, self.unleash.in_rollout, self.unleash.in_shadow)
            else:
                values = snapshot.values
                self._checks = (
                    snapshot,
                    percent_rollout(self._group_id, values.new_chat_percent),
                    percent_rollout(self._shadow_group_id, values.shadow_percent),
                )
        return self._checks
