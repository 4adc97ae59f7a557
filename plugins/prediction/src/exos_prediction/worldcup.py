"""A self-contained, deterministic model of the FIFA World Cup 2026 (teams, schedule, tables, bracket, simulation).

Everything here is plain data and pure functions: no wall clock, no engine imports, times are integer Unix
milliseconds (UTC), randomness comes only from ``random.Random(seed)`` and hashlib, and no result depends on
set or dict iteration order (loops run over tuples, sorted lists or dicts filled in a fixed order). The
prediction-market plugin builds its events from the listing helpers at the end (``match_events`` and friends).

Sources. Teams, groups, play-off winners, round dates and opening fixtures: the research note
(shared/research/prediction.md §4). The tie-breaker order, the round-of-32 slots (``1E v 3ABCDF`` ...), match
numbers 73-104 and the later-round tree follow public transcriptions of the FIFA World Cup 26 Regulations
(art. 13 and the knockout schedule); they are not in the research note.

Group schedule. Draw positions 1-4 meet as: matchday 1: 1v2, 3v4; matchday 2: 1v3, 4v2; matchday 3: 4v1, 2v3
(FIFA's pattern; the first-named team is "home"). Groups are laid out over the matchday windows in the fixed
order A, B, D, C, E, F, G, H, I, J, K, L: matchday 1 (11-17 Jun) takes 1, 2, 2, 2, 2, 2, 1 groups a day,
matchday 2 (18-23 Jun) 2 a day and matchday 3 (24-27 Jun) 3 a day. On matchdays 1 and 2 a day's matches are
the first match of each of its groups, then the second ones; on matchday 3 a group's two matches kick off
together, as FIFA plays them. A day with n kickoffs uses the hours (UTC) ``SLOT_HOURS[n]``: 1 -> 19:00,
2 -> 19:00/22:00, 3 -> 16:00/19:00/22:00, 4 -> 13:00/16:00/19:00/22:00. This puts Mexico-South Africa alone on
11 Jun (19:00 UTC, 13:00 in Mexico City) and Canada-Bosnia and USA-Paraguay on 12 Jun, as the research says,
and gives every team at least 4 days between its group matches and at least 3 days between any two of its
matches (the tightest: semi-final on 15 Jul, third-place match on 18 Jul). Group matches are numbered 1-72 in
kickoff order (our numbering, not necessarily FIFA's); knockout matches keep FIFA's numbers 73-104 and these
dates: R32 28 Jun-3 Jul, R16 4-7 Jul, QF 9-11 Jul, SF 14-15 Jul, third place 18 Jul, final 19 Jul (hours by the
same ``SLOT_HOURS`` rule).

Group ranking (``standings``), FIFA 2026 art. 13 as far as the model has data. 2026 is the first World Cup to
put head-to-head before overall goal difference (2022 and earlier did the reverse); we implement:

1. points in all group matches;
2. among teams level on points: (a) points, (b) goal difference, (c) goals scored in the matches between the
   teams concerned; (d) if that leaves a strictly smaller subset still level, (a)-(c) are reapplied to the
   matches between that subset only, recursively;
3. when head-to-head no longer separates a set: goal difference, then goals scored, in all group matches
   (applied to that set only, without returning to head-to-head);
4. team conduct (fair play): no card data in the model, skipped;
5. last: FIFA uses the FIFA/Coca-Cola world ranking; the model stands in a seeded drawing of lots,
   ``lots_key(seed, code)`` = SHA-256 of ``"exos-wc26-lots|<seed>|<code>"``; the smaller digest ranks higher.

Best third-placed teams (``best_third_placed``): points, goal difference, goals scored (all group matches),
[fair play skipped], then ``lots_key``.

Round of 32 (``round_of_32``): FIFA's fixed slots (M73 2A v 2B, M74 1E v 3ABCDF, ... M88 2D v 2G, see
``KNOCKOUT_SLOTS``). Eight group winners (A, B, D, E, G, I, K, L) meet a third-placed team from the groups
named in their slot (``3ABCDF`` = a third from A, B, C, D or F), which never includes their own group.
FIFA's regulations fix the assignment for each of the 495 possible sets of qualifying groups in a table
(Annex C) that this model does not carry. Our documented rule (``allocate_third_places``): visit the
eight slots in match-number order (74, 77, 79, 80, 81, 82, 85, 87) and give each, by depth-first
backtracking, the alphabetically first qualifying group from its candidate list that still lets every later slot
be filled; the first complete assignment found is used. It depends only on which groups qualify (as FIFA's
table does), fills all 495 sets, and never pairs two teams of one group. Checked against a public
transcription of Annex C, it matches FIFA's whole row for 32 of the 495 sets and 1,877 of the 3,960 single
slot assignments, so the model's bracket often differs from the official one. Later rounds follow FIFA's tree
(M89 = W74 v W77, ..., M103 = L101 v L102, M104 = W101 v W102).

Match model (``simulate_match``), illustrative only: each team has a fixed integer rating (``RATINGS``, a
made-up Elo-like table, not FIFA or Elo data); the hosts (Mexico, Canada, USA) get ``HOST_BONUS``. In 90
minutes each side gets 12 chances, each scoring with probability ``clamp(115 + diff // 5, 20, 400)`` per mille,
``diff`` being its strength (rating, plus the bonus for a host) minus the opponent's. A drawn knockout match
gets 4 more chances each in extra time, then a shootout: 5 kicks each at 750 per mille, then sudden death. All
arithmetic is on integers (``rng.randrange``), so results do not depend on floating point.

Market conventions: the 3-way match outcome is the score after 90 minutes plus stoppage time (extra time and
penalties excluded, as Kalshi and Polymarket word it); "to advance" includes extra time and penalties.
"""

