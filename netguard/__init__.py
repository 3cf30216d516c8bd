"""netguard: Kubernetes network micro-segmentation and traffic guard."""

__version__ = "0.1.0"
