"""The ADL ranking's lazy order: however far each walk goes, every walk yields the accounts in sorted key order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exos.liquidation import _Ranking

_SCORES = st.lists(st.integers(-(2**80), 2**80), max_size=60)
_STOPS = st.lists(st.integers(0, 70), min_size=1, max_size=5)


@given(scores=_SCORES, stops=_STOPS)
def test_every_walk_follows_the_sorted_keys(scores: list[int], stops: list[int]) -> None:
    """Walks cut short at any points, then one to the end: each is a prefix of the (−score, account) sort."""
    keyed = [(score, account) for account, score in enumerate(scores)]
    expected = [account for _, account in sorted(keyed)]
    ranking = _Ranking(list(reversed(keyed)))
    for stop in stops:
        walked = []
        for account in ranking:
            if len(walked) == stop:
                break
            walked.append(account)
        assert walked == expected[:stop]
    assert list(ranking) == expected
