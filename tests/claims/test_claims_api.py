"""`/capacityclaims` over a real SQLite store: every validation rule (400 naming the field), status
computed from a declared inventory with joining instances, auth, 404 and 409."""

from __future__ import annotations

from typing import Any

import pytest

from tests.claims.conftest import BASE, DECLARED, ZONE_A, ZONE_B, ClaimsApi
from tide.scheduling import declared_inventory

CLAIMS = f"{BASE}/capacityclaims"


def body(claim_id: str | None = "team-a", **resources: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"instanceId": "H100-8x", "instanceCount": 2, "zones": [ZONE_A]}
    raw: dict[str, Any] = {"resources": {**base, **resources}}
    if claim_id is not None:
        raw["id"] = claim_id
    return raw


def status(item: dict[str, Any]) -> tuple[int, int]:
    """(allocated, pending) of a claim, as listed or wrapped in `{"capacityClaim": ...}`."""
    claim = item.get("capacityClaim", item)
    return claim["status"]["allocatedInstances"], claim["status"]["pendingInstances"]


def assert_invalid(response: Any, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["field"] == field, error
    assert error["message"]


# -- auth ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/capacityclaims"),
        ("POST", "/capacityclaims"),
        ("GET", "/capacityclaims/team-a"),
        ("PATCH", "/capacityclaims/team-a"),
        ("DELETE", "/capacityclaims/team-a"),
        ("GET", "/usage"),
    ],
)
def test_every_route_needs_the_token(api: ClaimsApi, method: str, path: str) -> None:
    api.client.post(CLAIMS, json=body())
    for header in ("", "Bearer", "Basic abc", "Bearer wrong-token"):
        response = api.client.request(method, BASE + path, json=body(), headers={"authorization": header})
        assert response.status_code == 401, (header, response.text)
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert (
        api.client.get(f"{CLAIMS}/team-a").json()["capacityClaim"]["spec"]["resources"]["instanceCount"] == 2
    )  # untouched


# -- CRUD ---------------------------------------------------------------------------------------------


def test_create_get_list_delete(api: ClaimsApi) -> None:
    created = api.client.post(CLAIMS, json=body())
    assert created.status_code == 201, created.text
    item = created.json()["capacityClaim"]
    assert item["spec"] == {
        "id": "team-a",
        "resources": {
            "instanceId": "H100-8x",
            "instanceCount": 2,
            "capacityType": "CAPACITY_TYPE_SERVERLESS",  # the default, filled in
            "zones": [ZONE_A],
        },
    }
    assert item["status"]["createdAt"] == item["status"]["updatedAt"] == "2025-11-24T16:00:00Z"  # RFC 3339
    assert item["status"]["status"] == "STATUS_READY"  # both instances allocated
    assert api.wakes, "the controller must be woken after the write"
    assert api.client.get(f"{CLAIMS}/team-a").json() == {"capacityClaim": item}
    assert api.client.get(CLAIMS).json() == {"capacityClaims": [item]}
    wakes = len(api.wakes)
    deleted = api.client.delete(f"{CLAIMS}/team-a")
    assert deleted.status_code == 200 and deleted.json()["capacityClaim"]["spec"]["id"] == "team-a"
    assert len(api.wakes) == wakes + 1
    assert api.client.get(CLAIMS).json() == {"capacityClaims": []}
    assert api.client.get(f"{CLAIMS}/team-a").status_code == 404


def test_unknown_claim_is_404(api: ClaimsApi) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = api.client.request(method, f"{CLAIMS}/nope-claim", json=body(None))
        assert response.status_code == 404, method
        assert response.json()["error"]["code"] == "NOT_FOUND"
        assert "nope-claim" in response.json()["error"]["message"]


def test_taken_id_is_409_and_keeps_the_first(api: ClaimsApi) -> None:
    assert api.client.post(CLAIMS, json=body(instanceCount=1)).status_code == 201
    again = api.client.post(CLAIMS, json=body(instanceCount=3))
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "ALREADY_EXISTS",
        "message": "a capacity claim with id 'team-a' already exists",
        "field": "id",
    }
    assert api.client.get(f"{CLAIMS}/team-a").json()["capacityClaim"]["spec"]["resources"]["instanceCount"] == 1


def test_id_is_generated_when_omitted(api: ClaimsApi) -> None:
    first = api.client.post(CLAIMS, json=body(None)).json()["capacityClaim"]["spec"]["id"]
    second = api.client.post(CLAIMS, json=body(None)).json()["capacityClaim"]["spec"]["id"]
    assert first.startswith("claim-") and second.startswith("claim-") and first != second


