r"""ANN activations designed for conversion, and the rate functions they approximate.

* :class:`QCFS`: the quantisation-clip-floor-shift activation of Bu et al. (2022), *Optimal
  ANN-SNN conversion for high-accuracy and ultra-low-latency spiking neural networks* (ICLR):

  .. math::

      h(z) = \frac{\lambda}{L}\,\mathrm{clip}\!\left(\left\lfloor \frac{zL}{\lambda} + \varphi
      \right\rfloor, 0, L\right),

  with a trainable threshold :math:`\lambda` per layer, :math:`L` quantisation levels and the
  shift :math:`\varphi = 1/2`. An IF neuron with threshold :math:`\lambda`, reset by subtraction
  and initial membrane :math:`\varphi\lambda` emits exactly
  :math:`\mathrm{clip}(\lfloor Tz/\lambda + \varphi\rfloor, 0, T)` spikes in :math:`T` steps of a
  constant input :math:`z`, i.e. :math:`h(z)` with :math:`L = T`; the expected conversion error
  is zero for every :math:`T` (their Theorem 2). The floor passes gradients straight through.

* :class:`SoftLIF`: the soft-LIF rate of Hunsberger & Eliasmith (2015), *Spiking deep networks
  with LIF neurons* (arXiv:1510.08829). The steady-state rate of an LIF neuron (threshold 1,
  reset to 0, membrane time constant :math:`\tau_{RC}`, refractory period :math:`\tau_{ref}`)
  driven by a constant current :math:`j` is

  .. math::

      r(j) = \left[\tau_{ref} + \tau_{RC} \log\left(1 + \frac{1}{j - 1}\right)\right]^{-1}
      \quad (j > 1), \qquad 0 \text{ otherwise};

  the soft-LIF replaces :math:`(j-1)_+` by the softplus
  :math:`\rho(j-1) = \gamma \log(1 + e^{(j-1)/\gamma})`, whose derivative is finite everywhere, so
  the network trains by back-propagation and then runs with real LIF neurons.

Times are in milliseconds (as in :class:`deepspike.neurons.LIFParams`), rates in spikes per
millisecond; ``amplitude`` turns a rate into an activation, :math:`a = \mathrm{amplitude}\cdot r`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from deepspike.errors import ConfigError

#: The smallest excess ``j - 1`` used in :func:`lif_rate` (avoids ``1/0``).
MIN_EXCESS = 1e-9
#: The soft-LIF is cut to 0 where :math:`(j-1)/\gamma < -20` (see :func:`soft_lif_rate`).
SOFTPLUS_CUT = 20.0


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    """``floor(x)`` forward, identity backward (the straight-through estimator)."""
    return x + (torch.floor(x) - x).detach()


def qcfs(
    z: torch.Tensor, threshold: torch.Tensor | float, levels: int, shift: float = 0.5
) -> torch.Tensor:
    r"""Quantisation-clip-floor-shift activation (Bu et al. 2022), see the module docstring.

    Computed as :math:`\lambda \lfloor \mathrm{clip}(z/\lambda, 0, 1) L + \varphi \rfloor / L`,
    which equals the clipped form for :math:`0 \le \varphi < 1`. Gradients reach ``z`` inside
    :math:`(0, \lambda)` and reach ``threshold`` through both the clip and the scale.
    """
    u = (z / threshold).clamp(0.0, 1.0)
    return floor_ste(u * levels + shift) / levels * threshold


def lif_rate(j: torch.Tensor, tau_rc: float = 20.0, tau_ref: float = 2.0) -> torch.Tensor:
    r"""Steady-state LIF firing rate (spikes/ms) for a constant input current ``j``
    (threshold 1): :math:`[\tau_{ref} + \tau_{RC}\log(1 + 1/(j-1))]^{-1}` for :math:`j > 1`."""
    excess = j - 1.0
    safe = excess.clamp(min=MIN_EXCESS)
    rate = 1.0 / (tau_ref + tau_rc * torch.log1p(1.0 / safe))
    return torch.where(excess > 0, rate, torch.zeros_like(rate))


def soft_lif_rate(
    j: torch.Tensor, tau_rc: float = 20.0, tau_ref: float = 2.0, gamma: float = 0.02
) -> torch.Tensor:
    r"""Soft-LIF rate (spikes/ms): :func:`lif_rate` with :math:`(j-1)_+` replaced by
    :math:`\gamma\log(1 + e^{(j-1)/\gamma})` (Hunsberger & Eliasmith 2015, Eq. 3).

    The soft rate decays only logarithmically below threshold; it is cut to exactly 0 where
    :math:`(j-1)/\gamma < -20` (a rate below about 1 % of the maximum), so that units far below
    threshold are silent, as the LIF neurons that replace them, and so that float32 never
    reaches denormal numbers, which make CPU arithmetic about a hundred times slower.
    """
    x = (j - 1.0) / gamma
    rho = gamma * F.softplus(x.clamp(min=-SOFTPLUS_CUT))
    rate = 1.0 / (tau_ref + tau_rc * torch.log1p(1.0 / rho))
    return torch.where(x > -SOFTPLUS_CUT, rate, torch.zeros_like(rate))


class QCFS(nn.Module):
    """QCFS activation with a learnable threshold :math:`\\lambda` (one per layer).

    Args:
        levels: quantisation steps :math:`L` (Bu et al. use 4-16; fewer steps let the SNN reach
            the ANN's accuracy in fewer time steps).
        threshold: initial :math:`\\lambda`.
        shift: :math:`\\varphi`; 0.5 minimises the expected conversion error.
    """

    def __init__(self, levels: int = 8, threshold: float = 4.0, shift: float = 0.5) -> None:
        super().__init__()
        if levels < 1 or threshold <= 0 or not 0.0 <= shift < 1.0:
            raise ConfigError(
                f"QCFS needs levels >= 1, threshold > 0 and 0 <= shift < 1; got levels={levels}, "
                f"threshold={threshold}, shift={shift}"
            )
        self.levels = int(levels)
        self.shift = float(shift)
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return qcfs(z, self.threshold.abs().clamp(min=1e-3), self.levels, self.shift)

    @property
    def trained_scale(self) -> float:
        """The learned :math:`\\lambda`: the activation an SNN neuron's threshold stands for."""
        return float(self.threshold.detach().abs().clamp(min=1e-3))

    def extra_repr(self) -> str:
        return f"levels={self.levels}, threshold={self.trained_scale:.4g}, shift={self.shift}"


class SoftLIF(nn.Module):
    r"""Soft-LIF activation :math:`a = \mathrm{amplitude}\cdot r_{soft}(j)` (spikes/ms scaled).

    During training, ``noise`` adds Gaussian noise of that standard deviation to the activation
    of active units, modelling the variability of spike trains (Hunsberger & Eliasmith 2015
    train with noise for robustness to it).
    """

    def __init__(
        self,
        tau_rc: float = 20.0,
        tau_ref: float = 2.0,
        gamma: float = 0.02,
        amplitude: float = 2.0,
        noise: float = 0.0,
    ) -> None:
        super().__init__()
        if tau_rc <= 0 or tau_ref < 0 or gamma <= 0 or amplitude <= 0 or noise < 0:
            raise ConfigError(
                "SoftLIF needs tau_rc > 0, tau_ref >= 0, gamma > 0, amplitude > 0, noise >= 0"
            )
        self.tau_rc = float(tau_rc)
        self.tau_ref = float(tau_ref)
        self.gamma = float(gamma)
        self.amplitude = float(amplitude)
        self.noise = float(noise)

    def forward(self, j: torch.Tensor) -> torch.Tensor:
        a = self.amplitude * soft_lif_rate(j, self.tau_rc, self.tau_ref, self.gamma)
        if self.training and self.noise > 0:
            a = a + self.noise * torch.randn_like(a) * (j > 1.0)
        return a

    def extra_repr(self) -> str:
        return (
            f"tau_rc={self.tau_rc}, tau_ref={self.tau_ref}, gamma={self.gamma}, "
            f"amplitude={self.amplitude}, noise={self.noise}"
        )