from __future__ import annotations

import datetime
import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Final, Literal

import attrs

Side = Literal["home", "away"]
Outcome90 = Literal["home", "draw", "away"]
Stage = Literal["R32", "R16", "QF", "SF", "3RD", "FINAL"]
EventKind = Literal["match", "group_winner", "tournament_winner", "to_advance"]

DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000
_EPOCH_ORDINAL: Final = datetime.date(1970, 1, 1).toordinal()


def utc_ms(month: int, day: int, hour: int = 0) -> int:
    """Unix milliseconds of `hour`:00 UTC on `day` `month` 2026, by integer arithmetic."""
    return (datetime.date(2026, month, day).toordinal() - _EPOCH_ORDINAL) * DAY_MS + hour * HOUR_MS


# ----------------------------------------------------------------------------------------------- teams


@attrs.frozen
class Team:
    """One of the 48 teams: a unique three-letter code, the name as in the research, its group and draw position."""

    code: str
    name: str
    group: str
    position: int


@attrs.frozen
class Group:
    """A group: its letter and its four teams in draw order (positions 1-4)."""

    letter: str
    teams: tuple[Team, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        """The team codes in draw order."""
        return tuple(t.code for t in self.teams)


_DRAW: Final[tuple[tuple[str, tuple[tuple[str, str], ...]], ...]] = (
    ("A", (("MEX", "Mexico"), ("RSA", "South Africa"), ("KOR", "South Korea"), ("CZE", "Czechia"))),
    ("B", (("CAN", "Canada"), ("BIH", "Bosnia and Herzegovina"), ("QAT", "Qatar"), ("SUI", "Switzerland"))),
    ("C", (("BRA", "Brazil"), ("MAR", "Morocco"), ("HAI", "Haiti"), ("SCO", "Scotland"))),
    ("D", (("USA", "USA"), ("PAR", "Paraguay"), ("AUS", "Australia"), ("TUR", "Turkey"))),
    ("E", (("GER", "Germany"), ("CUW", "Curaçao"), ("CIV", "Côte d'Ivoire"), ("ECU", "Ecuador"))),
    ("F", (("NED", "Netherlands"), ("JPN", "Japan"), ("SWE", "Sweden"), ("TUN", "Tunisia"))),
    ("G", (("BEL", "Belgium"), ("EGY", "Egypt"), ("IRN", "Iran"), ("NZL", "New Zealand"))),
    ("H", (("ESP", "Spain"), ("CPV", "Cape Verde"), ("KSA", "Saudi Arabia"), ("URU", "Uruguay"))),
    ("I", (("FRA", "France"), ("SEN", "Senegal"), ("IRQ", "Iraq"), ("NOR", "Norway"))),
    ("J", (("ARG", "Argentina"), ("ALG", "Algeria"), ("AUT", "Austria"), ("JOR", "Jordan"))),
    ("K", (("POR", "Portugal"), ("COD", "DR Congo"), ("UZB", "Uzbekistan"), ("COL", "Colombia"))),
    ("L", (("ENG", "England"), ("CRO", "Croatia"), ("GHA", "Ghana"), ("PAN", "Panama"))),
)

GROUPS: Final[tuple[Group, ...]] = tuple(
    Group(letter, tuple(Team(code, name, letter, i + 1) for i, (code, name) in enumerate(teams)))
    for letter, teams in _DRAW
)
GROUP_LETTERS: Final[tuple[str, ...]] = tuple(g.letter for g in GROUPS)
TEAMS: Final[Mapping[str, Team]] = MappingProxyType({t.code: t for g in GROUPS for t in g.teams})


def group(letter: str) -> Group:
    """The group with this letter (A-L)."""
    for g in GROUPS:
        if g.letter == letter:
            return g
    raise KeyError(f"no group {letter!r}")


# Illustrative, made-up Elo-like strengths for the match model (not FIFA or Elo ratings).
RATINGS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "MEX": 1850, "RSA": 1640, "KOR": 1790, "CZE": 1760,
        "CAN": 1780, "BIH": 1700, "QAT": 1600, "SUI": 1860,
        "BRA": 2000, "MAR": 1880, "HAI": 1550, "SCO": 1780,
        "USA": 1810, "PAR": 1800, "AUS": 1760, "TUR": 1860,
        "GER": 1950, "CUW": 1550, "CIV": 1720, "ECU": 1910,
        "NED": 1980, "JPN": 1900, "SWE": 1760, "TUN": 1680,
        "BEL": 1900, "EGY": 1720, "IRN": 1800, "NZL": 1600,
        "ESP": 2150, "CPV": 1600, "KSA": 1640, "URU": 1920,
        "FRA": 2080, "SEN": 1830, "IRQ": 1630, "NOR": 1880,
        "ARG": 2140, "ALG": 1740, "AUT": 1840, "JOR": 1660,
        "POR": 2000, "COD": 1660, "UZB": 1720, "COL": 1950,
        "ENG": 2040, "CRO": 1930, "GHA": 1620, "PAN": 1700,
    }
)  # fmt: skip
HOSTS: Final[tuple[str, ...]] = ("MEX", "CAN", "USA")
HOST_BONUS: Final = 60

