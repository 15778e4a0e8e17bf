"""Bargaining: Faratin concession tactics, demand crossing, issue linkage, Rubinstein.

Pure functions on plain floats; the world calls them at held meetings.
"""

from __future__ import annotations


def faratin_alpha(t: float, horizon: float, beta: float, k: float = 0.0) -> float:
    """Return the share of the way from opening to reservation conceded at time ``t``.

    Faratin, Sierra and Jennings (1998): alpha(t) = k + (1 - k) (t / T)^(1 / beta), with
    beta < 1 Boulware (concede late), beta = 1 linear, beta > 1 Conceder (concede early).
    Time past ``horizon`` concedes fully.
    """
    if t <= 0.0:
        return k
    if t >= horizon:
        return 1.0
    return k + (1.0 - k) * (t / horizon) ** (1.0 / beta)


def rubinstein_share(d_first: float, d_second: float) -> float:
    """Return the first proposer's equilibrium share of the surplus (Rubinstein 1982).

    With discount factors d1 (first proposer) and d2, the subgame-perfect split gives the
    first proposer (1 - d2) / (1 - d1 d2), accepted at once.
    """
    return (1.0 - d_second) / (1.0 - d_first * d_second)


def gap(high_demand: float, low_demand: float) -> float:
    """Return how far apart the demands are: the side wanting high asks ``high_demand``.

    Zero means the demands cross and any value between them is acceptable to both.
    """
    return high_demand - low_demand if high_demand > low_demand else 0.0


def linkage_deal(
    gap_p: float, gap_q: float, wa_p: float, wa_q: float, wb_p: float, wb_q: float
) -> str | None:
    """Return which package deal on topics p and q pays both sides, or None.

    In "a_gets_p" side A has its demand on p and yields q to side B's demand; "a_gets_q" is
    the mirror trade. A side accepts when the salience-weighted gap it gives up is no larger
    than the one it gains (logrolling): wa_p gap_p >= wa_q gap_q and wb_q gap_q >= wb_p gap_p
    for "a_gets_p", with at least one side strictly better off.
    """
    if gap_p <= 0.0 or gap_q <= 0.0:
        return None
    a_p, a_q, b_p, b_q = wa_p * gap_p, wa_q * gap_q, wb_p * gap_p, wb_q * gap_q
    if a_p >= a_q and b_q >= b_p and (a_p > a_q or b_q > b_p):
        return "a_gets_p"
    if a_q >= a_p and b_p >= b_q and (a_q > a_p or b_p > b_q):
        return "a_gets_q"
    return None
