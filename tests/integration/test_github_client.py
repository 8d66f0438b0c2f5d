"""trainops' GitHub client against the loopback GitHub emulator, with simulated time.

`httpx.MockTransport` appears only for what the emulator cannot produce: a transport error whose
text carries the token, and a `Link` header pointing at another host.
"""

from __future__ import annotations

import email.utils
import random
import socket
import traceback
from collections.abc import Iterator

import httpx
import pytest

from tests.emulators.github import GitHubEmulator
from trainops.errors import EXIT_PROVIDER, ProviderError, UsageError
from trainops.github.client import GitHubClient
from trainops.github.transport import GitHubError

TOKEN = "ghs_0123456789abcdefghijklmnopqrstuvwxyzAB"
REPO = "acme/models"
SHA = "3f2c" + "0" * 36


class FakeTime:
    """A clock that only moves when the client sleeps; every sleep is recorded."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def emu() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(TOKEN) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def gh(emu: GitHubEmulator, fake: FakeTime) -> Iterator[GitHubClient]:
    client = GitHubClient(
        TOKEN, api_url=emu.url, sleep=fake.sleep, clock=fake.clock, rng=random.Random(7)
    )
    with client:
        yield client


def test_list_issue_comments_follows_link_pages(emu: GitHubEmulator, gh: GitHubClient) -> None:
    for i in range(250):
        emu.add_issue_comment("acme", "models", 7, f"comment {i}")

    comments = gh.list_issue_comments(REPO, 7)

    assert [c["body"] for c in comments] == [f"comment {i}" for i in range(250)]
    pages = emu.requests_to("GET", "/issues/7/comments")
    assert [(r.query["per_page"], r.query.get("page", "1")) for r in pages] == [
        ("100", "1"),
        ("100", "2"),
        ("100", "3"),
    ]


def test_sticky_comment_is_created_then_edited_in_place(
    emu: GitHubEmulator, gh: GitHubClient
) -> None:
    created = gh.create_issue_comment(REPO, 7, "<!-- trainops:plan -->\nplan 1")
    updated = gh.update_issue_comment(REPO, created["id"], "<!-- trainops:plan -->\nplan 2")

    assert updated["id"] == created["id"]
    assert [c["body"] for c in emu.issue_comments("acme", "models", 7)] == [
        "<!-- trainops:plan -->\nplan 2"
    ]


@pytest.mark.parametrize(
    ("description", "sent"),
    [
        ("x" * 140, "x" * 140),
        ("x" * 141, "x" * 139 + "…"),
        ("succeeded in 2h 3m, $12.40 " * 10, ("succeeded in 2h 3m, $12.40 " * 10)[:139] + "…"),
    ],
    ids=["140-kept", "141-truncated", "long-truncated"],
)
def test_status_description_is_cut_to_140_chars_with_an_ellipsis(
    emu: GitHubEmulator, gh: GitHubClient, description: str, sent: str
) -> None:
    gh.create_commit_status(REPO, SHA, "success", context="trainops/a", description=description)

    [status] = emu.statuses(SHA)
    assert status["description"] == sent and len(sent) == 140
    assert (status["state"], status["context"]) == ("success", "trainops/a")


def test_commit_comment_statuses_and_pulls_round_trip(
    emu: GitHubEmulator, gh: GitHubClient
) -> None:
    emu.add_pull("acme", "models", 7, head_sha=SHA)
    gh.create_commit_comment(REPO, SHA, "portraits-lora succeeded")
    gh.create_commit_status(REPO, SHA, "pending", context="trainops/a", target_url="https://x/1")
    gh.create_commit_status(REPO, SHA, "failure", context="trainops/a")

    assert [c["body"] for c in gh.list_commit_comments(REPO, SHA)] == ["portraits-lora succeeded"]
    assert [s["state"] for s in gh.list_commit_statuses(REPO, SHA)] == ["failure", "pending"]
    assert gh.get_combined_status(REPO, SHA)["state"] == "failure"
    assert [p["number"] for p in gh.list_pulls_for_commit(REPO, SHA)] == [7]


@pytest.mark.parametrize("status", [403, 429])
def test_secondary_rate_limit_waits_retry_after(
    emu: GitHubEmulator, gh: GitHubClient, fake: FakeTime, status: int
) -> None:
    emu.secondary_rate_limit(retry_after=7, status=status, path="/statuses/")

    gh.create_commit_status(REPO, SHA, "pending", context="trainops/a")

    assert fake.sleeps == [7.0]
    assert [r.status for r in emu.requests_to("POST", "/statuses/")] == [status, 201]


def test_retry_after_as_an_http_date_is_honoured(
    emu: GitHubEmulator, gh: GitHubClient, fake: FakeTime
) -> None:
    emu.inject(429, headers={"retry-after": email.utils.formatdate(fake.now + 12, usegmt=True)})

    gh.list_issue_comments(REPO, 7)

    assert fake.sleeps == [12.0]


def test_secondary_limit_without_headers_waits_a_minute(
    emu: GitHubEmulator, gh: GitHubClient, fake: FakeTime
) -> None:
    emu.secondary_rate_limit(retry_after=None)

    gh.list_issue_comments(REPO, 7)

    assert fake.sleeps == [60.0]


def test_primary_rate_limit_waits_until_reset(
    emu: GitHubEmulator, gh: GitHubClient, fake: FakeTime
) -> None:
    emu.primary_rate_limit(reset_at=int(fake.now) + 30)

    gh.list_pulls_for_commit(REPO, SHA)

    assert fake.sleeps == [31.0]  # until the reset, plus one second of slack
    assert len(emu.requests_to("GET", "/pulls")) == 2


def test_rate_limit_longer_than_max_wait_fails_without_waiting(
    emu: GitHubEmulator, gh: GitHubClient, fake: FakeTime
) -> None:
    emu.primary_rate_limit(reset_at=int(fake.now) + 7200)

    with pytest.raises(GitHubError, match="asks to wait 7201s") as caught:
        gh.list_issue_comments(REPO, 7)

    assert (caught.value.status, fake.sleeps) == (403, [])


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried_with_capped_exponential_backoff(
    emu: GitHubEmulator, gh: GitHubClient, fake: FakeTime, status: int
) -> None:
    emu.fail_next(3, status, path="/statuses/")

    gh.create_commit_status(REPO, SHA, "success", context="trainops/a")  # idempotent: resent

    assert len(emu.statuses(SHA)) == 1
    first, second, third = fake.sleeps
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0 and 2.0 <= third <= 4.0


@pytest.mark.parametrize("status", [502, 0])  # 0: the connection drops after sending
def test_a_comment_stored_before_a_5xx_or_a_lost_answer_is_found_not_posted_again(
    emu: GitHubEmulator, gh: GitHubClient, status: int
) -> None:
    emu.fail_after_storing(status, path="/issues/7/comments")

    comment = gh.create_issue_comment(REPO, 7, "plan")

    stored = emu.issue_comments("acme", "models", 7)
    assert [c["id"] for c in stored] == [comment["id"]]  # exactly one comment
    assert [r.method for r in emu.requests if "/comments" in r.path] == ["POST", "GET"]


def test_a_commit_comment_refused_with_a_5xx_before_storing_is_posted_once_more(
    emu: GitHubEmulator, gh: GitHubClient
) -> None:
    emu.fail_next(1, 503, method="POST", path="/comments")

    comment = gh.create_commit_comment(REPO, SHA, "report")

    assert [r.method for r in emu.requests if "/comments" in r.path] == ["POST", "GET", "POST"]
    assert [c["id"] for c in emu.commit_comments(SHA)] == [comment["id"]]


def test_backoff_is_capped(emu: GitHubEmulator, fake: FakeTime) -> None:
    emu.fail_next(7, 502)
    client = GitHubClient(
        TOKEN, api_url=emu.url, max_attempts=8, backoff_cap=5, sleep=fake.sleep, clock=fake.clock
    )
    with client:
        client.list_commit_statuses(REPO, SHA)

    assert len(fake.sleeps) == 7 and max(fake.sleeps) <= 5.0 and fake.sleeps[-1] >= 2.5


def test_gives_up_after_max_attempts_with_a_provider_error(
    emu: GitHubEmulator, gh: GitHubClient, fake: FakeTime
) -> None:
    emu.fail_all(503)

    with pytest.raises(ProviderError, match="after 5 attempts: 503") as caught:
        gh.create_commit_status(REPO, SHA, "success", context="trainops/a")

    assert caught.value.exit_code == EXIT_PROVIDER
    assert len(emu.requests_to("POST")) == 5 and len(fake.sleeps) == 4
    assert emu.statuses(SHA) == []


def test_permission_403_is_not_retried(
    emu: GitHubEmulator, gh: GitHubClient, fake: FakeTime
) -> None:
    emu.inject(403, body={"message": "Resource not accessible by integration"})

    with pytest.raises(GitHubError, match="Resource not accessible by integration") as caught:
        gh.create_issue_comment(REPO, 7, "plan")

    assert (caught.value.status, fake.sleeps, len(emu.requests)) == (403, [], 1)
    assert "permissions" in caught.value.hint


def test_validation_error_is_reported_with_githubs_reason(
    emu: GitHubEmulator, gh: GitHubClient
) -> None:
    with pytest.raises(GitHubError, match=r"422 .*No commit found for SHA: main") as caught:
        gh.create_commit_comment(REPO, "main", "hello")
    assert caught.value.status == 422


def test_comment_over_65536_chars_is_refused_before_sending(
    emu: GitHubEmulator, gh: GitHubClient
) -> None:
    gh.create_issue_comment(REPO, 7, "x" * 65_536)

    for send in (
        lambda: gh.create_issue_comment(REPO, 7, "x" * 65_537),
        lambda: gh.update_issue_comment(REPO, 1, "x" * 65_537),
        lambda: gh.create_commit_comment(REPO, SHA, "x" * 65_537),
    ):
        with pytest.raises(GitHubError, match="65,537 characters; GitHub accepts at most 65,536"):
            send()
    assert len(emu.requests) == 1


def test_dropped_post_is_not_resent_but_a_dropped_get_is(
    emu: GitHubEmulator, gh: GitHubClient
) -> None:
    emu.drop_next(method="POST")
    with pytest.raises(GitHubError, match="may or may not have been applied") as unknown:
        gh.request("POST", f"repos/{REPO}/commits/{SHA}/comments", json={"body": "done"})
    assert unknown.value.unknown  # create_commit_comment then looks before posting again

    emu.drop_next(method="GET")
    assert gh.list_commit_comments(REPO, SHA) == []
    assert [(r.method, r.status) for r in emu.requests] == [("POST", 0), ("GET", 0), ("GET", 200)]


def test_token_never_appears_in_errors(emu: GitHubEmulator, fake: FakeTime) -> None:
    def raising(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout(f"timed out, auth was {request.headers['authorization']}")

    emu.inject(500, times=None, body={"message": f"echo: Bearer {TOKEN}"})
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
        mock = httpx.MockTransport(raising)
        clients = [
            GitHubClient(TOKEN, api_url=emu.url, sleep=fake.sleep),
            GitHubClient(TOKEN, api_url="https://gh.test", transport=mock, sleep=fake.sleep),
            GitHubClient(TOKEN, api_url=closed, max_attempts=2, sleep=fake.sleep),
        ]
        texts = []
        for client in clients:
            with client, pytest.raises(GitHubError) as caught:
                client.list_issue_comments(REPO, 7)
            texts.append("".join(traceback.format_exception(caught.value)) + repr(caught.value))

    assert [TOKEN in text for text in texts] == [False, False, False]
    assert "echo: Bearer ***" in texts[0] and "auth was Bearer ***" in texts[1]
    assert "ConnectError" in texts[2]


def test_bad_credentials_fail_at_once(emu: GitHubEmulator, fake: FakeTime) -> None:
    with (
        GitHubClient("ghs_wrong", api_url=emu.url, sleep=fake.sleep) as client,
        pytest.raises(GitHubError, match="401 Unauthorized: Bad credentials") as caught,
    ):
        client.create_issue_comment(REPO, 7, "plan")

    assert "ghs_wrong" not in str(caught.value) and len(emu.requests) == 1
    assert "token" in caught.value.hint


def test_next_page_on_another_host_is_not_followed() -> None:
    hosts: list[str] = []

    def github(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        link = '<https://evil.example/repos/acme/models/issues/7/comments?page=2>; rel="next"'
        return httpx.Response(200, json=[{"id": 1}], headers={"link": link})

    with (
        GitHubClient(
            TOKEN, api_url="https://api.github.test", transport=httpx.MockTransport(github)
        ) as client,
        pytest.raises(GitHubError, match="another host"),
    ):
        client.list_issue_comments(REPO, 7)

    assert hosts == ["api.github.test"]


def test_token_and_api_root_come_from_the_environment(emu: GitHubEmulator) -> None:
    with GitHubClient(env=emu.env()) as client:
        client.create_issue_comment(REPO, 7, "from env")

    assert client.api_url == emu.url
    assert emu.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert emu.requests[0].headers["x-github-api-version"] == "2022-11-28"
    with pytest.raises(UsageError, match="GITHUB_TOKEN is not set"):
        GitHubClient(env={})


def test_consecutive_writes_are_spaced_by_one_second(
    emu: GitHubEmulator, gh: GitHubClient, fake: FakeTime
) -> None:
    gh.create_commit_status(REPO, SHA, "pending", context="trainops/a")
    gh.list_commit_statuses(REPO, SHA)
    gh.create_commit_status(REPO, SHA, "pending", context="trainops/b")
    fake.now += 5
    gh.create_commit_status(REPO, SHA, "pending", context="trainops/c")

    assert fake.sleeps == [1.0]
    assert len(emu.statuses(SHA)) == 3


def test_bad_arguments_are_refused(gh: GitHubClient) -> None:
    with pytest.raises(ValueError, match="state must be one of"):
        gh.create_commit_status(REPO, SHA, "done", context="trainops/a")
    with pytest.raises(UsageError, match="owner/name"):
        gh.list_issue_comments("acme", 7)
