"""Capacity claims: validation per API.md, status, and assignment of reserved instances."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scheduling.fleet import ZONE_A, ZONE_B, fleet, on_demand, reserved
from tide.errors import FieldError
from tide.scheduling import Claim, ClaimSpec, assign_claims, claim_status, validate_claim

ZONE_C = "us-west-01a"
INVENTORY = fleet(
    reserved("r-a0", ZONE_A, claim=None),
    reserved("r-b0", ZONE_B, claim=None),
    reserved("r-b1", ZONE_B, claim=None),
    on_demand("o-c0", ZONE_C, "L40-4x"),
)


def claim_spec(**resources: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"instanceId": "h100", "instanceCount": 2, "zones": [ZONE_B, ZONE_A]}
    return {"resources": {**base, **resources}}


def test_valid_claim_is_normalised() -> None:
    spec = validate_claim(claim_spec(capacityType="CAPACITY_TYPE_CUSTOMER"), INVENTORY)
    assert spec == ClaimSpec("H100", 2, "CAPACITY_TYPE_CUSTOMER", (ZONE_B, ZONE_A))


def test_capacity_type_defaults_to_serverless() -> None:
    assert validate_claim(claim_spec(), INVENTORY).capacity_type == "CAPACITY_TYPE_SERVERLESS"


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"instanceId": "B200"}, "resources.instanceId"),
        ({"instanceId": ""}, "resources.instanceId"),
        ({"instanceId": "l40-4x", "zones": [ZONE_A, ZONE_B]}, "resources.instanceId"),  # not in those zones
        ({"instanceCount": 0}, "resources.instanceCount"),
        ({"instanceCount": True}, "resources.instanceCount"),
        ({"capacityType": "CAPACITY_TYPE_MANAGED"}, "resources.capacityType"),
        ({"zones": []}, "resources.zones"),
        ({"zones": [ZONE_A, ZONE_A]}, "resources.zones[1]"),
        ({"zones": [ZONE_A, "mars-1"]}, "resources.zones[1]"),
        ({"instanceType": "h100"}, "resources.instanceType"),
    ],
)
def test_invalid_claims_name_the_field(resources: dict[str, Any], field: str) -> None:
    with pytest.raises(FieldError) as error:
        validate_claim(claim_spec(**resources), INVENTORY)
    assert error.value.field == field


def test_type_valid_in_one_named_zone_is_enough() -> None:
    spec = validate_claim(claim_spec(instanceId="L40-4X", zones=[ZONE_A, ZONE_C]), INVENTORY)
    assert spec.instance_type == "L40-4x"


def test_missing_resources_is_an_error() -> None:
    with pytest.raises(FieldError) as error:
        validate_claim({}, INVENTORY)
    assert error.value.field == "resources"


def test_joining_instances_count_as_pending() -> None:
    inventory = fleet(reserved("a", claim="c"), reserved("b", claim="c", joining=True), reserved("x", claim="other"))
    claim = Claim("c", ClaimSpec("H100", 3, "CAPACITY_TYPE_SERVERLESS", (ZONE_A,)))
    assert claim_status(claim, inventory) == (1, 2)


def test_assignment_follows_zone_preference() -> None:
    claim = Claim("c", ClaimSpec("h100", 2, "CAPACITY_TYPE_SERVERLESS", (ZONE_B, ZONE_A)))
    assigned = assign_claims([claim], INVENTORY)
    assert sorted(i.id for i in assigned.instances if i.claim_id == "c") == ["r-b0", "r-b1"]
    assert claim_status(claim, assigned) == (2, 0)


def test_assignment_is_first_come_first_served_and_stable() -> None:
    first = Claim("first", ClaimSpec("H100", 1, "CAPACITY_TYPE_SERVERLESS", (ZONE_A, ZONE_B)))
    second = Claim("second", ClaimSpec("H100", 3, "CAPACITY_TYPE_SERVERLESS", (ZONE_A, ZONE_B)))
    assigned = assign_claims([first, second], INVENTORY)
    holders = {i.id: i.claim_id for i in assigned.instances}
    assert holders == {"r-a0": "first", "r-b0": "second", "r-b1": "second", "o-c0": None}
    assert claim_status(second, assigned) == (2, 1)
    # Run again in the other order: nobody loses what they hold.
    again = assign_claims([second, first], assigned)
    assert {i.id: i.claim_id for i in again.instances} == holders


def test_shrinking_or_deleting_a_claim_releases_instances() -> None:
    claim = Claim("c", ClaimSpec("H100", 3, "CAPACITY_TYPE_SERVERLESS", (ZONE_A, ZONE_B)))
    assigned = assign_claims([claim], INVENTORY)
    smaller = Claim("c", ClaimSpec("H100", 1, "CAPACITY_TYPE_SERVERLESS", (ZONE_A, ZONE_B)))
    shrunk = assign_claims([smaller], assigned)
    assert [i.id for i in shrunk.instances if i.claim_id == "c"] == ["r-a0"]  # the preferred zone stays
    deleted = assign_claims([], shrunk)
    assert all(i.claim_id is None for i in deleted.instances)


def test_on_demand_instances_are_never_claimed() -> None:
    claim = Claim("c", ClaimSpec("L40-4x", 1, "CAPACITY_TYPE_SERVERLESS", (ZONE_C,)))
    assert claim_status(claim, assign_claims([claim], INVENTORY)) == (0, 1)
