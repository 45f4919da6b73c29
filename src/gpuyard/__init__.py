"""gpuyard: a self-hosted GPU cloud control plane that speaks the Vast.ai templates API.

``from gpuyard import VastAI`` gives the SDK client. It is loaded lazily so that importing the
package (for example by the ``gpuyard`` command line) never pulls in the HTTP stack.
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["VastAI", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from gpuyard.sdk.client import VastAI


def __getattr__(name: str) -> Any:
    if name == "VastAI":
        from gpuyard.sdk.client import VastAI

        return VastAI
    raise AttributeError(f"module 'gpuyard' has no attribute {name!r}")
