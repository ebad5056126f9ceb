"""Every Redis key admission reads or writes, under one hash tag, `{<prefix>}`, so the scripts
also run on cluster-mode and serverless caches."""

from __future__ import annotations

from dataclasses import dataclass

from shared import redis_keys
from shared.live_calls import campaign_live_key, fleet_live_key, pace_key, tag


@dataclass(frozen=True)
class Keys:
    prefix: str

    @property
    def tag(self) -> str:
        return tag(self.prefix)

    @property
    def tat(self) -> str:
        """The global schedule: the earliest free slot (microseconds, Redis TIME)."""
        return f"{self.tag}:tat"

    @property
    def ahead(self) -> str:
        """Global slots taken ahead of `tat` by campaign-limited tasks (a sorted set)."""
        return f"{self.tag}:tat:ahead"

    @property
    def rate(self) -> str:
        return f"{self.tag}:rate"

    @property
    def hold(self) -> str:
        return f"{self.tag}:hold"

    @property
    def cooldown(self) -> str:
        return f"{self.tag}:cooldown"

    @property
    def epoch(self) -> str:
        return redis_keys.epoch_key(self.prefix)

    @property
    def restoring(self) -> str:
        return redis_keys.restoring_key(self.prefix)

    def restored(self, epoch: str) -> str:
        return redis_keys.restored_key(self.prefix, epoch)

    @property
    def fleet_live(self) -> str:
        return fleet_live_key(self.prefix)

    def live(self, campaign_id: str) -> str:
        return campaign_live_key(self.prefix, campaign_id)

    def pace(self, campaign_id: str) -> str:
        return pace_key(self.prefix, campaign_id)

    def claim(self, call_id: str) -> str:
        return redis_keys.claim_key(self.prefix, call_id)

    def campaign_tat(self, campaign_id: str) -> str:
        return f"{self.tag}:tat:campaign:{campaign_id}"

    def recipient(self, recipient: str | None) -> str:
        """`recipient` is the keyed hash of the number (never the number itself)."""
        return redis_keys.recipient_key(self.prefix, recipient)
