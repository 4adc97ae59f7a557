"""The FIFA World Cup 2026 model: groups, schedule, tie-breakers, best thirds, bracket, simulation and events."""

from __future__ import annotations

import datetime
import hashlib
import itertools
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from exos_prediction import worldcup as wc
from exos_prediction.worldcup import MatchResult, TeamRow

SRC = Path(__file__).resolve().parents[1] / "src"
DAY = 86_400_000

# The research note's §4.2 table, play-off slots resolved, in its order.
RESEARCH_GROUPS: dict[str, tuple[str, str, str, str]] = {
    "A": ("Mexico", "South Africa", "South Korea", "Czechia"),
    "B": ("Canada", "Bosnia and Herzegovina", "Qatar", "Switzerland"),
    "C": ("Brazil", "Morocco", "Haiti", "Scotland"),
    "D": ("USA", "Paraguay", "Australia", "Turkey"),
    "E": ("Germany", "Curaçao", "Côte d'Ivoire", "Ecuador"),
    "F": ("Netherlands", "Japan", "Sweden", "Tunisia"),
    "G": ("Belgium", "Egypt", "Iran", "New Zealand"),
    "H": ("Spain", "Cape Verde", "Saudi Arabia", "Uruguay"),
    "I": ("France", "Senegal", "Iraq", "Norway"),
    "J": ("Argentina", "Algeria", "Austria", "Jordan"),
    "K": ("Portugal", "DR Congo", "Uzbekistan", "Colombia"),
    "L": ("England", "Croatia", "Ghana", "Panama"),
}


def ms(month: int, day: int, hour: int = 0) -> int:
    """Unix ms of a 2026 UTC date, computed independently of the module."""
    return int(datetime.datetime(2026, month, day, hour, tzinfo=datetime.UTC).timestamp()) * 1000


# Research §4.1 round dates (inclusive first day, exclusive day after the last), UTC.
WINDOWS: dict[object, tuple[int, int]] = {
    1: (ms(6, 11), ms(6, 18)),
    2: (ms(6, 18), ms(6, 24)),
    3: (ms(6, 24), ms(6, 28)),
    "R32": (ms(6, 28), ms(7, 4)),
    "R16": (ms(7, 4), ms(7, 8)),
    "QF": (ms(7, 9), ms(7, 12)),
    "SF": (ms(7, 14), ms(7, 16)),
    "3RD": (ms(7, 18), ms(7, 19)),
    "FINAL": (ms(7, 19), ms(7, 20)),
}


def group_results(letter: str, scores: Mapping[tuple[str, str], tuple[int, int]]) -> dict[str, MatchResult]:
    """Results by match id from scores keyed (team, opponent), whichever of the two is at home."""
    out: dict[str, MatchResult] = {}
    used = set()
    for f in wc.group_fixtures():
        if f.group != letter:
            continue
        if (f.home, f.away) in scores:
            hg, ag = scores[f.home, f.away]
            used.add((f.home, f.away))
        elif (f.away, f.home) in scores:
            ag, hg = scores[f.away, f.home]
            used.add((f.away, f.home))
        else:
            continue
        out[f.match_id] = MatchResult(hg, ag)
    assert used == set(scores), "every score must name a fixture of the group"
    return out


def order(letter: str, scores: Mapping[tuple[str, str], tuple[int, int]], seed: int = 0) -> list[str]:
    """The ranked team codes of a group for these scores."""
    return [r.team for r in wc.standings(letter, group_results(letter, scores), seed)]


def lots(seed: int, team: str) -> bytes:
    """The documented drawing-of-lots key, recomputed here."""
    return hashlib.sha256(f"exos-wc26-lots|{seed}|{team}".encode()).digest()


def row(team: str, group: str, won: int, drawn: int, lost: int, gf: int, ga: int) -> TeamRow:
    """A hand-built table row."""
    return TeamRow(team, group, won + drawn + lost, won, drawn, lost, gf, ga, gf - ga, 3 * won + drawn)