# ----------------------------------------------------------------------------------------------- schedule

SLOT_HOURS: Final[Mapping[int, tuple[int, ...]]] = MappingProxyType(
    {1: (19,), 2: (19, 22), 3: (16, 19, 22), 4: (13, 16, 19, 22)}
)
MATCHDAY_PAIRS: Final[Mapping[int, tuple[tuple[int, int], tuple[int, int]]]] = MappingProxyType(
    {1: ((1, 2), (3, 4)), 2: ((1, 3), (4, 2)), 3: ((4, 1), (2, 3))}
)
GROUP_DAY_ORDER: Final[tuple[str, ...]] = ("A", "B", "D", "C", "E", "F", "G", "H", "I", "J", "K", "L")
# matchday -> (first day (month, day), groups per day)
_MATCHDAY_DAYS: Final[Mapping[int, tuple[tuple[int, int], tuple[int, ...]]]] = MappingProxyType(
    {1: ((6, 11), (1, 2, 2, 2, 2, 2, 1)), 2: ((6, 18), (2, 2, 2, 2, 2, 2)), 3: ((6, 24), (3, 3, 3, 3))}
)


@attrs.frozen
class Fixture:
    """A group match: our number (1-72, kickoff order), id, group, matchday, home, away (codes), kickoff (UTC ms)."""

    number: int
    match_id: str
    group: str
    matchday: int
    home: str
    away: str
    kickoff_ms: int


def _build_fixtures() -> tuple[Fixture, ...]:
    """Lay the 72 group matches out over the matchday windows (rule in the module docstring)."""
    slots: list[tuple[int, str, int, int, int]] = []  # (kickoff, group, matchday, home pos, away pos)
    for matchday in (1, 2, 3):
        (month, first_day), per_day = _MATCHDAY_DAYS[matchday]
        pairs = MATCHDAY_PAIRS[matchday]
        start = 0
        for day_index, count in enumerate(per_day):
            day = utc_ms(month, first_day) + day_index * DAY_MS
            letters = GROUP_DAY_ORDER[start : start + count]
            start += count
            if matchday < 3:
                hours = SLOT_HOURS[2 * count]
                todays = [(letter, pair) for pair in pairs for letter in letters]
                for hour, (letter, (h, a)) in zip(hours, todays, strict=True):
                    slots.append((day + hour * HOUR_MS, letter, matchday, h, a))
            else:
                hours = SLOT_HOURS[count]
                for hour, letter in zip(hours, letters, strict=True):
                    for h, a in pairs:
                        slots.append((day + hour * HOUR_MS, letter, matchday, h, a))
    fixtures = []
    for number, (kickoff, letter, matchday, h, a) in enumerate(slots, start=1):
        teams = group(letter).teams
        home, away = teams[h - 1].code, teams[a - 1].code
        fixtures.append(Fixture(number, f"WC26-{letter}-{home}-{away}", letter, matchday, home, away, kickoff))
    return tuple(fixtures)


_FIXTURES: Final = _build_fixtures()


def group_fixtures() -> tuple[Fixture, ...]:
    """The 72 group matches in kickoff order."""
    return _FIXTURES


@attrs.frozen
class KnockoutSlot:
    """A knockout match before its teams are known: FIFA number, stage, team sources, kickoff (UTC ms).

    Sources: ``1X``/``2X`` winner/runner-up of group X, ``3XYZ..`` a third-placed team from one of those
    groups, ``W74``/``L101`` winner/loser of that match."""

    number: int
    stage: Stage
    home_source: str
    away_source: str
    kickoff_ms: int

    @property
    def match_id(self) -> str:
        """The match id, e.g. ``WC26-M73``."""
        return f"WC26-M{self.number}"