def test_patch_takes_the_whole_spec(api: ClaimsApi) -> None:
    api.client.post(CLAIMS, json=body(capacityType="CAPACITY_TYPE_CUSTOMER"))
    api.clock.now += 10
    wakes = len(api.wakes)
    patched = api.client.patch(
        f"{CLAIMS}/team-a", json={"resources": {"instanceId": "h100-8X", "instanceCount": 1, "zones": [ZONE_B, ZONE_A]}}
    )
    assert patched.status_code == 200, patched.text
    item = patched.json()["capacityClaim"]
    # capacityType was omitted: back to its default. Zones keep the order given.
    assert item["spec"]["resources"] == {
        "instanceId": "H100-8x",
        "instanceCount": 1,
        "capacityType": "CAPACITY_TYPE_SERVERLESS",
        "zones": [ZONE_B, ZONE_A],
    }
    assert (item["status"]["createdAt"], item["status"]["updatedAt"]) == (
        "2025-11-24T16:00:00Z",
        "2025-11-24T16:00:10Z",
    )
    assert len(api.wakes) == wakes + 1


def test_a_get_result_can_be_edited_and_reapplied(api: ClaimsApi) -> None:
    item = api.client.post(CLAIMS, json=body()).json()["capacityClaim"]
    item["spec"]["resources"]["instanceCount"] = 3
    patched = api.client.patch(f"{CLAIMS}/team-a", json=item)
    assert patched.status_code == 200, patched.text
    assert patched.json()["capacityClaim"]["spec"]["resources"]["instanceCount"] == 3
    # ... and POSTed under a new id.
    item["spec"]["id"] = "team-b"
    assert api.client.post(CLAIMS, json=item).status_code == 201
    assert api.client.get(f"{CLAIMS}/team-b").status_code == 200


def test_patch_cannot_change_the_id(api: ClaimsApi) -> None:
    api.client.post(CLAIMS, json=body())
    assert_invalid(api.client.patch(f"{CLAIMS}/team-a", json=body("team-b")), "id")
    assert api.client.patch(f"{CLAIMS}/team-a", json=body("team-a")).status_code == 200


def test_patch_is_validated_and_changes_nothing_when_invalid(api: ClaimsApi) -> None:
    api.client.post(CLAIMS, json=body())
    assert_invalid(api.client.patch(f"{CLAIMS}/team-a", json=body(None, instanceCount=0)), "resources.instanceCount")
    assert api.client.get(f"{CLAIMS}/team-a").json()["capacityClaim"]["spec"]["resources"]["instanceCount"] == 2