class TestGroups:
    """The 48 teams in the research's 12 groups."""

    def test_groups_are_the_researchs(self) -> None:
        """Twelve groups A-L with the research's four teams each, in its order."""
        assert tuple("ABCDEFGHIJKL") == wc.GROUP_LETTERS
        assert {g.letter: tuple(t.name for t in g.teams) for g in wc.GROUPS} == RESEARCH_GROUPS
        for g in wc.GROUPS:
            assert [(t.group, t.position) for t in g.teams] == [(g.letter, i) for i in (1, 2, 3, 4)]

    def test_48_distinct_teams_with_unique_codes(self) -> None:
        """48 distinct names and 48 distinct three-letter codes, all rated."""
        teams = [t for g in wc.GROUPS for t in g.teams]
        assert len(teams) == 48
        assert len({t.name for t in teams}) == 48
        assert len({t.code for t in teams}) == 48
        assert all(len(t.code) == 3 and t.code.isascii() and t.code.isupper() for t in teams)
        assert list(wc.TEAMS) == [t.code for t in teams]
        assert set(wc.RATINGS) == set(wc.TEAMS)

    def test_hosts_are_pre_placed(self) -> None:
        """Mexico is A1, Canada B1 and USA D1, as drawn."""
        assert (wc.TEAMS["MEX"].group, wc.TEAMS["MEX"].position) == ("A", 1)
        assert (wc.TEAMS["CAN"].group, wc.TEAMS["CAN"].position) == ("B", 1)
        assert (wc.TEAMS["USA"].group, wc.TEAMS["USA"].position) == ("D", 1)