_KNOCKOUT_TEMPLATE: Final[tuple[tuple[int, Stage, str, str, tuple[int, int]], ...]] = (
    (73, "R32", "2A", "2B", (6, 28)),
    (74, "R32", "1E", "3ABCDF", (6, 29)),
    (75, "R32", "1F", "2C", (6, 29)),
    (76, "R32", "1C", "2F", (6, 29)),
    (77, "R32", "1I", "3CDFGH", (6, 30)),
    (78, "R32", "2E", "2I", (6, 30)),
    (79, "R32", "1A", "3CEFHI", (6, 30)),
    (80, "R32", "1L", "3EHIJK", (7, 1)),
    (81, "R32", "1D", "3BEFIJ", (7, 1)),
    (82, "R32", "1G", "3AEHIJ", (7, 1)),
    (83, "R32", "2K", "2L", (7, 2)),
    (84, "R32", "1H", "2J", (7, 2)),
    (85, "R32", "1B", "3EFGIJ", (7, 2)),
    (86, "R32", "1J", "2H", (7, 3)),
    (87, "R32", "1K", "3DEIJL", (7, 3)),
    (88, "R32", "2D", "2G", (7, 3)),
    (89, "R16", "W74", "W77", (7, 4)),
    (90, "R16", "W73", "W75", (7, 4)),
    (91, "R16", "W76", "W78", (7, 5)),
    (92, "R16", "W79", "W80", (7, 5)),
    (93, "R16", "W83", "W84", (7, 6)),
    (94, "R16", "W81", "W82", (7, 6)),
    (95, "R16", "W86", "W88", (7, 7)),
    (96, "R16", "W85", "W87", (7, 7)),
    (97, "QF", "W89", "W90", (7, 9)),
    (98, "QF", "W93", "W94", (7, 10)),
    (99, "QF", "W91", "W92", (7, 11)),
    (100, "QF", "W95", "W96", (7, 11)),
    (101, "SF", "W97", "W98", (7, 14)),
    (102, "SF", "W99", "W100", (7, 15)),
    (103, "3RD", "L101", "L102", (7, 18)),
    (104, "FINAL", "W101", "W102", (7, 19)),
)


def _build_knockout_slots() -> tuple[KnockoutSlot, ...]:
    """Give each knockout match its kickoff: the k-th match of a day at ``SLOT_HOURS[n][k]``."""
    per_day: dict[tuple[int, int], int] = {}
    for *_, date in _KNOCKOUT_TEMPLATE:
        per_day[date] = per_day.get(date, 0) + 1
    seen: dict[tuple[int, int], int] = {}
    slots = []
    for number, stage, home, away, date in _KNOCKOUT_TEMPLATE:
        k = seen.get(date, 0)
        seen[date] = k + 1
        hour = SLOT_HOURS[per_day[date]][k]
        slots.append(KnockoutSlot(number, stage, home, away, utc_ms(date[0], date[1], hour)))
    return tuple(slots)


KNOCKOUT_SLOTS: Final[tuple[KnockoutSlot, ...]] = _build_knockout_slots()
# (match number, winner's group, candidate groups of the third-placed opponent), in match-number order
THIRD_PLACE_SLOTS: Final[tuple[tuple[int, str, str], ...]] = tuple(
    (s.number, s.home_source[1], s.away_source[1:]) for s in KNOCKOUT_SLOTS if s.away_source.startswith("3")
)

# ----------------------------------------------------------------------------------------------- results


def _is_count(value: object) -> bool:
    """A non-negative int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@attrs.frozen
class MatchResult:
    """A score after 90 minutes plus stoppage; knockouts add extra-time goals and, if still level, a shootout winner.

    ``extra_time`` holds only the goals scored in the 30 minutes of extra time (home, away); it is set only
    when the 90-minute score is level, and ``penalties_winner`` only when extra time ended level too."""

    home_goals: int
    away_goals: int
    extra_time: tuple[int, int] | None = None
    penalties_winner: Side | None = None

    def __attrs_post_init__(self) -> None:
        """Reject negative or non-integer goals and inconsistent extra time / penalties."""
        goals: tuple[object, ...] = (self.home_goals, self.away_goals, *(self.extra_time or ()))
        if not all(_is_count(g) for g in goals) or (self.extra_time is not None and len(self.extra_time) != 2):
            raise ValueError(f"goals must be non-negative integers: {self!r}")
        if self.extra_time is not None and self.home_goals != self.away_goals:
            raise ValueError("extra time is only played after a draw in 90 minutes")
        if self.penalties_winner is not None:
            if self.extra_time is None or self.extra_time[0] != self.extra_time[1]:
                raise ValueError("a shootout only follows a draw after extra time")
            if self.penalties_winner not in ("home", "away"):
                raise ValueError(f"penalties_winner must be 'home' or 'away', not {self.penalties_winner!r}")


def outcome_90(result: MatchResult) -> Outcome90:
    """The 3-way market outcome: the result after 90 minutes plus stoppage (no extra time or penalties)."""
    if result.home_goals > result.away_goals:
        return "home"
    if result.home_goals < result.away_goals:
        return "away"
    return "draw"


def winner_side(result: MatchResult) -> Side | None:
    """Who won after extra time and penalties, or None for a draw (a group match)."""
    outcome = outcome_90(result)
    if outcome != "draw":
        return outcome
    if result.extra_time is not None and result.extra_time[0] != result.extra_time[1]:
        return "home" if result.extra_time[0] > result.extra_time[1] else "away"
    return result.penalties_winner


# ----------------------------------------------------------------------------------------------- standings


@attrs.frozen
class TeamRow:
    """A team's line in a group table."""

    team: str
    group: str
    played: int
    won: int
    drawn: int
    lost: int
    goals_for: int
    goals_against: int
    goal_difference: int
    points: int

    def __attrs_post_init__(self) -> None:
        """The derived columns must agree with the counts."""
        if (
            self.played != self.won + self.drawn + self.lost
            or self.goal_difference != self.goals_for - self.goals_against
            or self.points != 3 * self.won + self.drawn
        ):
            raise ValueError(f"inconsistent table row: {self!r}")


