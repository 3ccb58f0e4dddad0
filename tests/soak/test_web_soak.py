"""Long web fault runs (`make soak`): 10,000 fuzzed webhooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jobs.test_webhook_fuzz import check_fuzz
from tests.webtools import ThreadedWebhookServer

pytestmark = pytest.mark.soak


@pytest.mark.timeout(900)
def test_webhook_fuzz_ten_thousand_examples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ThreadedWebhookServer(tmp_path) as server:
        statuses = check_fuzz(server, 10_000)
    with capsys.disabled():
        print(f"\nwebhook fuzz: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