class TestSchedule:
    """The 72 group fixtures."""

    def test_72_fixtures_each_pair_once_each_team_three(self) -> None:
        """Every pair in a group meets exactly once; every team plays 3 times, once per matchday."""
        fixtures = wc.group_fixtures()
        assert len(fixtures) == 72
        assert [f.number for f in fixtures] == list(range(1, 73))
        assert len({f.match_id for f in fixtures}) == 72
        for g in wc.GROUPS:
            pairs = sorted(tuple(sorted((f.home, f.away))) for f in fixtures if f.group == g.letter)
            assert pairs == sorted(tuple(sorted(p)) for p in itertools.combinations(g.codes, 2))
        per_team = Counter(t for f in fixtures for t in (f.home, f.away))
        assert set(per_team) == set(wc.TEAMS)
        assert set(per_team.values()) == {3}
        matchdays = Counter((t, f.matchday) for f in fixtures for t in (f.home, f.away))
        assert set(matchdays.values()) == {1}

    def test_round_robin_pattern(self) -> None:
        """Matchday 1: 1v2, 3v4; matchday 2: 1v3, 4v2; matchday 3: 4v1, 2v3 (draw positions)."""
        expected = {1: [(1, 2), (3, 4)], 2: [(1, 3), (4, 2)], 3: [(4, 1), (2, 3)]}
        for f in wc.group_fixtures():
            pair = (wc.TEAMS[f.home].position, wc.TEAMS[f.away].position)
            assert pair in expected[f.matchday]
            assert f.match_id == f"WC26-{f.group}-{f.home}-{f.away}"

    def test_kickoffs_within_matchday_windows_in_order(self) -> None:
        """Integer UTC ms kickoffs inside the research's matchday dates, numbered in kickoff order."""
        fixtures = wc.group_fixtures()
        for f in fixtures:
            assert type(f.kickoff_ms) is int
            lo, hi = WINDOWS[f.matchday]
            assert lo <= f.kickoff_ms < hi, f
        kickoffs = [f.kickoff_ms for f in fixtures]
        assert kickoffs == sorted(kickoffs)
        days = {f.kickoff_ms // DAY for f in fixtures}
        assert len(days) == 17  # every day from 11 to 27 June has matches

    def test_no_team_plays_twice_within_two_days(self) -> None:
        """Between a team's group matches there are at least 4 days (so never two within 2 days)."""
        kickoffs: defaultdict[str, list[int]] = defaultdict(list)
        for f in wc.group_fixtures():
            kickoffs[f.home].append(f.kickoff_ms)
            kickoffs[f.away].append(f.kickoff_ms)
        for team, times in kickoffs.items():
            times.sort()
            assert min(b - a for a, b in itertools.pairwise(times)) >= 4 * DAY, team

    def test_matchday_3_kicks_off_simultaneously(self) -> None:
        """A group's two last matches share a kickoff."""
        for letter in wc.GROUP_LETTERS:
            last = {f.kickoff_ms for f in wc.group_fixtures() if f.group == letter and f.matchday == 3}
            assert len(last) == 1

    def test_opening_fixtures(self) -> None:
        """Mexico-South Africa opens alone on 11 June; Canada-Bosnia and USA-Paraguay are on 12 June."""
        fixtures = wc.group_fixtures()
        assert (fixtures[0].home, fixtures[0].away) == ("MEX", "RSA")
        assert fixtures[0].kickoff_ms == ms(6, 11, 19)
        on_11 = [f for f in fixtures if ms(6, 11) <= f.kickoff_ms < ms(6, 12)]
        assert [(f.home, f.away) for f in on_11 if "MEX" in (f.home, f.away)] == [("MEX", "RSA")]
        assert all(f.group == "A" for f in on_11)
        on_12 = {(f.home, f.away) for f in fixtures if ms(6, 12) <= f.kickoff_ms < ms(6, 13)}
        assert {("CAN", "BIH"), ("USA", "PAR")} <= on_12

    def test_knockout_kickoffs_within_round_dates(self) -> None:
        """M73-M104 in FIFA's order, each inside the research's round dates."""
        slots = wc.KNOCKOUT_SLOTS
        assert [s.number for s in slots] == list(range(73, 105))
        assert Counter(s.stage for s in slots) == {"R32": 16, "R16": 8, "QF": 4, "SF": 2, "3RD": 1, "FINAL": 1}
        for s in slots:
            lo, hi = WINDOWS[s.stage]
            assert lo <= s.kickoff_ms < hi, s
        assert slots[-1].kickoff_ms == ms(7, 19, 19)


class TestResults:
    """MatchResult, the 90-minute outcome and who advances."""

    def test_outcome_90_ignores_extra_time_and_penalties(self) -> None:
        """The 3-way outcome is the 90-minute score; advancing counts extra time and penalties."""
        assert wc.outcome_90(MatchResult(2, 1)) == "home"
        assert wc.outcome_90(MatchResult(0, 3)) == "away"
        assert wc.outcome_90(MatchResult(1, 1)) == "draw"
        after_et = MatchResult(1, 1, (0, 1))
        shootout = MatchResult(0, 0, (2, 2), "home")
        assert wc.outcome_90(after_et) == wc.outcome_90(shootout) == "draw"
        p = wc.Pairing(73, "R32", "RSA", "CAN", "2A", "2B", wc.KNOCKOUT_SLOTS[0].kickoff_ms)
        assert wc.advance(p, after_et) == "CAN"
        assert wc.eliminated(p, after_et) == "RSA"
        assert wc.advance(p, shootout) == "RSA"
        assert wc.advance(p, MatchResult(3, 2)) == "RSA"
        with pytest.raises(ValueError, match="needs a winner"):
            wc.advance(p, MatchResult(1, 1))

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ((-1, 0), "non-negative"),
            ((True, 0), "non-negative"),
            ((1, 0, (0, 0)), "extra time"),
            ((1, 1, None, "home"), "shootout"),
            ((1, 1, (1, 0), "away"), "shootout"),
            ((1, 1, (0, 0), "nobody"), "penalties_winner"),
        ],
    )
    def test_inconsistent_results_rejected(self, args: tuple[object, ...], message: str) -> None:
        """Negative or bool goals, extra time after a decided match, or a needless shootout are rejected."""
        with pytest.raises(ValueError, match=message):
            MatchResult(*args)  # type: ignore[arg-type]


