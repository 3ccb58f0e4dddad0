"""/usage reports: period bounds, names stored with reservations, per-day stacking, CSV escaping, the chart."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from PIL import Image

from bot.credits import CreditLedger, UsageReport
from bot.credits.periods import period_start
from bot.credits.usage import DAY, Usage, UsageRow, csv_cell, stack_by_bucket, usage_csv, usage_window
from bot.db import Database
from bot.errors import InvalidInput
from bot.preview import BACKGROUND
from bot.usage_chart import usage_chart_png
from tests.credits.conftest import NOON, Clock

G = 1


def _ts(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


async def _spend(
    ledger: CreditLedger,
    user: int,
    category: str,
    credits: int,
    key: str,
    *,
    channel: int = 5,
    name: str | None = None,
    channel_name: str | None = None,
) -> None:
    await ledger.reserve(G, user, [], category, credits, key, channel_id=channel, user_name=name,
                         channel_name=channel_name)  # fmt: skip
    await ledger.settle(key, credits)


# ── period bounds ────────────────────────────────────────────────────────────


def test_this_and_last_period_follow_a_calendar_month() -> None:
    now = _ts("2026-11-18T12:00:00")
    start = period_start("month", now)
    this = usage_window("this_period", "month", start, now)
    assert (this.start, this.end) == (_ts("2026-11-01T00:00:00"), _ts("2026-12-01T00:00:00"))
    assert (this.bucket, this.buckets) == (DAY, 30)  # every day of November, the ones to come too
    last = usage_window("last_period", "month", start, now)
    assert (last.start, last.end) == (_ts("2026-10-01T00:00:00"), _ts("2026-11-01T00:00:00"))
    assert last.buckets == 31
    assert this.describe() == "this period: 1 Nov – 30 Nov 2026 (UTC)"
    assert last.describe() == "last period: 1 Oct – 31 Oct 2026 (UTC)"


def test_last_period_of_january_is_december_of_the_year_before() -> None:
    now = _ts("2027-01-03T08:00:00")
    last = usage_window("last_period", "month", period_start("month", now), now)
    assert (last.start, last.end) == (_ts("2026-12-01T00:00:00"), _ts("2027-01-01T00:00:00"))
    assert last.describe() == "last period: 1 Dec – 31 Dec 2026 (UTC)"


def test_weekly_and_daily_periods() -> None:
    now = _ts("2026-11-18T12:00:00")  # a Wednesday
    week = usage_window("this_period", "week", period_start("week", now), now)
    assert (week.start, week.end, week.buckets) == (_ts("2026-11-16T00:00:00"), _ts("2026-11-23T00:00:00"), 7)
    last_week = usage_window("last_period", "week", period_start("week", now), now)
    assert (last_week.start, last_week.end) == (_ts("2026-11-09T00:00:00"), _ts("2026-11-16T00:00:00"))
    yesterday = usage_window("last_period", "day", period_start("day", now), now)
    assert (yesterday.start, yesterday.end, yesterday.buckets) == (
        _ts("2026-11-17T00:00:00"),
        _ts("2026-11-18T00:00:00"),
        1,
    )


def test_last_30_days_are_today_and_the_29_days_before() -> None:
    now = _ts("2026-11-18T12:00:00")
    window = usage_window("last_30_days", "month", period_start("month", now), now)
    assert (window.start, window.end) == (_ts("2026-10-20T00:00:00"), _ts("2026-11-19T00:00:00"))
    assert window.buckets == 30
    assert window.bucket_start(29) == _ts("2026-11-18T00:00:00")


def test_a_one_off_pool_has_this_period_only() -> None:
    created = _ts("2026-06-10T15:30:00")
    now = _ts("2026-11-18T12:00:00")
    pool = usage_window("this_period", "none", created, now)
    assert (pool.start, pool.end) == (created, now + 1)
    assert pool.origin == _ts("2026-06-10T00:00:00")
    assert pool.bucket == 7 * DAY  # 162 days: drawn per week
    assert pool.bucket_start(pool.buckets - 1) <= now < pool.bucket_start(pool.buckets)
    with pytest.raises(InvalidInput, match="one-off pool, so there is no last period"):
        usage_window("last_period", "none", created, now)


# ── per-day stacking ─────────────────────────────────────────────────────────


def test_stacking_sums_cells_per_bucket_in_the_usual_category_order() -> None:
    cells = [(0, "video", 40), (2, "image", 4), (2, "image", 8), (1, "chat", 1), (3, "image", 5), (9, "audio", 7)]
    series = stack_by_bucket(cells, buckets=4)
    assert list(series) == ["chat", "image", "video"]  # audio fell outside the window: left out
    assert series == {"chat": [0, 1, 0, 0], "image": [0, 0, 12, 5], "video": [40, 0, 0, 0]}
    assert stack_by_bucket([(0, "chat", 0)], buckets=2) == {}


async def test_spend_lands_on_its_utc_day_stacked_by_category(ledger: CreditLedger, db: Database, clock: Clock) -> None:
    november = period_start("month", NOON)
    clock.now = november + 5  # 1 Nov, just after midnight
    await _spend(ledger, 10, "image", 4, "a")
    clock.now = november + 2 * DAY - 1  # the last second of 2 Nov
    await _spend(ledger, 10, "video", 40, "b")
    await _spend(ledger, 11, "image", 8, "c")
    clock.now = november + 2 * DAY  # 3 Nov
    await _spend(ledger, 11, "image", 3, "d")
    await ledger.reserve(G, 12, [], "chat", 2, "held")  # not settled: not spend
    await ledger.reserve(G, 12, [], "chat", 2, "refunded")
    await ledger.refund("refunded", "test")
    window = usage_window("this_period", "month", november, int(clock.now))
    usage = await UsageReport(db).report(G, window, "category")
    assert usage.over_time == {"image": [4, 8, 3] + [0] * 27, "video": [0, 40] + [0] * 28}
    assert [(row.label, row.credits, row.requests) for row in usage.rows] == [("Video", 40, 1), ("Images", 15, 3)]
    assert (usage.total, usage.requests) == (55, 4)
    await ledger.settle("held", 2)


async def test_last_period_leaves_this_periods_spend_out(ledger: CreditLedger, db: Database, clock: Clock) -> None:
    november = period_start("month", NOON)
    clock.now = november - 60  # 31 Oct
    await _spend(ledger, 10, "image", 4, "october")
    clock.now = NOON
    await _spend(ledger, 10, "image", 8, "november")
    report = UsageReport(db)
    last = await report.report(G, usage_window("last_period", "month", november, NOON), "member")
    this = await report.report(G, usage_window("this_period", "month", november, NOON), "member")
    assert (last.total, this.total) == (4, 8)
    assert last.over_time == {"image": [0] * 30 + [4]}


# ── names ────────────────────────────────────────────────────────────────────


async def test_members_and_channels_are_named_from_what_was_stored(
    ledger: CreditLedger, db: Database, clock: Clock
) -> None:
    await _spend(ledger, 10, "image", 4, "a", name="Alice", channel_name="general")
    await _spend(ledger, 10, "video", 40, "b", channel=6, name="Alice", channel_name="generation")
    clock.now += 60
    await _spend(ledger, 11, "image", 8, "c", name="Bob (old name)")
    clock.now += 60
    await _spend(ledger, 11, "chat", 1, "d", name="Bob")  # renamed since: the latest name wins
    await _spend(ledger, 400_000_000_000_000_002, "chat", 2, "e")  # before names were kept
    window = usage_window("this_period", "month", period_start("month", NOON), int(clock.now))
    report = UsageReport(db)
    by_member = await report.report(G, window, "member")
    assert [(r.key, r.label, r.credits, r.requests) for r in by_member.rows] == [
        ("10", "Alice", 44, 2),
        ("11", "Bob", 9, 2),
        ("400000000000000002", "member …0002", 2, 1),
    ]
    assert by_member.rows[0].by_category == {"image": 4, "video": 40}
    cached = await report.report(G, window, "member", cached_name=lambda key: "Cara" if key.endswith("2") else None)
    assert [r.label for r in cached.rows] == ["Alice", "Bob", "Cara"]  # a stored name beats the cache
    by_channel = await report.report(G, window, "channel")
    assert [(r.key, r.label, r.credits) for r in by_channel.rows] == [("6", "#generation", 40), ("5", "#general", 15)]


# ── CSV ──────────────────────────────────────────────────────────────────────


def _usage(rows: list[UsageRow], by: str = "member") -> Usage:
    window = usage_window("this_period", "month", period_start("month", NOON), NOON)
    return Usage(by=by, window=window, rows=rows, over_time={})  # type: ignore[arg-type]


def test_csv_has_ids_names_categories_and_credits() -> None:
    alice = UsageRow("10", "Alice", 44, 3, {"image": 4, "video": 40}, {"image": 2, "video": 1})
    rows = list(csv.reader(io.StringIO(usage_csv(_usage([alice])).decode("utf-8-sig"))))
    assert rows == [
        ["member_id", "member", "category", "credits", "requests"],
        ["10", "Alice", "Images", "4", "2"],
        ["10", "Alice", "Video", "40", "1"],
    ]
    by_category = _usage([UsageRow("model3d", "3D models", 30, 1, {"model3d": 30}, {"model3d": 1})], by="category")
    assert list(csv.reader(io.StringIO(usage_csv(by_category).decode("utf-8-sig")))) == [
        ["category", "credits", "requests"],
        ["3D models", "30", "1"],
    ]


@pytest.mark.parametrize(
    ("name", "cell"),
    [
        ('=HYPERLINK("http://x.example","pay")', '\'=HYPERLINK("http://x.example","pay")'),
        ("+1 555", "'+1 555"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rReturn", "'\rReturn"),
        ("Alice = ok", "Alice = ok"),
        ("", ""),
    ],
)
def test_csv_cells_that_look_like_formulas_get_an_apostrophe(name: str, cell: str) -> None:
    assert csv_cell(name) == cell
    row = UsageRow("10", name, 4, 1, {"image": 4}, {"image": 1})
    written = list(csv.reader(io.StringIO(usage_csv(_usage([row])).decode("utf-8-sig"), newline="")))
    assert written[1][1] == cell


# ── the chart ────────────────────────────────────────────────────────────────


def test_the_chart_is_dark_and_draws_hostile_names_without_warnings() -> None:
    rows = [
        UsageRow(str(n), name, 100 - n, 1, {"image": 60 - n, "video": 40}, {"image": 1})
        for n, name in enumerate(["Alice 🎨", "$x^2$ money", "\u202eevil", "漢字", "a" * 90, "=HYPERLINK(1)"])
    ]
    usage = _usage(rows)
    stacked = Usage(usage.by, usage.window, rows, {"image": [5] * 30, "video": [0, 40] + [0] * 28})
    png = usage_chart_png(stacked, "Spend by member — this period")  # filterwarnings=error: a missing glyph fails
    opened = Image.open(io.BytesIO(png))
    assert opened.format == "PNG"
    assert opened.width > 600
    image = opened.convert("RGB")
    background = tuple(int(BACKGROUND[i : i + 2], 16) for i in (1, 3, 5))
    assert image.getpixel((2, 2)) == background  # the frame is the 3D preview's dark grey
    colours = {colour for _count, colour in image.getcolors(maxcolors=1 << 16) or []}
    assert (0xE6, 0x9F, 0x00) in colours  # image spend, in its category colour
    assert (0xCC, 0x79, 0xA7) in colours  # video spend


def test_the_chart_of_no_spend_is_still_a_png() -> None:
    png = usage_chart_png(_usage([]), "Spend by member — this period")
    assert Image.open(io.BytesIO(png)).format == "PNG"
