"""luna2d: the cluster-provisioning daemon."""

__version__ = "2.1.0"
API_VERSION = 1