class TestTieBreakers:
    """Group standings under FIFA 2026's order (group A: MEX, RSA, KOR, CZE)."""

    def test_rows_count_the_results(self) -> None:
        """Played, won, drawn, lost, goals and points are tallied from the results."""
        rows = wc.standings("A", group_results("A", {("MEX", "RSA"): (2, 0), ("KOR", "CZE"): (1, 1)}), 0)
        mex = next(r for r in rows if r.team == "MEX")
        rsa = next(r for r in rows if r.team == "RSA")
        kor = next(r for r in rows if r.team == "KOR")
        assert (mex.played, mex.won, mex.drawn, mex.lost, mex.goals_for, mex.goals_against) == (1, 1, 0, 0, 2, 0)
        assert (mex.goal_difference, mex.points) == (2, 3)
        assert (rsa.lost, rsa.goal_difference, rsa.points) == (1, -2, 0)
        assert (kor.drawn, kor.points) == (1, 1)
        assert rows[0].team == "MEX"
        assert rows[-1].team == "RSA"

    def test_points_first(self) -> None:
        """More points ranks higher, whatever the goal difference."""
        scores = {
            ("MEX", "RSA"): (1, 0),
            ("MEX", "KOR"): (1, 0),
            ("MEX", "CZE"): (0, 5),
            ("CZE", "RSA"): (0, 1),
            ("CZE", "KOR"): (0, 1),
            ("RSA", "KOR"): (0, 0),
        }
        # MEX 6 pts (GD -3), RSA 4, KOR 4 ..., CZE 3 pts with GD +3
        table = wc.standings("A", group_results("A", scores), 0)
        assert [r.points for r in table] == [6, 4, 4, 3]
        assert table[0].team == "MEX"
        assert table[-1].team == "CZE"

    def test_two_way_tie_decided_head_to_head(self) -> None:
        """Level on points, the winner of the direct match ranks first despite a worse goal difference."""
        scores = {
            ("RSA", "KOR"): (1, 0),
            ("RSA", "CZE"): (1, 0),
            ("MEX", "RSA"): (3, 0),
            ("KOR", "MEX"): (5, 0),
            ("KOR", "CZE"): (5, 0),
            ("MEX", "CZE"): (0, 0),
        }
        table = wc.standings("A", group_results("A", scores), 0)
        assert [r.team for r in table] == ["RSA", "KOR", "MEX", "CZE"]
        assert table[0].points == table[1].points == 6
        assert table[0].goal_difference < table[1].goal_difference  # 2022's order would have put KOR first

    def test_three_way_tie_recursive_head_to_head(self) -> None:
        """A 3-way head-to-head leaves two level; their direct match (not overall GD) then decides."""
        scores = {
            ("MEX", "RSA"): (2, 0),
            ("RSA", "KOR"): (3, 0),
            ("KOR", "MEX"): (2, 1),
            ("MEX", "CZE"): (1, 0),
            ("RSA", "CZE"): (5, 0),
            ("KOR", "CZE"): (1, 0),
        }
        # mini-league: MEX and RSA 3 pts, +1, 3 goals; KOR 3 pts, -2. Overall GD: RSA +6, MEX +2, KOR -1.
        for seed in range(5):
            table = wc.standings("A", group_results("A", scores), seed)
            assert [r.team for r in table] == ["MEX", "RSA", "KOR", "CZE"]
        assert [r.points for r in table] == [6, 6, 6, 0]
        assert table[1].goal_difference > table[0].goal_difference

    def test_three_way_cycle_falls_to_overall_goal_difference(self) -> None:
        """When head-to-head cannot separate three teams at all, overall goal difference does."""
        scores = {
            ("MEX", "RSA"): (1, 0),
            ("RSA", "KOR"): (1, 0),
            ("KOR", "MEX"): (1, 0),
            ("KOR", "CZE"): (3, 0),
            ("RSA", "CZE"): (2, 0),
            ("MEX", "CZE"): (1, 0),
        }
        for seed in range(5):
            assert order("A", scores, seed) == ["KOR", "RSA", "MEX", "CZE"]

    def test_overall_goal_difference_after_a_direct_draw(self) -> None:
        """Level on points with a drawn direct match: overall goal difference decides."""
        scores = {
            ("MEX", "RSA"): (1, 1),
            ("MEX", "KOR"): (1, 0),
            ("MEX", "CZE"): (1, 0),
            ("RSA", "KOR"): (3, 0),
            ("RSA", "CZE"): (1, 0),
            ("KOR", "CZE"): (0, 0),
        }
        for seed in range(5):
            assert order("A", scores, seed) == ["RSA", "MEX", "CZE", "KOR"]  # CZE -2 above KOR -4 too

    def test_goals_scored_after_equal_goal_difference(self) -> None:
        """Level on points, direct match and goal difference: more goals scored ranks higher."""
        scores = {
            ("MEX", "RSA"): (2, 2),
            ("MEX", "KOR"): (1, 0),
            ("MEX", "CZE"): (1, 0),
            ("RSA", "KOR"): (3, 2),
            ("RSA", "CZE"): (2, 1),
            ("KOR", "CZE"): (0, 0),
        }
        for seed in range(5):
            table = wc.standings("A", group_results("A", scores), seed)
            assert [r.team for r in table][:2] == ["RSA", "MEX"]
            assert table[0].goal_difference == table[1].goal_difference == 2
            assert (table[0].goals_for, table[1].goals_for) == (7, 4)

    def test_drawing_of_lots_is_seeded_and_documented(self) -> None:
        """A complete tie is ordered by SHA-256 of 'exos-wc26-lots|seed|code', reproducibly per seed."""
        scores = dict.fromkeys(itertools.combinations(("MEX", "RSA", "KOR", "CZE"), 2), (0, 0))
        orders = set()
        for seed in range(20):
            got = order("A", scores, seed)
            assert got == order("A", scores, seed)
            assert got == sorted(("MEX", "RSA", "KOR", "CZE"), key=lambda t: lots(seed, t))
            assert wc.lots_key(seed, "MEX") == lots(seed, "MEX")
            orders.add(tuple(got))
        assert len(orders) > 1

    def test_partial_results(self) -> None:
        """Before any match all rows are empty and ordered by lots; unknown match ids are ignored."""
        table = wc.standings("B", {"WC26-A-MEX-RSA": MatchResult(5, 0), "no-such-id": MatchResult(1, 0)}, 3)
        assert all(r.played == 0 for r in table)
        assert [r.team for r in table] == sorted(wc.group("B").codes, key=lambda t: lots(3, t))


