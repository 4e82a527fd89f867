"""Raman spectrometer: the ophyd device, its backend interface, LabSpec 6 and WITec backends.

Flat public namespace over small private modules::

    from insitu.devices.raman import RamanSpectrometer, LabSpec6Backend
    backend = LabSpec6Backend.from_address("TCPIP::127.0.0.1::1234::SOCKET")
    raman = RamanSpectrometer(backend, name="raman", laser_wavelength_nm=532.0)

``WitecBackend`` imports WITecSDK only when built without an injected control object.
"""

from insitu.devices.raman._axis import raman_shift_cm1, wavelength_nm
from insitu.devices.raman._backend import RamanBackend
from insitu.devices.raman._cosmic_rays import (
    median_of_accumulations,
    remove_spikes_whitaker_hayes,
)
from insitu.devices.raman._device import (
    COSMIC_RAY_REMOVAL_MODES,
    AcquisitionStoppedError,
    RamanSpectrometer,
)
from insitu.devices.raman._labspec6 import (
    LabSpec6Backend,
    LabSpec6Client,
    LabSpec6Error,
    LabSpec6LinkError,
)
from insitu.devices.raman._socket_stream import ByteStream, SocketStream, parse_socket_address
from insitu.devices.raman._witec import TrueMatchSpectrum, WitecBackend, parse_truematch

__all__ = [
    "AcquisitionStoppedError",
    "ByteStream",
    "COSMIC_RAY_REMOVAL_MODES",
    "LabSpec6Backend",
    "LabSpec6Client",
    "LabSpec6Error",
    "LabSpec6LinkError",
    "RamanBackend",
    "RamanSpectrometer",
    "SocketStream",
    "TrueMatchSpectrum",
    "WitecBackend",
    "median_of_accumulations",
    "parse_socket_address",
    "parse_truematch",
    "raman_shift_cm1",
    "remove_spikes_whitaker_hayes",
    "wavelength_nm",
]