def lots_key(seed: int, team: str) -> bytes:
    """The seeded drawing of lots: SHA-256 of ``exos-wc26-lots|<seed>|<team>``; the smaller digest ranks higher."""
    return hashlib.sha256(f"exos-wc26-lots|{seed}|{team}".encode()).digest()


_Played = tuple[str, str, int, int]  # home, away, home goals, away goals (90 minutes)


def _mini_table(teams: Sequence[str], matches: Sequence[_Played]) -> dict[str, tuple[int, int, int]]:
    """(points, goal difference, goals for) of `teams` counting only the matches among them."""
    pts = dict.fromkeys(teams, 0)
    gd = dict.fromkeys(teams, 0)
    gf = dict.fromkeys(teams, 0)
    for home, away, hg, ag in matches:
        if home not in pts or away not in pts:
            continue
        gf[home] += hg
        gf[away] += ag
        gd[home] += hg - ag
        gd[away] += ag - hg
        if hg > ag:
            pts[home] += 3
        elif hg < ag:
            pts[away] += 3
        else:
            pts[home] += 1
            pts[away] += 1
    return {t: (pts[t], gd[t], gf[t]) for t in teams}


def _split(teams: Sequence[str], key: Mapping[str, tuple[int, ...]]) -> list[list[str]]:
    """Partition `teams` into runs of equal `key`, best (largest key) first, keeping input order within a run."""
    ordered = sorted(teams, key=lambda t: key[t], reverse=True)
    runs: list[list[str]] = []
    for t in ordered:
        if runs and key[runs[-1][0]] == key[t]:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def _break_tie(teams: list[str], matches: Sequence[_Played], rows: Mapping[str, TeamRow], seed: int) -> list[str]:
    """Order teams level on points: head-to-head (recursively on still-level subsets), then overall GD, GF, lots."""
    if len(teams) == 1:
        return teams
    runs = _split(teams, _mini_table(teams, matches))
    if len(runs) > 1:
        return [t for run in runs for t in _break_tie(run, matches, rows, seed)]
    return sorted(teams, key=lambda t: (-rows[t].goal_difference, -rows[t].goals_for, lots_key(seed, t)))


def standings(group_letter: str, results: Mapping[str, MatchResult], seed: int) -> tuple[TeamRow, ...]:
    """The group table, best first, from the results (by match id) played so far; FIFA 2026 tie-breakers."""
    codes = group(group_letter).codes
    played: list[_Played] = [
        (f.home, f.away, r.home_goals, r.away_goals)
        for f in _FIXTURES
        if f.group == group_letter and (r := results.get(f.match_id)) is not None
    ]
    counts = {t: [0, 0, 0, 0, 0] for t in codes}  # won, drawn, lost, goals for, goals against
    for home, away, hg, ag in played:
        for team, scored, conceded in ((home, hg, ag), (away, ag, hg)):
            c = counts[team]
            c[0 if scored > conceded else 1 if scored == conceded else 2] += 1
            c[3] += scored
            c[4] += conceded
    rows = {
        t: TeamRow(t, group_letter, w + d + lo, w, d, lo, gf, ga, gf - ga, 3 * w + d)
        for t, (w, d, lo, gf, ga) in counts.items()
    }
    order = [
        t
        for run in _split(list(codes), {t: (rows[t].points,) for t in codes})
        for t in _break_tie(run, played, rows, seed)
    ]
    return tuple(rows[t] for t in order)


def best_third_placed(group_tables: Mapping[str, Sequence[TeamRow]], seed: int) -> tuple[TeamRow, ...]:
    """The 8 best third-placed teams, best first: points, goal difference, goals scored, then ``lots_key``."""
    thirds = [group_tables[letter][2] for letter in GROUP_LETTERS]
    thirds.sort(key=lambda r: (-r.points, -r.goal_difference, -r.goals_for, lots_key(seed, r.team)))
    return tuple(thirds[:8])