def third_tables(thirds: Mapping[str, TeamRow]) -> dict[str, tuple[TeamRow, ...]]:
    """Tables whose third row is the given one (other rows are filler)."""
    tables: dict[str, tuple[TeamRow, ...]] = {}
    for g in wc.GROUPS:
        c = g.codes
        tables[g.letter] = (
            row(c[0], g.letter, 3, 0, 0, 9, 0),
            row(c[1], g.letter, 2, 0, 1, 5, 3),
            thirds[g.letter],
            row(c[3], g.letter, 0, 0, 3, 0, 9),
        )
    return tables


class TestBestThirds:
    """The eight best third-placed teams."""

    THIRDS: ClassVar[dict[str, tuple[int, int, int, int, int]]] = {
        "A": (2, 0, 1, 5, 3),  # 6 pts
        "B": (1, 1, 1, 4, 3),  # 4 pts +1, 4 goals
        "C": (1, 1, 1, 3, 2),  # 4 pts +1, 3 goals
        "D": (1, 1, 1, 3, 3),  # 4 pts 0
        "E": (1, 0, 2, 2, 2),  # 3 pts 0
        "F": (1, 0, 2, 3, 4),  # 3 pts -1, 3 goals
        "G": (1, 0, 2, 2, 3),  # 3 pts -1, 2 goals
        "H": (1, 0, 2, 2, 4),  # 3 pts -2, 2 goals  } level: lots decides the 8th place
        "I": (1, 0, 2, 2, 4),  # 3 pts -2, 2 goals  }
        "J": (0, 2, 1, 1, 2),  # 2 pts
        "K": (0, 1, 2, 0, 4),  # 1 pt
        "L": (1, 0, 2, 1, 4),  # 3 pts -3
    }

    def tables(self) -> dict[str, tuple[TeamRow, ...]]:
        """Hand-built tables with the THIRDS rows third."""
        return third_tables({g: row(wc.group(g).codes[2], g, *v) for g, v in self.THIRDS.items()})

    def test_eight_chosen_by_points_gd_goals_then_lots(self) -> None:
        """A-G by points, GD and goals; the 8th is H's or I's third by the lots rule."""
        tables = self.tables()
        eighth: Counter[str] = Counter()
        for seed in range(30):
            best = wc.best_third_placed(tables, seed)
            assert len(best) == 8
            assert [r.group for r in best[:7]] == list("ABCDEFG")
            hai, irq = wc.group("H").codes[2], wc.group("I").codes[2]
            expected = min((hai, irq), key=lambda t: lots(seed, t))
            assert best[7].team == expected
            assert best == wc.best_third_placed(tables, seed)
            eighth[best[7].group] += 1
        assert set(eighth) == {"H", "I"}


