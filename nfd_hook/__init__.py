"""Discovery of Intel Movidius compute sticks and their rendering as NFD node features.

`nfd_hook` reads the USB bus from sysfs files directly (no libudev), so it runs in any
container and any test can point it at a directory tree. It is imported by the
`ncs2-nfd-hook` command, which must start in a few milliseconds, and by the labeller:
nothing heavy (kubernetes, pyudev, openvino) may be imported at module level here.
"""

__version__ = "0.1.0"