def allocate_third_places(groups: Iterable[str]) -> dict[int, str]:
    """Which qualifying group's third-placed team plays in each of the 8 winner-v-third R32 matches (by number).

    Depth-first over the slots in match-number order, trying each slot's candidate groups alphabetically;
    the first complete assignment wins (see the module docstring)."""
    qualified = sorted(set(groups))
    if len(qualified) != 8 or any(g not in GROUP_LETTERS for g in qualified):
        raise ValueError(f"need 8 distinct groups A-L, got {qualified}")
    assignment: list[str] = []

    def fill(i: int) -> bool:
        """Fill slots i.. given the groups already used."""
        if i == len(THIRD_PLACE_SLOTS):
            return True
        for g in THIRD_PLACE_SLOTS[i][2]:
            if g in qualified and g not in assignment:
                assignment.append(g)
                if fill(i + 1):
                    return True
                assignment.pop()
        return False

    if not fill(0):  # pragma: no cover - every one of the 495 sets is fillable (tested)
        raise ValueError(f"no allocation for {qualified}")
    return {slot[0]: g for slot, g in zip(THIRD_PLACE_SLOTS, assignment, strict=True)}


# ----------------------------------------------------------------------------------------------- bracket


@attrs.frozen
class Pairing:
    """A knockout match whose teams are known: FIFA number, stage, teams, resolved sources (``1E``, ``3D``, ``W74``)."""

    number: int
    stage: Stage
    home: str
    away: str
    home_source: str
    away_source: str
    kickoff_ms: int

    @property
    def match_id(self) -> str:
        """The match id, e.g. ``WC26-M73``."""
        return f"WC26-M{self.number}"


def advance(pairing: Pairing, result: MatchResult) -> str:
    """The team that goes through (or wins the final / third-place match), extra time and penalties included."""
    side = winner_side(result)
    if side is None:
        raise ValueError(f"{pairing.match_id}: a knockout result needs a winner")
    return pairing.home if side == "home" else pairing.away


def eliminated(pairing: Pairing, result: MatchResult) -> str:
    """The team that goes out."""
    return pairing.away if advance(pairing, result) == pairing.home else pairing.home


def round_of_32(group_tables: Mapping[str, Sequence[TeamRow]], seed: int) -> tuple[Pairing, ...]:
    """The 16 round-of-32 pairings (M73-M88) from the final group tables (ranked rows per group)."""
    thirds = best_third_placed(group_tables, seed)
    allocation = allocate_third_places(r.group for r in thirds)

    def resolve(slot: KnockoutSlot, source: str) -> tuple[str, str]:
        """(team, resolved source) for a group-position source."""
        if source.startswith("3"):
            letter = allocation[slot.number]
            return group_tables[letter][2].team, f"3{letter}"
        return group_tables[source[1]][int(source[0]) - 1].team, source

    pairings = []
    for slot in KNOCKOUT_SLOTS:
        if slot.stage != "R32":
            continue
        home, home_src = resolve(slot, slot.home_source)
        away, away_src = resolve(slot, slot.away_source)
        pairings.append(Pairing(slot.number, slot.stage, home, away, home_src, away_src, slot.kickoff_ms))
    return tuple(pairings)


def _feed(source: str, pairings: Mapping[int, Pairing], results: Mapping[int, MatchResult]) -> str | None:
    """The team a ``W<n>``/``L<n>`` source names, if match n is paired and played."""
    number = int(source[1:])
    pairing, result = pairings.get(number), results.get(number)
    if pairing is None or result is None:
        return None
    return advance(pairing, result) if source[0] == "W" else eliminated(pairing, result)


def _later_pairing(
    slot: KnockoutSlot, pairings: Mapping[int, Pairing], results: Mapping[int, MatchResult]
) -> Pairing | None:
    """The pairing of a match after the R32 once both feeder matches are played, else None."""
    home = _feed(slot.home_source, pairings, results)
    away = _feed(slot.away_source, pairings, results)
    if home is None or away is None:
        return None
    return Pairing(slot.number, slot.stage, home, away, slot.home_source, slot.away_source, slot.kickoff_ms)


def known_pairings(r32: Sequence[Pairing], results: Mapping[int, MatchResult]) -> tuple[Pairing, ...]:
    """Every knockout pairing whose two teams are known, given the R32 pairings and results by match number."""
    pairings = {p.number: p for p in r32}
    for slot in KNOCKOUT_SLOTS:
        if slot.stage != "R32" and (pairing := _later_pairing(slot, pairings, results)) is not None:
            pairings[slot.number] = pairing
    return tuple(pairings[n] for n in sorted(pairings))


# ----------------------------------------------------------------------------------------------- simulation

CHANCES_90: Final = 12
CHANCES_EXTRA_TIME: Final = 4
PENALTY_PERMILLE: Final = 750


def _strength(team: str) -> int:
    """Rating plus the host bonus."""
    return RATINGS[team] + (HOST_BONUS if team in HOSTS else 0)