class TestRoundOf32:
    """The round-of-32 slots and the third-place allocation rule."""

    def test_every_one_of_495_third_place_sets_is_allocated(self) -> None:
        """Each set of 8 groups fills the 8 winner slots from their candidate lists, never a winner's own group."""
        seen = set()
        for combo in itertools.combinations(wc.GROUP_LETTERS, 8):
            allocation = wc.allocate_third_places(combo)
            assert allocation == wc.allocate_third_places(reversed(combo))
            assert sorted(allocation.values()) == list(combo)
            for number, winner_group, candidates in wc.THIRD_PLACE_SLOTS:
                assert allocation[number] in candidates
                assert allocation[number] != winner_group
            seen.add(tuple(sorted(allocation.items())))
        assert len(seen) == 495

    def test_allocation_rule_is_first_in_depth_first_order(self) -> None:
        """Thirds from A-H: slots in match order take the alphabetically first group that still completes."""
        # 74 A, 77 C, 79 C taken -> E, 80 H, 81 B, then 82 (AEHIJ) has nothing left: back up to 79 F, 80 E,
        # 81 B, 82 H, 85 G, 87 D.
        assert wc.allocate_third_places("ABCDEFGH") == {
            74: "A",
            77: "C",
            79: "F",
            80: "E",
            81: "B",
            82: "H",
            85: "G",
            87: "D",
        }

    def test_bad_allocation_input_rejected(self) -> None:
        """Not 8 distinct groups A-L is an error."""
        with pytest.raises(ValueError, match="8 distinct"):
            wc.allocate_third_places("ABCDEFG")
        with pytest.raises(ValueError, match="8 distinct"):
            wc.allocate_third_places("ABCDEFGZ")

    def test_200_seeds(self) -> None:
        """32 distinct teams, winners/runners-up/thirds in their slots, never two teams of one group."""
        r32_sources = {s.number: (s.home_source, s.away_source) for s in wc.KNOCKOUT_SLOTS if s.stage == "R32"}
        for seed in range(200):
            tables = wc.simulate_tournament(seed).group_tables()
            pairings = wc.round_of_32(tables, seed)
            assert [p.number for p in pairings] == list(range(73, 89))
            teams = [t for p in pairings for t in (p.home, p.away)]
            assert len(set(teams)) == 32
            winners = {tables[g][0].team for g in wc.GROUP_LETTERS}
            runners = {tables[g][1].team for g in wc.GROUP_LETTERS}
            thirds = {r.team for r in wc.best_third_placed(tables, seed)}
            assert set(teams) == winners | runners | thirds
            for p in pairings:
                assert wc.TEAMS[p.home].group != wc.TEAMS[p.away].group, (seed, p)
                for team, source, template in (
                    (p.home, p.home_source, r32_sources[p.number][0]),
                    (p.away, p.away_source, r32_sources[p.number][1]),
                ):
                    position, letter = int(source[0]), source[1]
                    assert tables[letter][position - 1].team == team
                    if position == 3:
                        assert letter in template[1:]
                    else:
                        assert source == template


