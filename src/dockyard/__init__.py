"""dockyard: a Docker-compatible container engine."""
__version__ = "0.1.0"
API_VERSION = "1.50"        # newest Engine API version we claim
MIN_API_VERSION = "1.24"    # oldest we accept
