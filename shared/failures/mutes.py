"""Muting a failure group: a known, accepted failure kind stops counting in the overview and the alerts.

A mute is kept in the integration's control state (`ControlState.muted`, one row per integration that
the overview and the alert evaluator read in one query), changed with the same conditional write as a
pause, and recorded in the audit trail. A mute with `until` lapses by itself; lapsed mutes are dropped
at the next change. The failures themselves are untouched: the list, the groups panel (with its `muted`
filter) and jobs still see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from shared.audit.models import Actor, AuditAction
from shared.audit.service import AuditTrail
from shared.control.models import ControlState
from shared.control.ports import ControlStates
from shared.control.state import change_state, read_state
from shared.errors import NotFound, RequestValidationError
from shared.failures.models import GroupMute
from shared.failures.ports import FailureCounts
from shared.values import ApiDatetime, FrozenModel

#: Mutes one integration keeps at once (they share its control row, which holds 64 KiB).
MAX_MUTES = 50


class MuteRequest(FrozenModel):
    """POST .../failure-groups/{group}/mute."""

    reason: Annotated[str, Field(min_length=1, max_length=500)]
    until: ApiDatetime | None = None


class GroupNotFound(NotFound):
    code = "failure_group_not_found"


class GroupMutes:
    def __init__(self, states: ControlStates, counts: FailureCounts, *, audit: AuditTrail) -> None:
        self._states = states
        self._counts = counts
        self._audit = audit

    async def mute(
        self, integration: str, group: str, request: MuteRequest, *, actor: Actor, now: datetime
    ) -> GroupMute:
        """Mute a group the integration has failures in; 422 naming `until` when it is not in the future."""
        if request.until is not None and request.until <= now:
            raise RequestValidationError(
                "invalid body: until must be in the future", [{"field": "until", "message": "must be in the future"}]
            )
        if not any(known.group == group for known in await self._counts.groups(integration)):
            raise GroupNotFound(
                f"{integration!r} has no failures in group {group!r}", details={"parameter": "group", "group": group}
            )
        mute = GroupMute(at=now, by=actor.name, reason=request.reason, until=request.until)

        def muted(state: ControlState) -> ControlState:
            kept = {name: m for name, m in state.muted.items() if m.active(now) and name != group}
            if len(kept) >= MAX_MUTES:
                raise RequestValidationError(
                    f"invalid request: {integration!r} already has {MAX_MUTES} muted groups; unmute one first",
                    [{"field": "group", "message": f"at most {MAX_MUTES} muted groups per integration"}],
                )
            return state.model_copy(update={"muted": {**kept, group: mute}})

        await change_state(self._states, integration, muted, now=now)
        details = {
            "group": group,
            "reason": request.reason,
            "until": request.until.isoformat() if request.until else None,
        }
        await self._audit.record(
            actor, AuditAction.FAILURE_GROUP_MUTE, integration=integration, target=group, details=details
        )
        return mute

    async def unmute(self, integration: str, group: str, *, actor: Actor, now: datetime) -> bool:
        """Unmute; False (and nothing recorded) when the group was not muted."""

        def unmuted(state: ControlState) -> ControlState | None:
            if group not in state.muted:
                return None
            kept = {name: m for name, m in state.muted.items() if m.active(now) and name != group}
            return state.model_copy(update={"muted": kept})

        _, changed = await change_state(self._states, integration, unmuted, now=now)
        if changed:
            await self._audit.record(actor, AuditAction.FAILURE_GROUP_UNMUTE, integration=integration, target=group)
        return changed

    async def active(self, integration: str, now: datetime) -> dict[str, GroupMute]:
        state = await read_state(self._states, integration)
        return _active(state, now)

    async def everywhere(self, now: datetime) -> dict[str, dict[str, GroupMute]]:
        """Every integration's active mutes (one query)."""
        found: dict[str, dict[str, GroupMute]] = {}
        async for integration, stored in self._states.all():
            active = _active(stored.state, now)
            if active:
                found[integration] = active
        return found


def _active(state: ControlState, now: datetime) -> dict[str, GroupMute]:
    return {group: mute for group, mute in state.muted.items() if mute.active(now)}