class TestSimulation:
    """simulate_match and simulate_tournament."""

    def test_simulate_match_is_seeded_and_integral(self) -> None:
        """Same rng seed, same result; group matches stop at 90 minutes; knockouts always have a winner."""
        for seed in range(300):
            a = wc.simulate_match("ESP", "CPV", random.Random(seed), knockout=True)
            assert a == wc.simulate_match("ESP", "CPV", random.Random(seed), knockout=True)
            assert wc.winner_side(a) in ("home", "away")
            g = wc.simulate_match("MEX", "RSA", random.Random(seed), knockout=False)
            assert g.extra_time is None
            assert g.penalties_winner is None
            assert type(g.home_goals) is int
            assert type(g.away_goals) is int
        with pytest.raises(ValueError, match="bad teams"):
            wc.simulate_match("MEX", "MEX", random.Random(0), knockout=False)

    def test_stronger_team_wins_more_often(self) -> None:
        """The illustrative ratings matter: Spain beats Cape Verde more often than not over 90 minutes."""
        rng = random.Random(1)
        outcomes = Counter(wc.outcome_90(wc.simulate_match("ESP", "CPV", rng, knockout=False)) for _ in range(500))
        assert outcomes["home"] > outcomes["draw"] + outcomes["away"]

    def test_same_seed_same_tournament(self) -> None:
        """Two runs with one seed are equal records with equal digests."""
        a, b = wc.simulate_tournament(42), wc.simulate_tournament(42)
        assert a == b
        assert a.digest() == b.digest()

    def test_different_seeds_differ(self) -> None:
        """Ten seeds give ten different tournaments."""
        assert len({wc.simulate_tournament(seed).digest() for seed in range(10)}) == 10

    def test_104_matches_and_one_champion(self) -> None:
        """72 + 16 + 8 + 4 + 2 + 1 + 1 matches; the final's winner is the one champion."""
        for seed in range(20):
            t = wc.simulate_tournament(seed)
            assert len(t.group_matches) == 72
            assert Counter(p.stage for p, _ in t.knockout_matches) == {
                "R32": 16,
                "R16": 8,
                "QF": 4,
                "SF": 2,
                "3RD": 1,
                "FINAL": 1,
            }
            assert len(t.group_matches) + len(t.knockout_matches) == 104
            final, result = t.knockout_matches[-1]
            assert final.number == 104
            assert t.champion == wc.advance(final, result)
            assert t.runner_up == wc.eliminated(final, result)
            assert len({t.champion, t.runner_up, t.third_place}) == 3
            unbeaten_in_knockouts = {p.home for p, _ in t.knockout_matches} | {p.away for p, _ in t.knockout_matches}
            for p, r in t.knockout_matches:
                if p.stage != "3RD":
                    unbeaten_in_knockouts.discard(wc.eliminated(p, r))
            assert unbeaten_in_knockouts == {t.champion}

    def test_bracket_follows_feeders_and_rest_days(self) -> None:
        """Later-round teams are the winners (or SF losers) of their feeder matches; no team plays twice in 3 days."""
        for seed in range(50):
            t = wc.simulate_tournament(seed)
            by_number = {p.number: (p, r) for p, r in t.knockout_matches}
            for p, _ in t.knockout_matches:
                for team, source in ((p.home, p.home_source), (p.away, p.away_source)):
                    if source[0] in "WL":
                        feeder, result = by_number[int(source[1:])]
                        pick = wc.advance if source[0] == "W" else wc.eliminated
                        assert team == pick(feeder, result)
            kickoffs: defaultdict[str, list[int]] = defaultdict(list)
            for f, _ in t.group_matches:
                kickoffs[f.home].append(f.kickoff_ms)
                kickoffs[f.away].append(f.kickoff_ms)
            for p, _ in t.knockout_matches:
                kickoffs[p.home].append(p.kickoff_ms)
                kickoffs[p.away].append(p.kickoff_ms)
            for team, times in kickoffs.items():
                times.sort()
                assert min(b - a for a, b in itertools.pairwise(times)) >= 3 * DAY, (seed, team)

    def test_tables_and_thirds_are_consistent(self) -> None:
        """The record's tables are the standings of its results and its thirds the best third-placed rows."""
        t = wc.simulate_tournament(5)
        results = {f.match_id: r for f, r in t.group_matches}
        for letter, table in t.group_tables().items():
            assert table == wc.standings(letter, results, 5)
            assert sum(r.played for r in table) == 12
        assert t.best_thirds == wc.best_third_placed(t.group_tables(), 5)

    @pytest.mark.parametrize("seed", [0, 7])
    def test_digest_independent_of_hash_seed(self, seed: int) -> None:
        """The digest is the same under PYTHONHASHSEED 0, 1 and 2 (fresh interpreters)."""
        code = f"from exos_prediction.worldcup import simulate_tournament; print(simulate_tournament({seed}).digest())"
        digests = set()
        for hash_seed in ("0", "1", "2"):
            env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(SRC)}
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=60
            )
            digests.add(out.stdout.strip())
        assert digests == {wc.simulate_tournament(seed).digest()}


