"""Staff accounts: admins create and manage them (never leaving the console without an
active admin); everyone changes their own password."""

from __future__ import annotations

from typing import Any

import pytest
from api_fakes import Harness
from staff_fakes import PASSWORD, StaffClient, logged_in, new_client, post_login

from api.staff.passwords import verify_password

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "a new long passphrase"


def user(h: Harness, username: str) -> Any:
    [row] = h.rows("SELECT * FROM staff_users WHERE username = ?", username)
    return row


def snapshot(h: Harness) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in h.rows("SELECT * FROM staff_users ORDER BY id")]


async def create(admin: StaffClient, **fields: str) -> Any:
    data = {
        "username": "Ben.Smith",
        "display_name": "Ben  Smith",
        "role": "reviewer",
        "password": PASSWORD,
        "confirm_password": PASSWORD,
        **fields,
    }
    return await admin.post("/staff/admin/users", data)


async def test_an_admin_creates_a_reviewer_who_can_then_log_in(
    h: Harness, admin_client: StaffClient
) -> None:
    response = await create(admin_client)
    assert response.status_code == 303
    row = user(h, "ben.smith")
    assert (row["display_name"], row["role"], row["is_active"]) == ("Ben Smith", "reviewer", 1)
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in str(tuple(row))
    listing = await admin_client.client.get("/staff/admin/users")
    assert "ben.smith" in listing.text and "created" in listing.text  # the flash message
    async with new_client(h, ip="198.51.100.4") as ben:
        assert (await post_login(ben, "ben.smith", PASSWORD)).status_code == 303


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": "short pass", "confirm_password": "short pass"}, "at least 12 characters"),
        ({"confirm_password": PASSWORD + "x"}, "not the same"),
        ({"username": "a"}, "2 to 64 characters"),
        ({"username": "ben smith"}, "2 to 64 characters"),
        ({"username": "ADMIN"}, "already an account called admin"),
        ({"role": "superuser"}, "admin or reviewer"),
        ({"display_name": "x" * 129}, "at most 128 characters"),
    ],
)
async def test_bad_account_details_are_refused_with_nothing_stored(
    h: Harness, admin_client: StaffClient, fields: dict[str, str], message: str
) -> None:
    before = snapshot(h)
    response = await create(admin_client, **fields)
    assert response.status_code == 400
    assert message in response.text
    assert snapshot(h) == before


async def test_the_role_can_be_changed_and_the_last_admin_is_kept(
    h: Harness, admin_client: StaffClient, reviewer_client: StaffClient
) -> None:
    me, other = admin_client.user_id, reviewer_client.user_id
    refused = await admin_client.post(f"/staff/admin/users/{me}/role", {"role": "reviewer"})
    assert refused.status_code == 400
    assert "last active admin" in refused.text
    assert user(h, "admin")["role"] == "admin"

    promoted = await admin_client.post(f"/staff/admin/users/{other}/role", {"role": "admin"})
    assert promoted.status_code == 303
    assert user(h, "reviewer")["role"] == "admin"
    # now there are two admins: stepping down is allowed
    demoted = await admin_client.post(f"/staff/admin/users/{me}/role", {"role": "reviewer"})
    assert demoted.status_code == 303
    assert user(h, "admin")["role"] == "reviewer"
    assert (await admin_client.client.get("/staff/admin/users")).status_code == 403


async def test_the_last_active_admin_cannot_be_deactivated(
    h: Harness, admin_client: StaffClient
) -> None:
    response = await admin_client.post(f"/staff/admin/users/{admin_client.user_id}/deactivate")
    assert response.status_code == 400
    assert "last active admin" in response.text
    assert user(h, "admin")["is_active"] == 1
    assert (await admin_client.client.get("/staff/account")).status_code == 200


async def test_deactivating_ends_the_sessions_and_reactivating_restores_the_login(
    h: Harness, admin_client: StaffClient, reviewer_client: StaffClient
) -> None:
    target = reviewer_client.user_id
    assert (await admin_client.post(f"/staff/admin/users/{target}/deactivate")).status_code == 303
    assert user(h, "reviewer")["is_active"] == 0
    assert h.rows("SELECT * FROM staff_sessions WHERE user_id = ?", target) == []
    assert (await reviewer_client.client.get("/staff/account")).status_code == 303
    async with new_client(h, ip="198.51.100.5") as client:
        assert (await post_login(client, "reviewer", PASSWORD)).status_code == 401
        assert (
            await admin_client.post(f"/staff/admin/users/{target}/reactivate")
        ).status_code == 303
        assert (await post_login(client, "reviewer", PASSWORD)).status_code == 303


