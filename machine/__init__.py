"""Machine: create Docker hosts and point the docker CLI at them."""
__version__ = "0.1.0"
