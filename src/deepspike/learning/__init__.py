"""Local plasticity: rules that return ΔW, traces, homeostasis, competition, and the learner.

=============================  =================================================================
:func:`pair_stdp`              pair STDP, exponential windows, all-to-all/nearest/immediate pairing
:func:`pair_stdp_rows`         the same, restricted to the output units it changes (RowWindow)
:func:`triplet_stdp`           triplet STDP (Pfister & Gerstner 2006)
:func:`triplet_stdp_rows`      nearest-spike triplet without A3-, row-sparse (Diehl & Cook)
:func:`additive`               ΔW = LTP - LTD
:func:`soft_bound`             weight-dependent (multiplicative) STDP
:func:`order_stdp`             simplified order-based STDP (Masquelier 2007; Kheradpisheh 2018)
:func:`rstdp`                  reward-modulated STDP (Mozafari et al. 2018)
``*_rows`` variants            the same restricted to the neurons that learn (RowDelta/RowWindow)
:func:`nessler_stdp`           probabilistic STDP of a stochastic WTA (Nessler et al. 2013)
:class:`AdaptiveThreshold`     homeostatic threshold θ (Diehl & Cook 2015)
:func:`normalize_incoming`     synaptic normalisation (incoming weights sum to a constant)
:func:`conv_k_winners`         k winners with feature-wise and position-wise inhibition
:func:`write_grad`             put ΔW into ``weight.grad`` so any torch optimiser applies it
:func:`write_row_grad`         the same for a row-sparse ΔW (a sparse gradient)
:class:`DenseView`,            one rule for dense and conv connections through an unfold view
:class:`ConvView`
=============================  =================================================================
"""

from deepspike.learning.competition import (
    conv_k_winners,
    earliest_first,
    feature_inhibition,
    position_inhibition,
)
from deepspike.learning.homeostasis import (
    AdaptiveState,
    AdaptiveThreshold,
    normalize_incoming,
    threshold_after,
    threshold_step,
)
from deepspike.learning.learner import apply_update, write_grad, write_row_grad
from deepspike.learning.stdp import (
    VISUAL_CORTEX_FULL,
    VISUAL_CORTEX_MINIMAL,
    PairSTDP,
    PairTraces,
    RowDelta,
    RowWindow,
    TripletSTDP,
    TripletTraces,
    Window,
    additive,
    nessler_stdp,
    order_stdp,
    order_stdp_rows,
    outer,
    pair_stdp,
    pair_stdp_rows,
    reward_amplitudes,
    rstdp,
    rstdp_rows,
    soft_bound,
    triplet_stdp,
    triplet_stdp_rows,
)
from deepspike.learning.traces import TRACE_MODES, before, box, decay_factor, trace
from deepspike.learning.views import ConvView, DenseView, view_of

__all__ = [
    "TRACE_MODES",
    "VISUAL_CORTEX_FULL",
    "VISUAL_CORTEX_MINIMAL",
    "AdaptiveState",
    "AdaptiveThreshold",
    "ConvView",
    "DenseView",
    "PairSTDP",
    "PairTraces",
    "RowDelta",
    "RowWindow",
    "TripletSTDP",
    "TripletTraces",
    "Window",
    "additive",
    "apply_update",
    "before",
    "box",
    "conv_k_winners",
    "decay_factor",
    "earliest_first",
    "feature_inhibition",
    "nessler_stdp",
    "normalize_incoming",
    "order_stdp",
    "order_stdp_rows",
    "outer",
    "pair_stdp",
    "pair_stdp_rows",
    "position_inhibition",
    "reward_amplitudes",
    "rstdp",
    "rstdp_rows",
    "soft_bound",
    "threshold_after",
    "threshold_step",
    "trace",
    "triplet_stdp",
    "triplet_stdp_rows",
    "view_of",
    "write_grad",
    "write_row_grad",
]