class TestEvents:
    """The plain-data event listings for the prediction plugin."""

    def test_match_events(self) -> None:
        """72 three-way events named '<id>: <home>' / 'draw' / '<away>', open until kickoff."""
        events = wc.match_events()
        assert len(events) == 72
        first = events[0]
        assert first.event_id == "WC26-A-MEX-RSA"
        assert [o.name for o in first.outcomes] == [
            "WC26-A-MEX-RSA: MEX",
            "WC26-A-MEX-RSA: draw",
            "WC26-A-MEX-RSA: RSA",
        ]
        assert [o.key for o in first.outcomes] == ["MEX", "draw", "RSA"]
        for e, f in zip(events, wc.group_fixtures(), strict=True):
            assert e.kind == "match"
            assert e.start_ms == e.end_ms == f.kickoff_ms
            assert [o.key for o in e.outcomes] == [f.home, "draw", f.away]
            assert "90 minutes plus stoppage" in e.rule

    def test_group_and_tournament_winner_events(self) -> None:
        """12 group-winner events of 4 outcomes and one 48-outcome tournament-winner event."""
        groups = wc.group_winner_events()
        assert len(groups) == 12
        for e, g in zip(groups, wc.GROUPS, strict=True):
            assert [o.key for o in e.outcomes] == list(g.codes)
            kickoffs = [f.kickoff_ms for f in wc.group_fixtures() if f.group == g.letter]
            assert (e.start_ms, e.end_ms) == (min(kickoffs), max(kickoffs))
        winner = wc.tournament_winner_event()
        assert [o.key for o in winner.outcomes] == list(wc.TEAMS)
        assert winner.outcome("ESP").name == "WC26-WINNER: ESP"
        assert winner.start_ms == wc.group_fixtures()[0].kickoff_ms
        assert winner.end_ms == ms(7, 19, 19)
        with pytest.raises(KeyError):
            winner.outcome("XXX")

    def test_to_advance_listed_when_teams_known(self) -> None:
        """R32 events first; each later pairing appears once both feeder matches have results."""
        t = wc.simulate_tournament(11)
        r32 = wc.round_of_32(t.group_tables(), 11)
        assert wc.known_pairings(r32, {}) == r32
        events = wc.to_advance_events(wc.known_pairings(r32, {}))
        assert len(events) == 16
        assert all(len(e.outcomes) == 2 and e.kind == "to_advance" for e in events)
        results = {p.number: r for p, r in t.knockout_matches}
        some = {n: r for n, r in results.items() if n in (74, 77)}
        assert [p.number for p in wc.known_pairings(r32, some)] == [*range(73, 89), 89]
        everything = wc.known_pairings(r32, results)
        assert everything == tuple(p for p, _ in t.knockout_matches)
        assert len(wc.to_advance_events(everything)) == 32

    def test_event_names_unique_and_resolutions_valid(self) -> None:
        """All event ids and outcome names are unique; a tournament resolves each event to one of its outcomes."""
        t = wc.simulate_tournament(3)
        events = [
            *wc.match_events(),
            *wc.group_winner_events(),
            wc.tournament_winner_event(),
            *wc.to_advance_events(p for p, _ in t.knockout_matches),
        ]
        assert len({e.event_id for e in events}) == len(events) == 72 + 12 + 1 + 32
        names = [o.name for e in events for o in e.outcomes]
        assert len(set(names)) == len(names)
        by_id = {e.event_id: e for e in events}
        resolved = wc.resolutions(t)
        assert [event_id for event_id, _ in resolved] == [e.event_id for e in events]
        for event_id, name in resolved:
            assert name in {o.name for o in by_id[event_id].outcomes}
        assert dict(resolved)["WC26-WINNER"] == f"WC26-WINNER: {t.champion}"
