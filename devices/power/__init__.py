"""Power meters and energy per inference (see measure.py for the one call the sweep makes).

One module per meter kind (joulescope, ppk2, ina2xx, replay, sim), a registry by kind, and the
energy pipeline: trace -> dropped-sample check -> marker or host-timestamp window -> median over
windows. Vendor packages are optional (the `power` extra) and imported only when a meter opens.
"""

from devices.power.base import MeterIdentity, PowerMeter, Trace, WindowInfo
from devices.power.binding import MeterBinding, bind_meters, create_meter
from devices.power.energy import EnergyResult, WindowEnergy
from devices.power.measure import device_window, iterations_for, measure_energy

__all__ = [
    "EnergyResult", "MeterBinding", "MeterIdentity", "PowerMeter", "Trace", "WindowEnergy", "WindowInfo",
    "bind_meters", "create_meter", "device_window", "iterations_for", "measure_energy",
]  # fmt: skip