# -- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        # instanceId: required, a known type (any letter case), offered in at least one named zone
        ({"instanceId": None}, "resources.instanceId"),
        ({"instanceId": ""}, "resources.instanceId"),
        ({"instanceId": 8}, "resources.instanceId"),
        ({"instanceId": "B200"}, "resources.instanceId"),
        ({"instanceId": "L40-4x", "zones": [ZONE_B]}, "resources.instanceId"),
        # instanceCount: required, an integer >= 1
        ({"instanceCount": None}, "resources.instanceCount"),
        ({"instanceCount": 0}, "resources.instanceCount"),
        ({"instanceCount": -1}, "resources.instanceCount"),
        ({"instanceCount": "2"}, "resources.instanceCount"),
        ({"instanceCount": 1.5}, "resources.instanceCount"),
        ({"instanceCount": True}, "resources.instanceCount"),
        # capacityType: the enum
        ({"capacityType": "SERVERLESS"}, "resources.capacityType"),
        ({"capacityType": "capacity_type_customer"}, "resources.capacityType"),
        ({"capacityType": None}, "resources.capacityType"),
        # zones: required, a non-empty list of distinct known zones
        ({"zones": None}, "resources.zones"),
        ({"zones": []}, "resources.zones"),
        ({"zones": ZONE_A}, "resources.zones"),
        ({"zones": [""]}, "resources.zones[0]"),
        ({"zones": [3]}, "resources.zones[0]"),
        ({"zones": [ZONE_A, "mars-1a"]}, "resources.zones[1]"),
        ({"zones": [ZONE_A, ZONE_A]}, "resources.zones[1]"),
        # nothing else
        ({"instanceType": "H100-8x"}, "resources.instanceType"),
    ],
)
def test_invalid_resources_are_400_naming_the_field(api: ClaimsApi, resources: dict[str, Any], field: str) -> None:
    raw = body(None)
    for key, value in resources.items():
        if value is None:
            raw["resources"].pop(key, None)
            if key == "capacityType":
                raw["resources"][key] = None
        else:
            raw["resources"][key] = value
    assert_invalid(api.client.post(CLAIMS, json=raw), field)
    assert api.client.get(CLAIMS).json() == {"capacityClaims": []}
    assert not api.wakes


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([], "body"),
        ("claim", "body"),
        ({}, "resources"),
        ({"id": "team-a"}, "resources"),
        ({"resources": None}, "resources"),
        ({"resources": ["H100-8x"]}, "resources"),
        ({"resources": {}, "labels": {}}, "labels"),  # name is the hosted body's; labels are no field
        ({"resources": {}, "instanceCount": 2}, "instanceCount"),
        ({"spec": None}, "spec"),
        ({"spec": {"resources": {}, "extra": 1}}, "spec.extra"),
        ({"spec": {}, "resources": {}}, "resources"),
        ({"id": "A!", "resources": {}}, "id"),
        ({"id": "abc", "resources": {}}, "id"),
        ({"id": 1234, "resources": {}}, "id"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(api: ClaimsApi, raw: Any, field: str) -> None:
    assert_invalid(api.client.post(CLAIMS, json=raw), field)


def test_a_body_that_is_not_json_is_400(api: ClaimsApi) -> None:
    response = api.client.post(CLAIMS, content=b"{nope", headers={"content-type": "application/json"})
    assert_invalid(response, "body")


def test_error_message_names_the_field_and_what_is_known(api: ClaimsApi) -> None:
    error = api.client.post(CLAIMS, json=body(instanceId="B200")).json()["error"]
    assert error["message"].startswith("resources.instanceId: ")
    assert "H100-8x" in error["message"] and "L40-4x" in error["message"]
    error = api.client.post(CLAIMS, json=body(instanceId="l40-4x", zones=[ZONE_B])).json()["error"]
    assert ZONE_A in error["message"]  # where it is offered


def test_instance_id_is_case_insensitive_and_stored_as_the_inventory_spells_it(api: ClaimsApi) -> None:
    for n, spelling in enumerate(["h100-8x", "H100-8X", " h100-8X "]):
        created = api.client.post(CLAIMS, json=body(f"claim-{n}", instanceId=spelling, instanceCount=1))
        assert created.status_code == 201, created.text
        assert created.json()["capacityClaim"]["spec"]["resources"]["instanceId"] == "H100-8x"


def test_a_type_offered_in_one_of_the_zones_is_enough(api: ClaimsApi) -> None:
    created = api.client.post(CLAIMS, json=body(instanceId="l40-4x", zones=[ZONE_B, ZONE_A]))
    assert created.status_code == 201, created.text
    assert created.json()["capacityClaim"]["spec"]["resources"]["zones"] == [ZONE_B, ZONE_A]


def test_both_capacity_types_are_accepted(api: ClaimsApi) -> None:
    for n, kind in enumerate(["CAPACITY_TYPE_SERVERLESS", "CAPACITY_TYPE_CUSTOMER"]):
        created = api.client.post(CLAIMS, json=body(f"claim-{n}", capacityType=kind))
        assert created.status_code == 201
        assert created.json()["capacityClaim"]["spec"]["resources"]["capacityType"] == kind


# -- status -------------------------------------------------------------------------------------------


def test_status_counts_joined_as_allocated_and_joining_or_missing_as_pending(api: ClaimsApi) -> None:
    # 04a has two joined reserved H100-8x and one joining.
    assert status(api.client.post(CLAIMS, json=body("claim-two", instanceCount=2)).json()) == (2, 0)
    api.client.delete(f"{CLAIMS}/claim-two")
    # Three: the two joined ones and the joining one (pending until it joins).
    assert status(api.client.post(CLAIMS, json=body("three", instanceCount=3)).json()) == (2, 1)
    # Four: one more that does not exist in 04a at all: pending too.
    patched = api.client.patch(f"{CLAIMS}/three", json=body(None, instanceCount=4))
    assert status(patched.json()) == (2, 2)


def test_claims_are_first_come_first_served_and_stable(api: ClaimsApi) -> None:
    api.client.post(CLAIMS, json=body("first", instanceCount=3, zones=[ZONE_A]))
    api.clock.now += 1
    # The second prefers 04a, but the first holds all of it: it gets 04b.
    second = api.client.post(CLAIMS, json=body("second", instanceCount=2, zones=[ZONE_A, ZONE_B]))
    assert status(second.json()) == (2, 0)
    api.clock.now += 1
    third = api.client.post(CLAIMS, json=body("third", instanceCount=1, zones=[ZONE_B]))
    assert status(third.json()) == (0, 1)  # nothing left
    listed = {i["spec"]["id"]: status(i) for i in api.client.get(CLAIMS).json()["capacityClaims"]}
    assert listed == {"first": (2, 1), "second": (2, 0), "third": (0, 1)}
    assert [i["spec"]["id"] for i in api.client.get(CLAIMS).json()["capacityClaims"]] == ["first", "second", "third"]
    # Shrinking the second frees one 04b instance for the third.
    api.client.patch(f"{CLAIMS}/second", json=body(None, instanceCount=1, zones=[ZONE_A, ZONE_B]))
    assert status(api.client.get(f"{CLAIMS}/third").json()) == (1, 0)


def test_status_follows_the_inventory(api: ClaimsApi) -> None:
    api.client.post(CLAIMS, json=body(instanceCount=3))
    assert status(api.client.get(f"{CLAIMS}/team-a").json()) == (2, 1)
    joined = {**DECLARED, "instances": [dict(g, joining=0) if g.get("joining") else g for g in DECLARED["instances"]]}
    api.inventory[0] = declared_inventory(joined)
    assert status(api.client.get(f"{CLAIMS}/team-a").json()) == (3, 0)


def test_instances_held_by_a_claim_in_the_inventory_count(api: ClaimsApi) -> None:
    # The inventory says which claim already holds a group (as a controller's view would).
    held = {
        "instanceTypes": DECLARED["instanceTypes"],
        "instances": [
            {"type": "h100-8x", "zone": ZONE_B, "count": 2, "class": "reserved", "claim": "late"},
            {"type": "h100-8x", "zone": ZONE_A, "count": 1, "class": "reserved"},
        ],
    }
    api.inventory[0] = declared_inventory(held)
    api.client.post(CLAIMS, json=body("early", instanceCount=2, zones=[ZONE_B, ZONE_A]))
    api.clock.now += 1
    api.client.post(CLAIMS, json=body("late", instanceCount=2, zones=[ZONE_B]))
    # "late" keeps what it holds (claims are stable); "early" gets what is left.
    listed = {i["spec"]["id"]: status(i) for i in api.client.get(CLAIMS).json()["capacityClaims"]}
    assert listed == {"early": (1, 1), "late": (2, 0)}


def test_a_claim_whose_zone_is_gone_still_lists(api: ClaimsApi) -> None:
    api.client.post(CLAIMS, json=body(instanceCount=2, zones=[ZONE_B]))
    only_a = {"instanceTypes": DECLARED["instanceTypes"], "instances": DECLARED["instances"][:2]}
    api.inventory[0] = declared_inventory(only_a)
    assert status(api.client.get(f"{CLAIMS}/team-a").json()) == (0, 2)


def test_deleting_a_claim_frees_its_instances(api: ClaimsApi) -> None:
    api.client.post(CLAIMS, json=body("first", instanceCount=2, zones=[ZONE_B]))
    api.clock.now += 1
    api.client.post(CLAIMS, json=body("second", instanceCount=2, zones=[ZONE_B]))
    assert status(api.client.get(f"{CLAIMS}/second").json()) == (0, 2)
    assert status(api.client.delete(f"{CLAIMS}/first").json()) == (0, 0)
    assert status(api.client.get(f"{CLAIMS}/second").json()) == (2, 0)


def test_the_claims_list_pages_like_the_deployments_list(api: ClaimsApi) -> None:
    for i in range(3):
        assert api.client.post(CLAIMS, json=body(f"team-{i}", instanceCount=1)).status_code == 201
        api.clock.now += 1
    first = api.client.get(CLAIMS, params={"pageSize": 2}).json()
    second = api.client.get(CLAIMS, params={"pageSize": 2, "pageToken": first["nextPageToken"]}).json()
    assert [c["spec"]["id"] for c in first["capacityClaims"] + second["capacityClaims"]] == [
        "team-0",
        "team-1",
        "team-2",
    ]
    assert "nextPageToken" not in second
    assert status(second["capacityClaims"][0]) == status(
        api.client.get(f"{CLAIMS}/team-2").json()
    )  # status over all claims
