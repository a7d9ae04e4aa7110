"""The teacher randomisation test (Adebayo et al.) as a figure: how far an attribution method's ranking of parts
moves when the teacher's weights are re-initialised from the output down.
"""

from __future__ import annotations

import plotly.graph_objects as go

from kdviz.analysis.randomisation import PASS_MAX_RHO, RandomisationResult
from kdviz.report.style import DIFFERS_COLOUR, TEACHER_COLOUR

__all__ = ["randomisation_curve"]


def randomisation_curve(result: RandomisationResult, *, title: str = "") -> go.Figure:
    """The teacher randomisation test (``kdviz.analysis.randomisation.RandomisationResult``) as Adebayo et al. draw it:
    mean ρ to the trained teacher's part ranking as blocks are re-initialised from the output down
    (cascading, the last point = a fully random teacher), each block alone (independent), and the pass
    threshold. A method whose curve stays high ranks parts by the input, not by what the teacher learned."""
    blocks = list(result.blocks)
    cascading = result.cascading_means()
    fig = go.Figure()
    if len(cascading) == len(blocks):  # the full cascade (not only the fully randomised teacher)
        x = ["trained"] + [f"+ {b}" if i else f"{b}" for i, b in enumerate(blocks)]
        fig.add_trace(go.Scatter(x=x, y=[1.0, *cascading], mode="lines+markers", name="cascading (output → input)",
                                 line={"color": TEACHER_COLOUR, "width": 3},
                                 hovertemplate="re-initialised down to %{x}<br>mean ρ %{y:.3f}<extra></extra>"))
        independent = result.independent_means()
        if len(independent) == len(blocks):
            fig.add_trace(go.Scatter(x=x[1:], y=independent, mode="markers", name="independent (that block alone)",
                                     marker={"color": "#E69F00", "size": 10, "symbol": "diamond"},
                                     hovertemplate="only %{x} re-initialised<br>mean ρ %{y:.3f}<extra></extra>"))
    else:
        x = ["trained", "fully random"]
        fig.add_trace(go.Scatter(x=x, y=[1.0, result.full_rho], mode="lines+markers", name="fully randomised",
                                 line={"color": TEACHER_COLOUR, "width": 3}))
    fig.add_trace(go.Scatter(x=[x[-1]], y=[result.full_rho], mode="markers", showlegend=False, hoverinfo="skip",
                             error_y={"type": "data", "symmetric": False,
                                      "array": [max(0.0, result.full_rho_high - result.full_rho)],
                                      "arrayminus": [max(0.0, result.full_rho - result.full_rho_low)]},
                             marker={"color": TEACHER_COLOUR, "size": 1}))
    fig.add_hline(y=PASS_MAX_RHO, line={"dash": "dash", "color": DIFFERS_COLOUR},
                  annotation_text=f"passes at or below ρ = {PASS_MAX_RHO}", annotation_position="bottom left")
    verdict = {"passes": "passes", "fails": "fails on this data"}.get(result.verdict, result.verdict)
    if getattr(result, "undecided", False):
        verdict = f"undecided ({result.verdict} on the mean; the interval straddles {PASS_MAX_RHO})"
    fig.update_layout(
        title=title or f"Teacher randomisation test — {verdict} (fully random teacher: ρ {result.full_rho:.2f})",
        yaxis={"title": "mean ρ to the trained teacher's ranking", "range": [-0.25, 1.05]},
        xaxis={"title": "blocks re-initialised, from the output down"}, height=400, margin={"t": 60},
        legend={"orientation": "h", "y": -0.3},
    )
    return fig
