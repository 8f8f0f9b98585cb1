"""Free GPUs per instance, indexed so that best-fit placement costs a few heap operations, not a scan.

Instances live in buckets of (instance type, capacity class, zone). Inside a bucket, one min-heap of
instance positions per free-GPU count; an entry is stale once its instance's free count changed, and is
dropped lazily when it reaches the top.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from tide.scheduling.inventory import RESERVED, CapacityClass, Instance, Inventory, type_key

BucketKey = tuple[str, CapacityClass, str]


@dataclass
class Bucket:
    members: list[int] = field(default_factory=list)
    heaps: dict[int, list[int]] = field(default_factory=dict)
    # Instances that exist but cannot run replicas yet, counted for "what is missing" messages.
    joining: int = 0
    unclaimed: int = 0


def usable(instance: Instance) -> bool:
    """Joining instances run nothing yet; a reserved instance serves deployments once a claim holds it."""
    if instance.joining:
        return False
    return instance.capacity_class != RESERVED or instance.claim_id is not None


class FreeCapacity:
    def __init__(self, inventory: Inventory) -> None:
        # Positions follow instance ids in sorted order, so "smallest position" is the id tie-break.
        self.instances: list[Instance] = sorted(inventory.instances, key=lambda i: i.id)
        self.position: dict[str, int] = {instance.id: n for n, instance in enumerate(self.instances)}
        self.total: list[int] = [inventory.type_of(instance).gpus for instance in self.instances]
        self.free: list[int] = list(self.total)
        self.buckets: dict[BucketKey, Bucket] = {}
        for n, instance in enumerate(self.instances):
            bucket = self.buckets.setdefault(bucket_key(instance), Bucket())
            if usable(instance):
                bucket.members.append(n)
                bucket.heaps.setdefault(self.free[n], []).append(n)
            elif instance.joining:
                bucket.joining += 1
            else:
                bucket.unclaimed += 1
        self.bucket_of: list[BucketKey] = [bucket_key(instance) for instance in self.instances]

    def best_fit(self, key: BucketKey, gpus: int) -> int | None:
        """The instance in bucket `key` with the fewest free GPUs that still fit `gpus` (lowest id on ties).

        Best fit keeps whole instances free for replicas that need all their GPUs.
        """
        bucket = self.buckets.get(key)
        if bucket is None:
            return None
        for free_count in sorted(bucket.heaps):
            if free_count < gpus:
                continue
            heap = bucket.heaps[free_count]
            while heap and self.free[heap[0]] != free_count:
                heapq.heappop(heap)
            if heap:
                return heap[0]
        return None

    def take(self, position: int, gpus: int) -> None:
        self._set_free(position, self.free[position] - gpus)

    def give_back(self, position: int, gpus: int) -> None:
        self._set_free(position, self.free[position] + gpus)

    def _set_free(self, position: int, free_count: int) -> None:
        self.free[position] = free_count
        if usable(self.instances[position]):
            heapq.heappush(self.buckets[self.bucket_of[position]].heaps.setdefault(free_count, []), position)


def bucket_key(instance: Instance) -> BucketKey:
    return (type_key(instance.instance_type), instance.capacity_class, instance.zone)