def chance_permille(team: str, opponent: str) -> int:
    """Per-mille probability that one of `team`'s chances against `opponent` is a goal."""
    return min(400, max(20, 115 + (_strength(team) - _strength(opponent)) // 5))


def _goals(rng: random.Random, permille: int, chances: int) -> int:
    """Goals from `chances` independent chances."""
    return sum(1 for _ in range(chances) if rng.randrange(1000) < permille)


def _shootout(rng: random.Random) -> Side:
    """Five kicks each, then sudden death."""
    home = _goals(rng, PENALTY_PERMILLE, 5)
    away = _goals(rng, PENALTY_PERMILLE, 5)
    while home == away:
        home += _goals(rng, PENALTY_PERMILLE, 1)
        away += _goals(rng, PENALTY_PERMILLE, 1)
    return "home" if home > away else "away"


def simulate_match(home: str, away: str, rng: random.Random, knockout: bool) -> MatchResult:
    """One seeded match (illustrative chance model, integers only); knockouts always produce a winner."""
    if home == away or home not in RATINGS or away not in RATINGS:
        raise ValueError(f"bad teams {home!r} v {away!r}")
    p_home, p_away = chance_permille(home, away), chance_permille(away, home)
    hg = _goals(rng, p_home, CHANCES_90)
    ag = _goals(rng, p_away, CHANCES_90)
    if not knockout or hg != ag:
        return MatchResult(hg, ag)
    extra = (_goals(rng, p_home, CHANCES_EXTRA_TIME), _goals(rng, p_away, CHANCES_EXTRA_TIME))
    if extra[0] != extra[1]:
        return MatchResult(hg, ag, extra)
    return MatchResult(hg, ag, extra, _shootout(rng))


@attrs.frozen
class Tournament:
    """One simulated tournament: group results, tables, best thirds, the 32 knockout matches and the medallists."""

    seed: int
    group_matches: tuple[tuple[Fixture, MatchResult], ...]
    tables: tuple[tuple[TeamRow, ...], ...]
    best_thirds: tuple[TeamRow, ...]
    knockout_matches: tuple[tuple[Pairing, MatchResult], ...]
    champion: str
    runner_up: str
    third_place: str

    def group_tables(self) -> dict[str, tuple[TeamRow, ...]]:
        """The final tables by group letter."""
        return dict(zip(GROUP_LETTERS, self.tables, strict=True))

    def digest(self) -> str:
        """SHA-256 (hex) of a canonical text form of everything in the record."""
        lines = [f"seed {self.seed}"]
        for fixture, result in self.group_matches:
            lines.append(f"{fixture.number} {fixture.match_id} {fixture.kickoff_ms} {_result_text(result)}")
        for table in self.tables:
            lines.extend(" ".join(str(v) for v in attrs.astuple(row)) for row in table)
        lines.append("thirds " + " ".join(r.team for r in self.best_thirds))
        for p, result in self.knockout_matches:
            lines.append(f"{p.number} {p.home} {p.away} {p.home_source} {p.away_source} {_result_text(result)}")
        lines.append(f"podium {self.champion} {self.runner_up} {self.third_place}")
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _result_text(result: MatchResult) -> str:
    """A result as text, e.g. ``1-1 et 0-0 pens home``."""
    text = f"{result.home_goals}-{result.away_goals}"
    if result.extra_time is not None:
        text += f" et {result.extra_time[0]}-{result.extra_time[1]}"
    if result.penalties_winner is not None:
        text += f" pens {result.penalties_winner}"
    return text


def simulate_tournament(seed: int) -> Tournament:
    """Play all 104 matches with ``random.Random(seed)`` (group matches in kickoff order, then M73-M104)."""
    rng = random.Random(seed)
    group_matches = tuple((f, simulate_match(f.home, f.away, rng, knockout=False)) for f in _FIXTURES)
    by_id = {f.match_id: r for f, r in group_matches}
    tables = tuple(standings(letter, by_id, seed) for letter in GROUP_LETTERS)
    by_group = dict(zip(GROUP_LETTERS, tables, strict=True))
    pairings = {p.number: p for p in round_of_32(by_group, seed)}
    results: dict[int, MatchResult] = {}
    played: list[tuple[Pairing, MatchResult]] = []
    for slot in KNOCKOUT_SLOTS:
        pairing = pairings.get(slot.number) or _later_pairing(slot, pairings, results)
        if pairing is None:  # pragma: no cover - feeders have lower numbers, so are always played first
            raise RuntimeError(f"M{slot.number} has unplayed feeders")
        pairings[slot.number] = pairing
        result = simulate_match(pairing.home, pairing.away, rng, knockout=True)
        results[slot.number] = result
        played.append((pairing, result))
    final, third = pairings[104], pairings[103]
    return Tournament(
        seed=seed,
        group_matches=group_matches,
        tables=tables,
        best_thirds=best_third_placed(by_group, seed),
        knockout_matches=tuple(played),
        champion=advance(final, results[104]),
        runner_up=eliminated(final, results[104]),
        third_place=advance(third, results[103]),
    )


# ----------------------------------------------------------------------------------------------- events

RULE_90: Final = "Resolves to the result after 90 minutes plus stoppage time; extra time and penalties do not count."
RULE_GROUP_WINNER: Final = "Resolves to the team ranked first in the group under FIFA's 2026 tie-breakers."
RULE_TOURNAMENT_WINNER: Final = "Resolves to the team that wins the final (M104)."
RULE_ADVANCE: Final = "Resolves to the team that wins the match, extra time and penalties included."


@attrs.frozen
class EventOutcome:
    """One outcome of an event: its market name (``WC26-A-MEX-RSA: MEX``) and key (team code or ``draw``)."""

    name: str
    key: str


@attrs.frozen
class Event:
    """A set of mutually exclusive, exhaustive outcomes (exactly one resolves YES: neg-risk ready).

    ``start_ms`` is the kickoff of the first match the event depends on, ``end_ms`` that of the last."""

    event_id: str
    kind: EventKind
    title: str
    outcomes: tuple[EventOutcome, ...]
    start_ms: int
    end_ms: int
    rule: str

    def outcome(self, key: str) -> EventOutcome:
        """The outcome with this key."""
        for o in self.outcomes:
            if o.key == key:
                return o
        raise KeyError(f"{self.event_id} has no outcome {key!r}")


def _outcomes(event_id: str, keys: Iterable[str]) -> tuple[EventOutcome, ...]:
    """Outcomes named ``<event id>: <key>``."""
    return tuple(EventOutcome(f"{event_id}: {k}", k) for k in keys)


def match_events() -> tuple[Event, ...]:
    """The 72 three-way group-match events (home, draw, away after 90 minutes plus stoppage), in kickoff order."""
    return tuple(
        Event(
            f.match_id,
            "match",
            f"{TEAMS[f.home].name} v {TEAMS[f.away].name} (group {f.group}, matchday {f.matchday})",
            _outcomes(f.match_id, (f.home, "draw", f.away)),
            f.kickoff_ms,
            f.kickoff_ms,
            RULE_90,
        )
        for f in _FIXTURES
    )


def group_winner_events() -> tuple[Event, ...]:
    """The 12 group-winner events (4 outcomes each, draw order)."""
    events = []
    for g in GROUPS:
        kickoffs = [f.kickoff_ms for f in _FIXTURES if f.group == g.letter]
        event_id = f"WC26-{g.letter}-WINNER"
        events.append(
            Event(
                event_id,
                "group_winner",
                f"Winner of group {g.letter}",
                _outcomes(event_id, g.codes),
                min(kickoffs),
                max(kickoffs),
                RULE_GROUP_WINNER,
            )
        )
    return tuple(events)


def tournament_winner_event() -> Event:
    """The tournament-winner event over all 48 teams (group order, then draw order)."""
    event_id = "WC26-WINNER"
    return Event(
        event_id,
        "tournament_winner",
        "Winner of the FIFA World Cup 2026",
        _outcomes(event_id, (t.code for g in GROUPS for t in g.teams)),
        _FIXTURES[0].kickoff_ms,
        KNOCKOUT_SLOTS[-1].kickoff_ms,
        RULE_TOURNAMENT_WINNER,
    )


def to_advance_events(pairings: Iterable[Pairing]) -> tuple[Event, ...]:
    """One two-outcome "to advance" event per knockout pairing whose teams are known (winner of M103/M104 too)."""
    return tuple(
        Event(
            f"{p.match_id}-ADV",
            "to_advance",
            f"{TEAMS[p.home].name} v {TEAMS[p.away].name} ({p.stage}, M{p.number}): "
            + ("to win" if p.stage in ("3RD", "FINAL") else "to advance"),
            _outcomes(f"{p.match_id}-ADV", (p.home, p.away)),
            p.kickoff_ms,
            p.kickoff_ms,
            RULE_ADVANCE,
        )
        for p in pairings
    )


def resolutions(tournament: Tournament) -> tuple[tuple[str, str], ...]:
    """(event id, winning outcome name) for every event a finished tournament decides, in listing order."""
    out = [
        (f.match_id, f"{f.match_id}: {f.home if o == 'home' else f.away if o == 'away' else 'draw'}")
        for f, r in tournament.group_matches
        for o in (outcome_90(r),)
    ]
    out.extend((f"WC26-{g}-WINNER", f"WC26-{g}-WINNER: {t[0].team}") for g, t in tournament.group_tables().items())
    out.append(("WC26-WINNER", f"WC26-WINNER: {tournament.champion}"))
    out.extend((f"{p.match_id}-ADV", f"{p.match_id}-ADV: {advance(p, r)}") for p, r in tournament.knockout_matches)
    return tuple(out)
