r"""Energy estimates from operation counts and published per-operation energies.

Two kinds of hardware profile:

* **CMOS** (a conventional digital accelerator): energy per accumulate (AC) and per
  multiply-accumulate (MAC). An SNN costs :math:`N_{AC} E_{AC} + N_{MAC} E_{MAC}`; its
  equivalent ANN costs :math:`N^{ANN}_{MAC} E_{MAC}`. This is the estimate most SNN papers
  report (e.g. Rathi & Roy 2020; Panda et al. 2020), built on Horowitz's 45 nm figures.
* **neuromorphic** chips: energy per synaptic event (one spike delivered over one synapse)
  and, if published, per neuron update. An SNN costs
  :math:`N_{synops} E_{syn} + N_{updates} E_{neuron}`.

These are first-order estimates from operation counts only: memory access, data movement,
static power and routing are ignored, so they rank models rather than predict a meter reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from deepspike.errors import ConfigError
from deepspike.metrics.report import CostReport

PJ_PER_UJ = 1e6

HOROWITZ_2014 = (
    'M. Horowitz, "1.1 Computing\'s energy problem (and what we can do about it)", '
    "IEEE International Solid-State Circuits Conference (ISSCC) 2014, Digest of Technical "
    "Papers, pp. 10-14, doi:10.1109/ISSCC.2014.6757323 (45 nm, 0.9 V)"
)
DAVIES_2018 = (
    'M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip Learning", '
    "IEEE Micro 38(1):82-99, 2018, doi:10.1109/MM.2018.112130359"
)
MEROLLA_2014 = (
    'P. A. Merolla et al., "A million spiking-neuron integrated circuit with a scalable '
    'communication network and interface", Science 345(6197):668-673, 2014, '
    "doi:10.1126/science.1254642"
)


@dataclass(frozen=True)
class HardwareProfile:
    """Energy per operation of one kind of hardware, in picojoules.

    Attributes:
        name: the key in :data:`HARDWARE_PROFILES`.
        description: what the numbers describe.
        source: the publication the numbers come from.
        ac_pj: energy of one accumulate (an addition), CMOS profiles.
        mac_pj: energy of one multiply-accumulate (a multiplication plus an addition).
        synop_pj: energy of one synaptic event, neuromorphic profiles; when set, synaptic
            operations cost this whatever their kind.
        neuron_update_pj: energy of one neuron update (0 when not part of the estimate).
    """

    name: str
    description: str
    source: str
    ac_pj: float | None = None
    mac_pj: float | None = None
    synop_pj: float | None = None
    neuron_update_pj: float = 0.0

    def __post_init__(self) -> None:
        if self.synop_pj is None and (self.ac_pj is None or self.mac_pj is None):
            raise ConfigError(
                f"profile {self.name!r} needs synop_pj (neuromorphic) or both ac_pj and mac_pj"
            )

    @property
    def neuromorphic(self) -> bool:
        """Whether synaptic operations are priced per synaptic event."""
        return self.synop_pj is not None


HARDWARE_PROFILES: Mapping[str, HardwareProfile] = MappingProxyType(
    {
        p.name: p
        for p in (
            HardwareProfile(
                name="cmos45_float",
                description="45 nm CMOS, 32-bit float: MAC = mult 3.7 pJ + add 0.9 pJ; AC = add",
                source=HOROWITZ_2014,
                ac_pj=0.9,
                mac_pj=4.6,  # 3.7 + 0.9
            ),
            HardwareProfile(
                name="cmos45_int",
                description="45 nm CMOS, 32-bit integer: MAC = mult 3.1 pJ + add 0.1 pJ; AC = add",
                source=HOROWITZ_2014,
                ac_pj=0.1,
                mac_pj=3.2,  # 3.1 + 0.1
            ),
            HardwareProfile(
                name="loihi",
                description="Intel Loihi (14 nm): 23.6 pJ per synaptic spike op (minimum), "
                "52 pJ per active neuron update",
                source=DAVIES_2018,
                synop_pj=23.6,
                neuron_update_pj=52.0,
            ),
            HardwareProfile(
                name="truenorth",
                description="IBM TrueNorth (28 nm): 26 pJ per synaptic event",
                source=MEROLLA_2014,
                synop_pj=26.0,
            ),
        )
    }
)


def get_profile(profile: str | HardwareProfile) -> HardwareProfile:
    """Look a profile up by name (or pass one through)."""
    if isinstance(profile, HardwareProfile):
        return profile
    try:
        return HARDWARE_PROFILES[profile]
    except KeyError:
        raise ConfigError(
            f"hardware profile {profile!r} is unknown; choose one of {', '.join(HARDWARE_PROFILES)}"
        ) from None


def energy_pj(acs: float, macs: float, neuron_updates: float, profile: HardwareProfile) -> float:
    """Energy in pJ of the given operation counts on ``profile``."""
    if profile.synop_pj is not None:
        synaptic = (acs + macs) * profile.synop_pj
    else:
        synaptic = acs * (profile.ac_pj or 0.0) + macs * (profile.mac_pj or 0.0)
    return synaptic + neuron_updates * profile.neuron_update_pj


def energy_uj(report: CostReport, profile: str | HardwareProfile) -> float:
    r"""Energy per sample in µJ of the SNN in ``report`` on ``profile``.

    CMOS: :math:`N_{AC} E_{AC} + N_{MAC} E_{MAC} (+ N_{upd} E_{upd})`; neuromorphic:
    :math:`(N_{AC} + N_{MAC}) E_{syn} + N_{upd} E_{upd}`.
    """
    p = get_profile(profile)
    return energy_pj(report.acs, report.macs, report.neuron_updates, p) / PJ_PER_UJ


def ann_energy_uj(report: CostReport, profile: str | HardwareProfile) -> float:
    """Energy per sample in µJ of the equivalent ANN: ``ann_macs * E_MAC`` (CMOS profiles)."""
    p = get_profile(profile)
    if p.mac_pj is None:
        raise ConfigError(
            f"profile {p.name!r} has no energy per MAC, so it cannot price the equivalent ANN; "
            "use a CMOS profile such as 'cmos45_float'"
        )
    return report.ann_macs * p.mac_pj / PJ_PER_UJ


def energy_table(
    report: CostReport, profiles: Mapping[str, HardwareProfile] = HARDWARE_PROFILES
) -> dict[str, float]:
    """Energy per sample (µJ) on every profile: ``{name: snn}`` plus ``{name + "_ann": ann}``
    for profiles with an energy per MAC, e.g. ``{"cmos45_float": 1.1, "cmos45_float_ann": 11.5,
    ..., "loihi": ..., "truenorth": ...}`` (the ``energy_uj_per_sample`` entry of result.json).
    """
    table: dict[str, float] = {}
    for name, p in profiles.items():
        table[name] = energy_uj(report, p)
        if p.mac_pj is not None:
            table[f"{name}_ann"] = ann_energy_uj(report, p)
    return table
