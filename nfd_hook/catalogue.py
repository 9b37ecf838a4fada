"""The Movidius USB identities this project knows, kept as data in one place.

Every fact here comes from USB descriptors seen on real sticks (see the field notes): the
vendor id 03e7 is Movidius (now Intel), an idle stick shows its own product id, and any
Myriad that has had firmware loaded re-enumerates as 03e7:f63b, whatever its model.
"""

from __future__ import annotations

from typing import NamedTuple

VENDOR_MOVIDIUS = "03e7"

STATE_IDLE = "idle"
STATE_BOOTED = "booted"
STATE_BOOTLOADER = "bootloader"


class Model(NamedTuple):
    """A Myriad VPU generation, as OpenVINO names and describes it."""

    name: str
    full_name: str
    # OPTIMIZATION_CAPABILITIES of the MYRIAD plugin for this chip (OpenVINO 2021.4).
    capabilities: tuple[str, ...]


MYRIAD_X = Model("Myriad X", "Intel Movidius Myriad X VPU", ("FP16",))
MYRIAD_2 = Model("Myriad 2", "Intel Movidius Myriad 2 VPU", ("FP16",))


class Identity(NamedTuple):
    """What one 03e7 product id means."""

    product_id: str
    state: str
    # None when the model must be read from the serial number (a booted Myriad).
    model: Model | None
    # False for ids that belong to cameras or bootloaders, never to a compute stick.
    compute_stick: bool
    description: str


IDENTITIES: dict[str, Identity] = {
    identity.product_id: identity
    for identity in (
        Identity("2485", STATE_IDLE, MYRIAD_X, True, "Neural Compute Stick 2, idle"),
        Identity("f63b", STATE_BOOTED, None, True, "Myriad with firmware loaded"),
        Identity("2150", STATE_IDLE, MYRIAD_2, True, "Neural Compute Stick, idle"),
        Identity("f63c", STATE_BOOTLOADER, None, False, "Luxonis bootloader"),
        Identity("f63d", STATE_BOOTLOADER, None, False, "Luxonis bootloader"),
    )
}

# A booted Myriad reports the chip's MX ID as its serial: 18 hex digits on a Myriad X,
# 14 on a Myriad 2. Anything else says nothing about the model.
MX_ID_MODELS: dict[int, Model] = {18: MYRIAD_X, 14: MYRIAD_2}
# When the serial does not tell, a booted Myriad is taken for a Myriad X: the NCS2 is by
# far the most common stick still in use.
DEFAULT_BOOTED_MODEL = MYRIAD_X

# A booted Luxonis OAK camera shares 03e7:f63b with the sticks; only its product string
# tells it apart. It is an accelerator bound to its camera, not a compute stick.
LUXONIS_PRODUCT_PREFIX = "luxonis"


def booted_model(serial: str | None) -> Model:
    """The model of a booted Myriad, told by the length of its MX ID serial."""
    if serial and all(c in "0123456789abcdefABCDEF" for c in serial):
        return MX_ID_MODELS.get(len(serial), DEFAULT_BOOTED_MODEL)
    return DEFAULT_BOOTED_MODEL