async def test_an_admin_sets_a_new_password_and_the_old_one_stops_working(
    h: Harness, admin_client: StaffClient, reviewer_client: StaffClient
) -> None:
    target = reviewer_client.user_id
    short = await admin_client.post(
        f"/staff/admin/users/{target}/password", {"password": "short", "confirm_password": "short"}
    )
    assert short.status_code == 400
    response = await admin_client.post(
        f"/staff/admin/users/{target}/password",
        {"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert response.status_code == 303
    assert verify_password(user(h, "reviewer")["password_hash"], NEW_PASSWORD)
    assert (await reviewer_client.client.get("/staff/account")).status_code == 303


async def test_an_admin_resets_someones_second_step(
    h: Harness, admin_client: StaffClient, reviewer_client: StaffClient
) -> None:
    # the secret is set directly: enabling it is tested in test_staff_auth
    h.execute("UPDATE staff_users SET totp_secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'")
    page = await admin_client.client.get(f"/staff/admin/users/{reviewer_client.user_id}")
    assert "Turn two-step login off" in page.text
    response = await admin_client.post(f"/staff/admin/users/{reviewer_client.user_id}/totp-reset")
    assert response.status_code == 303
    assert user(h, "reviewer")["totp_secret"] is None


async def test_an_unknown_account_is_a_404_page(admin_client: StaffClient) -> None:
    response = await admin_client.client.get("/staff/admin/users/999")
    assert response.status_code == 404
    assert "There is no such account." in response.text
    bad = await admin_client.client.get("/staff/admin/users/not-a-number")
    assert bad.status_code == 400 and "nothing was changed" in bad.text


class TestOwnPassword:
    async def test_needs_the_current_password(
        self, h: Harness, reviewer_client: StaffClient
    ) -> None:
        before = user(h, "reviewer")["password_hash"]
        response = await reviewer_client.post(
            "/staff/account/password",
            {
                "current_password": "not the password",
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
            },
        )
        assert response.status_code == 400
        assert "current password is not right" in response.text
        assert user(h, "reviewer")["password_hash"] == before

    async def test_changing_it_keeps_this_session_and_ends_the_others(
        self, h: Harness, reviewer_client: StaffClient
    ) -> None:
        async with new_client(h, ip="198.51.100.6") as laptop:
            assert (await post_login(laptop, "reviewer", PASSWORD)).status_code == 303
            response = await reviewer_client.post(
                "/staff/account/password",
                {
                    "current_password": PASSWORD,
                    "new_password": NEW_PASSWORD,
                    "confirm_password": NEW_PASSWORD,
                },
            )
            assert response.status_code == 303
            assert (await reviewer_client.client.get("/staff/account")).status_code == 200
            assert (await laptop.get("/staff/account")).status_code == 303
        assert verify_password(user(h, "reviewer")["password_hash"], NEW_PASSWORD)

    async def test_a_short_new_password_is_refused(
        self, h: Harness, reviewer_client: StaffClient
    ) -> None:
        response = await reviewer_client.post(
            "/staff/account/password",
            {
                "current_password": PASSWORD,
                "new_password": "elevenchars",
                "confirm_password": "elevenchars",
            },
        )
        assert response.status_code == 400
        assert "at least 12 characters" in response.text


async def test_a_reviewer_sees_no_admin_links(reviewer_client: StaffClient) -> None:
    page = await reviewer_client.client.get("/staff/account")
    assert "/staff/admin/users" not in page.text and "/staff/admin/audit" not in page.text


async def test_an_admin_sees_the_admin_links(h: Harness) -> None:
    async with logged_in(h, "boss", "admin") as boss:
        page = await boss.client.get("/staff/account")
    assert "/staff/admin/users" in page.text and "/staff/admin/audit" in page.text


async def test_an_unknown_account_action_changes_nothing(
    h: Harness, admin_client: StaffClient, reviewer_client: StaffClient
) -> None:
    before = snapshot(h)
    response = await admin_client.post(f"/staff/admin/users/{reviewer_client.user_id}/delete")
    assert response.status_code == 400
    assert snapshot(h) == before


async def test_a_reviewer_made_admin_must_set_up_two_step_login_first(
    h: Harness, admin_client: StaffClient, reviewer_client: StaffClient
) -> None:
    promoted = await admin_client.post(
        f"/staff/admin/users/{reviewer_client.user_id}/role", {"role": "admin"}
    )
    assert promoted.status_code == 303
    response = await reviewer_client.client.get("/staff/admin/users")
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/account/totp?next=%2Fstaff%2Fadmin%2Fusers"


async def test_an_admin_whose_second_step_is_reset_must_set_it_up_again(
    h: Harness, admin_client: StaffClient
) -> None:
    async with logged_in(h, "boss", "admin") as boss:
        assert (await boss.client.get("/staff")).status_code == 200
        reset = await admin_client.post(f"/staff/admin/users/{boss.user_id}/totp-reset")
        assert reset.status_code == 303
        assert user(h, "boss")["totp_secret"] is None
        response = await boss.client.get("/staff")
        assert response.headers["location"] == "/staff/account/totp?next=%2Fstaff"
